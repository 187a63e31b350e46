// eval/loader-outputs.ts: a function's outputs over a loader's batches, read back together, are those of each batch
// run alone, to the bit, with or without the replay, in order with their labels; one wait for a small loader, more
// when the outputs pass the group size; one replay may serve two loaders.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../vit/config.js";
import { type VisionTransformer, buildVit, initialiser } from "../../vit/model.js";
import { applyStrategy } from "../../peft/strategy.js";
import type { Dataset } from "../../data/dataset.js";
import { Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { Tensor, tidy } from "../../engine/tensor.js";
import { runtime } from "../../engine/runtime.js";
import { noGrad } from "../../autograd/tape.js";
import { ReplayedForward } from "../../eval/replayed-forward.js";
import { loaderOutputs } from "../../eval/loader-outputs.js";
import { useEngine } from "../helpers.js";
import { grayDataset } from "../data/fixtures.js";

useEngine();

// n gray 8x8 images, labels cycling over 3 classes.
const dataset = (n: number, seed: number): Dataset => grayDataset(n, 8, 8, 3, seed);

describe("loaderOutputs", () => {
  let model: VisionTransformer;
  beforeAll(() => {
    model = buildVit(validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 1, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 }), initialiser(7));
    applyStrategy(model, { kind: "linear" }, 3, 2);
  });
  afterAll(() => {
    model.dispose();
  });
  const transform = new Transform({ kind: "eval", size: 8 });
  const forward = (x: Tensor) => model.forward(x);

  // Each batch's logits, run alone and read at once.
  async function alone(loader: Loader): Promise<number[]> {
    const out: number[] = [];
    for await (const b of loader.epoch(0)) {
      const y = tidy(() => noGrad(() => model.forward(Tensor.fromArray(b.images, [b.labels.length, 3, 8, 8]))));
      out.push(...(await y.data()));
      y.dispose();
    }
    return out;
  }

  it("gives every batch's outputs and labels in order, with and without the replay, in one wait", async () => {
    const loader = new Loader(dataset(23, 1), transform, { batchSize: 5 }); // 4 full batches and one of 3
    const want = await alone(loader);
    const { stats } = runtime().batch;
    for (const replay of [false, true]) {
      const replayed = replay ? new ReplayedForward(forward, "test: not replayed") : undefined;
      try {
        const before = stats.readbacks;
        const got = await loaderOutputs(loader, forward, replayed);
        expect(stats.readbacks - before).toBe(1);
        expect(got.width).toBe(3);
        expect(Array.from(got.values)).toEqual(want);
        expect(Array.from(got.labels)).toEqual(Array.from({ length: 23 }, (_, i) => i % 3));
      } finally {
        replayed?.dispose();
      }
    }
  });

  it("reads as the outputs pass the group size, and one replay serves two loaders", async () => {
    const a = new Loader(dataset(12, 2), transform, { batchSize: 4 });
    const b = new Loader(dataset(9, 3), transform, { batchSize: 4 });
    const replayed = new ReplayedForward(forward, "test: not replayed");
    try {
      const { stats } = runtime().batch;
      const before = stats.readbacks;
      const got = await loaderOutputs(a, forward, replayed, 2 * 4 * 3 * 4); // two batches' logits per read
      const reads = stats.readbacks - before;
      expect(Array.from(got.values)).toEqual(await alone(a));
      expect(Array.from((await loaderOutputs(b, forward, replayed)).values)).toEqual(await alone(b));
      expect(reads).toBeGreaterThanOrEqual(2);
    } finally {
      replayed.dispose();
    }
  });
});
