// Differences between a study's strategies, and between a strategy's learning rates, paired by seed. For every two
// rows of the table (each strategy at its chosen learning rate), and for each row's strategy at each of its other
// rates against the row, the seeds both finished give one difference each, of transfer and of source k-NN accuracy:
// a seed fixes the new head's initialisation and the order of the training images in every strategy, so the pair
// shares what the seed decides. Their mean and its 95% confidence interval say whether the two differ by more than
// chance explains. Every cell is scored on the same test images and k-NN queries, so the differences are
// paired image by image too: where the cells recorded which images they got right (result.json's "correct"), the
// interval is the two-way crossed one over seeds and images (util/stats.ts crossedMeanInterval), which counts the
// sampling of the images as well as training's randomness: it speaks of images like these, not only of these. Where
// they did not (results of builds before it), it is Student's t over the seeds alone, which speaks of these images.
// With one seed (and answers), it is over the images alone, which speaks of that seed's training.
// With knn.otherBanks, every cell's queries were classified against other draws of the bank as well: the k-NN
// interval is then the three-way crossed one over seeds, banks and queries (crossedMeanInterval3), which counts the
// draw of the bank too.
import { type MeanInterval, crossedMeanInterval, crossedMeanInterval3, meanInterval } from "../util/stats.js";

export interface PairedCell {
  strategy: string; // by name
  lr: number;
  seed: number;
  transfer: number; // percent
  knn: number; // source k-NN top-1 at reportK, percent
  // 0/1 per test image, k-NN query, val image; otherBanks: per k-NN query against each other bank.
  correct?: { transfer: Uint8Array; knn: Uint8Array; val?: Uint8Array; otherBanks?: Uint8Array[] };
  val?: number; // with transfer.val: the val accuracy that chose the cell's checkpoint, percent
}

// One group of cells against another, seed by seed.
export interface Difference {
  seeds: number[]; // those both finished, in increasing order
  images: boolean; // whether the intervals count the sampling of the images (every pair of cells recorded them)
  banks: number; // the k-NN banks the k-NN interval is over: 1 + the other banks every pair of cells was scored on, or 1
  transfer: MeanInterval;
  knn: MeanInterval;
}

export interface Comparison extends Difference {
  a: string; // strategy names: the differences are a - b, in points
  b: string;
}

// Each strategy at each of its other rates against its row's: the row's rate is the one the study's rule chose
// (selectBy), on transfer accuracy by default, which cannot see what another rate keeps of the source domain.
export interface RateComparison extends Difference {
  strategy: string; // by name
  lr: number; // the other rate: the differences are the cells at lr - those at rowLr, in points
  rowLr: number;
}

export const CONFIDENCE = 0.95;

type Group = Map<number, PairedCell>; // by seed

const bySeed = (cells: PairedCell[]): Group => new Map(cells.map((c) => [c.seed, c]));
const groupOf = (cells: PairedCell[], strategy: string, lr: number): Group => bySeed(cells.filter((c) => c.strategy === strategy && c.lr === lr));

// a - b over the seeds both groups finished.
function difference(a: Group, b: Group): Difference {
  const seeds = [...a.keys()].filter((s) => b.has(s)).sort((x, y) => x - y);
  const pairs = seeds.map((s) => [a.get(s)!, b.get(s)!] as const);
  const images = pairs.length > 0 && pairs.every(([x, y]) => x.correct && y.correct && x.correct.transfer.length === y.correct.transfer.length && x.correct.knn.length === y.correct.knn.length);
  const transfer = images ? tableInterval(pairs.map(([x, y]) => [points(x.correct!.transfer, y.correct!.transfer)])) : meanInterval(pairs.map(([x, y]) => x.transfer - y.transfer), CONFIDENCE);
  return { seeds, images, transfer, ...knnDifference(pairs, images) };
}

// The source k-NN side of a difference: over the queries too where `images`, and over the other banks where every
// pair was classified against them all.
function knnDifference(pairs: (readonly [PairedKnn, PairedKnn])[], images: boolean): Pick<Difference, "banks" | "knn"> {
  const banks = images ? commonBanks(pairs.flatMap((pair) => pair.map((c) => c.correct!.otherBanks?.length))) : 1;
  const against = (c: PairedKnn) => [c.correct!.knn, ...(banks > 1 ? c.correct!.otherBanks! : [])];
  const knn = images ? tableInterval(pairs.map(([x, y]) => against(x).map((answers, bank) => points(answers, against(y)[bank])))) : meanInterval(pairs.map(([x, y]) => x.knn - y.knn), CONFIDENCE);
  return { banks, knn };
}

// The banks paired answers are over: knn.bank and, where every answer set was classified against as many other banks
// as the first, those too (`others`: each set's count of other banks, undefined where it has none).
export function commonBanks(others: (number | undefined)[]): number {
  const first = others[0] ?? 0;
  return first > 0 && others.every((n) => n === first) ? 1 + first : 1;
}

// Paired answers, 0/1 per image, as a difference in points per image.
const points = (x: Uint8Array, y: Uint8Array) => Float64Array.from(x, (right, k) => 100 * (right - y[k]));

