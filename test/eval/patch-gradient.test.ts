// eval/patch-gradient.ts on the tiny ViT fixture (patch 4, width 32, a head of 6 classes, every parameter moved off
// its initial values) and 30 noisy synthetic images of 16 px in batches of 7: the gradient's directional derivative
// against central finite differences of the loss (the mean cross-entropy over every image, summed in float64 from
// float32 forward passes; two steps, Richardson-extrapolated) along the gradient itself, along the patches' first
// direction, along a random direction and along the bias alone, to 1e-3 of the gradient's norm; the same gradient in
// batches of 30 as of 7 and in passes of 3 (1e-5), the mean of its batches' where every batch is full, each full
// batch's kept; every parameter's requiresGrad and gradient as they were before. Then compareBackbones'
// patchDescent: patchDescent of that gradient exactly, and none where the patch projection did not move or no
// training images are given; its weightDescent partMoves of the training gradient and its spread on every part.
import { beforeAll, describe, expect, it } from "vitest";
import * as ops from "../../autograd/ops.js";
import { noGrad } from "../../autograd/tape.js";
import { Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { compareBackbones } from "../../eval/block-analysis.js";
import { blockMap } from "../../eval/block-map.js";
import { type PatchMoments, apartFromBias, patchDescent, patchMoments, patchProjection } from "../../eval/patch-directions.js";
import { patchGradient } from "../../eval/patch-gradient.js";
import { partMoves } from "../../eval/part-moves.js";
import { partTensors } from "../../eval/weight-change.js";
import { trainingGradient } from "../../eval/training-gradient.js";
import { batchImages } from "../../train/batch-images.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { loadVit } from "../../vit/load.js";
import type { VisionTransformer } from "../../vit/model.js";
import { randn, useEngine } from "../helpers.js";
import { useSyntheticData } from "../train/synthetic.js";

useEngine();

const [SIZE, P, CLASSES] = [16, 4, 6];
const data = useSyntheticData("patch-gradient-test-", { size: SIZE, perClass: { train: 5 }, seed: 6, noise: 160 });
let loader: Loader;
let moments: PatchMoments;

beforeAll(async () => {
  loader = new Loader(data.train, new Transform({ kind: "eval", size: SIZE }), { batchSize: 7 });
  moments = await patchMoments(loader, P);
});

// The fixture with `strategy` applied for 6 classes; `moved`: every trainable tensor moved to seeded normal values
// (std 0.3), as fine-tuning would, so that the loss is not at the head's initialisation.
async function model(strategy: string, moved = true): Promise<VisionTransformer> {
  const m = (await loadVit("test/fixtures/vit-tiny.safetensors", { heads: 2 })).model;
  applyStrategy(m, parseStrategy(strategy), CLASSES, 1);
  if (moved) m.parameters().filter(([, t]) => t.requiresGrad).forEach(([, t], i) => t.write(randn(t.size, 200 + i, 0.3)));
  return m;
}

// The mean cross-entropy over every image of the loader, float32 forward passes summed in float64.
async function loss(m: VisionTransformer, l: Loader): Promise<number> {
  let sum = 0;
  for await (const b of l.epoch(0)) {
    const x = noGrad(() => ops.crossEntropy(m.forward(batchImages(b, SIZE)), b.labels));
    sum += (await x.data())[0] * b.labels.length;
    x.dispose();
  }
  return sum / l.dataset.length;
}

// Writes [W | b] (C x (K + 1)) into the model's patch projection.
function writeProjection(m: VisionTransformer, wb: Float64Array): void {
  const { weight, bias } = apartFromBias(wb, m.patchEmbed.weight.shape[0]);
  m.patchEmbed.weight.write(weight);
  m.patchEmbed.bias!.write(bias);
}

describe("patchGradient", () => {
  it("is the loss's derivative along any direction of [W | b], as central differences measure it", async () => {
    const m = await model("full");
    const g = (await patchGradient(m, loader)).gradient;
    const norm = Math.hypot(...g);
    const w0 = await patchProjection(m);
    const dims = moments.dims;
    const unit = (d: Float64Array) => {
      const n = Math.hypot(...d);
      return d.map((x) => x / n);
    };
    const rows = randn(w0.length / dims, 3);
    const directions = {
      gradient: unit(g),
      "first direction": unit(Float64Array.from({ length: w0.length }, (_, i) => rows[Math.floor(i / dims)] * moments.direction[i % dims])),
      random: unit(Float64Array.from(randn(w0.length, 4))),
      "the bias alone": unit(Float64Array.from({ length: w0.length }, (_, i) => (i % dims === dims - 1 ? rows[Math.floor(i / dims)] : 0))),
    };
    for (const [name, d] of Object.entries(directions)) {
      const central = async (eps: number) => {
        writeProjection(m, w0.map((x, i) => x + eps * d[i]));
        const up = await loss(m, loader);
        writeProjection(m, w0.map((x, i) => x - eps * d[i]));
        return (up - (await loss(m, loader))) / (2 * eps);
      };
      // Richardson's extrapolation of two steps: the error of the third derivative's term cancels.
      const measured = (4 * (await central(5e-3)) - (await central(1e-2))) / 3;
      const derivative = g.reduce((s, x, i) => s + x * d[i], 0);
      // Measured 4e-6 to 1.2e-4 of the gradient's norm, each derivative 1 % of it or more.
      expect(Math.abs(derivative) / norm, name).toBeGreaterThan(0.005);
      expect(Math.abs(measured - derivative) / norm, name).toBeLessThan(1e-3);
    }
    m.dispose();
  });

  it("sums its batches: the same in one batch of 30 as in batches of 7, and each full batch's own kept; every parameter's flag and gradient as they were", async () => {
    const m = await model("top-1");
    const before = m.parameters().map(([n, t]) => [n, t.requiresGrad, t.grad] as const);
    expect(before.some(([, flag]) => !flag)).toBe(true); // top-1 trains neither the patch projection nor block 0
    const [g7, g30] = [await patchGradient(m, loader), await patchGradient(m, new Loader(loader.dataset, loader.transform, { batchSize: 30 }))];
    const scale = Math.max(...g7.gradient.map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    for (let i = 0; i < g7.gradient.length; i++) expect(Math.abs(g7.gradient[i] - g30.gradient[i]) / scale).toBeLessThan(1e-5);
    // Batches of 7 of 30 images: four full ones kept, the last two images' left out; one batch of 30: itself.
    expect(g7.batches).toHaveLength(4);
    expect(g30.batches).toEqual([g30.gradient]);
    // In passes of at most 3 images (gradient accumulation, as a cell with training.microBatch trains): the same.
    const g3 = await patchGradient(m, loader, 3);
    g3.batches.forEach((b, j) => b.forEach((x, i) => expect(Math.abs(x - g7.batches[j][i]) / scale).toBeLessThan(1e-5)));
    // In batches of 6, every one full: the gradient is their mean (the same float32 values summed in float64).
    const g6 = await patchGradient(m, new Loader(loader.dataset, loader.transform, { batchSize: 6 }));
    expect(g6.batches).toHaveLength(5);
    g6.gradient.forEach((x, i) => expect(x).toBeCloseTo(g6.batches.reduce((s, b) => s + b[i], 0) / 5, 12));
    expect(m.parameters().map(([n, t]) => [n, t.requiresGrad, t.grad] as const)).toEqual(before);
    m.dispose();
  });

  it("refuses a model without a head", async () => {
    const m = await model("full");
    const head = m.head!;
    m.head = undefined;
    await expect(patchGradient(m, loader)).rejects.toThrow("training gradient: the model has no head, so no training loss");
    m.head = head;
    m.dispose();
  });
});

describe("gradient descent's next move in compareBackbones", () => {
  it("is patchDescent of the tuned model's patch gradient on each image set's moments, partMoves of its gradient and spread on every part; none where the projection did not move or no training images are given", async () => {
    const data = { queries: loader, bank: loader, k: 3, temperature: 0.07, classes: CLASSES, gridImages: 1, patches: { source: moments, target: moments }, train: { loader, microBatch: 7 } };
    const [original, tuned] = [await model("full", false), await model("full")];
    const c = await compareBackbones(original, tuned, blockMap(parseStrategy("full"), 2), data);
    const want = patchDescent(await patchProjection(original), await patchProjection(tuned), await patchGradient(tuned, loader), moments);
    expect(want.along.spread).toBeGreaterThan(0);
    expect(c.patchDescent).toEqual({ source: want, target: want });
    expect(want.along.turn).not.toBeNaN();
    // In weight space, part by part: the training gradient's move and its batches' spread on every tensor trained.
    const map = blockMap(parseStrategy("full"), 2);
    const parts = partTensors(original, tuned, map);
    const trained = [...parts.embedding, ...parts.blocks.flat(), ...parts.norm].map(([, , t]) => t);
    const g = await trainingGradient(tuned, loader, trained);
    const [moves] = await partMoves(original, tuned, map, [{ move: new Map([...g.gradient].map(([t, x]) => [t, x.map((v) => -v)])), spread: g.spread }]);
    expect(c.weightDescent).toEqual(moves);
    expect([moves.embedding, ...moves.blocks, moves.norm].every((p) => p.spread! > 0)).toBe(true);
    const { train: _, ...untrained } = data;
    expect((await compareBackbones(original, tuned, blockMap(parseStrategy("full"), 2), untrained)).patchDescent).toBeUndefined();
    const top = await model("top-1");
    expect((await compareBackbones(original, top, blockMap(parseStrategy("top-1"), 2), data)).patchDescent).toBeUndefined();
    for (const m of [original, tuned, top]) m.dispose();
  });
});
