// The training loss's gradient on some of a model's parameters: L the mean cross-entropy of the model's head over
// every image of a loader (a cell's training images, as it trained on them, in batches of its training batch size),
// differentiated with respect to `params` alone, every other parameter held, read back and summed in float64 on the
// host. For the parameters `apart` names each full batch's own gradient too: a step of minibatch SGD follows one
// batch's, so how far those spread about their mean is the noise each step adds to the mean's direction.
import { zeroGrad } from "../autograd/tape.js";
import { type Tensor, readTensors, tidy } from "../engine/tensor.js";
import type { Loader } from "../data/loader.js";
import { lossAndGradients } from "../train/train.js";
import type { VisionTransformer } from "../vit/model.js";

export interface TrainingGradient {
  gradient: Map<Tensor, Float64Array>; // over every image, of each of `params`
  batches: Map<Tensor, Float32Array>[]; // each full batch's own (of the loader's batch size), of each of `apart`
}

// `microBatch`: at most this many images a forward and backward pass (train/train.ts's gradient accumulation, as
// the cells trained), the loader's batch size where absent. Every parameter's requiresGrad and gradient are as they
// were before, after.
export async function trainingGradient(model: VisionTransformer, loader: Loader, params: Tensor[], apart: Tensor[] = [], microBatch = loader.batchSize): Promise<TrainingGradient> {
  if (!model.head) throw new Error("training gradient: the model has no head, so no training loss");
  const n = loader.dataset.length;
  if (n === 0) throw new Error("training gradient: no images to take the loss over");
  const all = model.parameters().map(([, t]) => t);
  const flags = all.map((t) => t.requiresGrad);
  const size = loader.transform.spec.size;
  const gradient = new Map(params.map((t) => [t, new Float64Array(t.size)]));
  const batches: Map<Tensor, Float32Array>[] = [];
  try {
    for (const t of all) t.requireGrad(params.includes(t));
    for await (const batch of loader.epoch(0)) {
      zeroGrad(params);
      tidy(() => lossAndGradients(model, batch, size, microBatch));
      const read = await readTensors(params.map((t) => t.grad!));
      const share = batch.labels.length / n;
      params.forEach((t, j) => {
        const sum = gradient.get(t)!;
        for (let i = 0; i < sum.length; i++) sum[i] += share * read[j][i];
      });
      if (batch.labels.length === loader.batchSize && apart.length > 0) batches.push(new Map(apart.map((t) => [t, read[params.indexOf(t)]])));
    }
    return { gradient, batches };
  } finally {
    zeroGrad(params);
    all.forEach((t, i) => t.requireGrad(flags[i]));
  }
}
