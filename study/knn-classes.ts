// The source k-NN class by class: for a table row, each class of knn.queries, the original backbone's k-NN accuracy
// on that class's queries, the row's best checkpoints', and the change paired query by query as the row's knnChange
// is (study/comparisons.ts changeFromOriginal: the mean over the seeds, and the banks where the original and every
// cell were classified against knn.otherBanks; its crossed interval over the seeds, that class's queries and the
// banks). Which of the source domain's classes a strategy forgets, and with knn.atSteps how soon; classesSince the
// same from one step of the curve to the next (which classes go on being forgotten, which come back). knnClassesCsv
// is knn-classes.csv, a line per row, class and point (the best checkpoints, then each step of the curve), and
// classesBetweenCsv knn-classes-between.csv.
import type { MeanInterval } from "../util/stats.js";
import { type Strategy, strategyName } from "../peft/strategy.js";
import { pairBySeed, pairedChange } from "./comparisons.js";

// The most classes the figures draw one by one, and the per-block analysis measures at all: its images (500 or 1,000)
// hold a handful of each of ImageNet's thousand, and its summary, a number per block, class, row and kept step, would
// run to tens of megabytes of analysis.json.
export const MAX_CLASSES = 20;

// The classes of knn.queries and each query's, in the queries' order (the order of every k-NN answer).
export interface QueryLabels {
  classes: string[]; // names, by label
  labels: ArrayLike<number>;
}

export interface ClassKnn {
  name: string;
  queries: number;
  original: number; // percent of the class's queries the original backbone got right, mean over the banks
  knn: number; // the row's backbones' (its best checkpoints', or a point's of its curve), mean over the seeds and banks
  change: MeanInterval & { banks: number };
}

// Whether every class kept the original's answers on every query (linear probing's, whose changes are all 0): the
// figures name such a row rather than draw it at 0.
export const originalAnswers = (classes: ClassKnn[]): boolean => classes.every((c) => noChange(c.change));

// A change of 0 with an interval of none: every answer the original's.
export const noChange = (c: MeanInterval): boolean => c.mean === 0 && c.lo === 0 && c.hi === 0;

// A row's answers as changeFromOriginal takes them, `answers[seed][bank]` and `original[bank]`, split by the queries'
// class; a class without queries is left out.
export function knnByClass(answers: Uint8Array[][], original: Uint8Array[], queries: QueryLabels): ClassKnn[] {
  return classesOfPairs(pairBySeed(answers, answers.map(() => original)), queries).map((c) => ({ name: c.name, queries: c.queries, original: c.reference, knn: c.knn, change: { ...c.change, banks: original.length } }));
}

// A row's change class by class from one point of its curve to the next: each seed's answers there, `now[seed][bank]`,
// paired query by query with its own at the point before, `before[seed][bank]` (as many banks).
export interface ClassSince {
  name: string;
  queries: number;
  before: number; // percent of the class's queries right at the point before, mean over the seeds and banks
  knn: number; // at this point
  change: MeanInterval & { banks: number };
}

export function classesSince(now: Uint8Array[][], before: Uint8Array[][], queries: QueryLabels): ClassSince[] {
  const banks = now[0].length;
  return classesOfPairs(pairBySeed(now, before), queries).map((c) => ({ name: c.name, queries: c.queries, before: c.reference, knn: c.knn, change: { ...c.change, banks } }));
}

// Answers paired with a reference, `pairs[seed][bank]` = [answers, reference], split by the queries' class: each
// class's accuracy in both (percent, the mean over the seeds and banks) and the change, paired query by query
// (study/comparisons.ts pairedChange); a class without queries is left out.
function classesOfPairs(pairs: [Uint8Array, Uint8Array][][], queries: QueryLabels) {
  const count = pairs[0][0][0].length;
  if (queries.labels.length !== count) {
    throw new Error(`summary: expected a class for each of the ${count} k-NN queries the answers are of, got ${queries.labels.length} (knn.queries changed since the original backbone was scored?)`);
  }
  const members = queries.classes.map(() => [] as number[]);
  for (let q = 0; q < count; q++) members[queries.labels[q]].push(q);
  return queries.classes.flatMap((name, c) => {
    if (members[c].length === 0) return [];
    const of = (a: Uint8Array) => Uint8Array.from(members[c], (q) => a[q]);
    const mine = pairs.map((banks) => banks.map(([a, r]) => [of(a), of(r)] as [Uint8Array, Uint8Array]));
    return [{ name, queries: members[c].length, reference: percentOnes(mine.flat().map(([, r]) => r)), knn: percentOnes(mine.flat().map(([a]) => a)), change: pairedChange(mine) }];
  });
}

// What knnClassesCsv reads of a table row (study/results.ts TableRow).
interface RowByClass {
  strategy: Strategy;
  lr: number;
  seeds: number;
  knnByClass?: ClassKnn[];
  knnCurve?: { step: number; byClass?: ClassKnn[] }[];
}

// knn-classes.csv: for each table row with its answers by class, a line per class at its best checkpoints (step
// "best") and at each step of the curve that kept them; change_lo and change_hi empty where the change has no
// interval.
export function knnClassesCsv(table: RowByClass[]): string {
  const lines = ["strategy,lr,seeds,step,class,queries,original_knn_top1,knn_top1,change,change_lo,change_hi,banks"];
  for (const row of table) {
    const points = [{ step: "best", byClass: row.knnByClass }, ...(row.knnCurve ?? [])];
    for (const { step, byClass } of points) {
      for (const c of byClass ?? []) {
        lines.push([strategyName(row.strategy), row.lr, row.seeds, step, ...classCsvFields(c)].join(","));
      }
    }
  }
  return lines.join("\n") + "\n";
}

// knn-classes-between.csv: for each table row whose curve has its change by class since the point before, a line per
// span of two points and class.
export function classesBetweenCsv(table: { strategy: Strategy; lr: number; seeds: number; knnCurve?: { step: number; byClassSincePrevious?: ClassSince[] }[] }[]): string {
  const lines = ["strategy,lr,seeds,from,to,class,queries,knn_top1_from,knn_top1_to,change,change_lo,change_hi,banks"];
  for (const row of table) {
    const curve = row.knnCurve ?? [];
    curve.forEach((p, i) => {
      for (const c of p.byClassSincePrevious ?? []) {
        lines.push([strategyName(row.strategy), row.lr, row.seeds, curve[i - 1].step, p.step, csvText(c.name), c.queries, c.before.toFixed(2), c.knn.toFixed(2), c.change.mean.toFixed(2), intervalEnd(c.change.lo), intervalEnd(c.change.hi), c.change.banks].join(","));
      }
    });
  }
  return lines.join("\n") + "\n";
}

// A class's fields of a CSV line: class, queries, original_knn_top1, knn_top1, change, change_lo, change_hi (empty
// where the change has no interval) and banks.
export function classCsvFields(c: ClassKnn): (string | number)[] {
  return [csvText(c.name), c.queries, c.original.toFixed(2), c.knn.toFixed(2), c.change.mean.toFixed(2), intervalEnd(c.change.lo), intervalEnd(c.change.hi), c.change.banks];
}

// The percent of 1s in answer sets of one length (0/1 each), over all of them.
export const percentOnes = (sets: Uint8Array[]): number => (100 * sets.reduce((a, s) => a + s.reduce((x, y) => x + y, 0), 0)) / (sets.length * sets[0].length);

// A class name as one CSV field (ImageNet's hold commas: "crane, bird").
export const csvText = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

// An end of an interval as a CSV field: empty where the change has none.
export const intervalEnd = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "");
