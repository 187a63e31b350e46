// Where each strategy's forgotten queries went (study/knn-confusion.ts): a heatmap per strategy at its selected
// learning rate, a line per class of knn.queries (the truth) and a column per class given, each cell the share of
// the truth's queries given that class less the original backbone's, in points, paired query by query, with a star
// where its 95% interval (over the seeds, the truth's queries and the banks) excludes 0. Off the diagonal, what a
// lost query was taken for; on it, in grey and out of the colour scale, each class's own change (drawn in
// forgetting-classes.*), which would otherwise pale the rest. A last line, of every query whatever its class: which
// answers grew and which shrank. The best checkpoints' (the curve's
// points are in knn-confusion.csv). Drawn where the answers hold the classes given (at most MAX_CLASSES classes).
// forgettingConfusionCurveSpec: the moves along the forgetting curve (knn.atSteps), a panel per strategy, a line per
// move that grew most at the curve's last point: how soon each confusion appears, and whether it stays.
import { strategyName } from "../../peft/strategy.js";
import type { FigureSpec } from "../../plot/render.js";
import type { StudyResults } from "../results.js";
import { noChange } from "../knn-classes.js";
import { EVERY_QUERY, type KnnConfusion, largestMoves, moveChange } from "../knn-confusion.js";
import { changeHeatmapSpec } from "./change-heatmap.js";
import { changeCurveSpec } from "./forgetting-classes.js";
import { intervalEnds, listLines, nothingToDrawSpec, pairedSeedsNote, studyTitle } from "./parts.js";

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

// Whether some row's curve has a point with its confusion.
export const hasConfusionCurveFigure = (r: Pick<StudyResults, "table">): boolean => r.table.some((row) => row.knnCurve?.some((p) => p.confusion));

const MOVES = 4; // each row's moves that grew most at its curve's last point

export function forgettingConfusionCurveSpec(r: StudyResults): FigureSpec {
  const text = "How soon lost queries are taken for another class";
  const curved = r.table.filter((row) => row.knnCurve?.some((p) => p.confusion));
  const moved = (c: KnnConfusion) => c.lines.some((line) => line.change.some((x) => !noChange(x)));
  // A row that gave every query the original's class at every point (linear probing) is named, not drawn.
  const rows = curved.filter((row) => row.knnCurve!.some((p) => p.confusion && moved(p.confusion)));
  const unchanged = curved.filter((row) => !rows.includes(row)).map((row) => strategyName(row.strategy));
  if (rows.length === 0) return nothingToDrawSpec(text, listLines("the original's class for every query at every step", unchanged));
  const last = (row: (typeof rows)[number]) => [...row.knnCurve!].reverse().find((p) => p.confusion)!.confusion!;
  // Each row's largest moves at its last point.
  const moves = largestMoves(rows.map(last), MOVES);
  const names = moves.map((m) => m.name);
  const points = rows.flatMap((row) =>
    row.knnCurve!.flatMap((p) =>
      p.confusion
        ? moves.map((m) => {
            const change = moveChange(p.confusion!, m);
            return { strategy: strategyName(row.strategy), seeds: row.seeds, step: p.step, move: m.name, value: change.mean, ...intervalEnds(change) };
          })
        : [],
    ),
  );
  const banks = Math.max(...rows.flatMap((row) => row.knnCurve!.flatMap((p) => (p.confusion ? [p.confusion.banks] : []))));
  const y = { field: "value", type: "quantitative", title: ["Share of the class's queries given", "the other, less the original's (points)"], scale: { nice: false, padding: 8 } } as const;
  // The legend's title in full: vega cuts one longer than 180 px by default.
  const color = { field: "move", type: "nominal", title: "Source class → class given", sort: names, scale: { domain: names }, legend: { titleLimit: 0 } } as const;
  return changeCurveSpec({
    text,
    lead: [
      "each strategy at its selected learning rate: the",
      "share of a class's queries the source k-NN gave",
      "another class, less the original backbone's, after",
      `each step; the moves that grew most at the last (${MOVES} a`,
      "strategy); steps on a symmetric log scale",
    ],
    rows,
    unchanged: unchanged.length > 0 ? listLines("not drawn, the original's class throughout", unchanged) : [],
    points,
    banks,
    channels: { y, color },
    tooltip: [{ field: "strategy" }, { field: "move" }, { field: "step" }, { field: "value", format: ".2f" }],
  });
}
