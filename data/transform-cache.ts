// Transformed images kept in memory, for transforms that draw nothing (eval, knn): a study transforms the same
// images for every cell, evaluation and k-NN, and the default study read, converted and normalised its 8,000
// distinct images about 330,000 times, a quarter of its host time where the device is fast. A loader given a cache
// (data/loader.ts) copies a kept image into its batch instead (when the batch's images are read: once a pair is whole,
// train/batch-images.ts takes them from its copy on the device), and keeps each one it makes.
//
// A (dataset, transform) pair is kept whole or not at all: its array of every image is allocated on first use if it
// fits what is left of the budget, else the pair is never kept. Pairs are told apart by the dataset's identity (its
// files, split and subset) and the transform's spec, so a dataset opened twice shares its images. A random
// transform (train) is never kept.
import type { Dataset } from "./dataset.js";
import type { Transform } from "./transforms.js";

// Every image of one dataset under one transform, (N, 3, S, S), and which of them are in it yet.
export interface KeptImages {
  images: Float32Array;
  kept: Uint8Array; // (N): 1 once images[i] holds image i
  count: number; // how many are kept: all N once every image has been made
}

export class TransformCache {
  private readonly pairs = new Map<string, KeptImages | null>(); // null: did not fit
  private used = 0; // bytes allocated

  constructor(readonly budgetBytes: number) {
    if (!(Number.isFinite(budgetBytes) && budgetBytes >= 0)) throw new Error(`transform cache: expected a budget in bytes >= 0, got ${budgetBytes}`);
  }

  get bytes(): number {
    return this.used;
  }

  // The kept images of `dataset` under `transform`, or undefined where the transform is random or they do not fit.
  imagesFor(dataset: Dataset, transform: Transform): KeptImages | undefined {
    if (transform.random) return undefined;
    const { name, root, split, count, hash, subset } = dataset.identity;
    const key = JSON.stringify([name, root, split, count, hash, subset ?? "", transform.spec]);
    let pair = this.pairs.get(key);
    if (pair === undefined) {
      const floats = dataset.length * 3 * transform.size * transform.size;
      const fits = this.used + floats * 4 <= this.budgetBytes;
      pair = fits ? { images: new Float32Array(floats), kept: new Uint8Array(dataset.length), count: 0 } : null;
      if (fits) this.used += floats * 4;
      this.pairs.set(key, pair);
    }
    return pair ?? undefined;
  }
}
