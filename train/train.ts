// The training loop: cross-entropy through the model's linear head, SGD with momentum or AdamW (with `layerDecay`,
// each layer at its own share of the rate: peft/layer-decay.ts), linear warm-up then cosine decay, an evaluation
// every `evalEvery` steps (the caller's `evaluate`: transfer accuracy in a study), the best checkpoint by that score
// and the last one, per-step metrics, progress, resume. Settings come whole, as TrainSettings (train/settings.ts).
//
// Files in `dir` (all written atomically, see util/atomic.ts and vit/safetensors.ts):
//   last.safetensors, best.safetensors   see train/checkpoint.ts
//   metrics.csv/json   one row per step: step, loss, lr (the head's), accuracy (where evaluated), images/s; in f16
//                      also the loss scale after the step and the steps skipped so far
// Checkpoints and metrics are written after each evaluation and at the end; resuming continues from last's step
// with the loader at the same position, so a resumed run computes exactly what an uninterrupted one does.
//
// GPU round trips: a step only encodes work. Losses stay on the device and are read back together every
// `lossEvery` steps (and before each checkpoint), which is also when finiteness is checked; a non-finite loss, or
// a non-finite value in a tensor about to be checkpointed, stops the run with a DivergedError before anything is
// overwritten.
//
// Mixed precision (`precision` "f16", autograd/precision.ts) runs each step's forward and backward with f16 inputs to
// the matrix products, and dynamic loss scaling (autograd/loss-scale.ts): the backward seeded with the scale, the
// optimiser's gradient factor its inverse (times the clip coefficient), a step with an inf or NaN gradient skipped on
// the device, AdamW's step count with it (autograd/optim.ts). The scale is checkpointed with the optimiser state;
// metrics gain the scale after each step and the count of skipped steps (train/mixed-precision.ts). `precision`
// "int8" or "int8x2" runs the same products on 8-bit tensor cores as 3 or 2 int8 slices, and nothing else changes.
//
// Gradient accumulation (`microBatch`): a step's batch of B images runs as forward + backward passes of at most
// `microBatch` images each, the gradients adding up in the leaves' .grad, then one optimiser step. Each pass's
// loss is scaled by its share of the batch (rows / B), so the gradients and the loss are the batch mean's. It
// bounds each pass's activations: on lavapipe one storage binding holds at most 128 MiB, which caps ViT-B
// training batches at about 50 images per pass.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Tensor, tidy, tidyAsync } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { backward } from "../autograd/tape.js";
import { withPrecision } from "../autograd/precision.js";
import { AdamW, SGD, type Optimizer, clipGradNorm } from "../autograd/optim.js";
import type { VisionTransformer } from "../vit/model.js";
import { layerRateScale } from "../peft/layer-decay.js";
import { CHECKSUM_KEY, ChecksumError, readSafetensorsHeader, writeSafetensors } from "../vit/safetensors.js";
import type { Batch, Loader } from "../data/loader.js";
import { type Schedule, checkSchedule, learningRate } from "./schedule.js";
import { Progress, type ProgressStream } from "./progress.js";
import { BEST_CHECKPOINT, FORMAT, LAST_CHECKPOINT, NonFiniteError, OPTIMIZER_STATE, fingerprint, loadTrainable, snapshot } from "./checkpoint.js";
import { type TrainSettings, identityChanges } from "./settings.js";
import { withFlatResponseHeld } from "./flat-response.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { readMetricsFile } from "./metrics-file.js";
import { type ScalingColumns, checkPrecisionOnDevice, lossScalerFor, scalingColumns, scalingRecord } from "./mixed-precision.js";
import { ReplayedLoss } from "./replayed-loss.js";
import { batchImages } from "./batch-images.js";
import { runtime } from "../engine/runtime.js";
import { makeFolder } from "../util/make-folder.js";

