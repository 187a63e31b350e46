// Each part's own output change (eval/output-change.ts), through compareBackbones, on the tiny ViT fixture (2 blocks,
// width 32, patch 4, 17 tokens) and 30 noisy synthetic images in batches of 7 (the last partial), against a
// reference made another way, in float64 on the host: the embeddings' tokens from the weights (patches times the
// patch projection, the CLS token, the position embeddings), and each block's output on the original's input from a
// hybrid model, the fine-tuned one with every part below the block put back where fine-tuning started, its block
// output dumped by the model's own forward. A part the strategy leaves alone reads 0 exactly. Against an earlier
// backbone: the embeddings (affine in their weights) halfway there turn by +1 and have changed half as far since, past
// the fine-tuned one by as much again turn by -1; every part's changes obey the law of cosines. On another set of
// images (AnalysisData's target): what the analysed images give where they are that set.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNpyImages } from "../../data/npy-dataset.js";
import { Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import type { VisionTransformer } from "../../vit/model.js";
import { parseStrategy } from "../../peft/strategy.js";
import { type AnalysisData, compareBackbones } from "../../eval/block-analysis.js";
import { blockMap } from "../../eval/block-map.js";
import { extractFeatures } from "../../eval/features.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { parameterValues, tunedModels } from "./tuned-models.js";

useEngine();

const [SIZE, P, C, T] = [16, 4, 32, 17];
let root: string;
let data: AnalysisData;
let images: Float32Array; // every query, in the loader's order
let n: number;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "output-change-test-"));
  await writeSynthetic(root, { size: SIZE, perClass: { train: 4, test: 5 }, seed: 5, noise: 160 });
  const transform = new Transform({ kind: "eval", size: SIZE });
  data = {
    queries: new Loader(await openNpyImages(root, "test"), transform, { batchSize: 7 }),
    bank: new Loader(await openNpyImages(root, "train"), transform, { batchSize: 16 }),
    k: 3,
    temperature: 0.07,
    classes: 6,
    gridImages: 1,
  };
  const batches: Float32Array[] = [];
  for await (const b of data.queries.epoch(0)) batches.push(b.images);
  images = Float32Array.from(batches.flatMap((x) => Array.from(x)));
  n = images.length / (3 * SIZE * SIZE);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// The tokens before the blocks, (n, T, C), from a model's weights: each patch (its channels, rows, columns, the
// convolution weight's order) times the patch projection plus its bias, the CLS token first, the position
// embeddings added.
function embedded(w: Map<string, Float32Array>): Float64Array {
  const [proj, bias, cls, pos] = ["patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed"].map((k) => w.get(k)!);
  const g = SIZE / P;
  const out = new Float64Array(n * T * C);
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < C; c++) out[b * T * C + c] = cls[c] + pos[c];
    for (let t = 0; t < g * g; t++) {
      const [gy, gx] = [Math.floor(t / g), t % g];
      for (let c = 0; c < C; c++) {
        let s = bias[c];
        for (let ch = 0; ch < 3; ch++) {
          for (let py = 0; py < P; py++) {
            for (let px = 0; px < P; px++) s += proj[((c * 3 + ch) * P + py) * P + px] * images[((b * 3 + ch) * SIZE + gy * P + py) * SIZE + gx * P + px];
          }
        }
        out[(b * T + 1 + t) * C + c] = s + pos[(1 + t) * C + c];
      }
    }
  }
  return out;
}

const distance = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, x, i) => s + (x - b[i]) ** 2, 0));
const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, x) => s + x * x, 0));
const dump = async (m: VisionTransformer, block: number) => (await extractFeatures(m, images, [n, 3, SIZE, SIZE], { captureBlocks: [block] })).captured.get(`block.${block}`)!.data;

// The output change of `strategy`'s fine-tuned fixture as compareBackbones measures it, and as the reference does.
async function measured(strategy: string): Promise<{ got: { embedding: number; blocks: number[] }; want: { embedding: number; blocks: number[] } }> {
  const map = blockMap(parseStrategy(strategy), 2);
  const { tuned, initial } = await tunedModels(strategy, 0.3);
  const plain = (await tunedModels("linear", 0)).initial; // the fixture itself, Block Expansion's new blocks not in it
  const [tunedValues, initialValues] = [await parameterValues(tuned), await parameterValues(initial)];
  const original = embedded(await parameterValues(plain));
  const want = { embedding: distance(embedded(tunedValues), original) / norm(original), blocks: [] as number[] };
  for (let i = 0; i < 2; i++) {
    // The fine-tuned model with the embeddings and every block below original block i (a new one too) where
    // fine-tuning started.
    const hybrid = (await tunedModels(strategy, 0.3)).tuned;
    const below = (name: string) => !name.startsWith("blocks.") || Number(name.split(".")[1]) < map.own[i];
    for (const [name, t] of hybrid.parameters()) if (!name.startsWith("head.") && below(name)) t.write(initialValues.get(name)!);
    const [input, was, is] = [i === 0 ? original : await dump(plain, i - 1), await dump(plain, i), await dump(hybrid, map.output[i])];
    want.blocks.push(distance(is, was) / distance(was, input));
    hybrid.dispose();
  }
  const c = await compareBackbones(plain, tuned, map, data);
  for (const m of [tuned, initial, plain]) m.dispose();
  return { got: c.outputChange, want };
}

