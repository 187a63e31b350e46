// The per-block comparison of a fine-tuned backbone with its original on the tiny ViT fixture (2 blocks, width 32,
// 17 tokens) and noisy synthetic patterns: a linear-probe model is the original at every block (CKA 1, no weight
// change, no attention drift, the same layer-wise k-NN); Block Expansion leaves every block below its first new
// block unchanged; a LoRA update shows in its layer's weight change as ||scale·B·A|| / ||W||, computed here from
// the adapter's factors, and the streamed CKA matches the float64 reference on the dumped block outputs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "../../engine/tensor.js";
import { openNpyImages } from "../../data/npy-dataset.js";
import { Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { loadVit } from "../../vit/load.js";
import type { VisionTransformer } from "../../vit/model.js";
import { applyStrategy, parseStrategy, type Strategy } from "../../peft/strategy.js";
import { LoraAdapter } from "../../peft/lora.js";
import { type AnalysisData, type OriginalAnalysis, analyzeOriginal, compareBackbones } from "../../eval/block-analysis.js";
import { blockMap } from "../../eval/block-map.js";
import { weightChange } from "../../eval/weight-change.js";
import { extractFeatures } from "../../eval/features.js";
import { ckaReference } from "../ref/cka.js";
import { randn, useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";

useEngine();

const CLASSES = 6;
let root: string;
let data: AnalysisData;
let original: VisionTransformer;
let reference: OriginalAnalysis;

const load = async () => (await loadVit("test/fixtures/vit-tiny.safetensors", { heads: 2 })).model;

// The fixture with `strategy` applied, as fine-tuning leaves it: `edit` changes its trainable tensors.
async function tuned(strategy: Strategy, edit: (m: VisionTransformer) => void = () => undefined): Promise<VisionTransformer> {
  const m = await load();
  applyStrategy(m, strategy, CLASSES, 1);
  edit(m);
  return m;
}

function perturb(t: Tensor, seed: number, std: number): void {
  t.write(randn(t.size, seed, std));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "block-analysis-test-"));
  // Noise that blurs the classes, so that the layer-wise k-NN accuracies are not all 100 %.
  await writeSynthetic(root, { size: 16, perClass: { train: 10, test: 5 }, seed: 3, noise: 160 });
  const transform = new Transform({ kind: "eval", size: 16 });
  data = {
    // 30 queries in batches of 7: the last batch is partial.
    queries: new Loader(await openNpyImages(root, "test"), transform, { batchSize: 7 }),
    bank: new Loader(await openNpyImages(root, "train"), transform, { batchSize: 16 }),
    k: 5,
    temperature: 0.07,
    classes: CLASSES,
    gridImages: 3,
  };
  original = await load();
  reference = await analyzeOriginal(original, data);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("the original's analysis", () => {
  it("has a layer-wise k-NN per block and the grid's images and attention maps", () => {
    expect(reference.knn).toHaveLength(2);
    for (const acc of reference.knn) expect(acc).toBeGreaterThan(100 / CLASSES);
    expect(reference.knn.some((a) => a < 100)).toBe(true);
    // Each block's answers, one per image: as many right as its accuracy says.
    reference.knnCorrect.forEach((right, i) => {
      expect(right).toHaveLength(data.queries.dataset.length);
      expect((100 * right.reduce((a, b) => a + b, 0)) / right.length).toBeCloseTo(reference.knn[i], 9);
    });
    expect(reference.imageShape).toEqual([3, 3, 16, 16]);
    expect(reference.grid.tokens).toBe(16);
    // Each map is the CLS token's attention over the 16 patches, mean over heads: the CLS's own share is missing.
    for (let g = 0; g < 3; g++) {
      const sum = reference.grid.maps.subarray(g * 16, (g + 1) * 16).reduce((a, b) => a + b, 0);
      expect(sum).toBeGreaterThan(0.2);
      expect(sum).toBeLessThan(1 + 1e-5);
    }
  });
});

describe("compareBackbones", () => {
  it("finds a linear-probe backbone unchanged: CKA 1, no weight change, no drift, the same k-NN at every block", async () => {
    const c = await compareBackbones(original, await tuned({ kind: "linear" }), blockMap({ kind: "linear" }, 2), data);
    for (const v of [...c.cka.cls, ...c.cka.pooled]) expect(v).toBeCloseTo(1, 6);
    expect(c.weights.blocks).toEqual([0, 0]);
    for (const layers of c.weights.layers) expect(Object.values(layers)).toEqual([0, 0, 0, 0, 0, 0]);
    expect([c.weights.embedding, c.weights.norm]).toEqual([0, 0]);
    expect(c.knn).toEqual(reference.knn);
    expect(c.knnCorrect).toEqual(reference.knnCorrect); // image by image
    expect(c.attention.flat()).toEqual([0, 0, 0, 0]);
    expect(c.grid.maps).toEqual(reference.grid.maps);
  });

  it("leaves every block below Block Expansion's first new block unchanged", async () => {
    const after1 = parseStrategy("block@2"); // a new block after the last one
    const model = await tuned(after1, (m) => {
      perturb(m.blocks[2].proj.weight, 5, 0.2);
      perturb(m.blocks[2].fc2.weight, 6, 0.2);
    });
    const c = await compareBackbones(original, model, blockMap(after1, 2), data);
    expect(c.cka.cls[0]).toBeCloseTo(1, 6);
    expect(c.cka.pooled[0]).toBeCloseTo(1, 6);
    expect(c.knn[0]).toBe(reference.knn[0]);
    // Block 1's own weights and attention are the original's; its output passes through the new block.
    expect(c.weights.blocks).toEqual([0, 0]);
    expect(c.weights.added).toEqual([1]);
    expect(c.attention.flat()).toEqual([0, 0, 0, 0]);
    expect(c.cka.cls[1]).toBeLessThan(0.99);

    const after0 = parseStrategy("block@1"); // a new block between the two
    const earlier = await tuned(after0, (m) => perturb(m.blocks[1].fc2.weight, 7, 0.2));
    const d = await compareBackbones(original, earlier, blockMap(after0, 2), data);
    expect(d.cka.cls[0]).toBeLessThan(0.99);
    expect(d.weights.blocks).toEqual([0, 0]);
    expect(Math.min(...d.attention[1])).toBeGreaterThan(1e-4);
    expect(d.attention[0]).toEqual([0, 0]);
  });

  it("measures a LoRA update as ||B·A|| / ||W|| of its layer, and CKA as the float64 reference does", async () => {
    const lora = { kind: "lora", rank: 2 } as const;
    // Block 1's q and v adapters get a non-zero B (zero at the start of fine-tuning).
    const model = await tuned(lora, (m) => {
      const params = new Map((m.blocks[1].qkv.adapter as LoraAdapter).parameters());
      perturb(params.get("lora_q.B")!, 8, 0.3);
      perturb(params.get("lora_v.B")!, 9, 0.3);
    });
    // ||ΔW||² of the q and v slices, ΔW_s = B_s·A_s (alpha = rank: scale 1), by hand in float64.
    let want = 0;
    const adapter = model.blocks[1].qkv.adapter as LoraAdapter;
    const params = new Map(adapter.parameters());
    for (const s of ["q", "v"]) {
      const a = await params.get(`lora_${s}.A`)!.data(); // (2, 32)
      const b = await params.get(`lora_${s}.B`)!.data(); // (32, 2)
      for (let i = 0; i < 32; i++) {
        for (let j = 0; j < 32; j++) want += (b[i * 2] * a[j] + b[i * 2 + 1] * a[32 + j]) ** 2;
      }
    }
    const w = [...(await original.blocks[1].qkv.weight.data()), ...(await original.blocks[1].qkv.bias!.data())];
    want = Math.sqrt(want) / Math.hypot(...w);
    // Not merged: the weight change refuses to leave the adapter out.
    await expect(weightChange(original, model, blockMap(lora, 2))).rejects.toThrow("weight change: expected merged LoRA adapters, got blocks.0.attn.qkv.lora_q.A");

    const c = await compareBackbones(original, model, blockMap(lora, 2), data);
    expect(c.weights.layers[1]["attn.qkv"]).toBeCloseTo(want, 5);
    expect(c.weights.layers[1]["attn.proj"]).toBe(0);
    expect(c.weights.blocks[0]).toBe(0);
    expect(c.cka.cls[0]).toBeCloseTo(1, 6);
    expect(Math.min(...c.attention[1])).toBeGreaterThan(1e-4);

    // The CLS rows and pooled tokens of block 1, dumped for every query, in the float64 kernel form.
    const images: Float32Array[] = [];
    for await (const b of data.queries.epoch(0)) images.push(b.images);
    const all = Float32Array.from(images.flatMap((x) => Array.from(x)));
    const n = all.length / (3 * 16 * 16);
    const dump = async (m: VisionTransformer) => (await extractFeatures(m, all, [n, 3, 16, 16], { captureBlocks: [1] })).captured.get("block.1")!.data; // (n, 17, 32)
    const [x, y] = [await dump(original), await dump(model)];
    const cls = (d: Float32Array) => Float32Array.from({ length: n * 32 }, (_, i) => d[Math.floor(i / 32) * 17 * 32 + (i % 32)]);
    const pooled = (d: Float32Array) => Float32Array.from({ length: n * 32 }, (_, i) => {
      let s = 0;
      for (let t = 0; t < 17; t++) s += d[(Math.floor(i / 32) * 17 + t) * 32 + (i % 32)];
      return s / 17;
    });
    expect(c.cka.cls[1]).toBeLessThan(0.999);
    expect(c.cka.cls[1]).toBeCloseTo(ckaReference(cls(x), cls(y), n), 4);
    expect(c.cka.pooled[1]).toBeCloseTo(ckaReference(pooled(x), pooled(y), n), 4);
  });

  it("names a model that does not fit the map", async () => {
    await expect(compareBackbones(original, await load(), blockMap({ kind: "block", p: 1 }, 2), data)).rejects.toThrow(
      "block analysis: expected an original of 2 blocks and a fine-tuned model of 3, got 2 and 2",
    );
  });
});
