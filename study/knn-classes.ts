// The source k-NN class by class: for a table row, each class of knn.queries, the original backbone's k-NN accuracy
// on that class's queries, the row's best checkpoints', and the change paired query by query as the row's knnChange
// is (study/comparisons.ts changeFromOriginal: the mean over the seeds, and the banks where the original and every
// cell were classified against knn.otherBanks; its crossed interval over the seeds, that class's queries and the
// banks). Which of the source domain's classes a strategy forgets, and with knn.atSteps how soon. knnClassesCsv is
// knn-classes.csv, a line per row, class and point (the best checkpoints, then each step of the curve).
import type { MeanInterval } from "../util/stats.js";
import { type Strategy, strategyName } from "../peft/strategy.js";
import { changeFromOriginal } from "./comparisons.js";

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
  if (queries.labels.length !== original[0].length) {
    throw new Error(`summary: expected a class for each of the ${original[0].length} k-NN queries the answers are of, got ${queries.labels.length} (knn.queries changed since the original backbone was scored?)`);
  }
  const members = queries.classes.map(() => [] as number[]);
  for (let q = 0; q < queries.labels.length; q++) members[queries.labels[q]].push(q);
  const percent = (sets: Uint8Array[]) => (100 * sets.reduce((a, s) => a + s.reduce((x, y) => x + y, 0), 0)) / (sets.length * sets[0].length);
  return queries.classes.flatMap((name, c) => {
    if (members[c].length === 0) return [];
    const of = (a: Uint8Array) => Uint8Array.from(members[c], (q) => a[q]);
    const mine = answers.map((banks) => banks.map(of));
    const theirs = original.map(of);
    return [{ name, queries: members[c].length, original: percent(theirs), knn: percent(mine.flat()), change: { ...changeFromOriginal(mine, theirs), banks: original.length } }];
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

// A class's fields of a CSV line: class, queries, original_knn_top1, knn_top1, change, change_lo, change_hi (empty
// where the change has no interval) and banks.
export function classCsvFields(c: ClassKnn): (string | number)[] {
  return [csvText(c.name), c.queries, c.original.toFixed(2), c.knn.toFixed(2), c.change.mean.toFixed(2), intervalEnd(c.change.lo), intervalEnd(c.change.hi), c.change.banks];
}

// A class name as one CSV field (ImageNet's hold commas: "crane, bird").
export const csvText = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

// An end of an interval as a CSV field: empty where the change has none.
export const intervalEnd = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "");