// The mean of a seeds x banks x images table of paired differences and its interval: crossed over the seeds and the
// images (and the banks, where there are several) with two seeds or more; with one seed, over its images (and banks)
// alone, which counts the draw of the images but not training's randomness, and so speaks of that seed's training
// (n: 1, as the seeds). A study of one seed, as the paper's presets are, still learns which differences the images
// it drew cannot explain.
function tableInterval(table: Float64Array[][]): MeanInterval {
  const banks = table[0].length;
  if (table.length === 1) {
    const [seed] = table;
    return { ...(banks > 1 ? crossedMeanInterval(seed, CONFIDENCE) : meanInterval(Array.from(seed[0]), CONFIDENCE)), n: 1 };
  }
  return crossedMeanInterval3(table, CONFIDENCE); // one bank: crossedMeanInterval of it
}

// The cells of (strategy, lr) `a` against those of `b`, seed by seed.
export const pairedDifference = (cells: PairedCell[], a: { strategy: string; lr: number }, b: { strategy: string; lr: number }): Difference =>
  difference(groupOf(cells, a.strategy, a.lr), groupOf(cells, b.strategy, b.lr));

// Two groups of cells, each of one strategy and rate (of two run folders: study/run-comparison.ts), a - b seed by
// seed.
export const seedPairedDifference = (a: PairedCell[], b: PairedCell[]): Difference => difference(bySeed(a), bySeed(b));

// The source k-NN of a backbone without a transfer score: a point of a cell's forgetting curve (knn.atSteps).
export interface PairedKnn {
  seed: number;
  knn: number; // source k-NN top-1 at reportK, percent
  correct?: { knn: Uint8Array; otherBanks?: Uint8Array[] }; // 0/1 per k-NN query, against knn.bank and each other bank
}

// Two groups of such backbones (one strategy and rate's points at one step, of two run folders), a - b's source k-NN
// seed by seed, paired query by query where every pair recorded its answers.
export function seedPairedKnnDifference(a: PairedKnn[], b: PairedKnn[]): Omit<Difference, "transfer"> {
  const other = new Map(b.map((p) => [p.seed, p]));
  const pairs = a.filter((p) => other.has(p.seed)).sort((x, y) => x.seed - y.seed).map((p) => [p, other.get(p.seed)!] as const);
  const images = pairs.length > 0 && pairs.every(([x, y]) => x.correct && y.correct && x.correct.knn.length === y.correct.knn.length);
  return { seeds: pairs.map(([p]) => p.seed), images, ...knnDifference(pairs, images) };
}

// A group of cells against the original backbone, query by query: `answers[seed][bank]` the cells' answers against
// each bank, `original[bank]` the original's. The change of source k-NN accuracy in points (negative: forgotten), its
// mean over the banks, and its crossed interval over the seeds and the queries, and the banks where there are
// several (crossedMeanInterval3). The original's answers are the same for every seed, so the seeds' part of the
// interval is the cells' spread; with one seed the interval is over its queries (and banks) alone.
export function changeFromOriginal(answers: Uint8Array[][], original: Uint8Array[]): MeanInterval {
  return pairedChange(pairBySeed(answers, answers.map(() => original)));
}

// Each seed's answers against each bank, `answers[seed][bank]`, paired image by image with that seed's reference
// there, `references[seed][bank]` (the original's, the same for every seed, or the seed's own at a point before), as
// pairedChange takes them: `pairs[seed][bank]` = [answers, reference].
export const pairBySeed = (answers: Uint8Array[][], references: Uint8Array[][]): [Uint8Array, Uint8Array][][] =>
  answers.map((banks, s) => banks.map((a, b) => [a, references[s][b]]));

// Each seed's answers against that seed's own reference, image by image (`pairs[seed][bank]`: [answers, reference],
// against each bank where the images are k-NN queries classified against several): the change in points, its mean
// over the seeds (and banks) and its crossed interval over the seeds and the images, and the banks where there are
// several (over the images, and banks, alone with one seed), as a difference of two strategies is.
export function pairedChange(pairs: [Uint8Array, Uint8Array][][]): MeanInterval {
  return tableInterval(pairs.map((banks) => banks.map(([a, reference]) => Float64Array.from(a, (right, q) => 100 * (right - reference[q])))));
}

// `rows` in the table's order; each pair once, the earlier row first.
export function pairedComparisons(rows: { strategy: string; lr: number }[], cells: PairedCell[]): Comparison[] {
  const groups = rows.map((row) => groupOf(cells, row.strategy, row.lr));
  const out: Comparison[] = [];
  for (let i = 0; i < rows.length; i++) {
    for (let j = i + 1; j < rows.length; j++) out.push({ a: rows[i].strategy, b: rows[j].strategy, ...difference(groups[i], groups[j]) });
  }
  return out;
}

// `rows` in the table's order, each with the strategy's other rates that the rule could have chosen (in the
// config's order); for each, that rate against the row's.
export function rateComparisons(rows: { strategy: string; lr: number; others: number[] }[], cells: PairedCell[]): RateComparison[] {
  return rows.flatMap((row) => {
    const chosen = groupOf(cells, row.strategy, row.lr);
    return row.others.map((lr) => ({ strategy: row.strategy, lr, rowLr: row.lr, ...difference(groupOf(cells, row.strategy, lr), chosen) }));
  });
}
