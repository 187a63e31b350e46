// Where a row's forgotten queries went: for each class of knn.queries (the truth) and each class a query could be
// given, the share of the truth's queries the row's backbones gave that class, less the original backbone's share,
// paired query by query as the row's forgetting is (study/comparisons.ts changeFromOriginal over 0/1 "given this
// class" per query: the mean over the seeds, and the banks where every answer set was classified against
// knn.otherBanks; its crossed interval over the seeds, the truth's queries and the banks). The diagonal is the
// class's own change (study/knn-classes.ts); each line's changes sum to 0. A last line, of every query whatever its
// class, says which answers grew and which shrank. Made of the classes given (Correct's
// `predicted`), which the answers hold for at most MAX_CLASSES classes. knnConfusionCsv is knn-confusion.csv.
import type { MeanInterval } from "../util/stats.js";
import { type Strategy, strategyName } from "../peft/strategy.js";
import { pairBySeed, pairedChange } from "./comparisons.js";
import { type QueryLabels, csvText, intervalEnd, percentOnes } from "./knn-classes.js";

// One class's queries: the share of them given each class (in the order of KnnConfusion's `given`), in percent.
export interface ConfusionLine {
  name: string;
  queries: number;
  original: number[]; // the original backbone's, mean over the banks
  knn: number[]; // the row's backbones', mean over the seeds and banks
  change: MeanInterval[];
}

export interface KnnConfusion {
  given: string[]; // every class of knn.queries, by label
  lines: ConfusionLine[]; // a line per class with queries, by label
  // The line of every query, whatever its class: how much more or less often each class is the answer (a class
  // given more often is one the backbone's features now crowd towards).
  every: ConfusionLine;
  banks: number;
}

// The name of KnnConfusion's `every` line, where it stands beside the classes (knn-confusion.csv, the figure).
export const EVERY_QUERY = "(every query)";

// A row's classes given, `given[seed][bank]`, and the original's, `original[bank]`, as changeFromOriginal takes
// answers.
export function knnConfusion(given: Uint8Array[][], original: Uint8Array[], queries: QueryLabels): KnnConfusion {
  const count = queries.labels.length;
  if (count !== original[0].length) {
    throw new Error(`summary: expected a class for each of the ${original[0].length} k-NN queries the classes given are of, got ${count} (knn.queries changed since the original backbone was scored?)`);
  }
  const classes = queries.classes.length;
  const stray = [original, ...given].flat().find((a) => a.some((c) => c >= classes));
  if (stray) throw new Error(`summary: a k-NN query given class ${stray.find((c) => c >= classes)}, where knn.queries has ${classes} classes (an answer file from another knn.queries?)`);
  const members = queries.classes.map(() => [] as number[]);
  for (let q = 0; q < count; q++) members[queries.labels[q]].push(q);
  const pairs = pairBySeed(given, given.map(() => original));
  const lines = queries.classes.flatMap((name, truth) => (members[truth].length > 0 ? [lineOf(name, members[truth], pairs, classes)] : []));
  return { given: [...queries.classes], lines, every: lineOf(EVERY_QUERY, Array.from({ length: count }, (_, q) => q), pairs, classes), banks: original.length };
}

// How often each class is the answer to every query, from one point of a row's curve to the next: the classes each
// seed gave there, `now[seed][bank]`, paired query by query with its own at the point before, `before[seed][bank]`
// (its `original` the share at the point before). Whether a drift across a boundary goes on, or turns.
export function answersSince(now: Uint8Array[][], before: Uint8Array[][], classes: string[]): AnswersSince {
  const pairs = pairBySeed(now, before);
  return { given: [...classes], every: lineOf(EVERY_QUERY, Array.from({ length: now[0][0].length }, (_, q) => q), pairs, classes.length), banks: now[0].length };
}

export type AnswersSince = Pick<KnnConfusion, "given" | "every" | "banks">;

// The line of the queries `of` (indices), named `name`, from the classes given paired with a reference's,
// `pairs[seed][bank]` = [given, reference]: for each class, the share of those queries given it in both (percent, the
// mean over the seeds and banks) and the change, paired query by query (study/comparisons.ts pairedChange).
function lineOf(name: string, of: number[], pairs: [Uint8Array, Uint8Array][][], classes: number): ConfusionLine {
  // Per class given: 1 where a query of theirs was given it.
  const asGiven = (a: Uint8Array, c: number) => Uint8Array.from(of, (q) => (a[q] === c ? 1 : 0));
  const line: ConfusionLine = { name, queries: of.length, original: [], knn: [], change: [] };
  for (let c = 0; c < classes; c++) {
    const mine = pairs.map((banks) => banks.map(([a, r]) => [asGiven(a, c), asGiven(r, c)] as [Uint8Array, Uint8Array]));
    line.original.push(percentOnes(mine.flat().map(([, r]) => r)));
    line.knn.push(percentOnes(mine.flat().map(([a]) => a)));
    line.change.push(pairedChange(mine));
  }
  return line;
}

