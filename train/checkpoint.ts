// The trainer's checkpoints: which settings a checkpoint belongs to (its fingerprint), reading tensors back for
// one (refusing non-finite values, which would poison it), loading one into a model's tensors, and removing the
// temporary files of the writes a kill cut short.
//
//   last.safetensors   trainable tensors + optimiser state (`optimizer.<param>.<slot>`; in f16 also AdamW's step
//                      count on the device, `optimizer.step`, and the loss scale, `lossScale.*`); metadata: format,
//                      the fingerprint, step, best so far, optimiser step count, loader position
//   best.safetensors   trainable tensors at the best evaluation; metadata: format, step, accuracy
// Both carry the checksum of their tensors (vit/safetensors.ts); a checkpoint is loaded only when it matches.
import { type Tensor, readTensors } from "../engine/tensor.js";
import type { Loader } from "../data/loader.js";
import { type F32Tensor, readSafetensors } from "../vit/safetensors.js";
import { type TrainSettings, runIdentity } from "./settings.js";
import { lossScaleFor } from "./mixed-precision.js";
import { removeStaleTemporaries } from "../util/atomic.js";

// The two files' names in the trainer's folder: a study scores and analyses the best, resume continues from the last.
export const LAST_CHECKPOINT = "last.safetensors";
export const BEST_CHECKPOINT = "best.safetensors";

// The prefix of the optimiser's state in the last checkpoint (and a study's kept steps): `optimizer.<param>.<slot>`.
export const OPTIMIZER_STATE = "optimizer.";

// 2: with the tensors' checksum. A checkpoint of format 1 is refused as one of other settings.
export const FORMAT = "peft-vit-webgpu/train-checkpoint/2";

// What must match for a checkpoint to be resumed: the settings that decide the trajectory (runIdentity), the
// batches (size, seed, data) and the trainable tensors. Cadences (evalEvery, lossEvery) may change.
export function fingerprint(s: TrainSettings, train: Loader, trainable: [string, Tensor][]): string {
  return runIdentity({
    steps: s.steps,
    lr: s.lr,
    warmup: s.warmupSteps,
    optimizer: s.optimizer,
    momentum: s.momentum,
    weightDecay: s.weightDecay,
    clipNorm: s.clipNorm ?? null,
    ...(s.layerDecay !== undefined ? { layerDecay: s.layerDecay } : {}), // absent, as in checkpoints from before the key
    ...(s.keepFlat ? { keepFlat: true } : {}), // likewise
    ...(s.schedule ? { schedule: s.schedule } : {}), // absent for the cosine decay, as in checkpoints from before the key
    // Absent in f32, as in checkpoints from before the keys.
    ...(s.precision && s.precision !== "f32" ? { precision: s.precision } : {}),
    ...(s.precision === "f16" ? { lossScale: lossScaleFor(s.precision, s.lossScale) } : {}),
    batch: train.batchSize,
    seed: train.seed,
    data: train.dataset.identity.hash,
    trainable: trainable.map(([n, t]) => `${n}:${t.shape.join("x")}`),
  });
}

export class NonFiniteError extends Error {}

// Reads every tensor back; a non-finite value throws a NonFiniteError naming the tensor, index and step, unless
// `judged` is false (on Dawn's null backend, whose read-backs are no results: train/train.ts).
export async function snapshot(tensors: [string, Tensor][], step: number, judged = true): Promise<Map<string, F32Tensor>> {
  const out = new Map<string, F32Tensor>();
  const values = await readTensors(tensors.map(([, t]) => t));
  for (const [i, [name, t]] of tensors.entries()) {
    const data = values[i];
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (judged && bad >= 0) throw new NonFiniteError(`${name}[${bad}] = ${data[bad]} after step ${step}`);
    out.set(name, { shape: [...t.shape], data });
  }
  return out;
}

// Writes the named tensors of `path` into `tensors` (same names and sizes), e.g. the best checkpoint into a model.
// `older`: the values of tensors that checkpoints of an earlier version lack, by name (undefined: required).
export async function loadTrainable(
  path: string,
  tensors: [string, Tensor][],
  older?: (name: string) => Float32Array | undefined,
): Promise<Record<string, string>> {
  const { tensors: saved, metadata } = await readSafetensors(path);
  for (const [name, t] of tensors) {
    const fallback = saved.has(name) ? undefined : older?.(name);
    const s = fallback ? { shape: [...t.shape], data: fallback } : saved.get(name);
    if (!s) throw new Error(`train: ${path}: expected tensor ${name} (${t.shape.join(", ")}), it is missing`);
    if (s.data.length !== t.size) throw new Error(`train: ${path}: expected ${name} (${t.shape.join(", ")}), got (${s.shape.join(", ")})`);
    t.write(s.data);
  }
  return metadata;
}

// Removes the temporary files of the atomic writes that killed runs cut short under `dir` (util/atomic.ts), saying
// how many: a killed run leaves one per kill, a checkpoint's size each, that nothing else would remove.
export async function sweepTemporaries(dir: string, log?: (line: string) => void): Promise<void> {
  const n = await removeStaleTemporaries(dir);
  if (n > 0) log?.(`removed ${n} temporary file(s) of writes cut short by an interrupted run, in ${dir}`);
}
