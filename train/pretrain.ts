// The default study's source model: a small ViT trained with labels (cross-entropy, AdamW, warm-up + cosine) on the
// source domain. This is a stand-in for DINO's self-supervised pre-training, which would take far longer than
// the default study's budget on a CPU; what the study measures afterwards (forgetting of the source domain, read
// out by k-NN on the backbone's features) applies to either. The head is dropped: the cached file is a backbone.
//
// pretrainInto trains into a folder of the caller's (the `pretrain` command's --out): <dir>/train/ (checkpoints, so a
// killed pre-training resumes, first removing the temporary files the kill left; a folder of a DINO pre-training is
// refused), <dir>/backbone.safetensors and its
// manifest <dir>/backbone.json (train/backbone-manifest.ts). pretrain, for a study, does that in its cache,
// <cacheDir>/pretrain/<hash>/, where the hash covers the model and training settings, the identity of the data
// (files and selected indices) and the transform its images get, so a changed spec trains a new model and an
// unchanged one is loaded at once.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Dataset } from "../data/dataset.js";
import { Loader } from "../data/loader.js";
import { Transform } from "../data/transforms.js";
import { validateConfig } from "../vit/config.js";
import { type VisionTransformer, buildVit, initialiser } from "../vit/model.js";
import { saveVit } from "../vit/load.js";
import { applyStrategy } from "../peft/strategy.js";
import { type DataSpec, transformFor } from "../data/spec.js";
import type { ModelSpec } from "../vit/config.js";
import { type LossScaleSettings, type OptimizerName, type Precision, type TrainSettings, TRAIN_DEFAULTS, runIdentity } from "./settings.js";
import { checkPrecisionOnDevice } from "./mixed-precision.js";
import type { ProgressStream } from "./progress.js";
import { type MetricRow, train } from "./train.js";
import { readMetricsFile } from "./metrics-file.js";
import { checkPretrainFolder, writeBackboneManifest } from "./backbone-manifest.js";
import { sweepTemporaries } from "./checkpoint.js";

// What a pre-training runs: the study config's backbone.pretrain, checked and with its defaults.
export interface PretrainSpec {
  model: ModelSpec;
  data: DataSpec; // supervised pre-training data (a stand-in for DINO's self-supervised pre-training)
  steps: number;
  batchSize: number;
  lr: number;
  warmupSteps: number;
  optimizer: OptimizerName;
  weightDecay: number;
  seed: number;
  cacheDir: string; // the trained backbone is cached under cacheDir/pretrain/<hash of this spec and the data>
  microBatch?: number; // images per forward + backward pass, gradients accumulated (as training.microBatch)
  precision?: Precision; // "f16": mixed precision, as training.precision (absent, as in specs before the key: "f32")
  lossScale?: Partial<LossScaleSettings>; // with f16, as training.lossScale
}

const VERSION = "pretrain/1"; // bump when the procedure changes, so old caches are not reused

export interface PretrainResult {
  path: string; // the backbone checkpoint (timm layout, no head)
  cached: boolean; // true when it was already there
  hash: string;
  seconds: number; // 0 when cached
  finalLoss: number | null; // null when cached
}

