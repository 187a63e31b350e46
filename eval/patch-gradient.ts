// The training loss's gradient on the patch projection, G = [dL/dW | dL/db] (C x (K + 1), as patchProjection lays
// out [W | b]), and each full batch's own (eval/training-gradient.ts): the loss differentiated with respect to the
// patch projection alone. eval/patch-directions.ts patchDescent splits both.
import type { Loader } from "../data/loader.js";
import type { VisionTransformer } from "../vit/model.js";
import { besideBias } from "./patch-directions.js";
import { type TrainingGradient, trainingGradient } from "./training-gradient.js";

export interface PatchGradient {
  gradient: Float64Array; // over every image
  batches: Float64Array[]; // each full batch's own (of the loader's batch size; a smaller last one left out)
}

// `microBatch`: as trainingGradient's.
export async function patchGradient(model: VisionTransformer, loader: Loader, microBatch = loader.batchSize): Promise<PatchGradient> {
  const { weight, bias } = model.patchEmbed;
  const projection = [weight, ...(bias ? [bias] : [])];
  return patchGradientOf(model, await trainingGradient(model, loader, projection, projection, microBatch));
}

// The patch projection's part of a training gradient taken with it (and its batches, with it apart), as [W | b].
export function patchGradientOf(model: VisionTransformer, g: TrainingGradient): PatchGradient {
  const { weight, bias } = model.patchEmbed;
  const c = weight.shape[0];
  return {
    gradient: besideBias(g.gradient.get(weight)!, bias && g.gradient.get(bias), c),
    batches: g.batches.map((b) => besideBias(b.get(weight)!, bias && b.get(bias), c)),
  };
}
