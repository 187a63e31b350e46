// The paper's Figure 2 for one study: source k-NN accuracy (forgetting) against transfer accuracy, one mark per
// strategy at its selected learning rate, with error bars of one standard deviation over seeds on both axes where
// a strategy has several, and the original backbone's k-NN accuracy as a dashed reference line.
import { strategyName } from "../../peft/strategy.js";
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";
import type { StudyResults } from "../results.js";
import { knnChannel, originalBackboneLayer, percentChannel, strategyChannels } from "./parts.js";

export function figure2Spec(r: StudyResults): FigureSpec {
  const rows = r.table.map((row) => ({
    strategy: strategyName(row.strategy),
    lr: row.lr,
    seeds: row.seeds,
    transfer: row.transfer,
    transferLo: row.transfer - row.transferStd,
    transferHi: row.transfer + row.transferStd,
    knn: row.knn,
    knnLo: row.knn - row.knnStd,
    knnHi: row.knn + row.knnStd,
  }));
  const several = rows.filter((row) => row.seeds > 1);
  const x = (field: string) => percentChannel(field, "Transfer accuracy (%), linear head on the new domain");
  const y = (field: string) => knnChannel(r, field);
  const { color, shape } = strategyChannels(r);
  const errorBar = { type: "errorbar", ticks: true, thickness: 1.5 } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `Forgetting vs. transfer: ${r.name}`,
      subtitle: ["each strategy at its selected learning rate", ...(several.length > 0 ? ["error bars: ± 1 std over seeds"] : [])],
    },
    width: 440,
    height: 320,
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
        data: { values: rows },
        mark: { type: "point", filled: true, size: 110, opacity: 1, stroke: "#222", strokeWidth: 0.8 },
        encoding: {
          x: x("transfer"),
          y: y("knn"),
          color,
          shape,
          tooltip: [{ field: "strategy" }, { field: "lr" }, { field: "seeds" }, { field: "transfer", format: ".2f" }, { field: "knn", format: ".2f" }],
        },
      },
    ],
  };
}
