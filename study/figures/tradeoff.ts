// Forgetting against transfer across learning rates: the paper's Figure 2 with every rate a strategy was tried at,
// not only its selected one. Each strategy's rates are joined in order of rate and labelled with it, error bars of
// one standard deviation over seeds where there are several, the original backbone's k-NN accuracy as the dashed
// reference line. Where Figure 2 shows one point per strategy, this shows what the choice of rate trades: how much
// of the source domain each step up in transfer accuracy costs, strategy by strategy. A study has the figure where
// some strategy's finished cells hold two or more rates; a rate with a diverged seed is left out, as in the table's
// choice, and the subtitle names it.
import { strategyName } from "../../peft/strategy.js";
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";
import type { StudyResults } from "../results.js";
import { knnChannel, originalBackboneLayer, percentChannel, ratePoints, seedsNote, strategyChannels } from "./parts.js";

export function hasTradeoff(r: StudyResults): boolean {
  const points = ratePoints(r);
  return points.some((p) => points.filter((q) => q.strategy === p.strategy).length >= 2);
}

export function tradeoffSpec(r: StudyResults): FigureSpec {
  const points = ratePoints(r).map((p) => ({
    ...p,
    rate: String(p.lr),
    transferLo: p.transfer - p.transferStd,
    transferHi: p.transfer + p.transferStd,
    knnLo: p.knn - p.knnStd,
    knnHi: p.knn + p.knnStd,
  }));
  if (!hasTradeoff(r)) throw new Error(`trade-off figure: expected a strategy at 2 or more learning rates in ${r.name}, got ${points.map((p) => `${p.strategy} lr ${p.lr}`).join(", ") || "none"}`);
  const several = points.filter((p) => p.seeds > 1);
  const diverged = [...new Set(r.diverged.map((d) => `${d.strategy} lr ${d.lr}`))];
  const x = (field: string) => percentChannel(field, "Transfer accuracy (%), linear head on the new domain");
  const y = (field: string) => knnChannel(r, field);
  // Every strategy of the study in the legend, in the table's order, as in its other figures.
  const domain = [...new Set([...r.table.map((row) => strategyName(row.strategy)), ...points.map((p) => p.strategy)])];
  const { color, shape } = strategyChannels(r, domain);
  const errorBar = { type: "errorbar", ticks: true, thickness: 1.2, opacity: 0.7 } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `Forgetting vs. transfer across learning rates: ${r.name}`,
      subtitle: [
        "each strategy at every learning rate tried,",
        "joined in order of rate; labels: the rate",
        ...seedsNote(points.map((p) => ({ label: `${p.strategy} lr ${p.lr}`, seeds: p.seeds }))),
        ...(diverged.length > 0 ? [`diverged, left out: ${diverged.join(", ")}`] : []),
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
      {
        data: { values: points },
        mark: { type: "line", strokeWidth: 1.5, opacity: 0.8 },
        encoding: { x: x("transfer"), y: y("knn"), color, detail: { field: "strategy" }, order: { field: "lr", type: "quantitative" } },
      },
      {
        data: { values: points },
        mark: { type: "point", filled: true, size: 90, opacity: 1, stroke: "#222", strokeWidth: 0.8 },
        encoding: {
          x: x("transfer"),
          y: y("knn"),
          color,
          shape,
          tooltip: [{ field: "strategy" }, { field: "lr" }, { field: "seeds" }, { field: "transfer", format: ".2f" }, { field: "knn", format: ".2f" }],
        },
      },
      {
        data: { values: points },
        mark: { type: "text", align: "left", baseline: "bottom", dx: 6, dy: -4, fontSize: 11, color: "#333" },
        encoding: { x: x("transfer"), y: y("knn"), text: { field: "rate" } },
      },
    ],
  };
}
