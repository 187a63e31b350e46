// DINO's weighted k-NN accuracy of a backbone on datasets: the CLS features of every bank and query image (through
// each spec's transform, in loader batches, so a large bank's images never sit in memory at once), then
// eval/knn.ts. The study's source k-NN and the pre-training's held-out score are this.
import type { Dataset } from "../data/dataset.js";
import { Loader } from "../data/loader.js";
import { type DataSpec, transformFor } from "../data/spec.js";
import { Transform } from "../data/transforms.js";
import type { TransformCache } from "../data/transform-cache.js";
import type { VisionTransformer } from "../vit/model.js";
import { FeatureExtractor } from "./features.js";
import { type KnnResult, knnClassify } from "./knn.js";

export interface KnnData {
  dataset: Dataset;
  spec: DataSpec; // its transform
}

export interface DatasetKnnOptions {
  ks: number[];
  temperature: number;
  batchSize: number; // images per forward pass
  size: number; // input resolution
  cache?: TransformCache; // keeps the transformed images for the next k-NN of the same data (data/transform-cache.ts)
}

export async function datasetKnn(model: VisionTransformer, bank: KnnData, queries: KnnData, o: DatasetKnnOptions): Promise<KnnResult[]> {
  const extractor = new FeatureExtractor(model, o.batchSize); // one replay for every loader batch of both
  const featuresOf = async ({ dataset, spec }: KnnData) => {
    const loader = new Loader(dataset, new Transform(transformFor(spec, o.size)), { batchSize: o.batchSize, cache: o.cache });
    const out = new Float32Array(dataset.length * model.width);
    const labels = new Int32Array(dataset.length);
    let rows = 0;
    for await (const b of loader.epoch(0)) {
      const n = b.labels.length;
      const { features } = await extractor.extract(b.images, [n, 3, o.size, o.size]);
      out.set(features, rows * model.width);
      labels.set(b.labels, rows);
      rows += n;
    }
    return { features: out.subarray(0, rows * model.width), labels: labels.subarray(0, rows) };
  };
  try {
    const b = await featuresOf(bank);
    const q = await featuresOf(queries);
    return knnClassify({
      train: b.features,
      trainLabels: b.labels,
      test: q.features,
      testLabels: q.labels,
      ks: o.ks,
      temperature: o.temperature,
      classes: Math.max(bank.dataset.classes.length, queries.dataset.classes.length),
    });
  } finally {
    extractor.dispose();
  }
}
