// Differences between a study's strategies, paired by seed. For every two rows of the table (each strategy at its
// chosen learning rate), the seeds both finished give one difference each, of transfer and of source k-NN accuracy:
// a seed fixes the new head's initialisation and the order of the training images in every strategy, so the pair
// shares what the seed decides. Their mean and its 95% confidence interval say whether the two strategies differ by
// more than chance explains. Every cell is scored on the same test images and k-NN queries, so the differences are
// paired image by image too: where the cells recorded which images they got right (result.json's "correct"), the
// interval is the two-way crossed one over seeds and images (util/stats.ts crossedMeanInterval), which counts the
// sampling of the images as well as training's randomness: it speaks of images like these, not only of these. Where
// they did not (results of builds before it), it is Student's t over the seeds alone, which speaks of these images.
import { type MeanInterval, crossedMeanInterval, meanInterval } from "../util/stats.js";

export interface PairedCell {
  strategy: string; // by name
  lr: number;
  seed: number;
  transfer: number; // percent
  knn: number; // source k-NN top-1 at reportK, percent
  correct?: { transfer: Uint8Array; knn: Uint8Array }; // 0/1 per test image and per k-NN query
}

export interface Comparison {
  a: string; // strategy names: the differences are a - b, in points
  b: string;
  seeds: number[]; // those both finished, in increasing order
  images: boolean; // whether the intervals count the sampling of the images (every pair of cells recorded them)
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
      const pairs = seeds.map((s) => [groups[i].get(s)!, groups[j].get(s)!]);
      const images = pairs.length > 0 && pairs.every(([a, b]) => a.correct && b.correct && a.correct.transfer.length === b.correct.transfer.length && a.correct.knn.length === b.correct.knn.length);
      const diff = (score: "transfer" | "knn") =>
        images
          ? crossedMeanInterval(pairs.map(([a, b]) => Float64Array.from(a.correct![score], (right, k) => 100 * (right - b.correct![score][k]))), CONFIDENCE)
          : meanInterval(pairs.map(([a, b]) => a[score] - b[score]), CONFIDENCE);
      out.push({ a: rows[i].strategy, b: rows[j].strategy, seeds, images, transfer: diff("transfer"), knn: diff("knn") });
    }
  }
  return out;
}
