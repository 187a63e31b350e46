// eval/patch-directions.ts on the tiny ViT fixture (patch 4, width 32) and 30 noisy synthetic images of 16 px in
// batches of 7: the patches' second moment against a float64 host reference made from the images (relative 1e-6:
// float32 products on the device); [W | b] laid out and taken apart again exactly; the first eigenvector against a matrix of known eigenvectors, and on the patches
// its eigen-equation; flatness 1 on images flat over every patch; the change along the first direction and the
// rest summing to the patch tokens' whole change (made on the host from the patches), a change along the first
// direction alone reading no rest and one orthogonal to it no along; the turn +1 halfway there and -1 past it, and
// the law of cosines; and compareBackbones giving what these give of the two models' patch projections.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNpyImages } from "../../data/npy-dataset.js";
import { writeNpy } from "../../data/npy.js";
import { Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { type PatchMoments, apartFromBias, besideBias, firstEigenvector, patchChange, patchDescent, patchMoments, patchProjection } from "../../eval/patch-directions.js";
import { randn, useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { tunedModels } from "./tuned-models.js";
import { compareBackbones } from "../../eval/block-analysis.js";
import { blockMap } from "../../eval/block-map.js";
import { parseStrategy } from "../../peft/strategy.js";
import { Rng } from "../../util/random.js";

useEngine();

const [SIZE, P] = [16, 4];
const K = 3 * P * P;
const DIMS = K + 1;
let root: string;
let loader: Loader;
let patches: Float64Array[]; // every patch of every image, [p; 1]
let moments: PatchMoments;

// Every patch of images (n, 3, S, S) as [p; 1], p in the convolution weight's order (channel, row, column).
function patchesOf(images: Float32Array): Float64Array[] {
  const n = images.length / (3 * SIZE * SIZE);
  const g = SIZE / P;
  const out: Float64Array[] = [];
  for (let b = 0; b < n; b++) {
    for (let t = 0; t < g * g; t++) {
      const [gy, gx] = [Math.floor(t / g), t % g];
      const p = new Float64Array(DIMS);
      for (let c = 0; c < 3; c++) for (let y = 0; y < P; y++) for (let x = 0; x < P; x++) p[(c * P + y) * P + x] = images[((b * 3 + c) * SIZE + gy * P + y) * SIZE + gx * P + x];
      p[K] = 1;
      out.push(p);
    }
  }
  return out;
}

async function imagesOf(l: Loader): Promise<Float32Array> {
  const batches: Float32Array[] = [];
  for await (const b of l.epoch(0)) batches.push(b.images);
  return Float32Array.from(batches.flatMap((x) => Array.from(x)));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "patch-directions-test-"));
  await writeSynthetic(root, { size: SIZE, perClass: { test: 5 }, seed: 5, noise: 160 });
  loader = new Loader(await openNpyImages(root, "test"), new Transform({ kind: "eval", size: SIZE }), { batchSize: 7 });
  patches = patchesOf(await imagesOf(loader));
  moments = await patchMoments(loader, P);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// Sum over the patches of ||A p|| ^ 2 for A (C x DIMS).
function squares(a: Float64Array): number {
  let s = 0;
  for (const p of patches) {
    for (let r = 0; r < a.length / DIMS; r++) {
      let y = 0;
      for (let j = 0; j < DIMS; j++) y += a[r * DIMS + j] * p[j];
      s += y * y;
    }
  }
  return s;
}

describe("patchMoments", () => {
  it("is the mean of [p; 1] [p; 1]^T over every patch, as the host computes it from the images", () => {
    const want = new Float64Array(DIMS * DIMS);
    for (const p of patches) for (let i = 0; i < DIMS; i++) for (let j = 0; j < DIMS; j++) want[i * DIMS + j] += (p[i] * p[j]) / patches.length;
    const scale = Math.max(...want.map(Math.abs));
    const worst = Math.max(...want.map((w, i) => Math.abs(w - moments.moment[i])));
    expect(worst / scale).toBeLessThan(1e-6);
    expect(moments.moment[DIMS * DIMS - 1]).toBe(1);
    expect(patches.length).toBe(30 * (SIZE / P) ** 2);
  });

  it("gives the first eigenvector: M u = lambda u, its share of the trace, its largest entry positive", () => {
    const { moment, direction: u, lambda, share } = moments;
    const mu = Array.from({ length: DIMS }, (_, i) => u.reduce((s, x, j) => s + moment[i * DIMS + j] * x, 0));
    expect(Math.hypot(...mu.map((x, i) => x - lambda * u[i])) / lambda).toBeLessThan(1e-9);
    expect(Math.hypot(...u)).toBeCloseTo(1, 12);
    let trace = 0;
    for (let i = 0; i < DIMS; i++) trace += moment[i * DIMS + i];
    expect(share).toBeCloseTo(lambda / trace, 12);
    const largest = u.reduce((best, x, i) => (Math.abs(x) > Math.abs(u[best]) ? i : best), 0);
    expect(u[largest]).toBeGreaterThan(0);
  });

  it("reads flatness 1 where every patch is flat in each channel", async () => {
    const dir = join(root, "flat");
    const rng = new Rng(3);
    const n = 6;
    const images = new Uint8Array(n * SIZE * SIZE);
    for (let b = 0; b < n; b++) {
      const levels = Array.from({ length: (SIZE / P) ** 2 }, () => Math.floor(rng.uniform(0, 256)));
      for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) images[(b * SIZE + y) * SIZE + x] = levels[Math.floor(y / P) * (SIZE / P) + Math.floor(x / P)];
    }
    await mkdir(dir, { recursive: true });
    await writeNpy(join(dir, "test_images.npy"), images, [n, SIZE, SIZE]);
    await writeNpy(join(dir, "test_labels.npy"), new Int32Array(n), [n]);
    const flat = await patchMoments(new Loader(await openNpyImages(dir, "test"), new Transform({ kind: "eval", size: SIZE }), { batchSize: 4 }), P);
    expect(flat.flatness).toBeCloseTo(1, 6);
    expect(moments.flatness).toBeLessThan(0.99);
  });
});

