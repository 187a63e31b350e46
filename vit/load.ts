// Loading a ViT from a checkpoint file (timm / official DINO .pth, safetensors, Hugging Face ViTModel) and
// saving one in timm layout. The architecture is inferred from the weights; the head count, which they cannot show,
// is given, or stated by the checkpoint (vit/checkpoint.ts), or width/64. A saved ViT states its own.
import { HEADS_KEY, loadCheckpoint, type CheckpointOptions, type F32Tensor, type VitArchitecture } from "./checkpoint.js";
import { writeSafetensors } from "./safetensors.js";
import { validateConfig, type VitConfig } from "./config.js";
import { buildVit, type VisionTransformer } from "./model.js";

export interface LoadedVit {
  model: VisionTransformer;
  layout: "timm" | "hf";
  headsFrom: string; // where the head count came from, for a log line
  unused: string[]; // keys of the file that map to no parameter, for a warning
  nonfinite: string[]; // with allowNonfinite: the tensors holding NaN or infinities, for a warning
}

export interface LoadOptions extends CheckpointOptions {
  allowNonfinite?: boolean; // load tensors with NaN or infinities (listed in `nonfinite`) instead of refusing them
}

// The first non-finite value of a tensor, described, or undefined when there is none.
function firstNonfinite(name: string, data: Float32Array): string | undefined {
  const i = data.findIndex((v) => !Number.isFinite(v));
  return i < 0 ? undefined : `${name}[${i}] = ${data[i]}`;
}

// The ViT a checkpoint's architecture describes, with a head of `classes` (0: none); 3 input channels only.
export function configOf(path: string, a: VitArchitecture, classes: number, eps = 1e-6): VitConfig {
  if (a.channels !== 3) throw new Error(`vit: ${path}: expected 3 input channels, got ${a.channels}`);
  return validateConfig({ imageSize: a.imageSize, patchSize: a.patchSize, width: a.width, depth: a.depth, heads: a.heads, mlpHidden: a.mlpHidden, classes, eps });
}

export async function loadVit(path: string, opts: LoadOptions = {}): Promise<LoadedVit> {
  const ckpt = await loadCheckpoint(path, opts);
  const nonfinite: string[] = [];
  for (const [name, t] of ckpt.tensors) {
    const bad = firstNonfinite(name, t.data);
    if (bad && !opts.allowNonfinite) throw new Error(`vit: ${path}: expected finite weights, got ${bad}`);
    if (bad) nonfinite.push(bad);
  }
  const a = ckpt.arch;
  // Hugging Face's ViT uses LayerNorm eps 1e-12; timm and DINO 1e-6.
  const config = configOf(path, a, a.hasHead ? a.classes : 0, ckpt.layout === "hf" ? 1e-12 : 1e-6);
  const model = buildVit(config, (name, shape) => {
    const t = ckpt.tensors.get(name);
    if (!t) throw new Error(`vit: ${path}: missing tensor ${name} (${shape.join(", ")})`);
    if (t.data.length !== shape.reduce((x, y) => x * y, 1)) {
      throw new Error(`vit: ${path}: expected ${name} (${shape.join(", ")}), got (${t.shape.join(", ")})`);
    }
    return t.data;
  });
  return { model, layout: ckpt.layout, headsFrom: ckpt.headsFrom, unused: ckpt.unused, nonfinite };
}

// Every parameter read back to the CPU, keyed by its timm name (LoRA and other adapter tensors included).
export async function stateDict(model: VisionTransformer): Promise<Map<string, F32Tensor>> {
  const out = new Map<string, F32Tensor>();
  for (const [name, t] of model.parameters()) {
    const shape = name === "patch_embed.proj.weight" ? [model.width, 3, model.config.patchSize, model.config.patchSize] : [...t.shape];
    out.set(name, { shape, data: await t.data() });
  }
  return out;
}

// Writes the model as a timm-layout safetensors file that loadVit (and timm) read back, with its head count in the
// metadata (HEADS_KEY), which the weights' shapes cannot show.
export async function saveVit(model: VisionTransformer, path: string, metadata: Record<string, string> = {}): Promise<void> {
  await writeSafetensors(path, await stateDict(model), { ...metadata, [HEADS_KEY]: String(model.config.heads) });
}
