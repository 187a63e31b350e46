// The layer-wise rate decay's factors against BEiT's and MAE's rule by hand (embeddings layer 0, block i layer
// i + 1, the rest layer depth + 1; factor decay^(depth + 1 - layer)) on the names of a ViT's, LoRA's and Block
// Expansion's trainable tensors, and its refusals.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { validateConfig } from "../../vit/config.js";
import { buildVit, initialiser } from "../../vit/model.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { layerOf, layerRateScale, layerRateScales } from "../../peft/layer-decay.js";
import { useEngine } from "../helpers.js";

useEngine();

const CONFIG = validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 4, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 });

function trained(strategy: string): { names: string[]; depth: number } {
  const model = buildVit(CONFIG, initialiser(0));
  const names = applyStrategy(model, parseStrategy(strategy), 3).map(([n]) => n);
  const depth = model.blocks.length;
  model.dispose();
  return { names, depth };
}

describe("layerRateScales", () => {
  it("full fine-tuning: the embeddings at decay^5, block i at decay^(4 - i), the final norm and the head at 1", () => {
    const { names, depth } = trained("full");
    const scales = new Map(names.map((n, i) => [n, layerRateScales(names, depth, 0.5)[i]]));
    for (const n of ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]) expect(scales.get(n), n).toBe(0.5 ** 5);
    for (let i = 0; i < 4; i++) {
      const block = names.filter((n) => n.startsWith(`blocks.${i}.`));
      expect(block.length).toBe(12);
      for (const n of block) expect(scales.get(n), n).toBe(0.5 ** (4 - i));
    }
    for (const n of ["norm.weight", "norm.bias", "head.weight", "head.bias"]) expect(scales.get(n), n).toBe(1);
    expect(layerRateScales(names, depth, 1).every((s) => s === 1)).toBe(true);
  });

  it("LoRA's adapters at their block's factor; Block Expansion's new blocks at their places in the deeper stack", () => {
    const lora = trained("lora-r2");
    lora.names.forEach((n, i) => {
      const block = /^blocks\.(\d)\./.exec(n);
      expect(layerRateScales(lora.names, lora.depth, 0.8)[i], n).toBeCloseTo(block ? 0.8 ** (4 - Number(block[1])) : 1, 15);
    });
    // block-p2 on 4 blocks: new blocks after blocks 2 and 4, at 2 and 5 of 6.
    const expanded = trained("block-p2");
    expect(expanded.depth).toBe(6);
    expect(new Set(expanded.names.map((n) => n.split(".").slice(0, 2).join(".")))).toEqual(new Set(["blocks.2", "blocks.5", "head.weight", "head.bias"]));
    const scales = layerRateScales(expanded.names, expanded.depth, 0.5);
    expanded.names.forEach((n, i) => expect(scales[i], n).toBe(n.startsWith("blocks.2.") ? 0.5 ** 4 : n.startsWith("blocks.5.") ? 0.5 : 1));
  });

  it("refuses a decay outside (0, 1], a block past the depth, and a tensor it was not given", () => {
    for (const decay of [0, -0.5, 1.5, Number.NaN]) expect(() => layerRateScales(["head.weight"], 4, decay), String(decay)).toThrow(`layer decay: expected a decay in (0, 1], got ${decay}`);
    expect(() => layerOf("blocks.4.attn.qkv.weight", 4)).toThrow("layer decay: expected a block below depth 4, got parameter blocks.4.attn.qkv.weight");
    const head = Tensor.fromArray([1], [1]);
    const scale = layerRateScale([["head.weight", head]], 4, 0.5);
    expect(scale(head)).toBe(1);
    expect(() => scale(Tensor.fromArray([1], [1]))).toThrow("layer decay: expected one of the trainable tensors, got Tensor(");
  });
});
