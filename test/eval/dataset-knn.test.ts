// datasetKnn: the same result as knnClassify on features of every image taken in one pass, with loader batches that
// do not divide the datasets (5 images per pass over 24 and 12 images), so batching and the order of rows are right;
// banksKnn: the queries against several banks at once, each as datasetKnn against it alone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNpyImages } from "../../data/npy-dataset.js";
import type { Dataset } from "../../data/dataset.js";
import { Transform } from "../../data/transforms.js";
import { buildVit, initialiser } from "../../vit/model.js";
import { validateConfig } from "../../vit/config.js";
import { extractFeatures } from "../../eval/features.js";
import { knnClassify } from "../../eval/knn.js";
import { NonFiniteFeaturesError, banksKnn, datasetKnn } from "../../eval/dataset-knn.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";

useEngine();

let root: string;
let bank: Dataset;
let queries: Dataset;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "dataset-knn-"));
  await writeSynthetic(root, { size: 8, perClass: { train: 4, test: 2 }, seed: 5, noise: 160 });
  bank = await openNpyImages(root, "train");
  queries = await openNpyImages(root, "test");
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("datasetKnn", () => {
  it("scores as knnClassify does on all features at once", async () => {
    const model = buildVit(validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 1, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 }), initialiser(1));
    const spec = { dataset: "npy", split: "train", transform: "eval" as const };
    const transform = new Transform({ kind: "eval", size: 8 });
    const all = async (ds: Dataset) => {
      const images = new Float32Array(ds.length * 3 * 64);
      for (let i = 0; i < ds.length; i++) await transform.apply(await ds.read(i), images, i * 3 * 64);
      return (await extractFeatures(model, images, [ds.length, 3, 8, 8])).features;
    };
    const want = await knnClassify({ train: await all(bank), trainLabels: bank.labels, test: await all(queries), testLabels: queries.labels, ks: [1, 5], temperature: 0.07, classes: 6 });
    const got = await datasetKnn(model, { dataset: bank, spec }, { dataset: queries, spec: { ...spec, split: "test" } }, { ks: [1, 5], temperature: 0.07, batchSize: 5, size: 8 });
    expect(got.map((r) => [r.k, r.top1, r.top5, [...r.predictions]])).toEqual(want.map((r) => [r.k, r.top1, r.top5, [...r.predictions]]));
    model.dispose();
  });

  it("banksKnn: the queries against each bank as datasetKnn against that bank alone", async () => {
    const model = buildVit(validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 1, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 }), initialiser(2));
    const spec = { dataset: "npy", split: "train", transform: "eval" as const };
    const o = { ks: [1, 3], temperature: 0.07, batchSize: 5, size: 8 };
    const test = { dataset: queries, spec: { ...spec, split: "test" } };
    // The queries as a bank of their own as well: a bank of another size and other images.
    const banks = [{ dataset: bank, spec }, test];
    const shown = (rs: { k: number; top1: number; predictions: Int32Array }[]) => rs.map((r) => [r.k, r.top1, [...r.predictions]]);
    const got = await banksKnn(model, banks, test, o);
    expect(got.map(shown)).toEqual([shown(await datasetKnn(model, banks[0], test, o)), shown(await datasetKnn(model, banks[1], test, o))]);
    expect(got[1][0].top1).toBe(100); // each query is its own nearest neighbour
    model.dispose();
  });

  it("refuses features that are not all finite, naming the image, rather than scoring them", async () => {
    const model = buildVit(validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 1, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 }), initialiser(1));
    // The final norm's bias at infinity: weights that are not finite stand in for activations that overflowed.
    const bias = model.parameters().find(([n]) => n === "norm.bias")![1];
    bias.write(new Float32Array(16).fill(Infinity));
    const spec = { dataset: "npy", split: "train", transform: "eval" as const };
    const run = datasetKnn(model, { dataset: bank, spec }, { dataset: queries, spec: { ...spec, split: "test" } }, { ks: [1], temperature: 0.07, batchSize: 5, size: 8 });
    await expect(run).rejects.toThrow(NonFiniteFeaturesError);
    await expect(run).rejects.toThrow("the backbone's feature 0 of bank (npy) image 0 is");
    model.dispose();
  });
});
