// Top-1 accuracy of a model's linear head on a labelled set: the transfer accuracy of the study, evaluated by the
// trainer every few steps (train/train.ts takes it as its `evaluate`). Full batches are replayed
// (eval/replayed-forward.ts; PEFT_REPLAY=0 runs every batch), with the run batches' logits to the bit, and the
// logits read back together (eval/loader-outputs.ts).
import { runtime } from "../engine/runtime.js";
import type { Tensor } from "../engine/tensor.js";
import type { VisionTransformer } from "../vit/model.js";
import type { Loader } from "../data/loader.js";
import { ReplayedForward } from "./replayed-forward.js";
import { loaderOutputs } from "./loader-outputs.js";

// Top-1 accuracy (percent) of the model's head on every batch of `loader`.
export async function evaluateAccuracy(model: VisionTransformer, loader: Loader): Promise<number> {
  return (await evaluateCorrect(model, loader)).accuracy;
}

// The same, with which images it classified right: `correct` (N) is 1 where the head's best class (the first of equal
// logits) is the image's label, in the loader's order.
export async function evaluateCorrect(model: VisionTransformer, loader: Loader): Promise<{ accuracy: number; correct: Uint8Array }> {
  const forward = (x: Tensor) => model.forward(x);
  const replayed = runtime().settings.replay ? new ReplayedForward(forward, "accuracy: batches are run, not replayed") : undefined;
  try {
    const { values, labels, width } = await loaderOutputs(loader, forward, replayed);
    if (labels.length === 0) throw new Error("accuracy: expected a non-empty test set, got 0 images");
    const correct = new Uint8Array(labels.length);
    let right = 0;
    for (let i = 0; i < labels.length; i++) {
      let best = 0;
      for (let c = 1; c < width; c++) if (values[i * width + c] > values[i * width + best]) best = c;
      if (best === labels[i]) right += correct[i] = 1;
    }
    return { accuracy: (100 * right) / labels.length, correct };
  } finally {
    replayed?.dispose();
  }
}
