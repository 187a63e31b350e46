// Block Expansion (LLaMA Pro, and the paper): insert p new blocks, each a copy of the original block just below
// it with the attention output projection and the MLP's second linear layer (weights and biases) set to zero.
// Both branches of a zeroed block then add exactly zero to the residual stream, so the expanded network computes
// what the original did; only the new blocks (and the head) train.
import { Tensor } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { Block, LayerNorm, Linear, type VisionTransformer } from "../vit/model.js";

// Default placement: split the depth into p equal groups and add one block after each group's last block
// (1-based positions: depth 12, p 4 -> after 3, 6, 9, 12); when p does not divide the depth, the group ends are
// rounded (depth 4, p 3 -> 1, 3, 4). The paper's p = 1 run used position 11.
export function defaultPositions(depth: number, p: number): number[] {
  if (!Number.isInteger(p) || p <= 0 || p > depth) throw new Error(`block expansion: p must be an integer in 1..${depth}, got ${p}`);
  return Array.from({ length: p }, (_, i) => Math.round(((i + 1) * depth) / p));
}

// Inserts a zeroed copy of original block k after it, for each k in `positions` (1-based, among the original
// blocks). Returns the new blocks, in model order.
export function expandBlocks(model: VisionTransformer, positions: number[]): Block[] {
  const depth = model.blocks.length;
  const sorted = [...positions].sort((a, b) => a - b);
  for (const k of sorted) {
    if (!Number.isInteger(k) || k < 1 || k > depth) throw new Error(`block expansion: position ${k} is not in 1..${depth}`);
  }
  if (new Set(sorted).size !== sorted.length) throw new Error(`block expansion: repeated position in [${positions.join(", ")}]`);
  const original = model.blocks;
  const added: Block[] = [];
  const blocks: Block[] = [];
  original.forEach((block, i) => {
    blocks.push(block);
    if (sorted.includes(i + 1)) {
      const copy = zeroedCopy(block);
      blocks.push(copy);
      added.push(copy);
    }
  });
  model.blocks = blocks;
  model.nameParameters();
  return added;
}

function copyTensor(t: Tensor): Tensor {
  return ops.scale(t, 1).keep(); // a fresh copy on the device
}

function copyLinear(l: Linear, zero: boolean): Linear {
  const w = zero ? ops.zeros(l.weight.shape).keep() : copyTensor(l.weight);
  const b = l.bias && (zero ? ops.zeros(l.bias.shape).keep() : copyTensor(l.bias));
  return new Linear(w, b);
}

function copyNorm(n: LayerNorm): LayerNorm {
  return new LayerNorm(copyTensor(n.weight), copyTensor(n.bias), n.eps);
}

function zeroedCopy(b: Block): Block {
  return new Block(
    copyNorm(b.norm1),
    copyLinear(b.qkv, false),
    copyLinear(b.proj, true),
    copyNorm(b.norm2),
    copyLinear(b.fc1, false),
    copyLinear(b.fc2, true),
    b.heads,
  );
}
