// The strategies on a small random ViT: Block Expansion and LoRA leave the model's function unchanged at the
// start, merged LoRA equals unmerged, and one optimiser step changes exactly the trainable tensors; which
// strategies fit which backbone; the new head's initialisations and the random streams of head and adapters.
import { describe, expect, it } from "vitest";
import { Tensor, tidyAsync } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { SGD } from "../../autograd/optim.js";
import { validateConfig, type VitConfig } from "../../vit/config.js";
import { buildVit, initialiser, type VisionTransformer } from "../../vit/model.js";
import { applyStrategy, newHead, parseStrategy, parseStrategyFor, strategyName, strategyProblem, strategyTexts } from "../../peft/strategy.js";
import { applyLora, isLoraKey, mergeLora, unmergeLora } from "../../peft/lora.js";
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

describe("strategyTexts", () => {
  it("joins block@'s positions split off by a flag's commas, and nothing else", () => {
    expect(strategyTexts(["block@1", "3", "full", "block@2", "lora-r8", "block@4", "5", "6"])).toEqual(["block@1,3", "full", "block@2", "lora-r8", "block@4,5,6"]);
    expect(strategyTexts(["3", "full", "4"])).toEqual(["3", "full", "4"]); // refused later, by name
  });
});

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
  for (const name of ["full", "top-1", "top-1-frozen-norm", "linear", "lora-r2", "block-p2"]) {
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

describe("full fine-tuning with the flat response held: full-keepflat", () => {
  it("parses, with -lpft and -lrdD after it, named back the same way, training full fine-tuning's tensors", () => {
    expect(parseStrategy("Full-KeepFlat")).toEqual({ kind: "full", keepFlat: true });
    expect(parseStrategy("full-keepflat-lpft-lrd0.5")).toEqual({ kind: "full", keepFlat: true, probeFirst: true, layerDecay: 0.5 });
    for (const text of ["full-keepflat", "full-keepflat-lpft", "full-keepflat-lrd0.75"]) expect(strategyName(parseStrategy(text)), text).toBe(text);
    const names = (s: string) => applyStrategy(model(), parseStrategy(s), 5).map(([n]) => n);
    expect(names("full-keepflat")).toEqual(names("full"));
    expect(() => parseStrategy("top-2-keepflat")).toThrow(/strategy: unknown "top-2-keepflat"; expected full, full-keepflat, linear/);
  });
});

describe("a layer-wise rate decay: -lrdD", () => {
  it("parses on any strategy but linear and top-0, named back the same way, training the same tensors", () => {
    expect(parseStrategy("full-lrd0.75")).toEqual({ kind: "full", layerDecay: 0.75 });
    expect(parseStrategy(" Top3-Frozen-Norm-LRD.5")).toEqual({ kind: "top-k", k: 3, frozenNorm: true, layerDecay: 0.5 });
    for (const [text, name] of [["top3-frozen-norm-lrd.5", "top-3-frozen-norm-lrd0.5"], ["lora-r8-lrd1", "lora-r8-lrd1"], ["block@1,3-lrd0.80", "block@1,3-lrd0.8"], ["block-p2-lrd0.65", "block-p2-lrd0.65"]]) {
      expect(strategyName(parseStrategy(text)), text).toBe(name);
    }
    expect(strategyTexts(["block@1", "3-lrd0.8", "full-lrd0.5"])).toEqual(["block@1,3-lrd0.8", "full-lrd0.5"]);
    // A decay below 1e-6 is named with an exponent, and read back so.
    expect(parseStrategy(strategyName(parseStrategy("full-lrd0.0000002")))).toEqual({ kind: "full", layerDecay: 2e-7 });
    const names = (s: string) => applyStrategy(model(), parseStrategy(s), 5).map(([n]) => n);
    for (const base of ["full", "top-2", "lora-r2", "block-p2"]) expect(names(`${base}-lrd0.5`), base).toEqual(names(base));
  });

  it("refuses a decay outside (0, 1] and one on a strategy that trains no block", () => {
    const shape = { depth: 4, width: 32 };
    for (const name of ["linear-lrd0.5", "top-0-lrd0.5"]) {
      expect(strategyProblem(parseStrategy(name), shape), name).toBe("-lrdD on a strategy that trains a block (not linear or top-0)");
    }
    for (const name of ["full-lrd0", "full-lrd1.5", "lora-r2-lrd00"]) expect(strategyProblem(parseStrategy(name)), name).toBe("-lrdD with 0 < D <= 1");
    expect(strategyProblem(parseStrategy("top-9-lrd0.5"), shape)).toBe("top-K with 0 <= K <= depth 4");
    for (const text of ["full-lrd", "full-lrd1.", "full-lrd-0.5", "full-lrdx"]) expect(() => parseStrategy(text), text).toThrow(`strategy: unknown "${text}"`);
    expect(() => applyStrategy(model(), parseStrategy("linear-lrd0.5"), 5)).toThrow("strategy: expected -lrdD on a strategy that trains a block (not linear or top-0), got linear-lrd0.5");
  });
});

describe("which strategies fit which backbone", () => {
  const shape = { depth: 4, width: 32 };
  it("accepts what fits and says what it expects of what does not", () => {
    for (const name of ["full", "linear", "top-0", "top-4", "top-4-frozen-norm", "lora-r1", "lora-r32", "block-p4", "block@1,4"]) {
      expect(strategyProblem(parseStrategy(name), shape), name).toBeUndefined();
    }
    const problems: [string, string][] = [
      ["top-5", "top-K with 0 <= K <= depth 4"],
      ["top-99-frozen-norm", "top-K with 0 <= K <= depth 4"],
      ["lora-r0", "lora-rR with 1 <= R <= width 32"],
      ["lora-r33", "lora-rR with 1 <= R <= width 32"],
      ["block-p0", "block-pP with P >= 1 dividing depth 4"],
      ["block-p3", "block-pP with P >= 1 dividing depth 4"],
      ["block@0", "block@POS with distinct positions in 1..depth 4"],
      ["block@99", "block@POS with distinct positions in 1..depth 4"],
      ["block@2,2", "block@POS with distinct positions in 1..depth 4"],
    ];
    for (const [name, expected] of problems) expect(strategyProblem(parseStrategy(name), shape), name).toBe(expected);
  });

  it("without a backbone, refuses only what fits none", () => {
    for (const name of ["top-99", "lora-r4096", "block-p7", "block@99"]) expect(strategyProblem(parseStrategy(name)), name).toBeUndefined();
    expect(strategyProblem(parseStrategy("lora-r0"))).toBe("lora-rR with R >= 1");
    expect(strategyProblem(parseStrategy("block-p0"))).toBe("block-pP with P >= 1");
    expect(strategyProblem(parseStrategy("block@0,1"))).toBe("block@POS with distinct positions >= 1");
    expect(strategyProblem(parseStrategy("block@3,3"))).toBe("block@POS with distinct positions >= 1");
  });

  it("applyStrategy and parseStrategyFor refuse what does not fit, before changing the model", () => {
    const m = model();
    expect(() => applyStrategy(m, parseStrategy("lora-r0"), 5)).toThrow("strategy: expected lora-rR with 1 <= R <= width 32, got lora-r0");
    expect(() => applyStrategy(m, parseStrategy("block@2,2"), 5)).toThrow("strategy: expected block@POS with distinct positions in 1..depth 4, got block@2,2");
    expect(m.head).toBeUndefined();
    expect(m.blocks.length).toBe(4);
    expect(() => parseStrategyFor("top-9", shape)).toThrow('strategy: expected top-K with 0 <= K <= depth 4, got "top-9"');
    expect(parseStrategyFor("top-4", shape)).toEqual({ kind: "top-k", k: 4 });
  });
});

describe("top-k with and without the final norm", () => {
  it("names say which: top-K trains the final norm, top-K-frozen-norm does not", () => {
    expect(parseStrategy("top-3")).toEqual({ kind: "top-k", k: 3 });
    expect(parseStrategy("Top3-Frozen-Norm")).toEqual({ kind: "top-k", k: 3, frozenNorm: true });
    expect(strategyName(parseStrategy("top3-frozen-norm"))).toBe("top-3-frozen-norm");
    const names = (s: string) => applyStrategy(model(), parseStrategy(s), 5).map(([n]) => n);
    expect(names("top-1")).toEqual(expect.arrayContaining(["norm.weight", "norm.bias", "head.weight", "blocks.3.attn.qkv.weight"]));
    const frozen = names("top-1-frozen-norm");
    expect(frozen).toEqual(expect.arrayContaining(["head.weight", "blocks.3.attn.qkv.weight"]));
    expect(frozen).not.toContain("norm.weight");
    expect(frozen.length).toBe(names("top-1").length - 2);
  });
});

describe("the new head's initialisation and the random streams", () => {
  it("uniform is nn.Linear's ±1/sqrt(in); trunc-normal is Hugging Face's std 0.02 with a zero bias", async () => {
    const uniform = newHead(256, 100, 3);
    const w = await uniform.weight.data();
    const bound = 1 / 16;
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...(await uniform.bias!.data()).map(Math.abs))).toBeGreaterThan(0);
    const normal = newHead(256, 100, 3, "trunc-normal");
    const v = await normal.weight.data();
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    expect(Math.abs(mean)).toBeLessThan(0.001);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.0005);
    expect(Array.from(await normal.bias!.data())).toEqual(new Array(100).fill(0));
    expect(() => applyStrategy(model(), parseStrategy("linear"), 5, 0, "xavier" as "uniform")).toThrow('strategy: expected a head initialisation uniform or trunc-normal, got "xavier"');
  });

  it("isLoraKey tells every adapter tensor's name from the model's own", () => {
    const m = model();
    const own = m.parameters().map(([n]) => n);
    expect(own.filter(isLoraKey)).toEqual([]);
    applyStrategy(m, { kind: "lora", rank: 2, targets: ["q", "v", "proj", "fc1"] }, 5, 1);
    const adapters = m.parameters().map(([n]) => n).filter((n) => !own.includes(n) && !n.startsWith("head."));
    expect(adapters.length).toBe(2 * 4 * (2 + 1 + 1)); // 2 blocks; A and B of q, v, proj, fc1
    expect(adapters.filter((n) => !isLoraKey(n))).toEqual([]);
    m.dispose();
  });

  it("LoRA's A matrices draw from a stream of their own, not the head's; the same seed gives the same model", async () => {
    const tensors = async (seed: number) => {
      const m = model();
      const trainable = applyStrategy(m, parseStrategy("lora-r2"), 5, seed);
      return new Map(await Promise.all(trainable.map(async ([n, t]) => [n, await t.data()] as const)));
    };
    const a = await tensors(1);
    const head = a.get("head.weight")!;
    const A = a.get("blocks.0.attn.qkv.lora_q.A")!; // (2, 32), as the head's first two rows
    expect(Array.from(A)).not.toEqual(Array.from(head.subarray(0, A.length)));
    const again = await tensors(1);
    for (const [n, t] of a) expect(Array.from(again.get(n)!), n).toEqual(Array.from(t));
    expect(Array.from((await tensors(2)).get("blocks.0.attn.qkv.lora_q.A")!)).not.toEqual(Array.from(A));
  });
});

