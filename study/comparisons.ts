// Differences between a study's strategies, paired by seed. For every two rows of the table (each strategy at its
// chosen learning rate), the seeds both finished give one difference each, of transfer and of source k-NN accuracy:
// a seed fixes the new head's initialisation and the order of the training images in every strategy, so the pair
// shares what the seed decides. Their mean and its 95% confidence interval (Student's t over the seeds) say whether
// the two strategies differ by more than training's randomness explains. Every cell is scored on the same test
// images and k-NN queries, so the interval speaks of these images, not of the sampling of them.
import { type MeanInterval, meanInterval } from "../util/stats.js";

export interface PairedCell {
  strategy: string; // by name
  lr: number;
  seed: number;
  transfer: number; // percent
  knn: number; // source k-NN top-1 at reportK, percent
}

export interface Comparison {
  a: string; // strategy names: the differences are a - b, in points
  b: string;
  seeds: number[]; // those both finished, in increasing order
  transfer: MeanInterval;
  knn: MeanInterval;
}

export const CONFIDENCE = 0.95;

// `rows` in the table's order; each pair once, the earlier row first.
export function pairedComparisons(rows: { strategy: string; lr: number }[], cells: PairedCell[]): Comparison[] {
  const bySeed = (row: { strategy: string; lr: number }) => new Map(cells.filter((c) => c.strategy === row.strategy && c.lr === row.lr).map((c) => [c.seed, c]));
  const groups = rows.map(bySeed);
  const out: Comparison[] = [];
  for (let i = 0; i < rows.length; i++) {
    for (let j = i + 1; j < rows.length; j++) {
      const seeds = [...groups[i].keys()].filter((s) => groups[j].has(s)).sort((x, y) => x - y);
      const diff = (of: (c: PairedCell) => number) => meanInterval(seeds.map((s) => of(groups[i].get(s)!) - of(groups[j].get(s)!)), CONFIDENCE);
      out.push({ a: rows[i].strategy, b: rows[j].strategy, seeds, transfer: diff((c) => c.transfer), knn: diff((c) => c.knn) });
    }
  }
  return out;
}
