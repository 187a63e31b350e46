// Layer-wise learning-rate decay, as BEiT and MAE fine-tune ViTs (BEiT's `optim_factory.py`, MAE's `param_groups_lrd`):
// a parameter of layer l trains at the base rate times decay^(L - l), L = depth + 1, where the embeddings (patch
// projection, class token, position embedding) are layer 0, block i (0-based, in the model as it trains: Block
// Expansion's new blocks hold their places in the stack) layer i + 1, and the rest (the final norm, the head) layer
// L. So the head trains at the base rate, block i at decay^(depth - i) of it and the patch projection at
// decay^(depth + 1); LoRA's adapters at their block's. A strategy takes it as a suffix (`full-lrd0.75`,
// peft/strategy.ts).
import type { Tensor } from "../engine/tensor.js";

const EMBEDDINGS = /^(cls_token$|pos_embed$|patch_embed\.)/;
const BLOCK = /^blocks\.(\d+)\./;

// The layer of a parameter named as VisionTransformer.parameters() names it, in a model of `depth` blocks.
export function layerOf(name: string, depth: number): number {
  if (EMBEDDINGS.test(name)) return 0;
  const m = BLOCK.exec(name);
  if (!m) return depth + 1;
  const block = Number(m[1]);
  if (block >= depth) throw new Error(`layer decay: expected a block below depth ${depth}, got parameter ${name}`);
  return block + 1;
}

// Each named parameter's factor of the base rate, in their order; decay in (0, 1].
export function layerRateScales(names: string[], depth: number, decay: number): number[] {
  if (!(decay > 0 && decay <= 1)) throw new Error(`layer decay: expected a decay in (0, 1], got ${decay}`);
  return names.map((name) => decay ** (depth + 1 - layerOf(name, depth)));
}

// The optimisers' `lrScale` (autograd/optim.ts) for named trainable tensors of a model of `depth` blocks.
export function layerRateScale(trainable: [string, Tensor][], depth: number, decay: number): (p: Tensor) => number {
  const scales = layerRateScales(trainable.map(([name]) => name), depth, decay);
  const byTensor = new Map(trainable.map(([, t], i) => [t, scales[i]]));
  return (p) => {
    const scale = byTensor.get(p);
    if (scale === undefined) throw new Error(`layer decay: expected one of the trainable tensors, got ${p}`);
    return scale;
  };
}