describe("output change", () => {
  it("full fine-tuning: every part's, as the reference computes it", async () => {
    const { got, want } = await measured("full");
    expect(Math.min(want.embedding, ...want.blocks)).toBeGreaterThan(0.05);
    expect(got.embedding).toBeCloseTo(want.embedding, 4);
    got.blocks.forEach((v, i) => expect(v, `block ${i}`).toBeCloseTo(want.blocks[i], 4));
  });

  it("top-1, LoRA and Block Expansion: the parts they train move, the others read 0 exactly", async () => {
    const top = await measured("top-1");
    expect([top.got.embedding, top.got.blocks[0]]).toEqual([0, 0]);
    expect(top.got.blocks[1]).toBeCloseTo(top.want.blocks[1], 4);
    const lora = await measured("lora-r2");
    expect(lora.got.embedding).toBe(0);
    lora.got.blocks.forEach((v, i) => expect(v, `block ${i}`).toBeCloseTo(lora.want.blocks[i], 4));
    expect(Math.min(...lora.got.blocks)).toBeGreaterThan(1e-3);
    // A new block after block 0: block 0's output is the new block's; block 1 is the original's, on the same input.
    const block = await measured("block@1");
    expect([block.got.embedding, block.got.blocks[1]]).toEqual([0, 0]);
    expect(block.got.blocks[0]).toBeCloseTo(block.want.blocks[0], 4);
    expect(block.got.blocks[0]).toBeGreaterThan(0.05);
    const linear = await measured("linear");
    expect([linear.got.embedding, ...linear.got.blocks]).toEqual([0, 0, 0]);
  });
});

describe("output change since an earlier backbone", () => {
  // Full fine-tuning's fixture, and the same with every trained tensor at start + `f` (fine-tuned - start).
  async function along(f: number): Promise<{ tuned: VisionTransformer; earlier: VisionTransformer; plain: VisionTransformer }> {
    const { tuned, initial, trainable } = await tunedModels("full", 0.3);
    const earlier = (await tunedModels("full", 0.3)).tuned;
    const [b, a] = [await parameterValues(tuned), await parameterValues(initial)];
    for (const [name, t] of earlier.parameters()) if (trainable.includes(name)) t.write(a.get(name)!.map((x, i) => x + f * (b.get(name)![i] - x)));
    initial.dispose();
    return { tuned, earlier, plain: (await tunedModels("linear", 0)).initial };
  }
  const map = blockMap(parseStrategy("full"), 2);

  it("the embeddings halfway there: half the change since, turn +1; past it as far again: the whole change back, turn -1", async () => {
    for (const [f, share, turn] of [[0.5, 0.5, 1], [2, 1, -1]]) {
      const { tuned, earlier, plain } = await along(f);
      const c = await compareBackbones(plain, tuned, map, data, earlier);
      expect(c.outputSince!.embedding.change, `f ${f}`).toBeCloseTo(share * c.outputChange.embedding, 4);
      expect(c.outputSince!.embedding.turn, `f ${f}`).toBeCloseTo(turn, 4);
      for (const m of [tuned, earlier, plain]) m.dispose();
    }
  });

  it("every part's change from the original is its change up to the earlier backbone and since, by the law of cosines", async () => {
    const { tuned, earlier, plain } = await along(0.4);
    const upTo = (await compareBackbones(plain, earlier, map, data)).outputChange;
    const c = await compareBackbones(plain, tuned, map, data, earlier);
    const parts = [[c.outputChange.embedding, upTo.embedding, c.outputSince!.embedding], ...c.outputChange.blocks.map((v, i) => [v, upTo.blocks[i], c.outputSince!.blocks[i]] as const)] as const;
    for (const [whole, until, since] of parts) {
      expect(since.change).toBeGreaterThan(0.01);
      expect(whole ** 2).toBeCloseTo(since.change ** 2 + until ** 2 + 2 * since.change * until * since.turn, 4);
    }
    // Against itself: no change since, to the bit.
    const copy = (await tunedModels("full", 0.3)).tuned;
    const same = await compareBackbones(plain, tuned, map, data, copy);
    expect([same.outputSince!.embedding.change, ...same.outputSince!.blocks.map((b) => b.change)]).toEqual([0, 0, 0]);
    for (const m of [tuned, earlier, plain, copy]) m.dispose();
  });
});

describe("output change on another set of images", () => {
  it("the target images' output change and turn are the analysed images' where the analysed images are those", async () => {
    const { tuned, initial, trainable } = await tunedModels("full", 0.3);
    const earlier = (await tunedModels("full", 0.3)).tuned;
    const [b, a] = [await parameterValues(tuned), await parameterValues(initial)];
    for (const [name, t] of earlier.parameters()) if (trainable.includes(name)) t.write(a.get(name)!.map((x, i) => x + 0.4 * (b.get(name)![i] - x)));
    const plain = (await tunedModels("linear", 0)).initial;
    const map = blockMap(parseStrategy("full"), 2);
    // The bank's images as the other set, in batches of 5 (the last partial), and as the analysed images.
    const other = new Loader(data.bank.dataset, data.bank.transform, { batchSize: 5 });
    const c = await compareBackbones(plain, tuned, map, { ...data, target: other }, earlier);
    const asAnalysed = await compareBackbones(plain, tuned, map, { ...data, queries: other }, earlier);
    expect(c.targetOutputChange).toEqual(asAnalysed.outputChange);
    expect(c.targetOutputSince).toEqual(asAnalysed.outputSince);
    // Not the analysed images' own, which it leaves as they were.
    expect(c.targetOutputChange!.embedding).not.toBe(c.outputChange.embedding);
    expect(c.outputChange).toEqual((await compareBackbones(plain, tuned, map, data, earlier)).outputChange);
    // Without a target, none.
    expect((await compareBackbones(plain, tuned, map, data)).targetOutputChange).toBeUndefined();
    for (const m of [tuned, initial, earlier, plain]) m.dispose();
  });
});
