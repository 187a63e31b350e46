// The paper's Figure 2 for one study: source k-NN accuracy (forgetting) against transfer accuracy, one mark per
// strategy at its selected learning rate, with error bars of one standard deviation over seeds on both axes where
// a strategy has several, and the original backbone's k-NN accuracy as a dashed reference line. Its layers also make
// each panel of the figures across run folders (study/figures/panels.ts: Figure 2 per dataset, Figure 4 per model).
import { strategyName } from "../../peft/strategy.js";
import type { FigureLayer, FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";
import type { StudyResults } from "../results.js";
import { type Panel, type RatePoint, knnChannel, originalBackboneLayer, percentChannel, seedsNote, stdBars, strategyChannels, studyTitle } from "./parts.js";

export function figure2Spec(r: StudyResults): FigureSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: studyTitle("Forgetting vs. transfer", r.name),
      subtitle: ["each strategy at its selected learning rate", ...seedsNote(r.table.map((row) => ({ label: strategyName(row.strategy), seeds: row.seeds })))],
    },
    width: 440,
    height: 320,
    config: FIGURE_CONFIG,
    layer: figure2Layers(r),
  };
}

// The figure's marks for one study's table: the reference line, the error bars where a strategy has several seeds,
// one point per strategy. `domain` orders the strategies' colours and shapes (a figure of several panels shares
// one); `xTitle` the transfer axis.
export function figure2Layers(r: Panel, o: { domain?: string[]; xTitle?: string } = {}): FigureLayer[] {
  const rows = r.table.map((row) => ({ strategy: strategyName(row.strategy), lr: row.lr, seeds: row.seeds, transfer: row.transfer, transferStd: row.transferStd, knn: row.knn, knnStd: row.knnStd }));
  return [originalBackboneLayer(r), ...accuracyMarks(r, rows, strategyChannels(r, o.domain), o.xTitle)];
}

// A point per row at (transfer, source k-NN), coloured and shaped by strategy, with error bars of one standard
// deviation on both axes where the row has several seeds: Figure 2's marks, and the trade-off's across rates.
export function accuracyMarks(r: Pick<Panel, "reportK">, rows: RatePoint[], channels: ReturnType<typeof strategyChannels>, xTitle = "Transfer accuracy (%), linear head on the new domain"): FigureLayer[] {
  const values = rows.map(stdBars);
  const several = values.filter((row) => row.seeds > 1);
  const x = (field: string) => percentChannel(field, xTitle);
  const y = (field: string) => knnChannel(r, field);
  const { color, shape } = channels;
  const errorBar = { type: "errorbar", ticks: true, thickness: 1.5 } as const;
  return [
    ...(several.length > 0
      ? [
          { data: { values: several }, mark: errorBar, encoding: { x: x("transferLo"), x2: { field: "transferHi" }, y: y("knn"), color } },
          { data: { values: several }, mark: errorBar, encoding: { x: x("transfer"), y: y("knnLo"), y2: { field: "knnHi" }, color } },
        ]
      : []),
    {
      data: { values },
      mark: { type: "point", filled: true, size: 110, opacity: 1, stroke: "#222", strokeWidth: 0.8 },
      encoding: {
        x: x("transfer"),
        y: y("knn"),
        color,
        shape,
        tooltip: [{ field: "strategy" }, { field: "lr" }, { field: "seeds" }, { field: "transfer", format: ".2f" }, { field: "knn", format: ".2f" }],
      },
    },
  ];
}
