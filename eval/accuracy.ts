// Top-1 accuracy of a model's linear head on a labelled set: the transfer accuracy of the study, evaluated by the
// trainer every few steps (train/train.ts takes it as its `evaluate`). Full batches are replayed
// (eval/replayed-forward.ts; PEFT_REPLAY=0 runs every batch), with the run batches' logits to the bit.
import { runtime } from "../engine/runtime.js";
import { Tensor, tidy } from "../engine/tensor.js";
import { noGrad } from "../autograd/tape.js";
import type { VisionTransformer } from "../vit/model.js";
import type { Loader } from "../data/loader.js";
import { ReplayedForward } from "./replayed-forward.js";

// Top-1 accuracy (percent) of the model's head on every batch of `loader`.
export async function evaluateAccuracy(model: VisionTransformer, loader: Loader): Promise<number> {
  const size = loader.transform.size;
  const replayed = runtime().settings.replay ? new ReplayedForward((x) => model.forward(x), "accuracy: batches are run, not replayed") : undefined;
  const logitsOf = async (images: Float32Array, n: number) => {
    const shape = [n, 3, size, size];
    if (replayed && n === loader.batchSize) return replayed.call(images, shape);
    const logits = tidy(() => noGrad(() => model.forward(Tensor.fromArray(images, shape))));
    const v = await logits.data();
    logits.dispose();
    return v;
  };
  let correct = 0;
  let total = 0;
  try {
    for await (const b of loader.epoch(0)) {
      const v = await logitsOf(b.images, b.labels.length);
      const classes = v.length / b.labels.length;
      for (let i = 0; i < b.labels.length; i++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (v[i * classes + c] > v[i * classes + best]) best = c;
        if (best === b.labels[i]) correct++;
      }
      total += b.labels.length;
    }
  } finally {
    replayed?.dispose();
  }
  if (total === 0) throw new Error("accuracy: expected a non-empty test set, got 0 images");
  return (100 * correct) / total;
}
