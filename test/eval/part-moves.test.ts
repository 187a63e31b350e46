// eval/part-moves.ts on the tiny ViT fixture (2 blocks) fine-tuned in full with every trainable tensor moved: a move
// of minus twice a block's change reads turn -1 and twice its relative weight change (eval/weight-change.ts's); a
// random move of the embeddings its cosine with their change as the host computes it; a part without a move size 0
// and no turn; several moves at once each as alone; each tensor's spread summed over a part as the host sums it, and a
// move's cosine with gradient descent's as the host takes it; Block Expansion's original blocks paired with the
// fine-tuned model's own copies of them, a model of more blocks than the map's original refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tensor } from "../../engine/tensor.js";
import { blockMap } from "../../eval/block-map.js";
import { partMoves } from "../../eval/part-moves.js";
import { partTensors, weightChange } from "../../eval/weight-change.js";
import { parseStrategy } from "../../peft/strategy.js";
import { loadVit } from "../../vit/load.js";
import type { VisionTransformer } from "../../vit/model.js";
import { randn, useEngine } from "../helpers.js";
import { tunedModels } from "./tuned-models.js";

useEngine();

let tuned: VisionTransformer;
let initial: VisionTransformer;

beforeAll(async () => {
  ({ tuned, initial } = await tunedModels("full", 0.5));
});

afterAll(() => {
  tuned.dispose();
  initial.dispose();
});

describe("partMoves", () => {
  it("reads a move of minus twice a block's change as turn -1 at twice its weight change, a random one as the host's cosine, none as size 0", async () => {
    const map = blockMap(parseStrategy("full"), 2);
    const parts = partTensors(initial, tuned, map);
    const moves = new Map<Tensor, Float64Array>();
    for (const [, a, b] of parts.blocks[1]) {
      const [w0, w] = [await a.data(), await b.data()];
      moves.set(b, Float64Array.from(w, (x, i) => -2 * (x - w0[i])));
    }
    let [dot, mm, dd] = [0, 0, 0];
    for (const [k, [, a, b]] of parts.embedding.entries()) {
      const [w0, w, m] = [await a.data(), await b.data(), Float64Array.from(randn(b.size, 50 + k, 1))];
      moves.set(b, m);
      m.forEach((x, i) => {
        dot += x * (w[i] - w0[i]);
        mm += x * x;
        dd += (w[i] - w0[i]) ** 2;
      });
    }
    const [got] = await partMoves(initial, tuned, map, [{ move: moves }]);
    // Several moves at once, the weights read once: each as it reads alone.
    const none = new Map<Tensor, Float64Array>();
    expect(await partMoves(initial, tuned, map, [{ move: none }, { move: moves }])).toEqual([(await partMoves(initial, tuned, map, [{ move: none }]))[0], got]);
    const change = await weightChange(initial, tuned, map);
    expect(Math.abs(got.blocks[1].turn + 1)).toBeLessThan(1e-12);
    expect(Math.abs(got.blocks[1].change - 2 * change.blocks[1]) / change.blocks[1]).toBeLessThan(1e-12);
    expect(Math.abs(got.embedding.turn - dot / Math.sqrt(mm * dd))).toBeLessThan(1e-12);
    expect(got.embedding.change).toBeGreaterThan(0);
    for (const none of [got.blocks[0], got.norm]) {
      expect(none.change).toBe(0);
      expect(none.turn).toBeNaN();
    }
    expect([got.embedding, ...got.blocks, got.norm].some((p) => "spread" in p || "descentTurn" in p)).toBe(false); // a move without them
    // With gradient descent's move beside it: their cosine part by part, over the part's every value (a tensor one of
    // them lacks counts as 0), as the host computes it; not a number where either is 0 on the part.
    const descent = new Map<Tensor, Float64Array>();
    let [md, m2, gg] = [0, 0, 0];
    for (const [k, [name, , b]] of parts.embedding.entries()) {
      const m = moves.get(b)!;
      for (const x of m) m2 += x * x;
      if (name === "cls_token") continue; // gradient descent's move lacks it
      const g = Float64Array.from(randn(b.size, 70 + k, 1));
      descent.set(b, g);
      g.forEach((x, i) => {
        gg += x * x;
        md += m[i] * x;
      });
    }
    const [withDescent] = await partMoves(initial, tuned, map, [{ move: moves, descent }]);
    expect(Math.abs(withDescent.embedding.descentTurn! - md / Math.sqrt(m2 * gg))).toBeLessThan(1e-12);
    expect([withDescent.blocks[1].descentTurn, withDescent.norm.descentTurn]).toEqual([NaN, NaN]);
  });

  it("reads a spread of each tensor as the part's, sqrt(sum over its tensors) / ||W0||; 0 where it has none", async () => {
    const map = blockMap(parseStrategy("full"), 2);
    const parts = partTensors(initial, tuned, map);
    const spread = new Map<Tensor, number>();
    let [sum, base] = [0, 0];
    for (const [k, [, a, b]] of parts.blocks[0].entries()) {
      spread.set(b, 0.25 * (k + 1));
      sum += 0.25 * (k + 1);
      for (const x of await a.data()) base += x * x;
    }
    const [got] = await partMoves(initial, tuned, map, [{ move: new Map(), spread }]);
    expect(Math.abs(got.blocks[0].spread! - Math.sqrt(sum / base)) / Math.sqrt(sum / base)).toBeLessThan(1e-12);
    expect([got.embedding.spread, got.blocks[1].spread, got.norm.spread]).toEqual([0, 0, 0]);
  });

  it("pairs Block Expansion's original blocks with the fine-tuned model's own copies of them", async () => {
    const { tuned: expanded, initial: drawn } = await tunedModels("block-p1");
    const start = (await loadVit("test/fixtures/vit-tiny.safetensors", { heads: 2 })).model; // the original: 2 blocks
    const map = blockMap(parseStrategy("block-p1"), 2);
    expect(() => partTensors(drawn, expanded, map)).toThrow("weight change: expected an original of 2 blocks, got blocks.2.norm1.weight");
    const parts = partTensors(start, expanded, map);
    expect(parts.blocks.map((b) => b[0][0])).toEqual(map.own.map((j) => `blocks.${j}.norm1.weight`));
    expect(parts.norm.map(([name]) => name)).toEqual(["norm.weight", "norm.bias"]);
    expect(parts.embedding.map(([name]) => name).sort()).toEqual(["cls_token", "patch_embed.proj.bias", "patch_embed.proj.weight", "pos_embed"]);
    // Block Expansion trains its new blocks alone: every original part stayed, no move, no turn.
    const [got] = await partMoves(start, expanded, map, [{ move: new Map() }]);
    expect([got.embedding, ...got.blocks, got.norm].every((p) => p.change === 0 && Number.isNaN(p.turn))).toBe(true);
    for (const m of [expanded, drawn, start]) m.dispose();
  });
});
