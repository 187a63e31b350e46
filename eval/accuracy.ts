// Top-1 accuracy of a model's linear head on a labelled set: the transfer accuracy of the study, evaluated by the
// trainer every few steps (train/train.ts takes it as its `evaluate`).
import { Tensor, tidy } from "../engine/tensor.js";
import { noGrad } from "../autograd/tape.js";
import type { VisionTransformer } from "../vit/model.js";
import type { Loader } from "../data/loader.js";

// Top-1 accuracy (percent) of the model's head on every batch of `loader`.
export async function evaluateAccuracy(model: VisionTransformer, loader: Loader): Promise<number> {
  let correct = 0;
  let total = 0;
  for await (const b of loader.epoch(0)) {
    const size = loader.transform.size;
    const logits = tidy(() => noGrad(() => model.forward(Tensor.fromArray(b.images, [b.labels.length, 3, size, size]))));
    const v = await logits.data();
    logits.dispose();
    const classes = v.length / b.labels.length;
    for (let i = 0; i < b.labels.length; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (v[i * classes + c] > v[i * classes + best]) best = c;
      if (best === b.labels[i]) correct++;
    }
    total += b.labels.length;
  }
  if (total === 0) throw new Error("accuracy: expected a non-empty test set, got 0 images");
  return (100 * correct) / total;
}
