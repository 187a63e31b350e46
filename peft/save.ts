// Saving a fine-tuned model as what it is: the trainable tensors (head, adapters, new blocks, or everything) in
// a safetensors file, plus a JSON manifest (strategy, hyper-parameters, the base checkpoint's SHA-256) stored in
// the file's metadata (MANIFEST_KEY) and, by saveFinetuned, beside it as `<file>.json`. The trainer's checkpoints
// carry the same manifest when the study gives it one (study/runner.ts), so a cell's best.safetensors loads here
// too. Loading re-applies the strategy to the base model and fills in the saved tensors. `exportMerged` folds LoRA
// into the weights and writes a plain timm-layout ViT.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Tensor } from "../engine/tensor.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { readSafetensors, readSafetensorsHeader, writeSafetensors, type F32Tensor } from "../vit/safetensors.js";
import { loadVit, saveVit } from "../vit/load.js";
import type { VisionTransformer } from "../vit/model.js";
import { type CheckpointOptions, HeadsError } from "../vit/checkpoint.js";
import { type HeadInit, applyStrategy, strategyName, type Strategy } from "./strategy.js";
import { mergeLora } from "./lora.js";

export interface Manifest {
  format: "peft-vit-webgpu/finetuned@1";
  strategy: string; // strategyName(), e.g. "lora-r8"
  strategyOptions: Strategy; // everything applyStrategy needs, including LoRA alpha/targets or block positions
  classes: number;
  heads?: number; // the base model's attention heads, which its checkpoint need not state (vit/checkpoint.ts)
  seed: number; // the head / adapter initialisation seed (only matters for tensors not saved)
  headInit?: HeadInit; // how the head was initialised; absent: "uniform" (manifests written before the choice)
  base: { file: string; sha256: string };
  hyperParameters: Record<string, unknown>; // learning rate, steps, ... as the trainer recorded them
  tensors: string[]; // names of the saved tensors
}

export const MANIFEST_KEY = "manifest"; // the metadata key holding the manifest's JSON
const FORMAT = "peft-vit-webgpu/finetuned@1";

// The manifest of a model fine-tuned from `base` with these trainable tensors.
export function manifestOf(trainable: [string, Tensor][], m: Omit<Manifest, "format" | "tensors" | "strategy">): Manifest {
  return { format: FORMAT, strategy: strategyName(m.strategyOptions), ...m, tensors: trainable.map(([n]) => n) };
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
  const full = manifestOf(trainable, manifest);
  const tensors = new Map<string, F32Tensor>();
  for (const [name, t] of trainable) tensors.set(name, { shape: [...t.shape], data: await t.data() });
  await writeSafetensors(path, tensors, { [MANIFEST_KEY]: JSON.stringify(full) });
  await writeJsonAtomic(`${path}.json`, full);
  return full;
}

// The manifest a fine-tuned file's metadata holds (MANIFEST_KEY), checked for its format.
export function manifestIn(path: string, metadata: Record<string, string>): Manifest {
  if (!metadata[MANIFEST_KEY]) {
    throw new Error(`finetuned: ${path}: expected a manifest in the file's metadata, found none (a fine-tuned model saved by this tool, or a study cell's checkpoint)`);
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(metadata[MANIFEST_KEY]) as Manifest;
  } catch (e) {
    throw new Error(`finetuned: ${path}: expected the manifest to be JSON, got a parse error: ${(e as Error).message}`);
  }
  if (manifest.format !== FORMAT) throw new Error(`finetuned: ${path}: expected a manifest of format ${FORMAT}, got "${manifest.format}"`);
  return manifest;
}

// A fine-tuned file's manifest, from its header alone.
export async function readManifest(path: string): Promise<Manifest> {
  return manifestIn(path, (await readSafetensorsHeader(path)).metadata);
}

// The base model with the saved strategy applied and its trained tensors loaded. The base file must be the one
// the tensors were trained from (checked by hash unless `allowOtherBase`). `tensors`: the file's, all of them (a
// kept step's optimiser state, eval/optimizer-memory.ts).
export async function loadFinetuned(
  basePath: string,
  path: string,
  // baseSha256: the base file's SHA-256 where the caller hashed it already (a study hashes its backbone once, then
  // loads every cell's checkpoint on it; hashing ViT-B/16's 350 MB again per load is a read of the file per cell).
  opts: CheckpointOptions & { allowOtherBase?: boolean; baseSha256?: string } = {},
): Promise<{ model: VisionTransformer; manifest: Manifest; tensors: Map<string, F32Tensor> }> {
  const { tensors, metadata } = await readSafetensors(path);
  const manifest = manifestIn(path, metadata);
  if (!opts.allowOtherBase) {
    const hash = opts.baseSha256 ?? (await sha256File(basePath));
    if (hash !== manifest.base.sha256) {
      throw new Error(`finetuned: ${path} was trained from ${manifest.base.file} (sha256 ${manifest.base.sha256.slice(0, 12)}…), not ${basePath} (${hash.slice(0, 12)}…)`);
    }
  }
  // The heads the model was trained with: another count is another model, though its tensors fit.
  if (opts.heads !== undefined && manifest.heads !== undefined && opts.heads !== manifest.heads) {
    throw new HeadsError(`finetuned: expected ${manifest.heads} heads, as the manifest of ${path} states, got ${opts.heads}`);
  }
  const model = await loadInitial(basePath, manifest, opts);
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
  return { model, manifest, tensors };
}

// The base model with a fine-tuned file's strategy applied as training applied it (the same seed and head
// initialisation), before any step: where fine-tuning started.
export async function loadInitial(basePath: string, manifest: Manifest, opts: CheckpointOptions = {}): Promise<VisionTransformer> {
  const { model } = await loadVit(basePath, { ...opts, heads: opts.heads ?? manifest.heads });
  applyStrategy(model, manifest.strategyOptions, manifest.classes, manifest.seed, manifest.headInit);
  return model;
}

// A plain ViT checkpoint (timm layout) of the fine-tuned model: LoRA merged into the weights, expanded blocks
// kept as ordinary blocks. `features` and loadVit read it like any other checkpoint.
export async function exportMerged(model: VisionTransformer, path: string, metadata: Record<string, string> = {}): Promise<void> {
  mergeLora(model);
  await saveVit(model, path, metadata);
}
