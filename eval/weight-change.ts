// How far fine-tuning moved the weights: the relative change ||W' - W|| / ||W|| (Frobenius norms, float64) of each
// original block as a whole and of each of its layers (a layer's weight and bias together), of the embeddings
// (patch projection, CLS token, position embeddings) and of the final norm. The fine-tuned model must have its LoRA
// adapters merged (peft/lora.ts mergeLora): the change of a LoRA layer is then that of W + scale·B·A. Blocks that
// Block Expansion added have no original: they are listed as new, with no change.
import type { Tensor } from "../engine/tensor.js";
import type { Block, VisionTransformer } from "../vit/model.js";
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

  async add(original: Tensor, tuned: Tensor, name: string): Promise<void> {
    if (original.size !== tuned.size) throw new Error(`weight change: expected ${name} of ${original.size} values as the original's, got ${tuned.size}`);
    const [a, b] = [await original.data(), await tuned.data()];
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

function tensorsOf(b: Block): Map<string, Tensor> {
  return new Map(b.parameters(""));
}

export async function weightChange(original: VisionTransformer, tuned: VisionTransformer, map: BlockMap): Promise<WeightChange> {
  const blocks: number[] = [];
  const layers: Record<string, number>[] = [];
  for (let i = 0; i < map.depth; i++) {
    const was = tensorsOf(original.blocks[i]);
    const is = tensorsOf(tuned.blocks[map.own[i]]);
    const whole = new Change();
    const perLayer: Record<string, number> = {};
    for (const layer of BLOCK_LAYERS) {
      const change = new Change();
      for (const part of ["weight", "bias"]) {
        const name = `${layer}.${part}`;
        const a = was.get(name);
        if (!a) continue;
        const b = is.get(name);
        if (!b) throw new Error(`weight change: expected blocks.${map.own[i]}.${name} in the fine-tuned model, found none`);
        await change.add(a, b, `blocks.${map.own[i]}.${name}`);
      }
      perLayer[layer] = change.relative;
      whole.merge(change);
    }
    // An unmerged adapter would be left out of the change without a word.
    const extra = [...is.keys()].filter((n) => !was.has(n));
    if (extra.length > 0) throw new Error(`weight change: expected merged LoRA adapters, got ${extra.map((n) => `blocks.${map.own[i]}.${n}`).join(", ")}`);
    blocks.push(whole.relative);
    layers.push(perLayer);
  }
  const group = async (pairs: [Tensor, Tensor, string][]) => {
    const change = new Change();
    for (const [a, b, name] of pairs) await change.add(a, b, name);
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