export interface TrainOptions {
  model: VisionTransformer; // with a head for the training labels' classes
  trainable: [string, Tensor][]; // the tensors to update, named (applyStrategy's result)
  train: Loader; // training batches of settings.batchSize, visited epoch after epoch; (B, 3, S, S) images
  settings: TrainSettings;
  // The score of the model as it is (percent, higher is better: eval/accuracy.ts on the transfer test set), every
  // `evalEvery` steps and at the end; the best-scoring step is saved as best. Without it best = last.
  evaluate?: () => Promise<number>;
  dir: string; // checkpoints and metrics
  metadata?: Record<string, string>; // more metadata for both checkpoints (a study cell's manifest, peft/save.ts)
  resume?: boolean; // default true: continue from dir/last.safetensors when it exists
  progress?: { stream: ProgressStream; label: string };
  // After each completed step (and its evaluation and checkpoint, where it has them), the model updated: a study
  // scores its backbone there (that time is not counted as training), keeps it with the optimiser's state (`state`,
  // named as checkpoints name it), tests interrupt runs with it.
  onStep?: (step: number, state: [string, Tensor][]) => void | Promise<void>;
  onResume?: (step: number) => void; // once a checkpoint of `step` is loaded, before the first step after it
}

// lossScale, skippedSteps: in f16 (train/mixed-precision.ts).
export interface MetricRow extends Partial<ScalingColumns> {
  step: number; // 1-based: the row describes the update that made `step` updates in total
  loss: number; // the training loss of this step's batch (before the update)
  lr: number; // the rate this step used
  accuracy: number | null; // transfer test accuracy in percent after this step, where evaluated
  imagesPerSecond: number; // training throughput over the read-back window holding this step
}

export interface TrainResult {
  steps: number;
  resumedFrom: number; // 0 for a fresh run
  bestStep: number; // the evaluated step with the highest accuracy (the last step without a test set)
  bestAccuracy: number | null; // percent
  finalAccuracy: number | null;
  finalLoss: number;
  // Wall time in train(); a resumed run adds its steps before the resume at the speeds their metric rows recorded
  // (those processes' evaluations and checkpoints not counted): else a cell resumed at its last step trained in 0 s.
  seconds: number;
  imagesPerSecond: number; // mean training throughput over every step, the resumed ones' at their rows' speeds
  bestPath: string;
  lastPath: string;
  metrics: MetricRow[];
}

// The training seconds metric rows record: each row's steps since the row before it, at its window's throughput.
export function rowSeconds(rows: { step: number; imagesPerSecond: number }[], batchSize: number): number {
  let seconds = 0;
  let previous = 0;
  for (const r of rows) {
    if (r.imagesPerSecond > 0) seconds += (batchSize * (r.step - previous)) / r.imagesPerSecond;
    previous = r.step;
  }
  return seconds;
}

