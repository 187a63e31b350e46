// The parts of a fine-tuned backbone that a reset puts back, named by where they stand in the original (Block
// Expansion's new blocks by the block they follow), whole or by layers, and the reset itself: each unit's tensors hold their values at
// step 0 while it is measured, every other tensor its fine-tuned value, and every tensor its fine-tuned bytes after,
// a failed measure's too.
import { describe, expect, it } from "vitest";
import { parseStrategy } from "../../peft/strategy.js";
import { blockMap } from "../../eval/block-map.js";
import { patchDirectionUnits, resetUnits, withEachReset } from "../../eval/block-reset.js";
import { patchProjection } from "../../eval/patch-directions.js";
import { randn, useEngine } from "../helpers.js";
import { parameterValues as values, tunedModels } from "./tuned-models.js";

useEngine();

const names = (strategy: string, depth = 2) => {
  const params = (prefix: string) => ["norm1.weight", "attn.qkv.weight", "mlp.fc2.bias"].map((n) => prefix + n);
  return { strategy: parseStrategy(strategy), depth, params };
};

describe("resetUnits", () => {
  it("groups the trainable tensors by part in the model's order, the head left out, then all of them and all but each", () => {
    const { strategy, depth, params } = names("full");
    const trainable = ["cls_token", "pos_embed", "patch_embed.proj.weight", ...params("blocks.0."), ...params("blocks.1."), "norm.weight", "norm.bias", "head.weight", "head.bias"];
    const units = resetUnits(trainable, blockMap(strategy, depth));
    const parts = ["patch_embed", "cls_token", "pos_embed", "block 0", "block 1", "norm"];
    expect(units.map((u) => u.name)).toEqual([...parts, "all", ...parts.map((p) => `all but ${p}`)]);
    expect(units.slice(0, 3).map((u) => u.tensors)).toEqual([["patch_embed.proj.weight"], ["cls_token"], ["pos_embed"]]);
    expect(units[4]).toEqual({ name: "block 1", block: 1, tensors: params("blocks.1.") });
    const backbone = trainable.filter((n) => !n.startsWith("head."));
    expect(units[6].tensors.sort()).toEqual([...backbone].sort());
    expect([units[11].name, units[11].tensors.sort()]).toEqual(["all but block 1", backbone.filter((n) => !n.startsWith("blocks.1.")).sort()]);
  });

  it("names Block Expansion's new blocks by the original block they follow; one part is not repeated as all, nor two as all but", () => {
    // block-p2 on 4 blocks: model order 0 1 n 2 3 n.
    const { strategy, params } = names("block-p2");
    const units = resetUnits([...params("blocks.2."), ...params("blocks.5."), "head.weight"], blockMap(strategy, 4));
    expect(units.map((u) => [u.name, u.block, u.added])).toEqual([["new block after 1", 1, true], ["new block after 3", 3, true], ["all", undefined, undefined]]);
    expect(resetUnits(params("blocks.2."), blockMap(strategy, 4)).map((u) => u.name)).toEqual(["new block after 1"]);
    expect(resetUnits(["head.weight", "head.bias"], blockMap(strategy, 4))).toEqual([]);
  });

  it("by layers: each block's layers apart in the block's order, LoRA's adapters with their layer, the other parts as they were", () => {
    const { strategy, depth, params } = names("full");
    const trainable = ["patch_embed.proj.weight", ...params("blocks.0."), "blocks.0.attn.qkv.bias", ...params("blocks.1."), "norm.weight", "head.weight"];
    const units = resetUnits(trainable, blockMap(strategy, depth), "layers");
    const layers = (b: number) => ["norm1", "attn.qkv", "mlp.fc2"].map((l) => `block ${b} ${l}`);
    const parts = ["patch_embed", ...layers(0), ...layers(1), "norm"];
    expect(units.map((u) => u.name)).toEqual([...parts, "all", ...parts.map((p) => `all but ${p}`)]);
    expect(units[2]).toEqual({ name: "block 0 attn.qkv", block: 0, layer: "attn.qkv", tensors: ["blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias"] });
    // LoRA on q and v: its adapters are its qkv layer's; a new block's layers are named by the block it follows.
    const lora = resetUnits(["blocks.1.attn.qkv.lora_q.A", "blocks.1.attn.qkv.lora_q.B", "blocks.1.attn.qkv.lora_v.A", "head.weight"], blockMap(parseStrategy("lora-r2"), 2), "layers");
    expect(lora).toEqual([{ name: "block 1 attn.qkv", block: 1, layer: "attn.qkv", tensors: ["blocks.1.attn.qkv.lora_q.A", "blocks.1.attn.qkv.lora_q.B", "blocks.1.attn.qkv.lora_v.A"] }]);
    const added = resetUnits(params("blocks.2."), blockMap(parseStrategy("block-p1"), 2), "layers");
    expect(added.map((u) => [u.name, u.block, u.added, u.layer])).toEqual([
      ["new block after 1 norm1", 1, true, "norm1"],
      ["new block after 1 attn.qkv", 1, true, "attn.qkv"],
      ["new block after 1 mlp.fc2", 1, true, "mlp.fc2"],
      ["all", undefined, undefined, undefined],
      ...["norm1", "attn.qkv", "mlp.fc2"].map((l) => [`all but new block after 1 ${l}`, undefined, undefined, undefined]),
    ]);
    expect(() => resetUnits(["blocks.0.ls1.gamma"], blockMap(strategy, depth), "layers")).toThrow("block reset: blocks.0.ls1.gamma is in none of a block's layers (norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2)");
  });

  it("refuses a tensor of no part it knows, and a block its map does not have", () => {
    const { strategy } = names("full");
    expect(() => resetUnits(["blocks.0.attn.qkv.weight", "fc_norm.weight"], blockMap(strategy, 2))).toThrow("block reset: fc_norm.weight is neither the embeddings', a block's, the final norm's nor the head's");
    expect(() => resetUnits(["blocks.7.attn.qkv.weight"], blockMap(strategy, 2))).toThrow("block reset: the fine-tuned model's block 7 is neither an original block nor a new one of its map");
  });
});