describe("besideBias and apartFromBias", () => {
  it("lay the weight's rows (C x K) each followed by the bias's entry, and take them apart again exactly", () => {
    const [c, k] = [3, 5];
    const [w, b] = [randn(c * k, 1, 1), randn(c, 2, 1)];
    const x = besideBias(w, b, c);
    expect(Array.from(x.subarray(k + 1, 2 * (k + 1)))).toEqual([...Array.from(w.subarray(k, 2 * k)), b[1]]);
    expect(apartFromBias(x, c)).toEqual({ weight: w, bias: b });
    expect(apartFromBias(besideBias(w, undefined, c), c).bias).toEqual(new Float32Array(c));
  });
});

describe("firstEigenvector", () => {
  it("finds the eigenvector of the largest eigenvalue of Q diag(lambda) Q^T", () => {
    const n = 9;
    // Q: a Householder reflection I - 2 v v^T / ||v||^2, orthogonal.
    const v = randn(n, 7);
    const vv = v.reduce((s, x) => s + x * x, 0);
    const q = (i: number, j: number) => (i === j ? 1 : 0) - (2 * v[i] * v[j]) / vv;
    const lambdas = [0.5, 3, 0.1, 2.2, 0, 1, 0.7, 0.3, 1.5]; // the largest, 3, on column 1
    const m = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) m[i * n + j] += q(i, k) * lambdas[k] * q(j, k);
    const { direction, value } = firstEigenvector(m, n);
    expect(value).toBeCloseTo(3, 10);
    const column = Array.from({ length: n }, (_, i) => q(i, 1));
    const dot = direction.reduce((s, x, i) => s + x * column[i], 0);
    expect(Math.abs(dot)).toBeCloseTo(1, 10);
  });
});

describe("patchChange", () => {
  let original: Float64Array;
  let tuned: Float64Array;
  beforeAll(async () => {
    const models = await tunedModels("full", 0.3);
    [original, tuned] = [await patchProjection(models.initial), await patchProjection(models.tuned)];
    models.initial.dispose();
    models.tuned.dispose();
  });
  const minus = (x: Float64Array, y: Float64Array) => x.map((v, i) => v - y[i]);
  const plus = (x: Float64Array, d: Float64Array, f = 1) => x.map((v, i) => v + f * d[i]);

  it("splits the patch tokens' whole change: along^2 + rest^2 is it, relative to the original's output", () => {
    const { change } = patchChange(original, tuned, moments);
    const whole = squares(minus(tuned, original)) / squares(original);
    expect(change.along).toBeGreaterThan(0.01);
    expect(change.rest).toBeGreaterThan(0.01);
    expect((change.along ** 2 + change.rest ** 2) / whole).toBeCloseTo(1, 5);
  });

  it("reads no rest for a change along the first direction alone, and no along for one orthogonal to it", () => {
    const rows = original.length / DIMS;
    const u = moments.direction;
    const c = randn(rows, 11);
    // Along u: each row a multiple of u. Orthogonal (in the moment's inner product, M u = lambda u): each row of the
    // tuned change less its part along u.
    const along = Float64Array.from({ length: original.length }, (_, i) => c[Math.floor(i / DIMS)] * u[i % DIMS]);
    const d = minus(tuned, original);
    const orthogonal = d.map((x, i) => {
      const r = Math.floor(i / DIMS);
      const du = d.subarray(r * DIMS, (r + 1) * DIMS).reduce((s, y, j) => s + y * u[j], 0);
      return x - du * u[i % DIMS];
    });
    const a = patchChange(original, plus(original, along), moments).change;
    expect(a.rest / a.along).toBeLessThan(1e-6);
    const o = patchChange(original, plus(original, orthogonal), moments).change;
    expect(o.along / o.rest).toBeLessThan(1e-6);
  });

  it("halfway there: half the change since, turn +1; past it as far again: the whole change back, turn -1; the law of cosines", () => {
    const d = minus(tuned, original);
    for (const [f, share, turn] of [[0.5, 0.5, 1], [2, 1, -1]]) {
      const { change, since } = patchChange(original, tuned, moments, plus(original, d, f));
      for (const key of ["along", "rest"] as const) {
        expect(since![key].change, `${key} f ${f}`).toBeCloseTo(share * change[key], 10);
        expect(since![key].turn, `${key} f ${f}`).toBeCloseTo(turn, 10);
      }
    }
    const before = plus(original, Float64Array.from(randn(d.length, 13, 0.05)));
    const { change, since } = patchChange(original, tuned, moments, before);
    const until = patchChange(original, before, moments).change;
    for (const key of ["along", "rest"] as const) {
      const [w, s, u] = [change[key], since![key], until[key]];
      expect(w ** 2).toBeCloseTo(s.change ** 2 + u ** 2 + 2 * s.change * u * s.turn, 10);
    }
  });
});

