// A fine-tuned backbone moved back along the straight line to where fine-tuning started, as WiSE-FT interpolates
// weights (Wortsman et al., "Robust fine-tuning of zero-shot models", 2022): at weight α each trained tensor of the
// backbone holds (1 - α) · start + α · fine-tuned, so α = 0 is the model at step 0 under the fine-tuned head and
// α = 1 the fine-tuned model, bit for bit. By default the head is not moved: the weights go back, the classifier
// trained on them stays (the study's transfer accuracy needs a head, and the one at step 0 is untrained). Where the
// caller has put a trained head of its own in the model at step 0 (linear probing's, the end WiSE-FT's zero-shot
// model stands for), the head moves too, and α = 0 is that model whole. LoRA's A is the exception: it keeps its
// fine-tuned value while B moves, so the adapted weight W + s · B A is the straight line between the original's W and
// the fine-tuned model's merged weight (B is zero at step 0; moving A too would bend it, α² where A is small). Block
// Expansion's new blocks move from the copy that computes the identity.
import type { VisionTransformer } from "../vit/model.js";
import { isLoraKey } from "../peft/lora.js";
import { withEachEdit } from "./weight-edit.js";

export interface InterpolationPoint {
  alpha: number; // the share of fine-tuning's change kept: 0 the model at step 0, 1 the fine-tuned one
  tensors: string[]; // the parameters it moves, by name: every trainable one of the backbone, and the head's with `head`
}

// The weights to measure a model whose trainable parameters are `trainable` (by name) at: each α of `alphas`, every
// trained tensor of the backbone moved, and with `head` the head's too. None where the backbone trains nothing (linear
// probing: its head alone would move between two heads on the same features).
export function interpolationPoints(trainable: string[], alphas: number[], head = false): InterpolationPoint[] {
  for (const a of alphas) if (!(a >= 0 && a <= 1)) throw new Error(`weight interpolation: expected weights in [0, 1], got ${a}`);
  const backbone = trainable.filter((name) => !name.startsWith("head."));
  const tensors = head ? trainable : backbone;
  return backbone.length === 0 ? [] : alphas.map((alpha) => ({ alpha, tensors }));
}

// A tensor's value at weight α: in float64, rounded once to float32; LoRA's A at its fine-tuned value.
export function interpolated(alpha: number, name: string, tuned: Float32Array, start: Float32Array): Float32Array {
  if (isLoraKey(name) && name.endsWith(".A")) return tuned;
  const out = new Float32Array(tuned.length);
  for (let i = 0; i < out.length; i++) out[i] = (1 - alpha) * start[i] + alpha * tuned[i];
  return out;
}

// `measure(point)` of `model` at each point, `initial` the model where its fine-tuning started, the fine-tuned values
// written back after each (and after a failure), bit for bit.
export function withEachInterpolation<T>(model: VisionTransformer, initial: VisionTransformer, points: InterpolationPoint[], measure: (point: InterpolationPoint) => Promise<T>): Promise<T[]> {
  return withEachEdit("weight interpolation", model, initial, points, (p, name, tuned, start) => interpolated(p.alpha, name, tuned, start), measure);
}
