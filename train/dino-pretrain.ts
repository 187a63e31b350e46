// DINO pre-training of a ViT backbone (main_dino.py's recipe, per step): multi-crop batches (data/multi-crop.ts), the
// step of train/dino.ts, DINO's schedules (train/dino-schedules.ts), per-step metrics that show a collapse (loss,
// the teacher's entropy, the entropy of its mean output, the teacher-student KL), the caller's k-NN score of the
// teacher's backbone every `knnEvery` steps (and before the first step: the random initialisation's), collapse
// detection (train/dino-collapse.ts), checkpoints and exact resume. The result is the teacher's backbone, as DINO
// releases it.
//
// Files in `dir` (all written atomically):
//   last.safetensors   student, teacher, centre and AdamW state (train/dino.ts stateTensors); metadata: format,
//                      the fingerprint of the settings and data, step, the optimisers' step counts
//   metrics.json/.csv  one row per step (in f16 also the loss scale after it and the steps skipped so far);
//                      metrics.json also holds the k-NN scores by step
//   backbone.safetensors, backbone.json   at the end: the teacher's backbone (timm layout, no head) and its manifest
//                      (method, settings, data identity, seed, final metrics, the file's SHA-256)
// Losses and metrics stay on the device and are read back every `logEvery` steps, when finiteness and collapse are
// checked (not on Dawn's null backend, which computes nothing); a checkpoint every `checkpointEvery` steps and at
// the end. Resuming loads last.safetensors (refused, naming each setting that differs, when the settings or data
// do; a folder of a supervised pre-training is refused too) and continues the epoch at the batch after it, so a
// resumed run computes what an uninterrupted one does; it first removes the temporary files the kill left.
//
// `precision` "f16" trains in mixed precision with dynamic loss scaling, as main_dino.py's --use_fp16 (train/dino.ts),
// the scale in the checkpoints (train/mixed-precision.ts, shared with train/train.ts).
import { existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { Tensor, tidy } from "../engine/tensor.js";
import { runtime } from "../engine/runtime.js";
import * as ops from "../autograd/ops.js";
import type { Dataset } from "../data/dataset.js";
import type { DataSpec } from "../data/spec.js";
import { type MultiCropBatch, MultiCropLoader, type MultiCropSpec } from "../data/multi-crop.js";
import { type ModelSpec, validateConfig } from "../vit/config.js";
import { type VisionTransformer, buildVit, initialiser } from "../vit/model.js";
import { saveVit } from "../vit/load.js";
import { CHECKSUM_KEY, readSafetensorsHeader, writeSafetensors } from "../vit/safetensors.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { type DinoHeadSpec, buildDinoHead, checkHeadSpec, dinoHeadInitialiser } from "./dino-head.js";
import { Dino, type DinoNet, type DinoStepValues } from "./dino.js";
import { cosineAt, teacherTemperatureAt } from "./dino-schedules.js";
import { type CollapseSettings, checkCollapseSettings, detectCollapse } from "./dino-collapse.js";
import { NonFiniteError, loadTrainable, snapshot, sweepTemporaries } from "./checkpoint.js";
import { DivergedError, rowSeconds } from "./train.js";
import { Progress, type ProgressStream } from "./progress.js";
import { type LossScaleSettings, type Precision, identityChanges, runIdentity } from "./settings.js";
import { type ScalingColumns, checkPrecisionOnDevice, lossScaleFor, scalingColumns, scalingRecord } from "./mixed-precision.js";
import { RESUME_CHECKPOINT, checkPretrainFolder, writeBackboneManifest } from "./backbone-manifest.js";
import { readMetricsFile } from "./metrics-file.js";
import { makeFolder } from "../util/make-folder.js";

export const FORMAT = "peft-vit-webgpu/dino-checkpoint/1";

// Everything a DINO pre-training runs; the defaults are DINO's (main_dino.py) unless said otherwise.
export interface DinoSpec {
  method: "dino";
  model: ModelSpec;
  data: DataSpec; // the source images (labels unused); its mean, std, interpolation and resampler apply to the crops
  head: DinoHeadSpec;
  crops: Omit<MultiCropSpec, "globalSize" | "mean" | "std" | "interpolation" | "resampler">; // global crops at model.imageSize
  steps: number;
  batchSize: number;
  lr: number; // peak, after the linear warm-up (DINO: 0.0005 x batch / 256)
  minLr: number; // the cosine's end, 1e-6
  warmupSteps: number;
  weightDecay: number; // 0.04, rising on a cosine to
  weightDecayEnd: number; // 0.4
  momentum: number; // the teacher's EMA momentum, 0.996, rising on a cosine to 1
  warmupTeacherTemp: number; // 0.04, rising linearly over teacherTempWarmupSteps to
  teacherTemp: number; // 0.07 here (DINO's default 0.04; 0.07 with a warm-up for longer ViT-S runs)
  teacherTempWarmupSteps: number;
  studentTemp: number; // 0.1
  centerMomentum: number; // 0.9
  clipGrad: number; // per-parameter gradient norm bound, 3.0; 0: none
  freezeLastLayerSteps: number; // DINO: one epoch
  seed: number;
  collapse: CollapseSettings;
  knnEvery: number; // score the teacher's backbone (the caller's evaluate) every this many steps; 0: only at 0 and the end
  logEvery: number; // read metrics back every this many steps
  checkpointEvery: number;
  precision?: Precision; // "f16": mixed precision (absent, as in specs from before the key: "f32")
  lossScale?: Partial<LossScaleSettings>; // with f16: dynamic loss scaling's settings over GradScaler's defaults
}

// lossScale, skippedSteps: in f16 (train/mixed-precision.ts).
export interface DinoRow extends Partial<ScalingColumns> {
  step: number; // 1-based: the row describes the update that made `step` updates in total
  loss: number;
  entropy: number; // the teacher's mean output entropy, nats
  marginalEntropy: number; // the entropy of its mean output over the batch, nats
  kl: number; // teacher-student KL, nats
  lr: number;
  weightDecay: number;
  momentum: number;
  teacherTemp: number;
  imagesPerSecond: number;
}

export interface KnnPoint {
  step: number; // 0: the initialisation
  accuracy: number; // percent
}

export interface DinoPretrainOptions {
  spec: DinoSpec;
  data: Dataset; // opened from spec.data
  dir: string;
  // The source k-NN accuracy (percent) of a backbone: eval/knn.ts on a held-out source subset, given by the caller.
  evaluate?: (backbone: VisionTransformer) => Promise<number>;
  progress?: ProgressStream;
  log?: (line: string) => void; // a line per k-NN score and checkpoint: the collapse metrics at that step
}

export interface DinoPretrainResult {
  path: string; // backbone.safetensors
  manifestPath: string;
  sha256: string;
  steps: number;
  resumedFrom: number;
  seconds: number;
  rows: DinoRow[];
  knn: KnnPoint[];
}

// The schedules' values at a step.
export function stepValues(s: DinoSpec, step: number): DinoStepValues {
  return {
    lr: cosineAt(s.lr, s.minLr, s.steps, step, s.warmupSteps),
    weightDecay: cosineAt(s.weightDecay, s.weightDecayEnd, s.steps, step),
    momentum: cosineAt(s.momentum, 1, s.steps, step),
    teacherTemp: teacherTemperatureAt(s.warmupTeacherTemp, s.teacherTemp, s.teacherTempWarmupSteps, step),
    freezeLastLayer: step < s.freezeLastLayerSteps,
  };
}

export function checkDinoSpec(s: DinoSpec): void {
  const int = (v: number, what: string, min: number) => {
    if (!(Number.isInteger(v) && v >= min)) throw new Error(`dino: expected ${what} to be an integer >= ${min}, got ${v}`);
  };
  const positive = (v: number, what: string) => {
    if (!(v > 0 && Number.isFinite(v))) throw new Error(`dino: expected ${what} > 0, got ${v}`);
  };
  const fraction = (v: number, what: string) => {
    if (!(v >= 0 && v <= 1)) throw new Error(`dino: expected ${what} in [0, 1], got ${v}`);
  };
  int(s.steps, "steps", 1);
  int(s.batchSize, "batchSize", 1);
  int(s.warmupSteps, "warmupSteps", 0);
  if (s.warmupSteps >= s.steps) throw new Error(`dino: expected warmupSteps < steps (${s.steps}), got ${s.warmupSteps}`);
  int(s.teacherTempWarmupSteps, "teacherTempWarmupSteps", 0);
  int(s.freezeLastLayerSteps, "freezeLastLayerSteps", 0);
  int(s.seed, "seed", 0);
  int(s.knnEvery, "knnEvery", 0);
  int(s.logEvery, "logEvery", 1);
  int(s.checkpointEvery, "checkpointEvery", 1);
  positive(s.lr, "lr");
  if (!(s.minLr >= 0)) throw new Error(`dino: expected minLr >= 0, got ${s.minLr}`);
  if (!(s.weightDecay >= 0 && s.weightDecayEnd >= 0)) throw new Error(`dino: expected weight decays >= 0, got ${s.weightDecay} and ${s.weightDecayEnd}`);
  fraction(s.momentum, "momentum");
  fraction(s.centerMomentum, "centerMomentum");
  positive(s.warmupTeacherTemp, "warmupTeacherTemp");
  positive(s.teacherTemp, "teacherTemp");
  positive(s.studentTemp, "studentTemp");
  if (!(s.clipGrad >= 0)) throw new Error(`dino: expected clipGrad >= 0, got ${s.clipGrad}`);
  if (s.crops.localCrops > 0 && s.crops.localSize % s.model.patchSize !== 0) {
    throw new Error(`dino: expected crops.localSize to be a multiple of the patch size ${s.model.patchSize}, got ${s.crops.localSize}`);
  }
  const conflicts = dinoSpecConflicts(s);
  if (conflicts.length > 0) throw new Error(`dino: ${conflicts.join("; ")}`);
  checkHeadSpec(s.head, "dino: head");
  checkCollapseSettings(s.collapse, "dino: collapse");
}

// Settings each valid alone but not together, as "<key>: expected ..., got ...". main_dino.py takes the first
// two (its cosine then raises the rate; a local crop is then no smaller than a global one) and the third (its last
// layer then never trains), and fails on the fourth (numpy refuses the temperature schedule's negative length).
// Global crops are model.imageSize by construction. Keys missing from a config with other problems are skipped.
export function dinoSpecConflicts(s: DinoSpec): string[] {
  const out: string[] = [];
  if (s.minLr > s.lr) out.push(`minLr: expected at most lr (${s.lr}), got ${s.minLr} (the cosine would raise the learning rate to it)`);
  if (s.crops?.localCrops > 0 && s.crops.localSize > s.model?.imageSize) {
    out.push(`crops.localSize: expected at most model.imageSize ${s.model.imageSize} (the global crops' size), got ${s.crops.localSize}`);
  }
  if (s.freezeLastLayerSteps >= s.steps) out.push(`freezeLastLayerSteps: expected fewer than steps (${s.steps}), got ${s.freezeLastLayerSteps} (the head's last layer would never train)`);
  if (s.teacherTempWarmupSteps > s.steps) {
    out.push(`teacherTempWarmupSteps: expected at most steps (${s.steps}), got ${s.teacherTempWarmupSteps} (the teacher's temperature would never reach teacherTemp)`);
  }
  return out;
}

// What must match for a checkpoint to be resumed: every setting that decides the trajectory, and the data.
function fingerprint(s: DinoSpec, data: Dataset): string {
  const { knnEvery: _k, logEvery: _l, checkpointEvery: _c, collapse: _collapse, ...trajectory } = s;
  return runIdentity({ format: FORMAT, ...trajectory, data: data.identity.hash });
}

// A study's DINO pre-training folder in its cache: <cacheDir>/pretrain/dino-<hash of the settings and the data>, so a
// changed spec trains a new backbone and an unchanged one is found at once (as train/pretrain.ts's).
export function dinoPretrainDir(s: DinoSpec, data: Dataset, cacheDir: string): string {
  return resolve(join(cacheDir, "pretrain", `dino-${createHash("sha256").update(fingerprint(s, data)).digest("hex").slice(0, 16)}`));
}

function buildNet(s: DinoSpec): DinoNet {
  const backbone = buildVit(validateConfig({ ...s.model, classes: 0, eps: 1e-6 }), initialiser(s.seed));
  return { backbone, head: buildDinoHead(s.model.width, s.head, dinoHeadInitialiser(s.seed)) };
}

function multiCrop(s: DinoSpec): MultiCropSpec {
  const c: MultiCropSpec = { ...s.crops, globalSize: s.model.imageSize, interpolation: s.data.interpolation };
  if (s.data.mean) c.mean = s.data.mean;
  if (s.data.std) c.std = s.data.std;
  if (s.data.resampler) c.resampler = s.data.resampler;
  return c;
}

// scaled: the f16 columns.
function metricsCsv(rows: DinoRow[], knn: KnnPoint[], scaled: boolean): string {
  const byStep = new Map(knn.map((k) => [k.step, k.accuracy]));
  const lines = [`step,loss,teacher_entropy,mean_output_entropy,kl,lr,weight_decay,momentum,teacher_temp,knn,images_per_second${scaled ? ",loss_scale,skipped_steps" : ""}`];
  for (const r of rows) {
    const columns = [r.step, r.loss, r.entropy, r.marginalEntropy, r.kl, r.lr, r.weightDecay, r.momentum, r.teacherTemp, byStep.get(r.step) ?? "", r.imagesPerSecond.toFixed(2)];
    lines.push([...columns, ...(scaled ? [r.lossScale, r.skippedSteps] : [])].join(","));
  }
  return lines.join("\n") + "\n";
}

export async function dinoPretrain(o: DinoPretrainOptions): Promise<DinoPretrainResult> {
  const s = o.spec;
  checkDinoSpec(s);
  await checkPretrainFolder(o.dir, "dino");
  await checkPrecisionOnDevice("dino", "precision", s.precision);
  const started = performance.now();
  await makeFolder(o.dir);
  await sweepTemporaries(o.dir, o.log);
  const print = fingerprint(s, o.data);
  const loader = new MultiCropLoader(o.data, multiCrop(s), s.batchSize, s.seed);
  const lossScale = lossScaleFor(s.precision, s.lossScale);
  const dino = new Dino(buildNet(s), buildNet(s), { studentTemp: s.studentTemp, centerMomentum: s.centerMomentum, clipGrad: s.clipGrad, precision: s.precision, lossScale });
  try {
    return await run(o, dino, loader, print, started);
  } finally {
    for (const net of [dino.student, dino.teacher]) {
      for (const [, t] of [...net.backbone.parameters(), ...net.head.parameters()]) {
        t.grad?.dispose();
        t.dispose();
      }
    }
    dino.dispose();
  }
}

// What a pre-training resumes from: its last checkpoint, checked against this run's settings and data, loaded into
// the student, the teacher, the centre and the optimisers' state, and the metrics up to its step.
async function resumeFrom(lastPath: string, metricsPath: string, print: string, dir: string, state: [string, Tensor][]) {
  const { metadata: meta } = await readSafetensorsHeader(lastPath);
  if (meta.format !== FORMAT || meta.fingerprint !== print) {
    const changed = meta.format !== FORMAT ? [`format: ${meta.format} -> ${FORMAT}`] : identityChanges(meta.fingerprint, print);
    throw new Error(`dino: ${lastPath} was written by a run with other settings or data (${changed.join("; ")}); delete ${dir} (or use another folder) to start over`);
  }
  if (meta[CHECKSUM_KEY] === undefined) throw new Error(`dino: ${lastPath}: expected the checksum of its tensors in its metadata, found none; delete ${dir} to start over`);
  await loadTrainable(lastPath, state);
  const step = Number(meta.step);
  const saved = await readMetricsFile(metricsPath, "dino", ["rows", "knn"], `the metrics of ${lastPath}'s steps`, `delete ${dir} to start over`);
  return {
    step,
    stepCounts: JSON.parse(meta.stepCounts) as Dino["stepCounts"],
    rows: (saved.rows as DinoRow[]).filter((r) => r.step <= step),
    knn: (saved.knn as KnnPoint[]).filter((k) => k.step <= step),
  };
}

async function run(o: DinoPretrainOptions, dino: Dino, loader: MultiCropLoader, print: string, started: number): Promise<DinoPretrainResult> {
  const s = o.spec;
  const lastPath = join(o.dir, RESUME_CHECKPOINT.dino);
  const metricsPath = join(o.dir, "metrics.json");
  const K = s.head.prototypes;
  const state = dino.stateTensors();
  const scaler = dino.lossScaler;

  const resumed = existsSync(lastPath) ? await resumeFrom(lastPath, metricsPath, print, o.dir, state) : undefined;
  let step = resumed?.step ?? 0;
  let rows = resumed?.rows ?? [];
  let knn = resumed?.knn ?? [];
  if (resumed) {
    dino.stepCounts = resumed.stepCounts;
    o.log?.(`resuming the DINO pre-training in ${o.dir} from step ${step} of ${s.steps}`);
  }
  const resumedFrom = step;

  const describe = (r: DinoRow) =>
    `step ${r.step}/${s.steps}: loss ${r.loss.toFixed(4)}, teacher entropy ${r.entropy.toFixed(3)} nats (${((100 * r.entropy) / Math.log(K)).toFixed(1)}% of log K), ` +
    `mean-output entropy ${r.marginalEntropy.toFixed(3)}, KL ${r.kl.toFixed(4)}, teacher temperature ${r.teacherTemp.toFixed(4)}`;
  const saveMetrics = async () => {
    await writeJsonAtomic(metricsPath, { rows, knn });
    await writeFileAtomic(join(o.dir, "metrics.csv"), metricsCsv(rows, knn, scaler !== undefined));
  };
  const score = async () => {
    if (!o.evaluate) return;
    const accuracy = await o.evaluate(dino.teacher.backbone);
    knn = [...knn.filter((k) => k.step !== step), { step, accuracy }];
    o.log?.(`step ${step}/${s.steps}: source k-NN ${accuracy.toFixed(2)}% (teacher backbone)`);
  };
  // Dawn's null backend computes nothing, and what it reads back is no result: there the run is judged neither for
  // divergence nor for collapse, so that it does every step's host work (PEFT_BACKEND=null measures the host alone).
  const judged = runtime().gpu.backend !== "null";
  const checkpoint = async () => {
    const tensors = await snapshot(state, step, judged).catch((e) => {
      if (e instanceof NonFiniteError) throw new DivergedError(`dino: non-finite ${e.message} (lr ${stepValues(s, step - 1).lr})`, step, NaN, stepValues(s, step - 1).lr, false);
      throw e;
    });
    await saveMetrics();
    await writeSafetensors(lastPath, tensors, { format: FORMAT, fingerprint: print, step: String(step), stepCounts: JSON.stringify(dino.stepCounts) });
  };

  const progress = o.progress && new Progress({ label: "dino", total: s.steps, start: step, stream: o.progress });
  const pending: { row: DinoRow; values: Tensor }[] = [];
  let windowStart = performance.now();
  let windowImages = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const all = tidy(() => ops.concat(pending.map((p) => p.values), 0));
    const v = await all.data();
    all.dispose();
    const rate = windowImages / ((performance.now() - windowStart) / 1000);
    const per = v.length / pending.length; // 4 metrics, and in f16 the step's scaling record
    let skipped = rows[rows.length - 1]?.skippedSteps ?? 0;
    const done = pending.splice(0).map((p, i): DinoRow => {
      p.values.dispose();
      const at = per * i;
      const row = { ...p.row, loss: v[at], entropy: v[at + 1], marginalEntropy: v[at + 2], kl: v[at + 3], imagesPerSecond: rate };
      if (!scaler) return row;
      const columns = scalingColumns(v.subarray(at + 4, at + 6), skipped);
      skipped = columns.skippedSteps;
      return { ...row, ...columns };
    });
    rows.push(...done);
    windowStart = performance.now();
    windowImages = 0;
    const bad = judged ? done.find((r) => ![r.loss, r.entropy, r.marginalEntropy, r.kl].every(Number.isFinite)) : undefined;
    if (bad) {
      await saveMetrics();
      throw new DivergedError(`dino: the loss became ${bad.loss} at step ${bad.step} (lr ${bad.lr.toExponential(2)}); stopped, the last checkpoint ${lastPath} is intact`, bad.step, bad.loss, bad.lr, false);
    }
    const collapse = judged ? detectCollapse(rows, K, s.collapse) : undefined;
    if (collapse) {
      await saveMetrics();
      throw collapse;
    }
  };

  try {
    if (step === 0) await score(); // the random initialisation's score, the baseline
    const per = loader.batchesPerEpoch;
    while (step < s.steps) {
      const epoch = Math.floor(step / per);
      for await (const batch of loader.epoch(epoch, step % per)) {
        const at = stepValues(s, step);
        const values = tidy(() => {
          const out = dino.step(cropTensors(batch, s), at);
          const metrics = [out.loss, out.entropy, out.marginalEntropy, out.kl].map((t) => t.reshape([1]));
          if (scaler) metrics.push(scalingRecord(out.factor!, scaler));
          return ops.concat(metrics, 0);
        });
        step++;
        windowImages += s.batchSize;
        const { freezeLastLayer: _frozen, ...scheduled } = at;
        pending.push({ row: { step, loss: NaN, entropy: NaN, marginalEntropy: NaN, kl: NaN, ...scheduled, imagesPerSecond: 0 }, values });
        const evaluate = (s.knnEvery > 0 && step % s.knnEvery === 0) || step === s.steps;
        const save = step % s.checkpointEvery === 0 || step === s.steps;
        if (pending.length >= s.logEvery || evaluate || save) await flush();
        if (evaluate) await score();
        if (save) {
          await checkpoint();
          o.log?.(describe(rows[rows.length - 1]));
        }
        if (pending.length === 0) {
          const r = rows[rows.length - 1];
          progress?.update(step, { loss: r.loss, lr: r.lr, imagesPerSecond: r.imagesPerSecond, accuracy: knn.length ? knn[knn.length - 1].accuracy : undefined });
        }
        if (evaluate || save) {
          windowStart = performance.now();
          windowImages = 0;
        }
        if (step >= s.steps) break;
      }
    }
    await flush();
  } finally {
    for (const p of pending) p.values.dispose();
    progress?.finish();
  }

  const path = join(o.dir, "backbone.safetensors");
  const last = rows[rows.length - 1];
  const summary = {
    method: "dino",
    steps: s.steps,
    finalLoss: last?.loss ?? null,
    finalTeacherEntropy: last?.entropy ?? null,
    finalMeanOutputEntropy: last?.marginalEntropy ?? null,
    finalKl: last?.kl ?? null,
    knn,
  };
  await saveVit(dino.teacher.backbone, path, { source: "DINO pre-training (peft-vit-webgpu), the teacher's backbone", metrics: JSON.stringify(summary) });
  const manifest = await writeBackboneManifest(path, { method: "dino", hyperParameters: s, data: o.data.identity, seed: s.seed, metrics: summary });
  // A resumed run's steps before the resume at their rows' speeds, as train() counts them.
  const seconds = (performance.now() - started) / 1000 + rowSeconds(rows.filter((r) => r.step <= resumedFrom), s.batchSize);
  return { path, manifestPath: manifest.path, sha256: manifest.sha256, steps: s.steps, resumedFrom, seconds, rows, knn };
}

function cropTensors(b: MultiCropBatch, s: DinoSpec): { globals: Tensor; locals?: Tensor } {
  const B = s.batchSize;
  const S = s.model.imageSize;
  const L = s.crops.localCrops;
  const globals = Tensor.fromArray(b.globals, [2 * B, 3, S, S]);
  if (L === 0) return { globals };
  return { globals, locals: Tensor.fromArray(b.locals, [L * B, 3, s.crops.localSize, s.crops.localSize]) };
}
