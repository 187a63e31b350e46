// The per-block analysis's confusion (analysis-results.ts knnConfusion): at which depth a lost image starts to be
// taken for another class. A heatmap per strategy at its selected learning rate, a column per block and a line per
// move (an image of one class given another), each cell the share of that class's analysed images its layer-wise
// k-NN gave the other class at that block, less the original's there, in points, with a star where its 95% interval
// (over seeds, images and banks) excludes 0. The moves drawn: each drawn row's MOVES that grew most at the last
// block, where the study's k-NN reads the features. For at most MAX_CLASSES classes, as the analysis keeps the
// classes given; analysis-confusion.csv holds every entry.
import type { FigureSpec } from "../../plot/render.js";
import type { RunAnalysis } from "../analysis-results.js";
import { MAX_CLASSES, noChange } from "../knn-classes.js";
import { largestMoves, moveChange } from "../knn-confusion.js";
import { changeHeatmapSpec } from "./change-heatmap.js";
import { listLines, nothingToDrawSpec, pairedSeedsNote } from "./parts.js";

const TEXT = "At which depth lost images are taken for another class";
const MOVES = 4; // each row's moves that grew most at the last block

export function confusionSpec(a: RunAnalysis): FigureSpec {
  const classes = a.labels?.classes ?? [];
  const measured = a.strategies.filter((s) => s.knnConfusion);
  // A row that gave every image the original's class at every block (linear probing) is named, not drawn.
  const same = (s: (typeof measured)[number]) => s.knnConfusion!.every((c) => c.lines.every((line) => line.change.every(noChange)));
  const rows = measured.filter((s) => !same(s));
  const unchanged = measured.filter(same).map((s) => s.strategy);
  if (rows.length === 0) {
    const why =
      classes.length > MAX_CLASSES ? [`${classes.length} classes, more than ${MAX_CLASSES}: the classes`, "given are not kept"]
      : unchanged.length > 0 ? listLines("the original's class for every image throughout", unchanged)
      : ["no row has the classes its blocks gave (an analysis", "of a build before them)"];
    return nothingToDrawSpec(TEXT, why);
  }
  // Each row's largest moves at the last block.
  const moves = largestMoves(rows.map((s) => s.knnConfusion!.at(-1)!), MOVES);
  const cells = rows.flatMap((s) => s.knnConfusion!.flatMap((c, block) => moves.map((m) => ({ strategy: s.strategy, x: block, y: m.name, change: moveChange(c, m) }))));
  const banks = Math.max(...rows.flatMap((s) => s.knnConfusion!.map((c) => c.banks)));
  return changeHeatmapSpec({
    title: TEXT,
    subtitle: [
      "the share of a class's images each block's",
      "layer-wise k-NN gave another class, less the",
      "original's at that block, in points; the moves",
      `that grew most at the last block (${MOVES} a strategy)`,
      `${a.images.count} source-domain images (${a.images.name} ${a.images.split})`,
      "each strategy at the table's learning rate",
      ...pairedSeedsNote(
        rows.map((s) => ({ label: s.strategy, seeds: s.seeds })),
        (interval) => `a star where ${interval} excludes 0`,
        banks > 1 ? ["banks", "images"] : ["images"],
      ),
      ...(unchanged.length > 0 ? listLines("not drawn, the original's class throughout", unchanged) : []),
    ],
    strategies: rows.map((s) => s.strategy),
    x: { field: "block", title: "Block (0 = first)", domain: Array.from({ length: a.depth }, (_, i) => i), px: 44 },
    y: { field: "move", title: "Source class → class given", domain: moves.map((m) => m.name), px: 24 },
    cells,
  });
}
