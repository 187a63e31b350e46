// A synthetic image dataset for the trainer and study tests, written as NPY files (data/npy-dataset.ts layout:
// <split>_images.npy (N, H, W) uint8 and <split>_labels.npy (N) int32). Each class is a different pattern
// (stripes, checkerboard, halves, diagonal) with uniform noise, so a tiny ViT learns them in a few steps.
import { afterAll, beforeAll } from "vitest";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Dataset } from "../../data/dataset.js";
import { openNpyImages } from "../../data/npy-dataset.js";
import { writeNpy } from "../../data/npy.js";
import { Rng } from "../../util/random.js";

export const PATTERNS: ((y: number, x: number, s: number) => boolean)[] = [
  (y) => y % 2 === 0, // horizontal stripes
  (_y, x) => x % 2 === 0, // vertical stripes
  (y, x) => (y + x) % 2 === 0, // checkerboard
  (y, _x, s) => y < s / 2, // top half
  (_y, x, s) => x < s / 2, // left half
  (y, x) => Math.abs(y - x) <= 1, // diagonal
];

// Writes `perClass` images of every pattern class for each split into `root`, classes interleaved. `noise`: uniform
// in +-noise around the pattern's two levels (40, 190), clamped to 0..255; the default 30 keeps the classes clear
// (every k-NN accuracy 100 %), 160 blurs them enough that accuracies differ between models.
export async function writeSynthetic(root: string, opts: { size: number; perClass: Record<string, number>; seed: number; noise?: number }): Promise<void> {
  await mkdir(root, { recursive: true });
  const rng = new Rng(opts.seed);
  const s = opts.size;
  const noise = opts.noise ?? 30;
  for (const [split, per] of Object.entries(opts.perClass)) {
    const n = per * PATTERNS.length;
    const images = new Uint8Array(n * s * s);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const c = i % PATTERNS.length;
      labels[i] = c;
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < s; x++) images[i * s * s + y * s + x] = Math.max(0, Math.min(255, (PATTERNS[c](y, x, s) ? 190 : 40) + Math.floor(rng.uniform(-noise, noise))));
      }
    }
    await writeNpy(join(root, `${split}_images.npy`), images, [n, s, s]);
    await writeNpy(join(root, `${split}_labels.npy`), labels, [n]);
  }
}

// For the calling test file: a temporary folder (`root`) holding a synthetic split of each perClass key in root/data
// (writeSynthetic's options), each opened before its tests, and removed after them.
export function useSyntheticData<S extends string>(prefix: string, opts: { size: number; perClass: Record<S, number>; seed: number; noise?: number }): { root: string } & Record<S, Dataset> {
  const data = {} as { root: string } & Record<S, Dataset>;
  beforeAll(async () => {
    data.root = await mkdtemp(join(tmpdir(), prefix));
    await writeSynthetic(join(data.root, "data"), opts);
    for (const split of Object.keys(opts.perClass) as S[]) (data as Record<S, Dataset>)[split] = await openNpyImages(join(data.root, "data"), split);
  });
  afterAll(async () => {
    await rm(data.root, { recursive: true, force: true });
  });
  return data;
}