describe("patchDescent", () => {
  it("reads minus the gradient as a change since: back the way it came where the gradient is the change, on where it is minus the change; its batches' spread about their own mean as a change's size", async () => {
    const models = await tunedModels("full", 0.3);
    const [original, tuned] = [await patchProjection(models.initial), await patchProjection(models.tuned)];
    models.initial.dispose();
    models.tuned.dispose();
    const d = tuned.map((x, i) => x - original[i]);
    const change = patchChange(original, tuned, moments).change;
    for (const [gradient, turn] of [[d, -1], [d.map((x) => -2 * x), 1]] as const) {
      const descent = patchDescent(original, tuned, { gradient, batches: [] }, moments);
      for (const key of ["along", "rest"] as const) {
        expect(descent[key].turn, `${key} ${turn}`).toBeCloseTo(turn, 10);
        expect(descent[key].change / change[key], `${key} ${turn}`).toBeCloseTo(turn === -1 ? 1 : 2, 10);
        expect(descent[key].spread).toBeNaN(); // no batches
      }
    }
    // Three batches at B + E, B - E and B, B not the gradient over every image (which holds a smaller last batch
    // too): about their own mean B, 2 ||E||^2 / (3 - 1), E's size as patchChange reads a change of E. One batch: none.
    const e = Float64Array.from(randn(d.length, 17, 0.05));
    const [g, b] = [Float64Array.from(randn(d.length, 19, 0.05)), Float64Array.from(randn(d.length, 23, 0.05))];
    const spread = patchDescent(original, tuned, { gradient: g, batches: [b.map((x, i) => x + e[i]), b.map((x, i) => x - e[i]), b] }, moments);
    const size = patchChange(original, original.map((x, i) => x + e[i]), moments).change;
    for (const key of ["along", "rest"] as const) expect(spread[key].spread / size[key], key).toBeCloseTo(1, 10);
    for (const key of ["along", "rest"] as const) expect(patchDescent(original, tuned, { gradient: g, batches: [b] }, moments)[key].spread, key).toBeNaN();
  });
});

describe("the patch projection's change in compareBackbones", () => {
  it("is patchChange of the two models' patch projections on each image set's moments, since the earlier one too; 0 where the strategy leaves it", async () => {
    const data = { queries: loader, bank: loader, k: 3, temperature: 0.07, classes: 6, gridImages: 1, patches: { source: moments, target: moments } };
    const { tuned, initial } = await tunedModels("full", 0.3);
    const earlier = (await tunedModels("top-1", 0.3)).initial;
    const plain = (await tunedModels("linear", 0)).initial;
    const c = await compareBackbones(plain, tuned, blockMap(parseStrategy("full"), 2), data, earlier);
    const [w0, w, we] = [await patchProjection(plain), await patchProjection(tuned), await patchProjection(earlier)];
    const want = patchChange(w0, w, moments, we);
    expect(c.patchChange).toEqual({ source: want.change, target: want.change });
    expect(c.patchSince).toEqual({ source: want.since, target: want.since });
    const lora = (await tunedModels("lora-r2", 0.3)).tuned;
    const l = await compareBackbones(plain, lora, blockMap(parseStrategy("lora-r2"), 2), { ...data, patches: { source: moments } });
    expect(l.patchChange).toEqual({ source: { along: 0, rest: 0 } });
    expect(l.patchSince).toBeUndefined();
    for (const m of [tuned, initial, earlier, plain, lora]) m.dispose();
  });
});
