// Two run folders' forgetting curves against each other (compare --curve --figure): B's source k-NN less A's after
// each step both runs scored (study/run-comparison.ts), one line per strategy and rate, error bars the 95% interval
// of each point's difference, paired as the cells are; a dashed line at 0, where the two runs keep as much. The
// step axis is the forgetting curve's (symmetric-log). A point whose difference has no interval (one seed without
// answers per query) has no bar, and a line of the subtitle names it. A pair whose points are the same in both runs
// at every step (cells both folders hold from one copy) is named, not drawn: its line at 0 would hide the dashed one.
// The pairs are set a few pixels apart along the step axis (DODGE_PX each), so that their error bars at one step do
// not hide each other; the ticks, the tooltips and the data keep the steps themselves.
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG, REFERENCE_DASH } from "../../plot/style.js";
import { CONFIDENCE } from "../comparisons.js";
import type { RunComparison, RunPair } from "../run-comparison.js";
import { intervalEnds, listLines, nothingToDrawSpec, studyTitle } from "./parts.js";
import { stepAxis } from "./forgetting-curve.js";

const WIDTH = 440;
const DODGE_PX = 5;

// A pair's label in the legend: its strategy, and its rate in each run.
const pairLabel = (p: RunPair) => `${p.strategy} (lr ${p.lrA === p.lrB ? p.lrA : `${p.lrA} -> ${p.lrB}`})`;

export function runComparisonCurveSpec(c: RunComparison): FigureSpec {
  if (!c.curveSteps) throw new Error("compare: expected a comparison with the runs' curves (curve), got one without");
  const same = (p: RunPair) => p.curve!.every((q) => q.knn.mean === 0 && q.knn.lo === 0 && q.knn.hi === 0);
  const drawn = c.pairs.filter((p) => !same(p));
  if (drawn.length === 0) return nothingToDrawSpec("Along fine-tuning, B less A", [`A: ${c.a.name}`, `B: ${c.b.name}`, "every strategy's points the same in both runs"]);
  const labels = drawn.map(pairLabel);
  // Pair i's offset from the step, in the symlog axis's own units (log1p(step)), DODGE_PX apart about the step.
  const lastStep = c.curveSteps[c.curveSteps.length - 1];
  const dodge = (i: number) => ((i - (drawn.length - 1) / 2) * DODGE_PX * Math.log1p(lastStep)) / WIDTH;
  const at = (step: number, i: number) => {
    const u = Math.log1p(step) + dodge(i); // where the axis puts it: symlog(x) = sign(x) log1p(|x|)
    return Math.sign(u) * Math.expm1(Math.abs(u));
  };
  const points = drawn.flatMap((p, i) =>
    p.curve!.map((q) => ({ pair: labels[i], step: q.step, at: at(q.step, i), seeds: q.seeds.length, knn: q.knn.mean, ...intervalEnds(q.knn) })),
  );
  const barless = [...new Set(points.filter((p) => p.lo === null).map((p) => p.pair))];
  const x = { ...stepAxis(c.curveSteps, "Fine-tuning step (symmetric log scale)", WIDTH), field: "at" } as const;
  const y = { field: "knn", type: "quantitative", title: "B - A source k-NN top-1 (points)", scale: { zero: true, nice: false, padding: 12 }, axis: { tickCount: 6 } } as const;
  const color = { field: "pair", type: "nominal", scale: { domain: labels }, title: "Strategy" } as const;
  const shape = { ...color };
  const which = c.tableRates ? "each strategy at its table rate in each run" : c.rates ? `each strategy at ${c.rates[0]} in A, ${c.rates[1]} in B` : "each strategy at each rate both runs finished";
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: studyTitle("Along fine-tuning, B less A", c.b.name),
      // Lines of their own: vega sizes text by an estimate (0.8 em a character), and a long line widens the figure.
      subtitle: [
        `A: ${c.a.name}`,
        `B: ${c.b.name}`,
        "source k-NN after each step, B's less A's",
        which,
        `error bars: ${CONFIDENCE * 100}% interval of the difference,`,
        "paired by seed (and query, where both kept answers)",
        ...(barless.length > 0 ? listLines("no interval (one seed without answers)", barless) : []),
        ...(drawn.length < c.pairs.length ? listLines("the same in both runs, not drawn", c.pairs.filter(same).map(pairLabel)) : []),
      ],
    },
    width: WIDTH,
    height: 320,
    config: FIGURE_CONFIG,
    layer: [
      {
        data: { values: [{ knn: 0, line: "no difference" }] },
        mark: { type: "rule", color: "#333", strokeWidth: 1.5 },
        encoding: {
          y,
          strokeDash: { field: "line", type: "nominal", scale: { range: [REFERENCE_DASH] }, legend: { title: null, orient: "top", symbolSize: 500, symbolStrokeColor: "#333", symbolStrokeWidth: 1.5 } },
        },
      },
      ...(points.some((p) => p.lo !== null)
        ? [{ data: { values: points.filter((p) => p.lo !== null) }, mark: { type: "rule", strokeWidth: 1.5 }, encoding: { x, y: { ...y, field: "lo" }, y2: { field: "hi" }, color } } as const]
        : []),
      {
        data: { values: points },
        mark: { type: "line", strokeWidth: 2, point: { filled: true, size: 60, stroke: "#222", strokeWidth: 0.6 } },
        encoding: {
          x,
          y,
          color,
          shape,
          tooltip: [{ field: "pair" }, { field: "step" }, { field: "seeds" }, { field: "knn", format: "+.2f" }, { field: "lo", format: "+.2f" }, { field: "hi", format: "+.2f" }],
        },
      },
    ],
  };
}
