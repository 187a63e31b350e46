// Mixed precision in the training loops (train/train.ts, train/dino-pretrain.ts): the precision key's checks, the
// loss scaler of an "f16" run (an "int8" or "int8x2" run has none), and the loss scaling a loop records with its
// metrics. A step's record, (2) on the device, is its gradient factor (0 when the step was skipped) and the scale after
// the step; the loop reads it back with the step's loss, so the columns cost no read-back of their own.
import type { Tensor } from "../engine/tensor.js";
import { runtime } from "../engine/runtime.js";
import * as ops from "../autograd/ops.js";
import { PRECISIONS, type Precision, int8SelfCheck, precisionLacks } from "../autograd/precision.js";
import { LOSS_SCALE_DEFAULTS, LossScaler, type LossScaleSettings } from "../autograd/loss-scale.js";

// `precision` as a config gives it; `key` names it in the errors (e.g. "training.precision").
function checkPrecision(op: string, key: string, precision: unknown): void {
  if (precision !== undefined && !PRECISIONS.includes(precision as never)) {
    throw new Error(`${op}: expected precision (${key}) to be one of ${PRECISIONS.join(", ")}, got ${JSON.stringify(precision)}`);
  }
  const lacks = precision === undefined ? undefined : precisionLacks(precision as Precision, runtime().gpu);
  if (lacks) throw new Error(`${op}: precision "${precision}" (${key}) needs ${lacks}; use "f32"`);
}

// checkPrecision, then for "int8" and "int8x2" the device's check of its int8 products (kernels/tensor-core-check.ts,
// once per process): a driver that computes them wrong is refused here, before any work, not found in a run's
// results. (The mma versions of f32 and f16 products run only where `tune` chose them, which checks them first.)
export async function checkPrecisionOnDevice(op: string, key: string, precision: unknown): Promise<void> {
  checkPrecision(op, key, precision);
  if (precision !== "int8" && precision !== "int8x2") return;
  const fault = await int8SelfCheck(precision);
  if (fault) throw new Error(`${op}: precision "${precision}" (${key}): this adapter's int8 products failed their check on the device (${fault}); use "f32"`);
}

// The loss scaling of a run in `precision`: its settings over GradScaler's defaults; none in f32.
export function lossScaleFor(precision: string | undefined, settings: Partial<LossScaleSettings> | undefined): LossScaleSettings | undefined {
  return precision === "f16" ? { ...LOSS_SCALE_DEFAULTS, ...settings } : undefined;
}

export function lossScalerFor(precision: string | undefined, settings: Partial<LossScaleSettings> | undefined): LossScaler | undefined {
  const full = lossScaleFor(precision, settings);
  return full && new LossScaler(full);
}

// A step's record: (2) [factor, scale after the step], copied now (the scale changes in place at the next step).
export function scalingRecord(factor: Tensor, scaler: LossScaler): Tensor {
  return ops.concat([factor.reshape([1]), scaler.scale.reshape([1])], 0);
}

export interface ScalingColumns {
  lossScale: number; // the scale after the step: the next step's
  skippedSteps: number; // steps skipped for an overflow so far, this one included
}

// A step's columns from its record read back, given the steps skipped before it.
export function scalingColumns(record: ArrayLike<number>, skippedBefore: number): ScalingColumns {
  return { lossScale: record[1], skippedSteps: skippedBefore + (record[0] === 0 ? 1 : 0) };
}