// A confusion's moves away from the truth (off the diagonal) that grew, largest first: where the lost queries went.
export function confusionMoves(c: KnnConfusion): { from: string; to: string; queries: number; change: MeanInterval }[] {
  return c.lines
    .flatMap((line) => line.change.map((change, j) => ({ from: line.name, to: c.given[j], queries: line.queries, change })).filter((m) => m.to !== line.name && m.change.mean > 0))
    .sort((a, b) => b.change.mean - a.change.mean);
}

// A move a figure follows: a class's queries (`from`) given another class (`to`), named "from → to".
export interface Move {
  name: string;
  from: string;
  to: string;
}

// Each of `confusions`' `n` moves that grew most (confusionMoves), once each, the largest first.
export function largestMoves(confusions: KnnConfusion[], n: number): Move[] {
  const grown = confusions.flatMap((c) => confusionMoves(c).slice(0, n)).sort((a, b) => b.change.mean - a.change.mean);
  return [...new Map(grown.map(({ from, to }) => [`${from} → ${to}`, { name: `${from} → ${to}`, from, to }])).values()];
}

// A move's change in confusion `c`: the share of its class's queries given the other class, less the reference's.
export const moveChange = (c: KnnConfusion, m: Move): MeanInterval => c.lines.find((line) => line.name === m.from)!.change[c.given.indexOf(m.to)];

// What knnConfusionCsv and answersBetweenCsv read of a table row (study/results.ts TableRow).
interface RowConfusion {
  strategy: Strategy;
  lr: number;
  seeds: number;
  knnConfusion?: KnnConfusion;
  knnCurve?: { step: number; confusion?: KnnConfusion; answersSincePrevious?: AnswersSince }[];
}

// knn-confusion.csv: for each table row with its confusion, a line per class (then EVERY_QUERY) and class given at its
// best checkpoints (step "best") and at each step of the curve that has one; change_lo and change_hi empty where the
// change has no interval.
export function knnConfusionCsv(table: RowConfusion[]): string {
  const lines = ["strategy,lr,seeds,step,class,given,queries,original_share,share,change,change_lo,change_hi,banks"];
  for (const row of table) {
    const points = [{ step: "best", confusion: row.knnConfusion }, ...(row.knnCurve ?? [])];
    for (const { step, confusion } of points) {
      for (const fields of confusion ? confusionCsvFields(confusion) : []) lines.push([strategyName(row.strategy), row.lr, row.seeds, step, ...fields].join(","));
    }
  }
  return lines.join("\n") + "\n";
}

// A confusion's fields of CSV lines, a line per class (then EVERY_QUERY) and class given: class, given, queries,
// original_share, share, change, change_lo, change_hi (empty where the change has no interval) and banks.
export function confusionCsvFields(c: KnnConfusion): (string | number)[][] {
  return [...c.lines, c.every].flatMap((line) => c.given.map((given, j) => [csvText(line.name), csvText(given), ...shareFields(line, j), c.banks]));
}

// A line's fields for class given j: queries, the reference's share, the share, change, change_lo, change_hi.
const shareFields = (line: ConfusionLine, j: number): (string | number)[] => {
  const change = line.change[j];
  return [line.queries, line.original[j].toFixed(2), line.knn[j].toFixed(2), change.mean.toFixed(2), intervalEnd(change.lo), intervalEnd(change.hi)];
};

// knn-answers-between.csv: for each table row whose curve has how often each class is the answer since the point
// before (answersSince), a line per span of two points and class given: its share of every query at both points and
// the paired change; change_lo and change_hi empty where the change has no interval.
export function answersBetweenCsv(table: RowConfusion[]): string {
  const lines = ["strategy,lr,seeds,from,to,given,queries,share_from,share_to,change,change_lo,change_hi,banks"];
  for (const row of table) {
    const curve = row.knnCurve ?? [];
    curve.forEach((p, i) => {
      const since = p.answersSincePrevious;
      since?.given.forEach((given, j) => lines.push([strategyName(row.strategy), row.lr, row.seeds, curve[i - 1].step, p.step, csvText(given), ...shareFields(since.every, j), since.banks].join(",")));
    });
  }
  return lines.join("\n") + "\n";
}
