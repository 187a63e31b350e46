// Feature extraction (eval/features.ts): full batches replayed compute what run batches compute, bit for bit, over
// several calls of one FeatureExtractor (its replay kept across them), a short last batch, and a second image size
// (the replay made afresh); a forward that cannot be replayed runs every batch after one warning.
import { describe, expect, it } from "vitest";
import { validateConfig } from "../../vit/config.js";
import { buildVit, initialiser } from "../../vit/model.js";
import { FeatureExtractor, extractFeatures } from "../../eval/features.js";
import { runtime, warnings } from "../../engine/runtime.js";
import { Tensor } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { randn, useEngine } from "../helpers.js";

useEngine();

const CONFIG = validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 2, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 });
const CALLS = [[23, 8], [10, 8], [7, 12], [15, 12]]; // (images, side) per call: 5 per batch, short last batches

// Every call's features, with replay on or off, and how many forwards the model ran.
async function extractAll(replay: boolean, uploads = false) {
  const { settings } = runtime();
  const outer = settings.replay;
  settings.replay = replay;
  const model = buildVit(CONFIG, initialiser(3));
  let forwards = 0;
  const features = model.features.bind(model);
  model.features = (x, capture) => {
    forwards++;
    return features(uploads ? ops.add(x, Tensor.fromArray(new Float32Array(x.size), x.shape)) : x, capture);
  };
  const extractor = new FeatureExtractor(model, 5);
  try {
    const out: Float32Array[] = [];
    for (const [n, side] of CALLS) out.push((await extractor.extract(randn(n * 3 * side * side, n + side), [n, 3, side, side])).features);
    return { out, forwards };
  } finally {
    extractor.dispose();
    settings.replay = outer;
    model.dispose();
  }
}

describe("FeatureExtractor", () => {
  it("replays full batches across calls with the run batches' results, bit for bit", async () => {
    const warned = warnings.length;
    const ran = await extractAll(false);
    const replayed = await extractAll(true);
    expect(replayed.out).toEqual(ran.out);
    expect(warnings.length).toBe(warned);
    // Run: every batch (5 + 2 + 2 + 3). Replayed: 8 px: run, captured (two), two replayed, the short one; then two
    // replayed; 12 px afresh: run, the short one; captured (two), two replayed.
    expect([ran.forwards, replayed.forwards]).toEqual([12, 1 + 2 + 1 + 0 + 1 + 1 + 2]);
  });

  it("runs every batch, with one warning per image size, where the forward cannot be replayed (it uploads)", async () => {
    const warned = warnings.length;
    const ran = await extractAll(false, true);
    const refused = await extractAll(true, true);
    expect(refused.out).toEqual(ran.out);
    expect(warnings.slice(warned)).toEqual([
      expect.stringMatching(/^features: batches are run, not replayed: replay: expected a run without uploads or read-backs/),
      expect.stringMatching(/^features: batches are run, not replayed: replay: expected a run without uploads or read-backs/),
    ]);
  });

  it("extractFeatures returns the same features as an extractor of its own", async () => {
    const model = buildVit(CONFIG, initialiser(3));
    const images = randn(12 * 3 * 64, 1);
    const a = await extractFeatures(model, images, [12, 3, 8, 8], { batch: 5 });
    const b = new FeatureExtractor(model, 5);
    expect((await b.extract(images, [12, 3, 8, 8])).features).toEqual(a.features);
    b.dispose();
  });
});
