// Which fine-tuned block stands for each original block: itself for every strategy but Block Expansion, whose new
// blocks are skipped for the weights and attention and included in the output of the block they follow.
import { describe, expect, it } from "vitest";
import { blockMap, identityMap } from "../../eval/block-map.js";
import { parseStrategy } from "../../peft/strategy.js";

describe("blockMap", () => {
  it("maps every block to itself without Block Expansion", () => {
    for (const s of ["full", "linear", "top-2", "lora-r4"]) expect(blockMap(parseStrategy(s), 4)).toEqual(identityMap(4));
  });

  it("maps a block followed by a new one to the new one's output", () => {
    // block-p2 on 4 blocks: new blocks after blocks 2 and 4 (1-based), model order 0 1 n 2 3 n.
    expect(blockMap(parseStrategy("block-p2"), 4)).toEqual({
      depth: 4,
      own: [0, 1, 3, 4],
      output: [0, 2, 3, 5],
      added: [
        { index: 2, after: 1 },
        { index: 5, after: 3 },
      ],
    });
    // block@1,3 (positions given, unordered in the config's sense) on 3 blocks: 0 n 1 2 n.
    expect(blockMap(parseStrategy("block@3,1"), 3)).toEqual({ depth: 3, own: [0, 2, 3], output: [1, 2, 4], added: [{ index: 1, after: 0 }, { index: 4, after: 2 }] });
  });
});
