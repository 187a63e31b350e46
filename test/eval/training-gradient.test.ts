// eval/training-gradient.ts on the tiny ViT fixture (full fine-tuning, every parameter moved off its initial values,
// a head of 6 classes) and 30 noisy synthetic images of 16 px in batches of 7: the gradient of tensors deep in the
// model (a block's MLP weight, the final norm's bias) against Richardson-extrapolated central differences of the
// loss along a direction of each halfway between its gradient and a random one (to 1e-3 of its norm;
// test/eval/patch-gradient.test.ts does the patch projection's, along four directions); a tensor's gradient the same
// to the bit whichever others are taken with it; each full batch's own kept for the tensors asked apart alone; every
// parameter's flag and gradient as before; each tensor's spread, the full batches' unbiased variance about their own
// mean summed over its values, against the batches kept (1e-10), none where one batch is full.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ops from "../../autograd/ops.js";
import { noGrad } from "../../autograd/tape.js";
import { Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { trainingGradient } from "../../eval/training-gradient.js";
import { batchImages } from "../../train/batch-images.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { loadVit } from "../../vit/load.js";
import type { VisionTransformer } from "../../vit/model.js";
import { randn, useEngine } from "../helpers.js";
import { useSyntheticData } from "../train/synthetic.js";

useEngine();

const [SIZE, CLASSES] = [16, 6];
const data = useSyntheticData("training-gradient-test-", { size: SIZE, perClass: { train: 5 }, seed: 8, noise: 160 });
let loader: Loader;
let model: VisionTransformer;

beforeAll(async () => {
  loader = new Loader(data.train, new Transform({ kind: "eval", size: SIZE }), { batchSize: 7 });
  model = (await loadVit("test/fixtures/vit-tiny.safetensors", { heads: 2 })).model;
  applyStrategy(model, parseStrategy("full"), CLASSES, 1);
  model.parameters().filter(([, t]) => t.requiresGrad).forEach(([, t], i) => t.write(randn(t.size, 300 + i, 0.3)));
});

afterAll(async () => {
  model.dispose();
});

// The mean cross-entropy over every image, float32 forward passes summed in float64.
async function loss(): Promise<number> {
  let sum = 0;
  for await (const b of loader.epoch(0)) {
    const x = noGrad(() => ops.crossEntropy(model.forward(batchImages(b, SIZE)), b.labels));
    sum += (await x.data())[0] * b.labels.length;
    x.dispose();
  }
  return sum / loader.dataset.length;
}

describe("trainingGradient", () => {
  it("is the loss's derivative along a direction of each tensor deep in the model, as central differences measure it", async () => {
    const named = new Map(model.parameters());
    const [fc1, norm] = [named.get("blocks.1.mlp.fc1.weight")!, named.get("norm.bias")!];
    const g = await trainingGradient(model, loader, [fc1, norm]);
    for (const [k, t] of [fc1, norm].entries()) {
      const grad = g.gradient.get(t)!;
      const w0 = await t.data();
      // Halfway between the gradient and a random direction: a random one alone is nearly orthogonal to it.
      const [r, size] = [randn(t.size, 20 + k, 1), Math.hypot(...grad)];
      const rn = Math.hypot(...r);
      const d = grad.map((x, i) => x / size + r[i] / rn);
      const n = Math.hypot(...d);
      d.forEach((x, i) => (d[i] = x / n));
      const central = async (eps: number) => {
        t.write(w0.map((x, i) => x + eps * d[i]));
        const up = await loss();
        t.write(w0.map((x, i) => x - eps * d[i]));
        return (up - (await loss())) / (2 * eps);
      };
      const measured = (4 * (await central(5e-3)) - (await central(1e-2))) / 3;
      t.write(w0);
      const derivative = grad.reduce((s, x, i) => s + x * d[i], 0);
      expect(Math.abs(derivative) / size, t.name).toBeGreaterThan(0.005);
      expect(Math.abs(measured - derivative) / size, t.name).toBeLessThan(1e-3);
    }
  });

  it("gives a tensor the same gradient to the bit whichever others it is taken with; each full batch's of those asked apart; every flag and gradient as it was", async () => {
    const { weight } = model.patchEmbed;
    const fc2 = new Map(model.parameters()).get("blocks.0.mlp.fc2.weight")!;
    fc2.requireGrad(false);
    const before = model.parameters().map(([n, t]) => [n, t.requiresGrad, t.grad] as const);
    const alone = await trainingGradient(model, loader, [weight], [weight]);
    const together = await trainingGradient(model, loader, [fc2, weight], [weight]);
    expect(together.gradient.get(weight)).toEqual(alone.gradient.get(weight));
    expect(together.gradient.get(fc2)!.some((x) => x !== 0)).toBe(true); // a frozen tensor is taken all the same
    // Batches of 7 of 30 images: four full ones kept, of the tensor asked apart alone.
    expect(together.batches).toHaveLength(4);
    expect(together.batches.map((b) => [...b.keys()])).toEqual(Array(4).fill([weight]));
    expect(together.batches).toEqual(alone.batches);
    expect(together.spread.get(weight)).toBe(alone.spread.get(weight));
    expect((await trainingGradient(model, loader, [fc2])).batches).toEqual([]);
    expect(model.parameters().map(([n, t]) => [n, t.requiresGrad, t.grad] as const)).toEqual(before);
    fc2.requireGrad(true);
  });

  it("spreads each tensor's full batches about their own mean, sum of squares over (batches - 1); none with one full batch", async () => {
    const named = new Map(model.parameters());
    const tensors = [model.patchEmbed.weight, named.get("blocks.1.attn.qkv.bias")!, named.get("norm.weight")!];
    const g = await trainingGradient(model, loader, tensors, tensors);
    expect(g.batches).toHaveLength(4); // of 7 of 30 images; the last, of 2, left out
    for (const t of tensors) {
      const batches = g.batches.map((b) => b.get(t)!);
      const mean = new Float64Array(t.size);
      for (const b of batches) b.forEach((x, i) => (mean[i] += x / batches.length));
      let squares = 0;
      for (const b of batches) b.forEach((x, i) => (squares += (x - mean[i]) ** 2));
      const want = squares / (batches.length - 1);
      expect(want, t.name).toBeGreaterThan(0);
      expect(Math.abs(g.spread.get(t)! - want) / want, t.name).toBeLessThan(1e-10);
    }
    // Batches of 20: one full one and one of 10, no spread to take.
    const halves = new Loader(loader.dataset, loader.transform, { batchSize: 20 });
    expect((await trainingGradient(model, halves, tensors)).spread.get(tensors[0])).toBeNaN();
  });
});
