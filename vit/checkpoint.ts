// ViT checkpoints in any of the layouts pretrained DINO weights ship in, mapped to one canonical layout: timm's /
// DINO's vision_transformer.py names, with q, k, v fused into one qkv matrix:
//   cls_token (1, 1, C)             pos_embed (1, 1+G*G, C)           patch_embed.proj.{weight (C, 3, P, P), bias (C)}
//   blocks.N.norm1.{weight, bias} (C)      blocks.N.attn.qkv.{weight (3C, C), bias (3C)}   (rows: q, then k, then v)
//   blocks.N.attn.proj.{weight (C, C), bias (C)}   blocks.N.norm2.*   blocks.N.mlp.fc1.{weight (M, C), bias (M)}
//   blocks.N.mlp.fc2.{weight (C, M), bias (C)}     norm.{weight, bias} (C)   optional head.{weight (K, C), bias (K)}
// Sources: timm / DINO state_dicts (.pth, .safetensors), possibly wrapped as module. (DDP), backbone. (DINO's
// MultiCropWrapper), model. or encoder.; and Hugging Face ViTModel (facebook/dino-vitb16), with or without vit.,
// whose separate query/key/value are concatenated. Weights are (out, in) in every layout: no transposes.
// Note: HF's ViT LayerNorm eps is 1e-12 where timm/DINO use 1e-6; `layout` tells the caller which it loaded.
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { readJsonFile } from "../util/json-file.js";
import { headsFit } from "./config.js";
import { readPth, type PthTensor } from "./pth.js";
import { readSafetensors, readSafetensorsHeader, type F32Tensor } from "./safetensors.js";

export type { F32Tensor };

export interface VitArchitecture {
  width: number; // C
  depth: number; // number of blocks
  heads: number; // H: given, else as the checkpoint states it (statedHeads), else width/64
  patchSize: number; // P
  imageSize: number; // G * P, where G*G = number of position embeddings - 1
  channels: number; // input channels, 3 for RGB
  mlpHidden: number; // M, 4C for standard ViTs
  hasHead: boolean;
  classes: number; // K, 0 without a head
}

export interface LoadedCheckpoint {
  tensors: Map<string, F32Tensor>; // canonical names, see above
  arch: VitArchitecture;
  headsFrom: string; // where arch.heads came from, for a log line: "given", a file that states it, or "width / 64"
  layout: "timm" | "hf";
  unused: string[]; // source keys that map to no canonical tensor (DINO heads, HF pooler, int counters), for a warning
}

export interface CheckpointOptions {
  key?: string; // .pth only: the sub-dictionary holding the state_dict, e.g. 'teacher'
  heads?: number; // needed where the checkpoint states none and width/64 is wrong; refused where it states another
}

// A head count that does not fit the checkpoint: one given that contradicts what the file states, or none that
// divides its width. A command names its own flag for it (`--heads`).
export class HeadsError extends Error {}

// What a checkpoint says of its own head count, which its shapes cannot tell (width = heads * head dim for any
// split): the safetensors metadata key HEADS_KEY (saveVit writes it), else the manifest of a backbone pre-trained
// here, backbone.json beside the file and naming it, whose model must be the one the shapes show.
export interface StatedHeads {
  heads: number;
  from: string; // where: "the file's metadata" or the manifest's path
  model?: Record<string, unknown>; // the manifest's model, checked against the tensors' shapes
}

export const HEADS_KEY = "heads";
// The format of the manifest train/backbone-manifest.ts writes beside a pre-trained backbone (vit/ may not import
// train/, so it is named here and imported there).
export const BACKBONE_MANIFEST_FORMAT = "peft-vit-webgpu/backbone@1";

// The manifest beside the checkpoint at `path` (backbone.json in its folder) where it is a backbone manifest naming
// this file; undefined where there is none, or it describes another file. Not JSON: refused, named (for `who`).
export async function manifestBeside(path: string, who: string): Promise<{ path: string; manifest: Record<string, unknown> } | undefined> {
  const manifestPath = join(dirname(path), "backbone.json");
  if (!existsSync(manifestPath)) return undefined;
  const manifest = (await readJsonFile(manifestPath, who)) as Record<string, unknown> | null;
  if (manifest?.format !== BACKBONE_MANIFEST_FORMAT || manifest.file !== basename(path)) return undefined;
  return { path: manifestPath, manifest };
}

