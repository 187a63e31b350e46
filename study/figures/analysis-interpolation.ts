// The per-block analysis's weight interpolation (analysis.interpolate, study/analysis-interpolation.ts): for each
// strategy at its selected learning rate, its best backbones moved back towards where fine-tuning started (with the
// head "probe", the head from linear probing's), at each weight α, plotted as the paper's Figure 2 plots a strategy, source k-NN against transfer accuracy, the points
// joined in order of α and sized by it (α = 1, the fine-tuned model, the largest; its scores as the analysis scored
// them where analysis.interpolate lacks 1), error bars one standard deviation over seeds, the original backbone's
// k-NN as the dashed reference line; linear probing, which trains none of the backbone, a point of its own. Whether part of the way back keeps the transfer and wins back the source domain,
// and how that path compares with the other strategies'.
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";
import type { RunAnalysis } from "../analysis-results.js";
import type { StudyResults } from "../results.js";
import { knnChannel, originalBackboneLayer, percentChannel, seedsNote, stdBars, strategyChannels } from "./parts.js";

export function interpolationSpec(a: RunAnalysis, r: StudyResults): FigureSpec {
  // Linear probing trains no tensor of the backbone: its one point, the fine-tuned model, is every weight's.
  const rows = a.strategies.filter((s) => s.interpolation);
  const points = rows.flatMap((s) => {
    const i = s.interpolation!;
    const listed = i.points.map((p) => ({ alpha: p.alpha, seeds: p.seeds, transfer: p.transfer, knn: p.knn }));
    const all = listed.some((p) => p.alpha === 1) ? listed : [...listed, { alpha: 1, seeds: s.seeds, ...i.tuned }];
    return all.map((p) => stdBars({ strategy: s.strategy, lr: s.lr, alpha: p.alpha, seeds: p.seeds, transfer: p.transfer.mean, transferStd: p.transfer.std, knn: p.knn.mean, knnStd: p.knn.std }));
  });
  const x = (field: string) => percentChannel(field, a.key.interpolateHead === "probe" ? "Transfer accuracy (%), the interpolated linear head" : "Transfer accuracy (%), the fine-tuned linear head");
  const y = (field: string) => knnChannel(r, field);
  const { color, shape } = strategyChannels(r);
  const several = points.filter((p) => p.seeds > 1);
  const errorBar = { type: "errorbar", ticks: true, thickness: 1.2 } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Part of the way back to where fine-tuning started",
      subtitle: [
        "every trained tensor of the backbone at",
        "(1 - α) · start + α · fine-tuned (LoRA: its merged",
        ...(a.key.interpolateHead === "probe"
          ? ["weight), the head from linear probing's, so α = 0", "is linear probing; joined in order of α,", "α = 1 the fine-tuned model"]
          : ["weight), under the fine-tuned head; joined in", "order of α, α = 1 the fine-tuned model"]),
        "each strategy at the table's learning rate",
        ...seedsNote(points.map((p) => ({ label: `${p.strategy} α ${p.alpha}`, seeds: p.seeds }))),
      ],
    },
    width: 480,
    height: 360,
    config: FIGURE_CONFIG,
    layer: [
      originalBackboneLayer(r),
      ...(several.length > 0
        ? [
            { data: { values: several }, mark: errorBar, encoding: { x: x("transferLo"), x2: { field: "transferHi" }, y: y("knn"), color } },
            { data: { values: several }, mark: errorBar, encoding: { x: x("transfer"), y: y("knnLo"), y2: { field: "knnHi" }, color } },
          ]
        : []),
      { data: { values: points }, mark: { type: "line", strokeWidth: 1.5, opacity: 0.8 }, encoding: { x: x("transfer"), y: y("knn"), color, detail: { field: "strategy" }, order: { field: "alpha", type: "quantitative" } } },
      {
        data: { values: points },
        mark: { type: "point", filled: true, opacity: 1, stroke: "#222", strokeWidth: 0.6 },
        encoding: {
          x: x("transfer"),
          y: y("knn"),
          color,
          shape,
          // The weights as given: Vega's "~g" takes its precision from the scale's ticks, and wrote 0.25 as 0.3.
          size: { field: "alpha", type: "quantitative", title: "Weight α", scale: { domain: [0, 1], range: [12, 180] }, legend: { values: [...new Set(points.map((p) => p.alpha))].sort((p, q) => p - q), format: ".3~g" } },
          tooltip: [{ field: "strategy" }, { field: "lr" }, { field: "alpha" }, { field: "seeds" }, { field: "transfer", format: ".2f" }, { field: "knn", format: ".2f" }],
        },
      },
    ],
  } as FigureSpec;
}
