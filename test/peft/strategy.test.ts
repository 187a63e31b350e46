// The strategies on a small random ViT: Block Expansion and LoRA leave the model's function unchanged at the
// start, merged LoRA equals unmerged, and one optimiser step changes exactly the trainable tensors.
import { describe, expect, it } from "vitest";
import { Tensor, tidyAsync } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { SGD } from "../../autograd/optim.js";
import { validateConfig, type VitConfig } from "../../vit/config.js";
import { buildVit, initialiser, type VisionTransformer } from "../../vit/model.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { applyLora, mergeLora, unmergeLora } from "../../peft/lora.js";
import { defaultPositions, expandBlocks } from "../../peft/block-expansion.js";
import { expectClose, randn, useEngine } from "../helpers.js";
import { backward, noGrad } from "../../autograd/tape.js";

useEngine();

const CONFIG: VitConfig = validateConfig({ imageSize: 16, patchSize: 4, width: 32, depth: 4, heads: 2, mlpHidden: 128, classes: 0, eps: 1e-6 });
// Float rounding only: the zeroed blocks add exact zeros, but fused epilogues may round differently.
const SAME = { atol: 1e-5, rtol: 1e-5 };

function model(): VisionTransformer {
  // A non-trivial random model: std 0.2 weights so that every block changes the features noticeably.
  const init = initialiser(7);
  return buildVit(CONFIG, (name, shape) => {
    const v = init(name, shape);
    return name.includes("norm") ? v : v.map((x) => x * 10 + (name.endsWith("bias") ? 0.05 : 0));
  });
}

const images = () => Tensor.fromArray(randn(2 * 3 * 16 * 16, 3), [2, 3, 16, 16]);

async function features(m: VisionTransformer, x: Tensor): Promise<Float32Array> {
  return noGrad(() => m.features(x)).data();
}

describe("block expansion", () => {
  it("places blocks after every depth/p-th block by default", () => {
    expect(defaultPositions(12, 1)).toEqual([12]);
    expect(defaultPositions(12, 4)).toEqual([3, 6, 9, 12]);
    expect(defaultPositions(4, 3)).toEqual([1, 3, 4]);
    expect(defaultPositions(12, 5)).toEqual([2, 5, 7, 10, 12]);
    expect(() => defaultPositions(4, 5)).toThrow("p must be an integer in 1..4");
  });
  for (const positions of [[4], [2, 4], [1, 2, 3], [1, 2, 3, 4], [3], [1, 4]]) {
    it(`computes the original function with new blocks after [${positions}]`, async () => {
      const m = model();
      const x = images();
      const before = await features(m, x);
      const added = expandBlocks(m, positions);
      expect(m.blocks.length).toBe(4 + positions.length);
      expect(added.length).toBe(positions.length);
      expectClose("features", await features(m, x), before, SAME);
    });
  }
  it("rejects positions outside the model", () => {
    expect(() => expandBlocks(model(), [0])).toThrow("position 0 is not in 1..4");
  });
});

describe("lora", () => {
  // alpha 3 at rank 2: the adapter's path scales h by 1.5, the merged weight scales B·A; they must agree.
  it.each([undefined, 3])("leaves the model unchanged at init, and merged equals unmerged after training B (alpha %s)", async (alpha) => {
    const m = model();
    const x = images();
    const before = await features(m, x);
    const adapters = applyLora(m, { rank: 2, alpha, targets: ["q", "v", "fc1"] });
    expectClose("lora at init", await features(m, x), before, SAME);
    // Give B non-zero values, as after training.
    for (const a of adapters) for (const [name, t] of a.parameters()) if (name.endsWith(".B")) t.write(randn(t.size, t.size));
    const adapted = await features(m, x);
    expect(Math.max(...adapted.map((v, i) => Math.abs(v - before[i])))).toBeGreaterThan(1e-3);
    mergeLora(m);
    expectClose("merged", await features(m, x), adapted, { atol: 1e-4, rtol: 1e-4 });
    unmergeLora(m);
    expectClose("unmerged", await features(m, x), adapted, { atol: 1e-4, rtol: 1e-4 });
  });
});

describe("frozen parameters cost nothing in the backward", () => {
  it("linear probing records no graph in the backbone; top-k none below its lowest trainable block", () => {
    const linear = model();
    applyStrategy(linear, parseStrategy("linear"), 5);
    expect(linear.features(images()).requiresGrad).toBe(false); // nothing to back-propagate into
    const top = model();
    applyStrategy(top, parseStrategy("top-1"), 5);
    const tokens = top.embed(images());
    expect(tokens.requiresGrad).toBe(false);
    const below = top.blocks.slice(0, 3).reduce((x, b) => b.forward(x), tokens);
    expect(below.requiresGrad).toBe(false);
    expect(top.blocks[3].forward(below).requiresGrad).toBe(true);
  });
});

describe("lora dropout", () => {
  it("drops inputs of the adapter in training and is the identity in evaluation", async () => {
    const m = model();
    const x = images();
    const adapters = applyLora(m, { rank: 2, dropout: 0.5, seed: 3 });
    for (const a of adapters) for (const [name, t] of a.parameters()) if (name.endsWith(".B")) t.write(randn(t.size, t.size));
    const first = await features(m, x);
    const second = await features(m, x);
    expect(second.some((v, i) => v !== first[i])).toBe(true); // a new mask each forward
    for (const a of adapters) a.training = false;
    const evalA = await features(m, x);
    const evalB = await features(m, x);
    expect(Array.from(evalB)).toEqual(Array.from(evalA));
    expect(() => applyLora(model(), { rank: 2, dropout: 1 })).toThrow("dropout must be in [0, 1)");
  });
});

// Two steps: with B = 0 (LoRA) or zeroed output layers (Block Expansion) the first step can only move B and the
// zeroed layers; from the second step on every trainable tensor gets a gradient.
describe("optimiser steps change exactly the trainable tensors", () => {
  for (const name of ["full", "top-1", "linear", "lora-r2", "block-p2"]) {
    it(name, async () => {
      const m = model();
      const trainable = applyStrategy(m, parseStrategy(name), 5, 1);
      const before = new Map<string, Float32Array>();
      for (const [n, t] of m.parameters()) before.set(n, await t.data());
      const opt = new SGD(trainable.map(([, t]) => t), { lr: 0.1, momentum: 0.9 });
      for (let step = 0; step < 2; step++) {
        await tidyAsync(async () => {
          opt.zeroGrad();
          const loss = ops.crossEntropy(m.forward(images()), Int32Array.from([1, 3]));
          backward(loss);
          opt.step();
        });
      }
      const names = new Set(trainable.map(([n]) => n));
      for (const [n, t] of m.parameters()) {
        const now = await t.data();
        const changed = now.some((v, i) => v !== before.get(n)![i]);
        if (names.has(n)) expect(changed, `${n} should have changed`).toBe(true);
        else {
          expect(changed, `${n} should be bit-identical`).toBe(false);
          expect(t.grad, `${n} got a gradient`).toBeUndefined();
        }
      }
    });
  }
});