// A pass of `microBatch` images that outgrew one storage binding. The caller, which knows where microBatch was
// set (a config key), adds the way out to the message.
export class PassTooLargeError extends Error {
  constructor(
    message: string,
    readonly microBatch: number, // the images per pass that failed
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

// A run whose loss, or a parameter about to be checkpointed, became non-finite: at `step`, with the last loss read
// (`loss`: the non-finite one, or for a parameter the loss before it) and the scheduled rate of that step.
// `suspect`: it happened in the first read-back window after resuming, so the checkpoint resumed from is suspect
// rather than good. The caller decides whether a divergence ends its work (pre-training) or is a result (a cell).
export class DivergedError extends Error {
  constructor(
    message: string,
    readonly step: number,
    readonly loss: number,
    readonly lr: number,
    readonly suspect: boolean,
  ) {
    super(message);
  }
}

function checkOptions(o: TrainOptions): void {
  const s = o.settings;
  const posInt = (v: number | undefined, what: string) => {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new Error(`train: expected ${what} to be an integer >= 1, got ${v}`);
  };
  posInt(s.steps, "steps");
  posInt(s.evalEvery, "evalEvery");
  posInt(s.lossEvery, "lossEvery");
  posInt(s.microBatch, "microBatch");
  checkSchedule({ base: s.lr, warmup: s.warmupSteps, total: s.steps });
  if (o.train.batchSize !== s.batchSize) throw new Error(`train: expected a loader of batch size ${s.batchSize}, got ${o.train.batchSize}`);
  if (o.trainable.length === 0) throw new Error("train: expected at least one trainable tensor, got none");
  if (o.train.batchesPerEpoch === 0) {
    throw new Error(`train: expected at least one batch per epoch, got ${o.train.dataset.length} images for batch size ${o.train.batchSize} with dropLast`);
  }
  if (!o.model.head) throw new Error("train: expected a model with a head (apply a strategy first)");
}

// skipZero: for loss-scaled steps (autograd/optim.ts). depth: the model's blocks, for the layer-wise decay.
function makeOptimizer(trainable: [string, Tensor][], s: TrainSettings, skipZero: boolean, depth: number): Optimizer {
  const params = trainable.map(([, t]) => t);
  const lrScale = s.layerDecay === undefined ? undefined : layerRateScale(trainable, depth, s.layerDecay);
  if (s.optimizer === "sgd") return new SGD(params, { lr: s.lr, momentum: s.momentum, weightDecay: s.weightDecay, lrScale, skipZero });
  return new AdamW(params, { lr: s.lr, weightDecay: s.weightDecay, lrScale, skipZero });
}

// Batches from `step` on: epoch after epoch of the loader, skipping what earlier steps consumed.
async function* batchesFrom(loader: Loader, step: number): AsyncGenerator<Batch> {
  const per = loader.batchesPerEpoch;
  let skip = step % per;
  for (let epoch = Math.floor(step / per); ; epoch++) {
    for await (const b of loader.epoch(epoch)) {
      if (skip > 0) skip--;
      else yield b;
    }
  }
}

// Forward and backward of one batch in passes of at most `micro` images; returns the batch's mean loss, detached.
// Each pass runs in its own tidy, so its graph and activations are released before the next pass is encoded.
// Dropout masks and the like come from seeded generators in row-major order, so the slices see the same values.
// `seed`: the backward's output gradient (the loss scale), 1 when absent.
export function lossAndGradients(model: VisionTransformer, b: Batch, size: number, micro: number, seed?: Tensor): Tensor {
  const B = b.labels.length;
  if (micro >= B) {
    const l = ops.crossEntropy(model.forward(batchImages(b, size)), b.labels);
    backward(l, seed?.reshape(l.shape));
    return l.detach();
  }
  let total: Tensor | undefined;
  for (let i = 0; i < B; i += micro) {
    const rows = Math.min(micro, B - i);
    const part = tidy(() => {
      const x = batchImages(b, size, i, i + rows);
      // Scaled by the slice's share: the slices' mean losses (and gradients) sum to the batch mean's.
      const l = ops.scale(ops.crossEntropy(model.forward(x), b.labels.subarray(i, i + rows)), rows / B);
      backward(l, seed?.reshape(l.shape));
      return l.detach();
    });
    total = total ? ops.add(total, part) : part;
  }
  return total!;
}

// scaled: the f16 columns.
function metricsCsv(rows: MetricRow[], scaled: boolean): string {
  const lines = [`step,loss,lr,accuracy,images_per_second${scaled ? ",loss_scale,skipped_steps" : ""}`];
  for (const r of rows) {
    const row = `${r.step},${r.loss},${r.lr},${r.accuracy ?? ""},${r.imagesPerSecond.toFixed(2)}`;
    lines.push(scaled ? `${row},${r.lossScale},${r.skippedSteps}` : row);
  }
  return lines.join("\n") + "\n";
}

// What a run resumes from: its last checkpoint, whose settings are checked from the header before any tensor is
// overwritten, loaded into the trainable tensors and the optimiser's state, and the metrics up to its step.
async function resumeFrom(lastPath: string, metricsPath: string, print: string, dir: string, tensors: [string, Tensor][]) {
  const { metadata: meta } = await readSafetensorsHeader(lastPath);
  if (meta.format !== FORMAT || meta.fingerprint !== print) {
    const changed = meta.format !== FORMAT ? [`format: ${meta.format} -> ${FORMAT}`] : identityChanges(meta.fingerprint, print);
    throw new Error(`train: ${lastPath} was written by a run with other settings or data (${changed.join("; ")}); delete ${dir} to start over`);
  }
  if (meta[CHECKSUM_KEY] === undefined) {
    throw new Error(`train: ${lastPath}: expected the checksum of its tensors (${CHECKSUM_KEY}) in its metadata, found none; delete ${dir} to restart this run from scratch`);
  }
  // Checkpoints from before AdamW counted on the device in f16: the count they used, skipped steps included.
  const olderCount = (name: string) => (name === "optimizer.step" ? new Float32Array([Number(meta.optimizerSteps)]) : undefined);
  await loadTrainable(lastPath, tensors, olderCount).catch((e) => {
    if (!(e instanceof ChecksumError)) throw e;
    // best.safetensors holds no optimiser state, so an exact resume can only start from a checkpoint of last's kind.
    throw new Error(`train: ${e.message}; delete ${dir} to restart this run from scratch`, { cause: e });
  });
  const step = Number(meta.step);
  const { rows } = await readMetricsFile(metricsPath, "train", ["rows"], `the metrics of ${lastPath}'s steps`, `delete ${dir} to restart this run from scratch`);
  return {
    step,
    optimizerSteps: Number(meta.optimizerSteps),
    best: JSON.parse(meta.best) as { step: number; accuracy: number | null },
    lastAccuracy: JSON.parse(meta.lastAccuracy) as number | null,
    metrics: (rows as MetricRow[]).filter((r) => r.step <= step),
  };
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  checkOptions(o);
  await checkPrecisionOnDevice("train", "training.precision", o.settings.precision);
  const started = performance.now();
  await makeFolder(o.dir);
  const s = o.settings;
  const schedule: Schedule = { base: s.lr, warmup: s.warmupSteps, total: s.steps, ...(s.schedule && { after: s.schedule }) };
  const size = o.train.transform.size;
  const microBatch = s.microBatch ?? s.batchSize;
  const lastPath = join(o.dir, LAST_CHECKPOINT);
  const bestPath = join(o.dir, BEST_CHECKPOINT);
  const metricsPath = join(o.dir, "metrics.json");
  const print = fingerprint(s, o.train, o.trainable);
  const scaler = lossScalerFor(s.precision, s.lossScale);
  // Dawn's null backend computes nothing, and what it reads back is no result: there the run is not judged for
  // divergence, so that it does every step's host work, as on a device (PEFT_BACKEND=null measures the host alone).
  const judged = runtime().gpu.backend !== "null";
  const opt = makeOptimizer(o.trainable, s, scaler !== undefined, o.model.blocks.length);
  const state = [...opt.state()].map(([name, t]): [string, Tensor] => [`${OPTIMIZER_STATE}${name}`, t]);
  if (scaler) state.push(...scaler.state());

  const resumed = (o.resume ?? true) && existsSync(lastPath) ? await resumeFrom(lastPath, metricsPath, print, o.dir, [...o.trainable, ...state]) : undefined;
  let step = resumed?.step ?? 0;
  let best = resumed?.best ?? { step: 0, accuracy: null };
  let lastAccuracy = resumed?.lastAccuracy ?? null;
  let metrics = resumed?.metrics ?? [];
  if (resumed) {
    opt.stepCount = resumed.optimizerSteps;
    o.onResume?.(step);
  }
  const resumedFrom = step;
  // Steps without gradient accumulation are replayed after the first two of a batch size (train/replayed-loss.ts),
  // in every precision: f16's seed, the loss scale, is a tensor the replayed backward reads where it is.
  const replayable = runtime().settings.replay && microBatch >= s.batchSize;
  const replayedLoss = replayable ? new ReplayedLoss(o.model, opt, size, s.precision ?? "f32", scaler?.scale) : undefined;
  // The first losses read after resuming are the first test of the checkpoint resumed from.
  let resumeUntested = resumedFrom > 0;

  const progress = o.progress && new Progress({ label: o.progress.label, total: s.steps, start: step, stream: o.progress.stream });
  // loss: the step's loss, or in f16 (3) the loss and the step's scaling record
  const pending: { row: MetricRow; loss: Tensor }[] = [];
  let windowStart = performance.now();
  let windowImages = 0;
  let imagesThisRun = 0;
  let trainSeconds = 0;

  const saveMetrics = async () => {
    await writeJsonAtomic(metricsPath, { rows: metrics });
    await writeFileAtomic(join(o.dir, "metrics.csv"), metricsCsv(metrics, scaler !== undefined));
  };
  const lastGood = () => {
    if (resumeUntested) {
      return `the checkpoint it resumed from, ${lastPath} (step ${resumedFrom}), is suspect: the loss was not finite in the first steps after it (damaged values, or a run that diverges there anyway); delete ${o.dir} to train this run from scratch`;
    }
    return existsSync(lastPath) ? `the last good checkpoint, ${lastPath}, is intact` : "no checkpoint had been written yet";
  };
  // `what` happened at the step of `row`, the last one read back.
  const diverged = (what: string, row: MetricRow) =>
    new DivergedError(`train: ${what} (lr ${row.lr.toExponential(2)}); stopped, ${lastGood()}`, row.step, row.loss, row.lr, resumeUntested);
  // A non-finite parameter about to be saved ends the run as a non-finite loss does.
  const nonFinite = (e: unknown) =>
    e instanceof NonFiniteError ? diverged(`non-finite parameter ${e.message}`, metrics[metrics.length - 1]) : e;

  // Reads the pending losses in one transfer and completes their metric rows.
  const flush = async () => {
    if (pending.length === 0) return;
    const all = tidy(() => ops.concat(pending.map((p) => p.loss.reshape([-1])), 0));
    const values = await all.data();
    all.dispose();
    const seconds = (performance.now() - windowStart) / 1000;
    trainSeconds += seconds;
    const rate = windowImages / seconds;
    const per = values.length / pending.length;
    let skipped = metrics[metrics.length - 1]?.skippedSteps ?? 0;
    const rows = pending.splice(0).map((p, i): MetricRow => {
      p.loss.dispose();
      const row = { ...p.row, loss: values[i * per], imagesPerSecond: rate };
      if (!scaler) return row;
      const columns = scalingColumns(values.subarray(i * per + 1, i * per + 3), skipped);
      skipped = columns.skippedSteps;
      return { ...row, ...columns };
    });
    metrics.push(...rows);
    const bad = judged ? rows.find((r) => !Number.isFinite(r.loss)) : undefined;
    if (bad) {
      await saveMetrics();
      throw diverged(`the loss became ${bad.loss} at step ${bad.step}`, bad);
    }
    resumeUntested = false;
    windowStart = performance.now();
    windowImages = 0;
  };

  const checkpoint = async () => {
    const meta = {
      ...o.metadata,
      format: FORMAT,
      fingerprint: print,
      step: String(step),
      optimizerSteps: String(opt.stepCount),
      best: JSON.stringify(best),
      lastAccuracy: JSON.stringify(lastAccuracy),
      loaderEpoch: String(Math.floor(step / o.train.batchesPerEpoch)),
      loaderBatch: String(step % o.train.batchesPerEpoch),
    };
    const tensors = await snapshot([...o.trainable, ...state], step, judged).catch((e) => {
      throw nonFinite(e);
    });
    // Metrics first: a kill between the two leaves rows past the checkpoint, which resuming drops.
    await saveMetrics();
    await writeSafetensors(lastPath, tensors, meta);
  };

  // With keepFlat, each step's change of the patch projection's weight keeps its pixel sums (train/flat-response.ts).
  const patch = o.model.patchEmbed.weight;
  const optimizerStep = (factor?: Tensor) => (s.keepFlat ? withFlatResponseHeld(patch, o.model.config.patchSize ** 2, () => opt.step(factor)) : opt.step(factor));
  try {
    if (step < s.steps) {
      const batches = batchesFrom(o.train, step);
      for (; step < s.steps; ) {
        const { value: b } = await batches.next();
        const lr = learningRate(schedule, step);
        opt.lr = lr;
        const loss = await tidyAsync(async () => {
          const replayed = await replayedLoss?.lossAndGradients(b!);
          if (!replayed) opt.zeroGrad();
          const l = replayed ?? withPrecision(s.precision ?? "f32", () => lossAndGradients(o.model, b!, size, microBatch, scaler?.scale));
          if (!scaler) {
            optimizerStep(s.clipNorm !== undefined ? clipGradNorm(opt.params, s.clipNorm).coefficient : undefined);
            return l;
          }
          const factor = scaler.unscale(opt.params, s.clipNorm);
          optimizerStep(factor);
          return ops.concat([l.reshape([1]), scalingRecord(factor, scaler)], 0);
        }).catch((e: Error) => {
          if (!String(e?.message).includes("maxStorageBufferBindingSize")) throw e;
          throw new PassTooLargeError(`train: step ${step + 1}: ${e.message}`, Math.min(microBatch, b!.labels.length), { cause: e });
        });
        step++;
        windowImages += b!.labels.length;
        imagesThisRun += b!.labels.length;
        pending.push({ row: { step, loss: NaN, lr, accuracy: null, imagesPerSecond: 0 }, loss });
        const save = step % s.evalEvery === 0 || step === s.steps;
        const evaluate = o.evaluate !== undefined && save;
        if (pending.length >= s.lossEvery || save) await flush();
        if (evaluate) {
          const acc = await o.evaluate!();
          lastAccuracy = acc;
          metrics[metrics.length - 1].accuracy = acc;
          if (best.accuracy === null || acc > best.accuracy) {
            best = { step, accuracy: acc };
            const tensors = await snapshot(o.trainable, step, judged).catch((e) => {
              throw nonFinite(e);
            });
            await writeSafetensors(bestPath, tensors, { ...o.metadata, format: FORMAT, step: String(step), accuracy: String(acc) });
          }
        }
        if (save) await checkpoint();
        if (pending.length === 0) {
          const row = metrics[metrics.length - 1];
          progress?.update(step, { loss: row.loss, lr: row.lr, imagesPerSecond: row.imagesPerSecond, accuracy: row.accuracy ?? undefined });
        }
        if (evaluate || save) {
          windowStart = performance.now(); // evaluation and checkpoint time is not training throughput
          windowImages = 0;
        }
        // Nor is the caller's work at a step (a study's k-NN passes), though its first read-back also runs the
        // steps encoded since the last one (fewer than lossEvery): the window skips it.
        const paused = performance.now();
        await o.onStep?.(step, state);
        windowStart += performance.now() - paused;
      }
      await batches.return(undefined);
    }
  } finally {
    for (const p of pending) p.loss.dispose();
    progress?.finish();
    replayedLoss?.release();
    opt.zeroGrad();
    for (const [, t] of state) t.dispose();
  }
  if (o.evaluate === undefined) best = { step, accuracy: null };
  const last = metrics[metrics.length - 1];
  const earlier = rowSeconds(metrics.filter((m) => m.step <= resumedFrom), s.batchSize);
  return {
    steps: s.steps,
    resumedFrom,
    bestStep: best.step,
    bestAccuracy: best.accuracy,
    finalAccuracy: lastAccuracy,
    finalLoss: last?.loss ?? NaN,
    seconds: (performance.now() - started) / 1000 + earlier,
    imagesPerSecond: trainSeconds + earlier > 0 ? (imagesThisRun + s.batchSize * resumedFrom) / (trainSeconds + earlier) : 0,
    bestPath: o.evaluate === undefined ? lastPath : bestPath,
    lastPath,
    metrics,
  };
}