describe("withEachReset", () => {
  it("holds each unit's tensors at step 0 while it is measured, the others fine-tuned, and restores every byte", async () => {
    for (const [strategy, grain] of [["full", "blocks"], ["lora-r2", "blocks"], ["block-p1", "blocks"], ["full", "layers"]] as const) {
      const { tuned, initial, trainable } = await tunedModels(strategy);
      const [before, start] = [await values(tuned), await values(initial)];
      const units = resetUnits(trainable, blockMap(parseStrategy(strategy), 2), grain);
      const seen = await withEachReset(tuned, initial, units, async (unit) => {
        const now = await values(tuned);
        for (const [name, v] of now) expect(Array.from(v), `${strategy} ${unit.name}: ${name}`).toEqual(Array.from((unit.tensors.includes(name) ? start : before).get(name)!));
        return unit.name;
      });
      expect(seen).toEqual(units.map((u) => u.name));
      for (const [name, v] of await values(tuned)) expect(Array.from(v), `${strategy}: ${name} after`).toEqual(Array.from(before.get(name)!));
      // A measure that throws leaves the fine-tuned values too.
      await expect(withEachReset(tuned, initial, units, async () => Promise.reject(new Error("measure failed")))).rejects.toThrow("measure failed");
      for (const [name, v] of await values(tuned)) expect(Array.from(v), `${strategy}: ${name} after a failure`).toEqual(Array.from(before.get(name)!));
      tuned.dispose();
      initial.dispose();
    }
  });

  it("puts back the patch projection's change along a direction, or the rest of it, the other part kept; restores every byte", async () => {
    const { tuned, initial, trainable } = await tunedModels("full");
    const units = patchDirectionUnits(resetUnits(trainable, blockMap(parseStrategy("full"), 2)));
    expect(units.map((u) => [u.name, u.direction, u.tensors])).toEqual([
      ["patch_embed along the first direction", "along", ["patch_embed.proj.weight", "patch_embed.proj.bias"]],
      ["patch_embed along the others", "rest", ["patch_embed.proj.weight", "patch_embed.proj.bias"]],
    ]);
    const [w0, w] = [await patchProjection(initial), await patchProjection(tuned)];
    const dims = w.length / 32;
    const u = Float64Array.from(randn(dims, 17));
    const norm = Math.hypot(...u);
    u.forEach((x, i) => (u[i] = x / norm));
    // The change's part along u, row by row: (D u) u^T.
    const d = w.map((x, i) => x - w0[i]);
    const along = d.map((_, i) => {
      const r = Math.floor(i / dims);
      return d.subarray(r * dims, (r + 1) * dims).reduce((s, x, j) => s + x * u[j], 0) * u[i % dims];
    });
    const before = await values(tuned);
    const seen = await withEachReset(tuned, initial, units, async (unit) => {
      const now = await patchProjection(tuned);
      const want = unit.direction === "along" ? w.map((x, i) => x - along[i]) : w0.map((x, i) => x + along[i]);
      expect(Math.max(...now.map((x, i) => Math.abs(x - want[i]))), unit.name).toBeLessThan(1e-6);
      for (const [name, v] of await values(tuned)) if (!unit.tensors.includes(name)) expect(Array.from(v), `${unit.name}: ${name}`).toEqual(Array.from(before.get(name)!));
      return unit.direction;
    }, u);
    expect(seen).toEqual(["along", "rest"]);
    for (const [name, v] of await values(tuned)) expect(Array.from(v), `${name} after`).toEqual(Array.from(before.get(name)!));
    await expect(withEachReset(tuned, initial, units, async () => 0)).rejects.toThrow(`block reset: the patch projection's parts need its patches' first direction of ${dims} values, got none`);
    tuned.dispose();
    initial.dispose();
  });

  it("refuses a model at step 0 without a unit's tensor", async () => {
    const { tuned, trainable } = await tunedModels("lora-r2");
    const { initial } = await tunedModels("full");
    const units = resetUnits(trainable, blockMap(parseStrategy("lora-r2"), 2));
    await expect(withEachReset(tuned, initial, units, async () => 0)).rejects.toThrow(/^block reset: the model at step 0 has no parameter blocks\.0\.attn\.qkv\.lora_q\.A$/);
    tuned.dispose();
    initial.dispose();
  });
});