// The cache key: the procedure's version, the settings (not where the cache lives, and not the data spec but the
// identity of the data it selected and the transform of its images) and runIdentity's rule. The transform holds
// its kind and only the settings the spec gives: adding a setting to the spec's options adds nothing to the key
// of specs without it.
export function pretrainHash(spec: PretrainSpec, data: Dataset): string {
  const { cacheDir: _where, data: _spec, ...settings } = spec;
  const { size: _size, ...transform } = transformFor(spec.data, spec.model.imageSize); // size: in settings.model
  const key = runIdentity({ version: VERSION, settings, data: data.identity.hash, transform });
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

// The pre-training's folder in the cache: its checkpoints (train/) and the backbone.
export function pretrainDir(spec: PretrainSpec, data: Dataset): string {
  return resolve(join(spec.cacheDir, "pretrain", pretrainHash(spec, data)));
}

// How the backbone trains: the spec's settings, the trainer's defaults for the rest.
function trainSettings(spec: PretrainSpec): TrainSettings {
  return {
    ...TRAIN_DEFAULTS,
    steps: spec.steps,
    batchSize: spec.batchSize,
    lr: spec.lr,
    warmupSteps: spec.warmupSteps,
    optimizer: spec.optimizer,
    weightDecay: spec.weightDecay,
    evalEvery: Math.max(1, Math.ceil(spec.steps / 5)), // checkpoints for resuming; there is no test set here
    microBatch: spec.microBatch,
    precision: spec.precision,
    lossScale: spec.lossScale,
  };
}

// data: the source-domain training set, opened from spec.data.
// log: what pretrainInto's options say.
export async function pretrain(spec: PretrainSpec, data: Dataset, progress?: ProgressStream, log?: (line: string) => void): Promise<PretrainResult> {
  const hash = pretrainHash(spec, data);
  const dir = pretrainDir(spec, data);
  const path = join(dir, "backbone.safetensors");
  if (existsSync(path)) {
    // A run killed between the backbone and its manifest (or a cache from before manifests) lacks the manifest: it
    // gets the one the run writes, its final loss from the run's metrics. (Where it trains, pretrainInto removes the
    // temporary files of killed writes; here, those of the manifest's.)
    await sweepTemporaries(dir, log);
    if (!existsSync(join(dir, "backbone.json"))) await writeManifest(path, spec, data, await savedFinalLoss(dir), []);
    return { path, cached: true, hash, seconds: 0, finalLoss: null };
  }
  const r = await pretrainInto(spec, data, dir, { progress, log });
  return { path: r.path, cached: false, hash, seconds: r.seconds, finalLoss: r.finalLoss };
}

export interface PretrainIntoOptions {
  progress?: ProgressStream;
  // The source k-NN accuracy (percent) of a backbone, recorded in the manifest for the initialisation and the
  // trained backbone.
  evaluate?: (backbone: VisionTransformer) => Promise<number>;
  log?: (line: string) => void; // says where a killed run resumes, and how many of its temporary files were removed
}

export async function pretrainInto(
  spec: PretrainSpec,
  data: Dataset,
  dir: string,
  o: PretrainIntoOptions = {},
): Promise<{ path: string; manifestPath: string; sha256: string; seconds: number; finalLoss: number; knn: { step: number; accuracy: number }[] }> {
  await checkPretrainFolder(dir, "supervised");
  await checkPrecisionOnDevice("pretrain", "precision", spec.precision); // named as the pre-training's key, before any work
  await sweepTemporaries(dir, o.log);
  const started = performance.now();
  const path = join(dir, "backbone.safetensors");
  const classes = data.classes.length;
  const model = buildVit(validateConfig({ ...spec.model, classes: 0, eps: 1e-6 }), initialiser(spec.seed));
  const knn: { step: number; accuracy: number }[] = [];
  // Scored before train() loads a checkpoint, so a resumed run's manifest has the initialisation's score too (it is
  // the seed's, whatever the run resumes from).
  if (o.evaluate) knn.push({ step: 0, accuracy: await o.evaluate(model) });
  const trainable = applyStrategy(model, { kind: "full" }, classes, spec.seed);
  const loader = new Loader(data, new Transform(transformFor(spec.data, spec.model.imageSize)), {
    batchSize: spec.batchSize,
    shuffle: true,
    seed: spec.seed,
    dropLast: true,
  });
  try {
    const result = await train({
      model,
      trainable,
      train: loader,
      settings: trainSettings(spec),
      dir: join(dir, "train"),
      progress: o.progress && { stream: o.progress, label: "pre-train" },
      onResume: (step) => o.log?.(`resuming the pre-training in ${dir} from step ${step} of ${spec.steps}`),
    });
    // The backbone only: DINO checkpoints carry no classifier either.
    model.head = undefined;
    model.config = { ...model.config, classes: 0 };
    if (o.evaluate) knn.push({ step: spec.steps, accuracy: await o.evaluate(model) });
    await saveVit(model, path, { source: "supervised pre-training (peft-vit-webgpu)", spec: JSON.stringify(spec), data: data.identity.hash });
    const manifest = await writeManifest(path, spec, data, result.finalLoss, knn);
    return { path, manifestPath: manifest.path, sha256: manifest.sha256, seconds: (performance.now() - started) / 1000, finalLoss: result.finalLoss, knn };
  } finally {
    for (const [, t] of trainable) t.dispose();
    model.dispose();
  }
}

// The manifest beside the backbone at `path`.
function writeManifest(path: string, spec: PretrainSpec, data: Dataset, finalLoss: number | null, knn: { step: number; accuracy: number }[]) {
  return writeBackboneManifest(path, { method: "supervised", hyperParameters: spec, data: data.identity, seed: spec.seed, metrics: { finalLoss, knn } });
}

// The loss of the last step in the metrics.json of the run in `dir` (train/train.ts), or null where there is none:
// the file is gone, or holds no rows. One that is there but damaged is refused, as a resumed run refuses it.
async function savedFinalLoss(dir: string): Promise<number | null> {
  const metricsPath = join(dir, "train", "metrics.json");
  if (!existsSync(metricsPath)) return null;
  const wayOut = `delete ${metricsPath} for a manifest without the final loss, or ${dir} to pre-train again`;
  const { rows } = await readMetricsFile(metricsPath, "pretrain", ["rows"], "the metrics of the pre-training's steps", wayOut);
  return (rows as MetricRow[]).at(-1)?.loss ?? null;
}
