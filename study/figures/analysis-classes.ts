// The per-block analysis class by class (analysis-results.ts knnByClass): a heatmap per strategy at its selected
// learning rate, a column per block and a row per class of the analysed images, each cell the layer-wise k-NN's
// change from the original's on that class's images, in points, with a star where its 95% interval (over seeds,
// images and banks) excludes 0. At which depth each class is lost. For at most MAX_CLASSES classes, as the
// analysis measures them.
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";
import type { RunAnalysis } from "../analysis-results.js";
import { CONFIDENCE } from "../comparisons.js";
import { MAX_CLASSES, originalAnswers } from "../knn-classes.js";
import { listLines, nothingToDrawSpec, seedsNote } from "./parts.js";

const TEXT = "At which depth each source class is lost";

export function classesSpec(a: RunAnalysis): FigureSpec {
  const classes = a.labels?.classes ?? [];
  // The rows measured class by class (summarizeAnalysis: at most MAX_CLASSES classes).
  const measured = a.strategies.filter((s) => s.knnByClass);
  // A row with the original's answers at every block and class (linear probing) is named, not drawn.
  const same = (s: (typeof measured)[number]) => s.knnByClass!.every(originalAnswers);
  const rows = measured.filter((s) => !same(s));
  const unchanged = measured.filter(same).map((s) => s.strategy);
  if (rows.length === 0) {
    const why = classes.length > MAX_CLASSES ? [`${classes.length} classes, more than ${MAX_CLASSES}: not measured`, "class by class"] : unchanged.length > 0 ? listLines("the original's answers throughout", unchanged) : ["no row has its images' classes"];
    return nothingToDrawSpec(TEXT, why);
  }
  const names = rows[0].knnByClass![0].map((c) => c.name);
  const values = rows.flatMap((s) =>
    s.knnByClass!.flatMap((block, i) =>
      block.map((c) => {
        const beyond = c.change.hi < 0 || c.change.lo > 0;
        return { strategy: s.strategy, block: i, class: c.name, change: c.change.mean, lo: c.change.lo, hi: c.change.hi, label: `${c.change.mean.toFixed(1)}${beyond ? "*" : ""}` };
      }),
    ),
  );
  const reach = Math.max(1, ...values.map((v) => Math.abs(v.change)));
  const banks = Math.max(...rows.flatMap((s) => s.knnByClass!.flatMap((block) => block.map((c) => c.change.banks))));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: TEXT,
      subtitle: [
        "each block's layer-wise k-NN on each class's",
        "images less the original's, in points",
        `${a.images.count} source-domain images (${a.images.name} ${a.images.split})`,
        "each strategy at the table's learning rate",
        ...seedsNote(rows.map((s) => ({ label: s.strategy, seeds: s.seeds })), "star", banks > 1 ? [`its ${CONFIDENCE * 100}% interval, over seeds, banks`, "and images, excludes 0"] : [`its ${CONFIDENCE * 100}% interval, over seeds and`, "images, excludes 0"]),
        ...(unchanged.length > 0 ? listLines("not drawn, the original's answers throughout", unchanged) : []),
      ],
    },
    config: FIGURE_CONFIG,
    data: { values },
    facet: { column: { field: "strategy", type: "nominal", title: null, sort: rows.map((s) => s.strategy), header: { labelFontSize: 13 } } },
    spec: {
      width: Math.max(120, 44 * a.depth),
      height: 24 * names.length,
      encoding: {
        x: { field: "block", type: "ordinal", title: "Block (0 = first)", scale: { domain: Array.from({ length: a.depth }, (_, i) => i) }, axis: { labelAngle: 0 } },
        y: { field: "class", type: "nominal", title: "Source class", sort: names, scale: { domain: names }, axis: { labelLimit: 0 } },
      },
      layer: [
        {
          mark: { type: "rect" },
          encoding: {
            color: { field: "change", type: "quantitative", title: "Change (points)", scale: { scheme: "redblue", domain: [-reach, reach] } },
            tooltip: [{ field: "strategy" }, { field: "block" }, { field: "class" }, { field: "change", format: ".2f" }, { field: "lo", format: ".2f" }, { field: "hi", format: ".2f" }],
          },
        },
        { mark: { type: "text", fontSize: 11 }, encoding: { text: { field: "label", type: "nominal" }, color: { condition: { test: `abs(datum.change) > ${reach * 0.6}`, value: "white" }, value: "black" } } },
      ],
    },
    resolve: { scale: { color: "shared" } },
  } as FigureSpec;
}
