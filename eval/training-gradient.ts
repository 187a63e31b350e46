// The training loss's gradient on some of a model's parameters: L the mean cross-entropy of the model's head over
// every image of a loader (a cell's training images, as it trained on them, in batches of its training batch size),
// differentiated with respect to `params` alone, every other parameter held, read back and summed in float64 on the
// host. A step of minibatch SGD follows one batch's gradient, so how far those spread about their mean is the noise
// each step adds to the mean's direction: of every parameter the full batches' spread, and for the parameters
// `apart` names each full batch's own gradient too.
import { zeroGrad } from "../autograd/tape.js";
import { type Tensor, readTensors, tidy } from "../engine/tensor.js";
import type { Loader } from "../data/loader.js";
import { lossAndGradients } from "../train/train.js";
import type { VisionTransformer } from "../vit/model.js";

export interface TrainingGradient {
  gradient: Map<Tensor, Float64Array>; // over every image, of each of `params`
  // Of each of `params`, the full batches' variance about their own mean summed over the tensor's values, unbiased:
  // sum over batches of ||g_B - mean||^2 / (batches - 1), the expected ||g_B - E g_B||^2 of a batch of the loader's
  // size (NaN with fewer than two full batches). Summed over a part's tensors it is the part's.
  spread: Map<Tensor, number>;
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
  // The full batches' gradients summed, and their squared sizes, for the spread.
  const fullSum = new Map(params.map((t) => [t, new Float64Array(t.size)]));
  const fullSquares = new Map(params.map((t) => [t, 0]));
  let full = 0;
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
      if (batch.labels.length < loader.batchSize) continue;
      full++;
      params.forEach((t, j) => {
        const sum = fullSum.get(t)!;
        let squares = 0;
        for (let i = 0; i < sum.length; i++) {
          sum[i] += read[j][i];
          squares += read[j][i] * read[j][i];
        }
        fullSquares.set(t, fullSquares.get(t)! + squares);
      });
      if (apart.length > 0) batches.push(new Map(apart.map((t) => [t, read[params.indexOf(t)]])));
    }
    // sum ||g_B - mean||^2 = sum ||g_B||^2 - ||sum g_B||^2 / k, in float64 of float32 gradients: the cancellation costs
    // digits only where the spread is many orders of magnitude below the mean.
    const spread = new Map(params.map((t) => {
      const sum = fullSum.get(t)!;
      let squares = 0;
      for (let i = 0; i < sum.length; i++) squares += sum[i] * sum[i];
      return [t, full < 2 ? NaN : Math.max(0, fullSquares.get(t)! - squares / full) / (full - 1)];
    }));
    return { gradient, spread, batches };
  } finally {
    zeroGrad(params);
    all.forEach((t, i) => t.requireGrad(flags[i]));
  }
}
