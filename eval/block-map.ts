// Which block of a fine-tuned model stands for each block of the original, so that the two can be compared block
// by block. Every strategy keeps the original blocks in order; Block Expansion inserts new ones after some of them.
// The rule for original block i (0-based):
//   - its weights and its attention are those of the fine-tuned model's copy of block i itself (`own`);
//   - its output is the residual stream after the new blocks inserted right after it, if any (`output`): what the
//     next original block reads in the fine-tuned model, as block i's output is what block i + 1 reads in the
//     original. A new block starts as the identity, so before fine-tuning both outputs are equal.
// The new blocks have no counterpart (`added`).
import { defaultPositions } from "../peft/block-expansion.js";
import type { Strategy } from "../peft/strategy.js";

export interface BlockMap {
  depth: number; // blocks of the original
  own: number[]; // (depth): the fine-tuned model's index of original block i
  output: number[]; // (depth): the fine-tuned model's index of the block whose output stands for block i's
  added: { index: number; after: number }[]; // new blocks: their index, and the original block they follow
}

export function blockMap(strategy: Strategy, depth: number): BlockMap {
  const after = new Set(strategy.kind === "block" ? (strategy.positions ?? defaultPositions(depth, strategy.p)).map((k) => k - 1) : []);
  const map: BlockMap = { depth, own: [], output: [], added: [] };
  let m = 0;
  for (let i = 0; i < depth; i++) {
    map.own.push(m++);
    if (after.has(i)) map.added.push({ index: m++, after: i });
    map.output.push(m - 1);
  }
  return map;
}

// The original's own map: every block stands for itself.
export function identityMap(depth: number): BlockMap {
  const all = Array.from({ length: depth }, (_, i) => i);
  return { depth, own: all, output: all, added: [] };
}
