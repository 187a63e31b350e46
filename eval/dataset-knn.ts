// DINO's weighted k-NN accuracy of a backbone on datasets: the CLS features of every bank and query image (through
// each spec's transform, in loader batches, so a large bank's images never sit in memory at once; full batches
// replayed, the features read back together: eval/loader-outputs.ts), then eval/knn.ts. The study's source k-NN
// and the pre-training's held-out score are this.
import type { Dataset } from "../data/dataset.js";
import { Loader } from "../data/loader.js";
import { type DataSpec, transformFor } from "../data/spec.js";
import { Transform } from "../data/transforms.js";
import type { TransformCache } from "../data/transform-cache.js";
import type { VisionTransformer } from "../vit/model.js";
import { runtime } from "../engine/runtime.js";
import type { Tensor } from "../engine/tensor.js";
import { ReplayedForward } from "./replayed-forward.js";
import { loaderOutputs } from "./loader-outputs.js";
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

// A backbone whose features are not all finite (weights finite, activations overflowed: a rate far too high) has no
// k-NN accuracy: every similarity with such a feature is NaN, and the votes would rank classes by chance.
export class NonFiniteFeaturesError extends Error {}

function checkFinite(values: Float32Array, dim: number, what: string): void {
  // Dawn's null backend computes nothing, and what it reads back is no result (as the trainer, it is not judged).
  if (runtime().gpu.backend === "null") return;
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new NonFiniteFeaturesError(`the backbone's feature ${bad % dim} of ${what} image ${Math.floor(bad / dim)} is ${values[bad]}: the k-NN cannot score it`);
}

export async function datasetKnn(model: VisionTransformer, bank: KnnData, queries: KnnData, o: DatasetKnnOptions): Promise<KnnResult[]> {
  return (await banksKnn(model, [bank], queries, o))[0];
}

// The queries classified against each of several banks, their features taken once: per bank, as datasetKnn.
export async function banksKnn(model: VisionTransformer, banks: KnnData[], queries: KnnData, o: DatasetKnnOptions): Promise<KnnResult[][]> {
  const features = (x: Tensor) => model.features(x);
  // One replay for every loader batch of all of them.
  const replayed = runtime().settings.replay ? new ReplayedForward(features, "features: batches are run, not replayed") : undefined;
  const featuresOf = async ({ dataset, spec }: KnnData, what: string) => {
    const loader = new Loader(dataset, new Transform(transformFor(spec, o.size)), { batchSize: o.batchSize, cache: o.cache });
    const out = await loaderOutputs(loader, features, replayed);
    checkFinite(out.values, model.width, `${what} (${dataset.identity.name})`);
    return out;
  };
  try {
    let q: Awaited<ReturnType<typeof featuresOf>> | undefined;
    const results: KnnResult[][] = [];
    // One bank's features at a time: ImageNet's would be gigabytes each.
    for (const bank of banks) {
      const b = await featuresOf(bank, "bank");
      q ??= await featuresOf(queries, "query");
      results.push(
        await knnClassify({
          train: b.values,
          trainLabels: b.labels,
          test: q.values,
          testLabels: q.labels,
          ks: o.ks,
          temperature: o.temperature,
          classes: Math.max(bank.dataset.classes.length, queries.dataset.classes.length),
        }),
      );
    }
    return results;
  } finally {
    replayed?.dispose();
  }
}
