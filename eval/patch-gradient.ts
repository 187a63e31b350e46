// The training loss's gradient on the patch projection, G = [dL/dW | dL/db] (C x (K + 1), as patchProjection lays
// out [W | b]): L the mean cross-entropy of the model's head over every image of a loader (a cell's training images,
// as it trained on them), differentiated with respect to the patch projection alone, every other parameter held.
// Summed on the device batch by batch (each batch's mean loss scaled by its share of the images), read in float64.
// Where the next step of gradient descent would take the patch projection, the step's direction without the
// minibatch's noise and the optimizer's memory (eval/patch-directions.ts patchDescent splits it).
import * as ops from "../autograd/ops.js";
import { backward, zeroGrad } from "../autograd/tape.js";
import { tidy } from "../engine/tensor.js";
import type { Loader } from "../data/loader.js";
import { batchImages } from "../train/batch-images.js";
import type { VisionTransformer } from "../vit/model.js";
import { besideBias } from "./patch-directions.js";

export async function patchGradient(model: VisionTransformer, loader: Loader): Promise<Float64Array> {
  if (!model.head) throw new Error("patch gradient: the model has no head, so no training loss");
  const n = loader.dataset.length;
  if (n === 0) throw new Error("patch gradient: no images to take the loss over");
  const { weight, bias } = model.patchEmbed;
  const projection = [weight, ...(bias ? [bias] : [])];
  const params = model.parameters().map(([, t]) => t);
  const flags = params.map((t) => t.requiresGrad);
  const size = loader.transform.spec.size;
  try {
    for (const t of params) t.requireGrad(projection.includes(t));
    zeroGrad(projection);
    for await (const batch of loader.epoch(0)) {
      tidy(() => backward(ops.scale(ops.crossEntropy(model.forward(batchImages(batch, size)), batch.labels), batch.labels.length / n)));
    }
    return besideBias(await weight.grad!.data(), bias && (await bias.grad!.data()), weight.shape[0]);
  } finally {
    zeroGrad(projection);
    params.forEach((t, i) => t.requireGrad(flags[i]));
  }
}
