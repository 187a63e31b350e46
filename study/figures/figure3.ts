// The paper's Figure 3: Block Expansion with several numbers of new blocks at several learning rates. Two panels,
// the transfer accuracy and the source k-NN accuracy against the number of new blocks (p; block@POS counts its
// positions), one line per learning rate, every cell's mean over its seeds (not only each strategy's selected rate,
// as the table), error bars of one standard deviation where there are several seeds, and the original backbone's
// k-NN accuracy as the dashed reference line. A study has the figure when its finished cells hold Block Expansion at
// two or more numbers of blocks and two or more rates; a (strategy, rate) with a diverged seed is left out, as in
// the table's choice, and named in the subtitle, as is one without a finished cell yet.
import { type Strategy, parseStrategy } from "../../peft/strategy.js";
import type { FigureLayer, FigureSpec } from "../../plot/render.js";
import type { StudyResults } from "../results.js";
import { type RatePoint, absentRateLines, knnChannel, originalBackboneLayer, percentChannel, ratePoints, seedsNote, stdBars, studyTitle } from "./parts.js";
import { panelsSpec } from "./panels.js";

export interface BlockPoint extends RatePoint {
  blocks: number; // new blocks
}

// Every Block Expansion strategy x rate with finished cells, in the cells' order, trained at one rate (no layer-wise
// decay) from a drawn head (no linear probe first). Where two strategies add the same number of blocks (block-p1 and
// block@11), the first in the config stands for it.
function expansionAtOneRate(name: string): Extract<Strategy, { kind: "block" }> | undefined {
  const s = parseStrategy(name);
  return s.kind === "block" && s.layerDecay === undefined && !s.probeFirst ? s : undefined;
}

export function blockPoints(r: StudyResults): BlockPoint[] {
  const points: BlockPoint[] = [];
  for (const p of ratePoints(r)) {
    const s = expansionAtOneRate(p.strategy);
    if (s && !points.some((q) => q.blocks === s.p && q.lr === p.lr)) points.push({ ...p, blocks: s.p });
  }
  return points;
}

export function hasFigure3(r: StudyResults): boolean {
  const points = blockPoints(r);
  return new Set(points.map((p) => p.blocks)).size >= 2 && new Set(points.map((p) => p.lr)).size >= 2;
}

export function figure3Spec(r: StudyResults): FigureSpec {
  const points = blockPoints(r).map(stdBars);
  if (!hasFigure3(r)) throw new Error(`figure 3: expected Block Expansion at 2 or more numbers of blocks and rates in ${r.name}, got ${points.map((p) => `${p.strategy} lr ${p.lr}`).join(", ") || "none"}`);
  const blocks = [...new Set(points.map((p) => p.blocks))].sort((a, b) => a - b);
  const rates = [...new Set(points.map((p) => p.lr))].sort((a, b) => b - a);
  const several = points.filter((p) => p.seeds > 1);
  const x = { field: "blocks", type: "quantitative", title: "New blocks (p)", scale: { zero: false, nice: false, padding: 16 }, axis: { values: blocks, format: "d" } } as const;
  const color = { field: "lr", type: "nominal", scale: { domain: rates }, title: "Learning rate" } as const;
  const panel = (field: "transfer" | "knn", y: (f: string) => object, title: string, extra: FigureLayer[]) => ({
    title,
    layers: [
      ...(several.length > 0 ? [{ data: { values: several }, mark: { type: "errorbar", ticks: true, thickness: 1.5 }, encoding: { x, y: y(`${field}Lo`), y2: { field: `${field}Hi` }, color } } as FigureLayer] : []),
      {
        data: { values: points },
        mark: { type: "line", strokeWidth: 2, point: { filled: true, size: 60, stroke: "#222", strokeWidth: 0.6 } },
        encoding: { x, y: y(field), color, tooltip: [{ field: "strategy" }, { field: "lr" }, { field: "seeds" }, { field, format: ".2f" }] },
      } as FigureLayer,
      ...extra,
    ],
  });
  return panelsSpec(
    {
      text: studyTitle("Block Expansion: new blocks x learning rate", r.name, ","),
      subtitle: [
        "every cell (a number of blocks at a rate)",
        ...seedsNote(points.map((p) => ({ label: `${p.strategy} lr ${p.lr}`, seeds: p.seeds }))),
        ...absentRateLines(r, (s) => expansionAtOneRate(s) !== undefined),
      ],
    },
    [
      panel("transfer", (f) => percentChannel(f, "Transfer accuracy (%)"), "Transfer accuracy", []),
      panel("knn", (f) => knnChannel(r, f), "Source k-NN accuracy (forgetting)", [originalBackboneLayer(r, "bottom")]),
    ],
  );
}
