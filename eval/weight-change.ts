// How far fine-tuning moved the weights: the relative change ||W' - W|| / ||W|| (Frobenius norms, float64) of each
// original block as a whole and of each of its layers (a layer's weight and bias together), of the embeddings
// (patch projection, CLS token, position embeddings) and of the final norm. The fine-tuned model must have its LoRA
// adapters merged (peft/lora.ts mergeLora): the change of a LoRA layer is then that of W + scale·B·A. Blocks that
// Block Expansion added have no original: they are listed as new, with no change. The parts (partTensors) are
// eval/part-moves.ts's too. Each part's tensors come back in one read-back (engine/tensor.ts readTensors).
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

export type TensorPair = [string, Tensor, Tensor];
export interface PartTensors {
  embedding: TensorPair[];
  blocks: TensorPair[][]; // (depth): each original block's, paired with the fine-tuned model's own copy
  norm: TensorPair[];
}

// The parts: the fine-tuned model's tensors of each, each with the original's as [its name, original, tuned], in
// the models' parameter order (a block's layer by layer, BLOCK_LAYERS', its weight before its bias).
export function partTensors(original: VisionTransformer, tuned: VisionTransformer, map: BlockMap): PartTensors {
  const tunedByName = new Map(tuned.parameters());
  const pair = (name: string, tunedName: string, t: Tensor): TensorPair => {
    const u = tunedByName.get(tunedName);
    if (!u || u.size !== t.size) throw new Error(`weight change: expected ${tunedName} in the fine-tuned model as the original's ${name} (${t.shape.join(", ")}), got ${u ? `(${u.shape.join(", ")})` : "none"}`);
    return [tunedName, t, u];
  };
  const embedding: TensorPair[] = [];
  const norm: TensorPair[] = [];
  const blocks: TensorPair[][] = Array.from({ length: map.depth }, () => []);
  for (const [name, t] of original.parameters()) {
    const block = /^blocks\.(\d+)\.(.*)$/.exec(name);
    const i = block ? Number(block[1]) : -1;
    if (block && i >= map.depth) throw new Error(`weight change: expected an original of ${map.depth} blocks, got ${name}`);
    if (block) blocks[i].push(pair(name, `blocks.${map.own[i]}.${block[2]}`, t));
    else if (name.startsWith("norm.")) norm.push(pair(name, name, t));
    else if (!name.startsWith("head.")) embedding.push(pair(name, name, t));
  }
  return { embedding, blocks, norm };
}

// The pairs' values, read back in one transfer.
async function readPairs(pairs: TensorPair[]): Promise<[Float32Array, Float32Array][]> {
  const values = await readTensors(pairs.flatMap(([, a, b]) => [a, b]));
  return pairs.map((_, i) => [values[2 * i], values[2 * i + 1]]);
}

export async function weightChange(original: VisionTransformer, tuned: VisionTransformer, map: BlockMap): Promise<WeightChange> {
  // An unmerged adapter would be left out of the change without a word.
  for (let i = 0; i < map.depth; i++) {
    const was = new Set(original.blocks[i].parameters("").map(([n]) => n));
    const extra = tuned.blocks[map.own[i]].parameters("").filter(([n]) => !was.has(n));
    if (extra.length > 0) throw new Error(`weight change: expected merged LoRA adapters, got ${extra.map(([n]) => `blocks.${map.own[i]}.${n}`).join(", ")}`);
  }
  const parts = partTensors(original, tuned, map);
  const blocks: number[] = [];
  const layers: Record<string, number>[] = [];
  for (const pairs of parts.blocks) {
    const perLayer = new Map(BLOCK_LAYERS.map((l) => [l as string, new Change()]));
    (await readPairs(pairs)).forEach(([a, b], j) => perLayer.get(pairs[j][0].replace(/^blocks\.\d+\.(.*)\.(weight|bias)$/, "$1"))!.add(a, b));
    const whole = new Change();
    for (const change of perLayer.values()) whole.merge(change);
    blocks.push(whole.relative);
    layers.push(Object.fromEntries([...perLayer].map(([l, c]) => [l, c.relative])));
  }
  const group = async (pairs: TensorPair[]) => {
    const change = new Change();
    for (const [a, b] of await readPairs(pairs)) change.add(a, b);
    return change.relative;
  };
  return { blocks, layers, embedding: await group(parts.embedding), norm: await group(parts.norm), added: map.added.map((a) => a.after) };
}
