// How far fine-tuning moved the weights: the relative change ||W' - W|| / ||W|| (Frobenius norms, float64) of each
// original block as a whole and of each of its layers (a layer's weight and bias together), of the embeddings
// (patch projection, CLS token, position embeddings) and of the final norm. The fine-tuned model must have its LoRA
// adapters merged (peft/lora.ts mergeLora): the change of a LoRA layer is then that of W + scale·B·A. Blocks that
// Block Expansion added have no original: they are listed as new, with no change. Each block's tensors come back
// in one read-back (engine/tensor.ts readTensors).
import { type Tensor, readTensors } from "../engine/tensor.js";
import type { VisionTransformer } from "../vit/model.js";
import type { BlockMap } from "./block-map.js";

export const BLOCK_LAYERS = ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"] as const;

export interface WeightChange {
  blocks: number[]; // (depth): each original block's relative change
  layers: Record<string, number>[]; // (depth): per layer name (BLOCK_LAYERS)
  embedding: number; // patch_embed, cls_token, pos_embed together
  norm: number; // the final LayerNorm
  added: number[]; // the original block each new block follows
}

// Sums of squares of the difference and of the original, to be combined into one relative change.
class Change {
  diff = 0;
  base = 0;

  add(a: Float32Array, b: Float32Array): void {
    for (let i = 0; i < a.length; i++) {
      this.diff += (b[i] - a[i]) ** 2;
      this.base += a[i] ** 2;
    }
  }

  merge(other: Change): void {
    this.diff += other.diff;
    this.base += other.base;
  }

  get relative(): number {
    return Math.sqrt(this.diff) / Math.sqrt(this.base);
  }
}

// Pairs of (original, fine-tuned) tensors named for errors, read back in one transfer each side.
async function readPairs(pairs: [Tensor, Tensor, string][]): Promise<[Float32Array, Float32Array][]> {
  for (const [a, b, name] of pairs) {
    if (a.size !== b.size) throw new Error(`weight change: expected ${name} of ${a.size} values as the original's, got ${b.size}`);
  }
  const values = await readTensors(pairs.flatMap(([a, b]) => [a, b]));
  return pairs.map((_, i) => [values[2 * i], values[2 * i + 1]]);
}

export async function weightChange(original: VisionTransformer, tuned: VisionTransformer, map: BlockMap): Promise<WeightChange> {
  const blocks: number[] = [];
  const layers: Record<string, number>[] = [];
  for (let i = 0; i < map.depth; i++) {
    const was = new Map(original.blocks[i].parameters(""));
    const is = new Map(tuned.blocks[map.own[i]].parameters(""));
    // An unmerged adapter would be left out of the change without a word.
    const extra = [...is.keys()].filter((n) => !was.has(n));
    if (extra.length > 0) throw new Error(`weight change: expected merged LoRA adapters, got ${extra.map((n) => `blocks.${map.own[i]}.${n}`).join(", ")}`);
    const pairs: [Tensor, Tensor, string][] = [];
    const layerOf: string[] = [];
    for (const layer of BLOCK_LAYERS) {
      for (const part of ["weight", "bias"]) {
        const name = `${layer}.${part}`;
        const a = was.get(name);
        if (!a) continue;
        const b = is.get(name);
        if (!b) throw new Error(`weight change: expected blocks.${map.own[i]}.${name} in the fine-tuned model, found none`);
        pairs.push([a, b, `blocks.${map.own[i]}.${name}`]);
        layerOf.push(layer);
      }
    }
    const values = await readPairs(pairs);
    const perLayer = new Map(BLOCK_LAYERS.map((l) => [l as string, new Change()]));
    values.forEach(([a, b], j) => perLayer.get(layerOf[j])!.add(a, b));
    const whole = new Change();
    for (const change of perLayer.values()) whole.merge(change);
    blocks.push(whole.relative);
    layers.push(Object.fromEntries([...perLayer].map(([l, c]) => [l, c.relative])));
  }
  const group = async (pairs: [Tensor, Tensor, string][]) => {
    const change = new Change();
    for (const [a, b] of await readPairs(pairs)) change.add(a, b);
    return change.relative;
  };
  const embedding = await group([
    [original.patchEmbed.weight, tuned.patchEmbed.weight, "patch_embed.proj.weight"],
    ...(original.patchEmbed.bias && tuned.patchEmbed.bias ? [[original.patchEmbed.bias, tuned.patchEmbed.bias, "patch_embed.proj.bias"] as [Tensor, Tensor, string]] : []),
    [original.clsToken, tuned.clsToken, "cls_token"],
    [original.posEmbed, tuned.posEmbed, "pos_embed"],
  ]);
  const norm = await group([
    [original.norm.weight, tuned.norm.weight, "norm.weight"],
    [original.norm.bias, tuned.norm.bias, "norm.bias"],
  ]);
  return { blocks, layers, embedding, norm, added: map.added.map((a) => a.after) };
}