async function statedHeads(path: string, metadata: Record<string, string> = {}): Promise<StatedHeads | undefined> {
  const said = metadata[HEADS_KEY];
  if (said !== undefined) {
    if (!/^[1-9][0-9]*$/.test(said)) throw new Error(`checkpoint: ${path}: expected __metadata__.${HEADS_KEY} to be a positive integer, got "${said}"`);
    return { heads: Number(said), from: "the file's metadata" };
  }
  const beside = await manifestBeside(path, "checkpoint");
  if (!beside) return undefined;
  const manifestPath = beside.path;
  const model = (beside.manifest as { hyperParameters?: { model?: Record<string, unknown> } }).hyperParameters?.model;
  const heads = model?.heads;
  if (typeof heads !== "number" || !Number.isSafeInteger(heads) || heads < 1) {
    throw new Error(`checkpoint: ${manifestPath}: expected hyperParameters.model.heads, a positive integer, for ${path}, got ${JSON.stringify(heads)}`);
  }
  return { heads, from: manifestPath, model };
}

// Wrapper prefixes stripped from the front of every key, repeatedly. `encoder.` is kept when HF's `encoder.layer.`
// or `encoder.layernorm` follows (that is the model itself, not a wrapper).
const WRAPPERS = ["module.", "backbone.", "model.", "vit.", "encoder."];

export function stripPrefixes(key: string): string {
  for (;;) {
    const w = WRAPPERS.find((p) => key.startsWith(p));
    if (!w || (w === "encoder." && /^encoder\.layer(\.|norm)/.test(key))) return key;
    key = key.slice(w.length);
  }
}

const HF_BLOCK: Record<string, string> = {
  "layernorm_before": "norm1",
  "attention.output.dense": "attn.proj",
  "layernorm_after": "norm2",
  "intermediate.dense": "mlp.fc1",
  "output.dense": "mlp.fc2",
};
const HF_TOP: Record<string, string> = {
  "embeddings.cls_token": "cls_token",
  "embeddings.position_embeddings": "pos_embed",
  "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
  "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
  "layernorm.weight": "norm.weight",
  "layernorm.bias": "norm.bias",
  "classifier.weight": "head.weight", // ViTForImageClassification
  "classifier.bias": "head.bias",
};

// Source tensors (already prefix-stripped) in canonical names. Float tensors only: int tensors are left unused.
export function canonicalize(raw: Map<string, F32Tensor | PthTensor>): { tensors: Map<string, F32Tensor>; layout: "timm" | "hf"; unused: string[] } {
  const src = new Map<string, F32Tensor>();
  const unused: string[] = [];
  for (const [k, t] of raw) {
    const name = stripPrefixes(k);
    if (!(t.data instanceof Float32Array)) unused.push(name);
    else if (src.has(name)) throw new Error(`checkpoint: expected unique keys after stripping wrapper prefixes, got two for '${name}'`);
    else src.set(name, { shape: t.shape, data: t.data });
  }
  const hf = [...src.keys()].some((k) => k.startsWith("embeddings.") || k.startsWith("encoder.layer."));
  if (!hf) {
    for (const k of src.keys()) if (!isCanonical(k)) unused.push(k);
    for (const k of unused) src.delete(k);
    return { tensors: src, layout: "timm", unused };
  }

  const tensors = new Map<string, F32Tensor>();
  const qkv = new Map<string, Partial<Record<"query" | "key" | "value", F32Tensor>>>(); // "blocks.N.attn.qkv.weight" -> parts
  for (const [k, t] of src) {
    const m = /^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$/.exec(k);
    const att = m && /^attention\.attention\.(query|key|value)$/.exec(m[2]);
    if (m && att) {
      const dst = `blocks.${m[1]}.attn.qkv.${m[3]}`;
      qkv.set(dst, { ...qkv.get(dst), [att[1]]: t });
    } else if (m && HF_BLOCK[m[2]]) tensors.set(`blocks.${m[1]}.${HF_BLOCK[m[2]]}.${m[3]}`, t);
    else if (HF_TOP[k]) tensors.set(HF_TOP[k], t);
    else unused.push(k);
  }
  for (const [dst, parts] of qkv) {
    const { query, key, value } = parts;
    if (!query || !key || !value) {
      const missing = (["query", "key", "value"] as const).filter((p) => !parts[p]);
      throw new Error(`checkpoint: expected query, key and value for ${dst}, got no ${missing.join(", ")}`);
    }
    if (key.shape.join() !== query.shape.join() || value.shape.join() !== query.shape.join()) {
      throw new Error(`checkpoint: expected equal query/key/value shapes for ${dst}, got (${query.shape}), (${key.shape}), (${value.shape})`);
    }
    const data = new Float32Array(query.data.length * 3);
    data.set(query.data, 0);
    data.set(key.data, query.data.length);
    data.set(value.data, 2 * query.data.length);
    tensors.set(dst, { shape: [3 * query.shape[0], ...query.shape.slice(1)], data });
  }
  return { tensors, layout: "hf", unused };
}

