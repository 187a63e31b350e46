// Saving a fine-tuned model: the trainable tensors and manifest round-trip to the same model, and the merged
// export is a plain ViT checkpoint that `features` loads with the same outputs.
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { loadVit } from "../../vit/load.js";
import { HeadsError } from "../../vit/checkpoint.js";
import { type HeadInit, applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { MANIFEST_KEY, exportMerged, loadFinetuned, saveFinetuned, sha256File } from "../../peft/save.js";
import { readSafetensors, writeSafetensors } from "../../vit/safetensors.js";
import { features as featuresCommand } from "../../cli/features.js";
import { readNpy, writeNpy } from "../../data/npy.js";
import type { VisionTransformer } from "../../vit/model.js";
import { expectClose, randn, useEngine } from "../helpers.js";
import { noGrad } from "../../autograd/tape.js";

useEngine();
const BASE = "test/fixtures/vit-tiny.safetensors";
const x = randn(2 * 3 * 16 * 16, 5);
const feats = (m: VisionTransformer) => noGrad(() => m.features(Tensor.fromArray(x, [2, 3, 16, 16]))).data();

describe("saving fine-tuned models", () => {
  for (const name of ["lora-r2", "block-p1", "top-1", "linear"]) {
    it(`${name}: save, load, and export merged`, async () => {
      const dir = await mkdtemp(join(tmpdir(), "peft-save-"));
      const { model } = await loadVit(BASE, { heads: 2 });
      const strategy = parseStrategy(name);
      const trainable = applyStrategy(model, strategy, 3, 4);
      for (const [, t] of trainable) t.write(randn(t.size, t.size).map((v) => v * 0.1)); // "trained" values
      const want = await feats(model);
      const wantLogits = await noGrad(() => model.forward(Tensor.fromArray(x, [2, 3, 16, 16]))).data();
      const path = join(dir, "ft.safetensors");
      await saveFinetuned(path, trainable, {
        strategyOptions: strategy,
        classes: 3,
        seed: 4,
        base: { file: BASE, sha256: await sha256File(BASE) },
        hyperParameters: { lr: 0.01 },
      });
      expect(JSON.parse(await readFile(`${path}.json`, "utf8")).strategy).toBe(name);
      const loaded = await loadFinetuned(BASE, path, { heads: 2 });
      expectClose("reloaded features", await feats(loaded.model), want, { atol: 0, rtol: 0 });
      const merged = join(dir, "merged.safetensors");
      await exportMerged(loaded.model, merged);
      const plain = await loadVit(merged); // the export states its head count, which its 32-wide shapes cannot
      expect(plain.headsFrom).toBe("the file's metadata");
      expect(plain.model.config.heads).toBe(2);
      expect(plain.model.blocks.length).toBe(name === "block-p1" ? 3 : 2);
      expectClose("merged features", await feats(plain.model), want, { atol: 1e-5, rtol: 1e-4 });
      const logits = await noGrad(() => plain.model.forward(Tensor.fromArray(x, [2, 3, 16, 16]))).data();
      expectClose("merged logits", logits, wantLogits, { atol: 1e-5, rtol: 1e-4 });
      // The features command reads the merged export.
      await writeNpy(join(dir, "x.npy"), x, [2, 3, 16, 16]);
      await featuresCommand.run(["--weights", merged, "--input", join(dir, "x.npy"), "--out", join(dir, "f.npy"), "--heads", "2"]);
      const f = await readNpy(join(dir, "f.npy"));
      expect(f.shape).toEqual([2, 32]);
      expectClose("features command", f.data as Float32Array, want, { atol: 1e-5, rtol: 1e-4 });
    });
  }

  it("records the head's initialisation, and loading applies the strategy with it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-save-"));
    const strategy = parseStrategy("lora-r2");
    const base = { file: BASE, sha256: await sha256File(BASE) };
    const save = async (path: string, headInit: HeadInit) => {
      const { model } = await loadVit(BASE, { heads: 2 });
      await saveFinetuned(path, applyStrategy(model, strategy, 3, 0, headInit), { strategyOptions: strategy, classes: 3, seed: 0, headInit, base, hyperParameters: {} });
    };
    const path = join(dir, "ft.safetensors");
    await save(path, "trunc-normal");
    expect(JSON.parse(await readFile(`${path}.json`, "utf8")).headInit).toBe("trunc-normal");
    expect((await loadFinetuned(BASE, path, { heads: 2 })).manifest.headInit).toBe("trunc-normal");
    const odd = join(dir, "odd.safetensors");
    await save(odd, "trunc-normal");
    const { tensors, metadata } = await readSafetensors(odd);
    const manifest = JSON.parse(metadata[MANIFEST_KEY]);
    await writeSafetensors(odd, tensors, { ...metadata, [MANIFEST_KEY]: JSON.stringify({ ...manifest, headInit: "xavier" }) });
    await expect(loadFinetuned(BASE, odd, { heads: 2 })).rejects.toThrow('expected a head initialisation uniform or trunc-normal, got "xavier"');
  });

  it("block-p2: the export holds depth + 2 blocks, each new one right after the block it copies", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-save-"));
    const { model } = await loadVit(BASE, { heads: 2 });
    const strategy = parseStrategy("block-p2");
    const trainable = applyStrategy(model, strategy, 3);
    let fill = 1;
    for (const [name, t] of trainable) if (name.startsWith("blocks.")) t.write(new Float32Array(t.size).fill(fill++)); // new blocks told apart
    const path = join(dir, "ft.safetensors");
    await saveFinetuned(path, trainable, { strategyOptions: strategy, classes: 3, seed: 0, base: { file: BASE, sha256: await sha256File(BASE) }, hyperParameters: {} });
    const merged = join(dir, "merged.safetensors");
    await exportMerged((await loadFinetuned(BASE, path, { heads: 2 })).model, merged);
    const base = (await readSafetensors(BASE)).tensors;
    const out = (await readSafetensors(merged)).tensors;
    const qkv = (t: Map<string, { data: Float32Array }>, i: number) => Array.from(t.get(`blocks.${i}.attn.qkv.weight`)!.data);
    expect(out.has("blocks.4.attn.qkv.weight")).toBe(false);
    expect(qkv(out, 0)).toEqual(qkv(base, 0));
    expect(qkv(out, 2)).toEqual(qkv(base, 1));
    const saved = (await readSafetensors(path)).tensors;
    expect(qkv(out, 1)).toEqual(qkv(saved, 1)); // the trainer named the new blocks by their place in the model
    expect(qkv(out, 3)).toEqual(qkv(saved, 3));
    expect(qkv(out, 1)[0]).not.toBe(qkv(out, 3)[0]);
  });

  it("refuses a head count other than the manifest's, where the base checkpoint states none", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-save-"));
    const base = "test/fixtures/vit-tiny.pth"; // the same tiny ViT; a .pth states no head count
    const { model } = await loadVit(base, { heads: 2 });
    const strategy = parseStrategy("full");
    const path = join(dir, "ft.safetensors");
    const trainable = applyStrategy(model, strategy, 3);
    await saveFinetuned(path, trainable, { strategyOptions: strategy, classes: 3, heads: 2, seed: 0, base: { file: base, sha256: await sha256File(base) }, hyperParameters: {} });
    // 4 heads fit the width-32 tensors as well as 2: only the manifest tells them apart.
    await expect(loadFinetuned(base, path, { heads: 4 })).rejects.toThrow(new HeadsError(`finetuned: expected 2 heads, as the manifest of ${path} states, got 4`));
    expect((await loadFinetuned(base, path, { heads: 2 })).model.config.heads).toBe(2);
    expect((await loadFinetuned(base, path)).model.config.heads).toBe(2);
  });

  it("refuses another base checkpoint", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-save-"));
    const { model } = await loadVit(BASE, { heads: 2 });
    const strategy = parseStrategy("linear");
    const path = join(dir, "ft.safetensors");
    await saveFinetuned(path, applyStrategy(model, strategy, 3), {
      strategyOptions: strategy,
      classes: 3,
      seed: 0,
      base: { file: "other.safetensors", sha256: "0".repeat(64) },
      hyperParameters: {},
    });
    await expect(loadFinetuned(BASE, path, { heads: 2 })).rejects.toThrow("was trained from other.safetensors");
    // The caller's hash of the base stands in for hashing it: the recorded one loads, another is refused.
    expect((await loadFinetuned(BASE, path, { heads: 2, baseSha256: "0".repeat(64) })).manifest.base.file).toBe("other.safetensors");
    await expect(loadFinetuned(BASE, path, { heads: 2, baseSha256: "1".repeat(64) })).rejects.toThrow(`not ${BASE} (111111111111…)`);
  });
});