describe("a linear probe first: -lpft", () => {
  it("parses on any strategy but linear, before a decay, named back the same way, training the same tensors", () => {
    expect(parseStrategy("full-lpft")).toEqual({ kind: "full", probeFirst: true });
    expect(parseStrategy(" Top3-Frozen-Norm-LPFT-lrd.5")).toEqual({ kind: "top-k", k: 3, frozenNorm: true, probeFirst: true, layerDecay: 0.5 });
    for (const [text, name] of [["lora-r8-lpft", "lora-r8-lpft"], ["block@1,3-lpft-lrd0.80", "block@1,3-lpft-lrd0.8"], ["block-p2-LPFT", "block-p2-lpft"]]) {
      expect(strategyName(parseStrategy(text)), text).toBe(name);
    }
    expect(strategyTexts(["block@1", "3-lpft", "full-lpft"])).toEqual(["block@1,3-lpft", "full-lpft"]);
    const names = (s: string) => applyStrategy(model(), parseStrategy(s), 5).map(([n]) => n);
    for (const base of ["full", "top-2", "lora-r2", "block-p2"]) expect(names(`${base}-lpft`), base).toEqual(names(base));
  });

  it("refuses it on linear probing, and after a decay", () => {
    expect(strategyProblem(parseStrategy("linear-lpft"))).toBe("-lpft on a strategy that trains more than the head (not linear)");
    expect(strategyProblem(parseStrategy("top-0-lpft"))).toBeUndefined();
    for (const text of ["full-lrd0.5-lpft", "full-lpft-lpft", "lpft"]) expect(() => parseStrategy(text), text).toThrow(`strategy: unknown "${text}"`);
  });
});