const CANONICAL_TOP = /^(cls_token|pos_embed|(patch_embed\.proj|norm|head)\.(weight|bias))$/;
const CANONICAL_BLOCK = /^blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)$/;
const isCanonical = (k: string) => CANONICAL_TOP.test(k) || CANONICAL_BLOCK.test(k);

// Every canonical tensor this architecture has, with its shape.
export function expectedShapes(a: VitArchitecture): Map<string, number[]> {
  const C = a.width;
  const M = a.mlpHidden;
  const G = a.imageSize / a.patchSize;
  const s = new Map<string, number[]>([
    ["cls_token", [1, 1, C]],
    ["pos_embed", [1, 1 + G * G, C]],
    ["patch_embed.proj.weight", [C, a.channels, a.patchSize, a.patchSize]],
    ["patch_embed.proj.bias", [C]],
  ]);
  for (let n = 0; n < a.depth; n++) {
    const b = `blocks.${n}`;
    s.set(`${b}.norm1.weight`, [C]).set(`${b}.norm1.bias`, [C]);
    s.set(`${b}.attn.qkv.weight`, [3 * C, C]).set(`${b}.attn.qkv.bias`, [3 * C]);
    s.set(`${b}.attn.proj.weight`, [C, C]).set(`${b}.attn.proj.bias`, [C]);
    s.set(`${b}.norm2.weight`, [C]).set(`${b}.norm2.bias`, [C]);
    s.set(`${b}.mlp.fc1.weight`, [M, C]).set(`${b}.mlp.fc1.bias`, [M]);
    s.set(`${b}.mlp.fc2.weight`, [C, M]).set(`${b}.mlp.fc2.bias`, [C]);
  }
  s.set("norm.weight", [C]).set("norm.bias", [C]);
  if (a.hasHead) s.set("head.weight", [a.classes, C]).set("head.bias", [a.classes]);
  return s;
}

const fmt = (shape: readonly number[] | undefined) => (shape ? `(${shape.join(", ")})` : "nothing");

export interface HeadsOptions {
  heads?: number; // given by the caller
  stated?: StatedHeads; // what the checkpoint says
}

// The head count, in order: given (refused if the checkpoint states another), stated, width/64. The attention
// kernels need a head dim that is a multiple of 4 (vit/config.ts headsFit).
function chooseHeads(width: number, opts: HeadsOptions): { heads: number; from: string } {
  const { heads: given, stated } = opts;
  if (given !== undefined && stated && given !== stated.heads) {
    throw new HeadsError(`checkpoint: expected ${stated.heads} heads, as ${stated.from} states, got ${given}`);
  }
  const choice = given !== undefined ? { heads: given, from: "given" } : stated ?? { heads: width / 64, from: "width / 64: the checkpoint states no head count" };
  const { heads } = choice;
  if (!headsFit(width, heads)) {
    throw new HeadsError(`checkpoint: expected a head count dividing width ${width} into heads of a multiple of 4 channels, got ${heads} (${choice.from})`);
  }
  return { heads, from: choice.from };
}

// Reads the architecture off canonical tensor shapes, then checks every expected tensor exists with its shape
// and that there are no stray canonical ones (a block past the depth). Needs only shapes, not data.
export function inferArchitecture(tensors: Map<string, { shape: readonly number[] }>, opts: HeadsOptions = {}): VitArchitecture {
  return infer(tensors, opts).arch;
}

