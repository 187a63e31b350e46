// The per-block analysis class by class (analysis-results.ts knnByClass): a heatmap per strategy at its selected
// learning rate, a column per block and a row per class of the analysed images, each cell the layer-wise k-NN's
// change from the original's on that class's images, in points, with a star where its 95% interval (over seeds,
// images and banks) excludes 0. At which depth each class is lost. For at most MAX_CLASSES classes, as the
// analysis measures them.
import type { FigureSpec } from "../../plot/render.js";
import type { RunAnalysis } from "../analysis-results.js";
import { MAX_CLASSES, originalAnswers } from "../knn-classes.js";
import { listLines, nothingToDrawSpec, pairedSeedsNote } from "./parts.js";
import { changeHeatmapSpec } from "./change-heatmap.js";

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
  const cells = rows.flatMap((s) => s.knnByClass!.flatMap((block, i) => block.map((c) => ({ strategy: s.strategy, x: i, y: c.name, change: c.change }))));
  const banks = Math.max(...rows.flatMap((s) => s.knnByClass!.flatMap((block) => block.map((c) => c.change.banks))));
  return changeHeatmapSpec({
    title: TEXT,
    subtitle: [
      "each block's layer-wise k-NN on each class's",
      "images less the original's, in points",
      `${a.images.count} source-domain images (${a.images.name} ${a.images.split})`,
      "each strategy at the table's learning rate",
      ...pairedSeedsNote(rows.map((s) => ({ label: s.strategy, seeds: s.seeds })), (interval) => `a star where ${interval} excludes 0`, banks > 1 ? ["banks", "images"] : ["images"]),
      ...(unchanged.length > 0 ? listLines("not drawn, the original's answers throughout", unchanged) : []),
    ],
    strategies: rows.map((s) => s.strategy),
    x: { field: "block", title: "Block (0 = first)", domain: Array.from({ length: a.depth }, (_, i) => i), px: 44 },
    y: { field: "class", title: "Source class", domain: names, px: 24 },
    cells,
  });
}
