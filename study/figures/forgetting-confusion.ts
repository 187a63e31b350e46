// Where each strategy's forgotten queries went (study/knn-confusion.ts): a heatmap per strategy at its selected
// learning rate, a line per class of knn.queries (the truth) and a column per class given, each cell the share of
// the truth's queries given that class less the original backbone's, in points, paired query by query, with a star
// where its 95% interval (over the seeds, the truth's queries and the banks) excludes 0. Off the diagonal, what a
// lost query was taken for; on it, in grey and out of the colour scale, each class's own change (drawn in
// forgetting-classes.*), which would otherwise pale the rest. A last line, of every query whatever its class: which
// answers grew and which shrank. The best checkpoints' (the curve's
// points are in knn-confusion.csv). Drawn where the answers hold the classes given (at most MAX_CLASSES classes).
import { strategyName } from "../../peft/strategy.js";
import type { FigureSpec } from "../../plot/render.js";
import type { StudyResults } from "../results.js";
import { noChange } from "../knn-classes.js";
import { EVERY_QUERY } from "../knn-confusion.js";
import { changeHeatmapSpec } from "./change-heatmap.js";
import { listLines, nothingToDrawSpec, pairedSeedsNote, studyTitle } from "./parts.js";

// Whether some table row has its confusion.
export const hasConfusionFigure = (r: Pick<StudyResults, "table">): boolean => r.table.some((row) => row.knnConfusion);

export function forgettingConfusionSpec(r: StudyResults): FigureSpec {
  const measured = r.table.filter((row) => row.knnConfusion);
  // A row that gave every query the original's class (linear probing) is named, not drawn.
  const same = (row: (typeof measured)[number]) => row.knnConfusion!.lines.every((line) => line.change.every(noChange));
  const rows = measured.filter((row) => !same(row));
  const unchanged = measured.filter(same).map((row) => strategyName(row.strategy));
  const title = studyTitle("Where the forgotten queries went", r.name);
  if (rows.length === 0) return nothingToDrawSpec(Array.isArray(title) ? title.join(" ") : title, listLines("the original's class for every query", unchanged));
  const { given, lines } = rows[0].knnConfusion!;
  const cells = rows.flatMap((row) => [...row.knnConfusion!.lines, row.knnConfusion!.every].flatMap((line) => line.change.map((change, j) => ({ strategy: strategyName(row.strategy), x: given[j], y: line.name, change, aside: given[j] === line.name }))));
  const banks = Math.max(...rows.map((row) => row.knnConfusion!.banks));
  return changeHeatmapSpec({
    title,
    subtitle: [
      "each strategy at its selected learning rate: the",
      "share of each class's queries given each class",
      "less the original backbone's, in points, paired",
      "query by query; in grey, the class's own change",
      "(forgetting-classes.*), out of the colour scale;",
      `last, ${EVERY_QUERY}: each class as the answer`,
      ...pairedSeedsNote(rows.map((row) => ({ label: strategyName(row.strategy), seeds: row.seeds })), (interval) => `a star where ${interval} excludes 0`, banks > 1 ? ["queries", "banks"] : ["queries"]),
      ...(unchanged.length > 0 ? listLines("not drawn, the original's class for every query", unchanged) : []),
    ],
    strategies: rows.map((row) => strategyName(row.strategy)),
    x: { field: "given", title: `Class given by the source ${r.reportK}-NN`, domain: given, px: 44, labelAngle: -40 },
    y: { field: "class", title: "Source class of the query", domain: [...lines.map((line) => line.name), EVERY_QUERY], px: 24 },
    cells,
  });
}