function infer(tensors: Map<string, { shape: readonly number[] }>, opts: HeadsOptions): { arch: VitArchitecture; headsFrom: string } {
  const shape = (k: string) => tensors.get(k)?.shape;
  const req = (k: string, rank: number) => {
    const s = shape(k);
    if (!s || s.length !== rank) throw new Error(`checkpoint: expected ${k} of rank ${rank}, got ${fmt(s)}`);
    return s;
  };
  const proj = req("patch_embed.proj.weight", 4); // (C, 3, P, P)
  const [width, channels, patchSize] = proj;
  if (proj[3] !== patchSize) throw new Error(`checkpoint: expected square patches in patch_embed.proj.weight, got ${fmt(proj)}`);
  const pos = req("pos_embed", 3); // (1, 1+G*G, C)
  const grid = Math.round(Math.sqrt(pos[1] - 1));
  if (grid * grid !== pos[1] - 1 || grid === 0) throw new Error(`checkpoint: expected pos_embed (1, 1+G*G, ${width}) for a square grid, got ${fmt(pos)}`);
  let depth = 0;
  for (const k of tensors.keys()) {
    const m = /^blocks\.(\d+)\./.exec(k);
    if (m) depth = Math.max(depth, Number(m[1]) + 1);
  }
  if (depth === 0) throw new Error("checkpoint: expected blocks.0.* tensors, got none");
  const mlpHidden = req("blocks.0.mlp.fc1.weight", 2)[0];
  const { heads, from: headsFrom } = chooseHeads(width, opts);
  const head = shape("head.weight");
  const arch: VitArchitecture = {
    width, depth, heads, patchSize, imageSize: grid * patchSize, channels, mlpHidden, hasHead: head !== undefined, classes: head ? head[0] : 0,
  };
  const want = expectedShapes(arch);
  for (const [k, s] of want) {
    const got = shape(k);
    if (!got || got.join() !== s.join()) throw new Error(`checkpoint: expected ${k} ${fmt(s)}, got ${fmt(got)}`);
  }
  for (const k of tensors.keys()) {
    if (want.has(k)) continue;
    const hint = k.startsWith("head.") ? " (head.bias without head.weight?)" : "";
    throw new Error(`checkpoint: expected no ${k} in a ${depth}-block ViT${hint}, got ${fmt(shape(k))}`);
  }
  // A manifest that names the file but describes another model (a stale one) is not trusted for its heads.
  for (const [k, v] of Object.entries(opts.stated?.model ?? {})) {
    if (k !== "heads" && k in arch && arch[k as keyof VitArchitecture] !== v) {
      throw new Error(`checkpoint: expected ${opts.stated!.from} to describe this model, got ${k} ${JSON.stringify(v)} where the tensors have ${arch[k as keyof VitArchitecture]}`);
    }
  }
  return { arch, headsFrom };
}

// A missing path or a folder, said in the tool's words before any reader opens it.
async function checkFile(path: string): Promise<void> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw e;
  });
  if (!info) throw new Error(`checkpoint: expected a checkpoint file ${path}, it does not exist`);
  if (!info.isFile()) throw new Error(`checkpoint: expected a checkpoint file ${path}, got a folder`);
}

// The file's tensors as the reader of its extension gives them, and a safetensors file's metadata; with shapesOnly,
// the tensors' shapes with empty data (a safetensors header, a .pth's pickle), which canonicalize and
// inferArchitecture need no more than.
async function readRaw(path: string, opts: CheckpointOptions, shapesOnly: boolean): Promise<{ raw: Map<string, F32Tensor | PthTensor>; metadata?: Record<string, string> }> {
  const safetensors = path.endsWith(".safetensors");
  if (!safetensors && !/\.(pth|pt|bin)$/.test(path)) throw new Error(`checkpoint: expected a .safetensors, .pth, .pt or .bin file, got ${path}`);
  if (safetensors && opts.key !== undefined) throw new Error(`checkpoint: expected no key option for ${path}, got '${opts.key}' (safetensors files are flat)`);
  await checkFile(path);
  if (!safetensors) return { raw: await readPth(path, { key: opts.key, shapesOnly }) };
  if (!shapesOnly) {
    const { tensors, metadata } = await readSafetensors(path);
    return { raw: tensors, metadata };
  }
  const { entries, metadata } = await readSafetensorsHeader(path);
  const floats = new Set(["F32", "F16", "BF16"]); // what readSafetensors reads; others would be refused on loading
  const raw = new Map(entries.map((e) => [e.name, floats.has(e.dtype) ? { shape: e.shape, data: new Float32Array(0) } : { dtype: "i32" as const, shape: e.shape, data: new Int32Array(0) }]));
  return { raw, metadata };
}

// canonicalize and inferArchitecture know tensors, not files: the file is added to what they find.
function inFile<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const Kind = e instanceof HeadsError ? HeadsError : Error;
    throw new Kind(`${(e as Error).message}, in ${path}`, { cause: e });
  }
}

// Loads a ViT checkpoint by extension, maps it to canonical names and infers and checks its architecture.
export async function loadCheckpoint(path: string, opts: CheckpointOptions = {}): Promise<LoadedCheckpoint> {
  const { raw, metadata } = await readRaw(path, opts, false);
  const stated = await statedHeads(path, metadata);
  return inFile(path, () => {
    const { tensors, layout, unused } = canonicalize(raw);
    return { tensors, ...infer(tensors, { heads: opts.heads, stated }), layout, unused };
  });
}

// The architecture loadCheckpoint would find, from the tensors' shapes alone: no weights are read, so a study
// checks its strategies against a checkpoint before any work.
export async function readArchitecture(path: string, opts: CheckpointOptions = {}): Promise<VitArchitecture> {
  const { raw, metadata } = await readRaw(path, opts, true);
  const stated = await statedHeads(path, metadata);
  return inFile(path, () => infer(canonicalize(raw).tensors, { heads: opts.heads, stated }).arch);
}
