// What the study's figures share: one colour and one shape per strategy, in the table's order, so that a strategy
// looks the same in every figure; the source k-NN axis; the original backbone's k-NN accuracy as a dashed
// reference line with a legend entry of its own. Each takes what it reads of a study's results (a Panel), so that
// a figure across several run folders (study/figures/panels.ts) draws from one run's values as from another's.
import { strategyName } from "../../peft/strategy.js";
import type { FigureLayer } from "../../plot/render.js";
import { REFERENCE_DASH } from "../../plot/style.js";
import type { StudyResults } from "../results.js";

// What a figure of one study reads of its results.
export type Panel = Pick<StudyResults, "reportK" | "baseline" | "table">;

// Colour and shape of the data field "strategy" (a strategy's name), with one legend; `domain`: the strategies in
// legend order, by default the table's (a figure of several panels gives the union of theirs).
export function strategyChannels(r: Panel, domain = r.table.map((row) => strategyName(row.strategy))) {
  return {
    color: { field: "strategy", type: "nominal", scale: { domain }, title: "Strategy" },
    shape: { field: "strategy", type: "nominal", scale: { domain }, title: "Strategy" },
  } as const;
}

// An accuracy axis in percent: padded around the data (not from 0), about six ticks (vega's default, one per 40 px,
// crowds a narrow range), plain numbers (".4~g": 80, not 80.000000 where every value is the same). Every layer of a
// figure names the same title and scale, which Vega-Lite then merges into one axis.
export function percentChannel(field: string, title: string) {
  return { field, type: "quantitative", title, scale: { zero: false, padding: 12 }, axis: { format: ".4~g", tickCount: 6 } } as const;
}

// The source k-NN accuracy axis.
export function knnChannel(r: Pick<Panel, "reportK">, field: string) {
  return percentChannel(field, `Source k-NN top-1 (%), ${r.reportK}-NN`);
}

// The dashed line at the original backbone's accuracy: what a backbone that forgot nothing keeps. `which` names the
// backbone in the legend where a figure shows several (e.g. "ViT-S/16").
export function originalBackboneLayer(r: Panel, which?: string): FigureLayer {
  const knn = r.baseline.knn[String(r.reportK)].top1;
  return {
    data: { values: [{ line: `original ${which ?? "backbone"} (${knn.toFixed(2)}%)`, knn }] },
    mark: { type: "rule", color: "#333", strokeWidth: 1.5 },
    encoding: {
      y: knnChannel(r, "knn"),
      strokeDash: {
        field: "line",
        type: "nominal",
        scale: { range: [REFERENCE_DASH] },
        // Above the plot: a legend of its own on the right would come before the strategies'.
        legend: { title: null, orient: "top", symbolSize: 500, symbolStrokeColor: "#333", symbolStrokeWidth: 1.5 },
      },
    },
  };
}
