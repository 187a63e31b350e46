// Saving a fine-tuned model as what it is: the trainable tensors (head, adapters, new blocks, or everything) in
// a safetensors file, plus a JSON manifest (strategy, hyper-parameters, the base checkpoint's SHA-256) stored in
// the file's metadata and beside it as `<file>.json`. Loading re-applies the strategy to the base model and
// fills in the saved tensors. `exportMerged` folds LoRA into the weights and writes a plain timm-layout ViT.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import type { Tensor } from "../engine/tensor.js";
import { readSafetensors, writeSafetensors, type F32Tensor } from "../vit/safetensors.js";
import { loadVit, saveVit } from "../vit/load.js";
import type { VisionTransformer } from "../vit/model.js";
import type { CheckpointOptions } from "../vit/checkpoint.js";
import { applyStrategy, strategyName, type Strategy } from "./strategy.js";
import { mergeLora } from "./lora.js";

export interface Manifest {
  format: "peft-vit-webgpu/finetuned@1";
  strategy: string; // strategyName(), e.g. "lora-r8"
  strategyOptions: Strategy; // everything applyStrategy needs, including LoRA alpha/targets or block positions
  classes: number;
  seed: number; // the head / adapter initialisation seed (only matters for tensors not saved)
  base: { file: string; sha256: string };
  hyperParameters: Record<string, unknown>; // learning rate, steps, ... as the trainer recorded them
  tensors: string[]; // names of the saved tensors
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export async function saveFinetuned(
  path: string,
  trainable: [string, Tensor][],
  manifest: Omit<Manifest, "format" | "tensors" | "strategy">,
): Promise<Manifest> {
  const full: Manifest = {
    format: "peft-vit-webgpu/finetuned@1",
    strategy: strategyName(manifest.strategyOptions),
    ...manifest,
    tensors: trainable.map(([n]) => n),
  };
  const tensors = new Map<string, F32Tensor>();
  for (const [name, t] of trainable) tensors.set(name, { shape: [...t.shape], data: await t.data() });
  await writeSafetensors(path, tensors, { manifest: JSON.stringify(full) });
  const tmp = `${path}.json.tmp`;
  await writeFile(tmp, JSON.stringify(full, null, 2) + "\n");
  await rename(tmp, `${path}.json`);
  return full;
}

// The base model with the saved strategy applied and its trained tensors loaded. The base file must be the one
// the tensors were trained from (checked by hash unless `allowOtherBase`).
export async function loadFinetuned(
  basePath: string,
  path: string,
  opts: CheckpointOptions & { allowOtherBase?: boolean } = {},
): Promise<{ model: VisionTransformer; manifest: Manifest }> {
  const { tensors, metadata } = await readSafetensors(path);
  if (!metadata.manifest) throw new Error(`finetuned: ${path}: expected a manifest in the file's metadata, found none`);
  const manifest = JSON.parse(metadata.manifest) as Manifest;
  if (manifest.format !== "peft-vit-webgpu/finetuned@1") throw new Error(`finetuned: ${path}: unknown format "${manifest.format}"`);
  if (!opts.allowOtherBase) {
    const hash = await sha256File(basePath);
    if (hash !== manifest.base.sha256) {
      throw new Error(`finetuned: ${path} was trained from ${manifest.base.file} (sha256 ${manifest.base.sha256.slice(0, 12)}…), not ${basePath} (${hash.slice(0, 12)}…)`);
    }
  }
  const { model } = await loadVit(basePath, opts);
  applyStrategy(model, manifest.strategyOptions, manifest.classes, manifest.seed);
  const params = new Map(model.parameters());
  for (const name of manifest.tensors) {
    const saved = tensors.get(name);
    const param = params.get(name);
    if (!saved) throw new Error(`finetuned: ${path}: manifest lists ${name} but the file lacks it`);
    if (!param) throw new Error(`finetuned: ${path}: ${name} is not a parameter of the ${manifest.strategy} model`);
    if (saved.data.length !== param.size) {
      throw new Error(`finetuned: ${path}: expected ${name} (${param.shape.join(", ")}), got (${saved.shape.join(", ")})`);
    }
    param.write(saved.data);
  }
  return { model, manifest };
}

// A plain ViT checkpoint (timm layout) of the fine-tuned model: LoRA merged into the weights, expanded blocks
// kept as ordinary blocks. `features` and loadVit read it like any other checkpoint.
export async function exportMerged(model: VisionTransformer, path: string, metadata: Record<string, string> = {}): Promise<void> {
  mergeLora(model);
  await saveVit(model, path, metadata);
}
