// How a model is trained, as one value: the trainer takes TrainSettings whole, with every default already filled
// in from TRAIN_DEFAULTS (the study config and pre-training both start from them). And what makes two runs the
// same run: runIdentity, the one rule behind a checkpoint's fingerprint, a cached backbone's hash and a study
// folder's config check.

import { PRECISIONS, type Precision } from "../autograd/precision.js";
import type { LossScaleSettings } from "../autograd/loss-scale.js";
import { differences } from "../util/differences.js";

export { type LossScaleSettings, PRECISIONS, type Precision };

export type OptimizerName = "sgd" | "adamw";
export const OPTIMIZERS: readonly OptimizerName[] = ["sgd", "adamw"];

export interface TrainSettings {
  steps: number;
  batchSize: number; // images per step
  lr: number; // peak learning rate: linear warm-up, then cosine decay (train/schedule.ts)
  warmupSteps: number;
  schedule?: "constant"; // after the warm-up, the peak rate to the end (train/schedule.ts); absent: the cosine decay
  optimizer: OptimizerName;
  momentum: number; // SGD's; AdamW runs ignore it
  weightDecay: number;
  clipNorm?: number; // clip the global gradient norm to this
  layerDecay?: number; // layer-wise rate decay (peft/layer-decay.ts): `lr` is the head's rate; absent: one rate for all
  keepFlat?: true; // the patch projection's response to a flat patch held (train/flat-response.ts)
  evalEvery: number; // evaluate (and checkpoint) every this many steps, and at the end
  lossEvery: number; // read the losses back (and check them) every this many steps
  microBatch?: number; // images per forward + backward pass, gradients accumulated; absent: the whole batch
  precision?: Precision; // "f16": matrix products in mixed precision, "int8", "int8x2": as int8 slices (autograd/precision.ts); absent: "f32"
  lossScale?: Partial<LossScaleSettings>; // with f16: dynamic loss scaling's settings over LOSS_SCALE_DEFAULTS
}

// The settings a study or a pre-training leaves out. Momentum 0.9 is the paper's (SGD, as its code).
export const TRAIN_DEFAULTS = {
  warmupSteps: 0,
  optimizer: "sgd" as OptimizerName,
  momentum: 0.9,
  weightDecay: 0,
  lossEvery: 10,
};

// A value's identity as a string: its JSON without the keys that change only how a step is computed, not what it
// computes. microBatch splits a step's batch into passes whose gradients add up to the same sum (float rounding
// aside), so a run stopped by a binding-size error can resume, reuse its cached backbone and keep its folder with
// a smaller one.
export function runIdentity(value: unknown): string {
  return JSON.stringify(value, (key, v) => (key === "microBatch" ? undefined : v));
}

// What differs between two identities (runIdentity's strings), by key path with both values: a refused resume names
// what changed ("lr: 0.001 -> 0.002", "model.heads: 2 -> 4") instead of printing both identities whole.
export function identityChanges(saved: string, now: string): string[] {
  const parse = (s: string): unknown => {
    try {
      return JSON.parse(s);
    } catch {
      return s;
    }
  };
  return differences(parse(saved), parse(now)).map((d) => d.text);
}
