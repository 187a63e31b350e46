// The training loss's gradient on the patch projection, G = [dL/dW | dL/db] (C x (K + 1), as patchProjection lays
// out [W | b]): L the mean cross-entropy of the model's head over every image of a loader (a cell's training images,
// as it trained on them, in batches of its training batch size), differentiated with respect to the patch
// projection alone, every other parameter held. Each batch's own gradient is read too (float64 on the host): a
// step of minibatch SGD follows one batch's, so how far those spread about their mean is the noise each step adds to
// the mean's direction. eval/patch-directions.ts patchDescent splits both.
import { zeroGrad } from "../autograd/tape.js";
import { tidy } from "../engine/tensor.js";
import type { Loader } from "../data/loader.js";
import { lossAndGradients } from "../train/train.js";
import type { VisionTransformer } from "../vit/model.js";
import { besideBias } from "./patch-directions.js";

export interface PatchGradient {
  gradient: Float64Array; // over every image
  batches: Float64Array[]; // each full batch's own (of the loader's batch size; a smaller last one left out)
}

// `microBatch`: at most this many images a forward and backward pass (train/train.ts's gradient accumulation, as
// the cells trained), the loader's batch size where absent.
export async function patchGradient(model: VisionTransformer, loader: Loader, microBatch = loader.batchSize): Promise<PatchGradient> {
  if (!model.head) throw new Error("patch gradient: the model has no head, so no training loss");
  const n = loader.dataset.length;
  if (n === 0) throw new Error("patch gradient: no images to take the loss over");
  const { weight, bias } = model.patchEmbed;
  const projection = [weight, ...(bias ? [bias] : [])];
  const params = model.parameters().map(([, t]) => t);
  const flags = params.map((t) => t.requiresGrad);
  const size = loader.transform.spec.size;
  const gradient = new Float64Array(weight.shape[0] * (weight.shape[1] + 1));
  const batches: Float64Array[] = [];
  try {
    for (const t of params) t.requireGrad(projection.includes(t));
    for await (const batch of loader.epoch(0)) {
      zeroGrad(projection);
      tidy(() => lossAndGradients(model, batch, size, microBatch));
      const own = besideBias(await weight.grad!.data(), bias && (await bias.grad!.data()), weight.shape[0]);
      const share = batch.labels.length / n;
      for (let i = 0; i < own.length; i++) gradient[i] += share * own[i];
      if (batch.labels.length === loader.batchSize) batches.push(own);
    }
    return { gradient, batches };
  } finally {
    zeroGrad(projection);
    params.forEach((t, i) => t.requireGrad(flags[i]));
  }
}
