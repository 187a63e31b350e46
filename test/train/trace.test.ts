// train/trace.ts: the kernel shapes one training step looks up, per strategy, in a dry run: which shapes each
// strategy runs (frozen layers need no weight gradients, LoRA adds its rank-r products), and that tracing
// dispatches nothing, makes no buffer and leaves no tensor behind.
import { describe, expect, it } from "vitest";
import { runtime } from "../../engine/runtime.js";
import { traceTrainingStep } from "../../train/trace.js";
import { parseStrategy } from "../../peft/strategy.js";
import { validateConfig } from "../../vit/config.js";
import { useEngine } from "../helpers.js";

useEngine();

// B*T = 2 * 17 = 34 tokens, 2 * 16 = 32 patches.
const TINY = validateConfig({ imageSize: 28, patchSize: 7, width: 64, depth: 4, heads: 2, mlpHidden: 256, classes: 5, eps: 1e-6 });
const keysOf = (shapes: { family: string; key: string }[]) => shapes.map((s) => `${s.family}/${s.key}`);

describe("traceTrainingStep", () => {
  it("records each shape once, with the strategies whose step ran it, and dispatches nothing", () => {
    const { batch, pool } = runtime();
    const dispatches = batch.stats.dispatches;
    const { liveBytes, totalBytes, buffersCreated } = pool.getStats();
    const shapes = traceTrainingStep(TINY, 2, ["full", "linear"].map(parseStrategy));
    expect(batch.stats.dispatches).toBe(dispatches);
    // Nor does it make a buffer: a dry run's tensors hold none (engine/tensor.ts).
    expect(pool.getStats()).toMatchObject({ liveBytes, totalBytes, buffersCreated });
    const keys = keysOf(shapes);
    expect(new Set(keys).size).toBe(keys.length);
    const uses = (key: string) => shapes.find((s) => `${s.family}/${s.key}` === key)?.uses;
    expect(uses("matmul/34x64x192/nt/b1")).toEqual(["full", "linear"]); // qkv forward
    expect(uses("matmul/5x2x64/tn/b1")).toEqual(["full", "linear"]); // the head's weight gradient
    expect(uses("matmul/192x34x64/tn/b1")).toEqual(["full"]); // qkv's weight gradient: frozen under linear
    expect(uses("matmul/147x32x64/nn/b1")).toEqual(["full"]); // the patch embedding's, transposed (its patches read in place); its input needs no gradient
    expect(keys).not.toContain("matmul/32x64x147/nn/b1");
    expect(uses("rows/cross-entropy/2x5")).toEqual(["full", "linear"]);
    expect(uses("attention/2x2x17x32")).toEqual(["full", "linear"]); // (B, heads, 1 + patches, width / heads)
  });

  it("adds LoRA's rank-r products for its targets", () => {
    const base = keysOf(traceTrainingStep(TINY, 2, [parseStrategy("full")]));
    // rank 4 on q and v: A_cat (8, 64), B_full (192, 8), over the 34 tokens.
    const added = keysOf(traceTrainingStep(TINY, 2, [parseStrategy("lora-r4")])).filter((k) => !base.includes(k));
    expect(added.sort()).toEqual(
      ["34x64x8/nt/b1", "34x8x64/nn/b1", "8x34x64/tn/b1", "34x8x192/nt/b1", "34x192x8/nn/b1", "192x34x8/tn/b1"].map((k) => `matmul/${k}`).sort(),
    );
    const all = keysOf(traceTrainingStep(TINY, 2, [{ kind: "lora", rank: 2, targets: ["q", "k", "v", "fc1"] }]));
    for (const k of ["34x64x6/nt/b1", "34x6x192/nt/b1", "34x64x2/nt/b1", "34x2x256/nt/b1"]) expect(all).toContain(`matmul/${k}`);
  });
});
