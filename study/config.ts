// The study configuration, parsed once into typed values: which backbone, which data for k-NN (source domain) and
// fine-tuning (transfer domain), which strategies (peft/strategy.ts Strategy objects, from here to the report),
// learning rates, seeds and training settings (train/settings.ts, whole but for each cell's learning rate). A JSON
// file is checked completely before any work starts: every unknown key and every wrong type is reported with its
// key path (`training.steps: expected an integer >= 1, got "100"`), all of them at once. Every default is in
// DEFAULTS; configJson is the canonical JSON form (config.json in a run folder) and studyIdentity what makes two
// configs the same study.
//
// Relative paths (checkpoint, dataset roots, cache folder) are relative to the working directory.
import { resolve } from "node:path";
import { describeJson, isObject } from "../util/json-file.js";
import { DATASET_NAMES, defaultRoot } from "../data/registry.js";
import { parseClassList } from "../data/subset.js";
import type { DataSpec } from "../data/spec.js";
import { INTERPOLATIONS, RESAMPLERS, type TransformKind } from "../data/transforms.js";
import { type ModelSpec, headsFit } from "../vit/config.js";
import { MIN_TEMPERATURE } from "../eval/knn.js";
import { type BackboneShape, HEAD_INITS, type HeadInit, STRATEGY_FORMS, type Strategy, parseStrategy, strategyName, strategyProblem } from "../peft/strategy.js";
import { type LossScaleSettings, OPTIMIZERS, type OptimizerName, PRECISIONS, type Precision, TRAIN_DEFAULTS, type TrainSettings, runIdentity } from "../train/settings.js";
import type { PretrainSpec } from "../train/pretrain.js";
import { type DinoSpec, dinoSpecConflicts } from "../train/dino-pretrain.js";
import { DINO_HEAD_DEFAULTS } from "../train/dino-head.js";
import { COLLAPSE_DEFAULTS } from "../train/dino-collapse.js";
import { CROP_SAMPLINGS, MULTI_CROP_DEFAULTS } from "../data/multi-crop.js";
import DEFAULT_STUDY_JSON from "../configs/default.json";
import SUPERVISED_STUDY_JSON from "../configs/default-supervised.json";

export interface BackboneSpec {
  checkpoint?: string; // a ViT checkpoint file (.pth / .safetensors, timm, DINO or Hugging Face layout)
  sha256?: string; // the checkpoint's SHA-256 (64 hex digits): a shipped backbone is checked before any work
  heads?: number; // for the checkpoint: attention heads when width is not 64 per head
  key?: string; // for a .pth: the sub-dictionary holding the weights, e.g. "teacher"
  pretrain?: PretrainSpec | StudyDinoSpec; // exactly one of checkpoint and pretrain
}

// DINO pre-training in a study (backbone.pretrain with "method": "dino"), cached under cacheDir as the supervised one.
export type StudyDinoSpec = DinoSpec & { cacheDir: string };

export function isDinoPretrain(s: PretrainSpec | StudyDinoSpec): s is StudyDinoSpec {
  return "method" in s && s.method === "dino";
}

export interface KnnSpec {
  bank: DataSpec; // source-domain training images: the neighbours
  queries: DataSpec; // source-domain test images: classified by their neighbours
  ks: number[]; // neighbour counts evaluated (one pass serves all)
  reportK: number; // the k in the table and figure (DINO reports 20)
  temperature: number; // vote weight exp(sim / T), DINO: 0.07
  batchSize: number; // images per forward pass for features
  // Fine-tuning steps at which every cell's backbone is scored too (the forgetting curve): ascending, distinct,
  // at most training.steps; 0 is the backbone before the first update. Absent: no curve.
  atSteps?: number[];
  // Source-domain images of the bank's classes, sharing none with the bank or the queries, that choose the learning
  // rates where selectBy weighs source k-NN ("mean", "knee") in the queries' stead: no query scores a rate it chose.
  // Scored on each cell's best checkpoint (study/knn-val.ts); a change of it keeps the finished cells.
  val?: DataSpec;
  // Other draws of the bank: as many source images of its classes each, sharing none with the bank, the queries or
  // each other. Each cell's best checkpoint classifies the queries against each of them too, and the differences'
  // intervals count the draw of the bank as they do the seeds' and the queries' (study/knn-banks.ts); a change of
  // it keeps the finished cells.
  otherBanks?: DataSpec[];
}

// The images that choose each cell's best checkpoint (and each strategy's learning rate) when they should not be
// the test images: a split of their own (a data spec, like transfer.test), or a seeded fraction of each class of
// transfer.train held out of training (drawn with the first seed, as a data spec's fraction). Absent: the test
// images choose, as in the paper and the authors' code.
export interface HeldOutVal {
  fraction: number; // in (0, 1)
}
export type ValSpec = DataSpec | HeldOutVal;

export function isHeldOut(v: ValSpec): v is HeldOutVal {
  return !("dataset" in v);
}

export const INTERPOLATION_HEADS = ["tuned", "probe"] as const;
export type InterpolationHead = (typeof INTERPOLATION_HEADS)[number];

// The per-block analysis of every finished cell against the original backbone (study/analysis.ts), run at the
// end of a complete study. Its keys choose what is analysed, never a cell's result.
export interface AnalysisSpec {
  images: number; // source-domain images compared: this many of knn.queries, evenly spaced
  gridImages: number; // of which the first ones appear in the attention-map figure
  bankPerClass?: number; // the layer-wise k-NN's bank: knn.bank with this perClass; absent: knn.bank as it is
  // Steps of fine-tuning whose backbones every cell keeps (cells/<id>/step-<n>.safetensors) and the analysis
  // compares with the original too, as it does the best checkpoint's: where along training each block drifts.
  atSteps?: number[];
  // Parts of every best backbone put back where fine-tuning started (each alone, all, all but each) and the model
  // scored as the study scores it (study/analysis-resets.ts): which part's change cost the source domain. "layers":
  // each block's layers as parts of their own. Absent: false.
  resets?: boolean | "layers";
  // With atSteps: the parts of each kept backbone after a cell's first put back to their values at the kept step
  // before (each alone, all, all but each), and scored as resets are: which part's change from one kept step to the
  // next cost the source domain, or won it back. "layers": each block's layers as parts of their own. Absent: false.
  resetsBetweenSteps?: boolean | "layers";
  // Weights α in [0, 1], ascending: every trained tensor of every best backbone moved back to (1 - α) · start + α ·
  // fine-tuned (LoRA by its merged weight, the head kept) and the model scored as the study scores it
  // (study/analysis-interpolation.ts): how much of fine-tuning's change the transfer needs. Absent: none.
  interpolate?: number[];
  // The head at each weight: the fine-tuned one ("tuned"), or moved too, from the head of linear probing's cell of
  // the same seed ("probe": α = 0 is linear probing, WiSE-FT's zero-shot end). Absent: "tuned".
  interpolateHead?: InterpolationHead;
  // Which finished cells: those of these strategies (names as `strategies` writes them), and with tableRates only
  // those at their strategy's rate in the table, the rows the summaries and figures show. Absent: every one.
  strategies?: string[];
  tableRates?: boolean;
}

export interface LinearProbeSpec {
  lr: number;
  steps?: number;
  // The probe's head scaled to this Frobenius norm of head.weight before the fine-tuning (study/probe-head.ts);
  // "drawn": to the norm of the head the cell drew (its seed, headInit). Absent: as the probe left it.
  headNorm?: number | "drawn";
}

// A cell's training settings are these with the cell's learning rate.
export type StudyTraining = Omit<TrainSettings, "lr">;

export interface StudyConfig {
  name: string;
  backbone: BackboneSpec;
  imageSize?: number; // input resolution of every image; default: the backbone's native size
  knn: KnnSpec;
  transfer: { train: DataSpec; test: DataSpec; val?: ValSpec };
  strategies: Strategy[];
  // One list for every strategy, or a list per strategy name (strategies need rates of different sizes: a linear
  // head takes a rate that destroys a fully fine-tuned backbone). ratesFor reads either form.
  learningRates: number[] | Record<string, number[]>;
  // The new head's initialisation (peft/strategy.ts HeadInit), one for every strategy or one per strategy name as
  // learningRates; headInitFor reads either. Absent: DEFAULTS.headInit (and absent in the canonical JSON).
  headInit?: HeadInit | Record<string, HeadInit>;
  // The linear probe of a `-lpft` strategy's cells (LP-FT): the head alone trained first, the backbone frozen, for
  // `steps` (default training.steps) at `lr`, then fine-tuning from there (its head scaled to `headNorm` where
  // given). Required with an -lpft strategy, refused without one.
  linearProbe?: LinearProbeSpec;
  seeds: number[];
  training: StudyTraining;
  selectBy: SelectBy; // how the table picks each strategy's learning rate
  analysis?: AnalysisSpec; // absent: no per-block analysis
}

// How the table picks each strategy's learning rate (study/results.ts summarize): the best transfer accuracy, the
// best mean of it and source k-NN, or the knee: the most source k-NN among the rates whose transfer accuracy is not
// told from the best one's; each on transfer.val and knn.val where the config has them.
export type SelectBy = "transfer" | "mean" | "knee";

// Every value a config may leave out.
export const DEFAULTS = {
  name: "study",
  seeds: [0],
  selectBy: "transfer" as const,
  headInit: "uniform" as HeadInit, // PyTorch's nn.Linear
  knn: { ks: [10, 20, 100, 200], reportK: 20, temperature: 0.07, batchSize: 64 }, // DINO's eval_knn.py, but batchSize
  analysis: { images: 1000, gridImages: 4 },
  training: TRAIN_DEFAULTS,
  pretrain: { warmupSteps: 0, optimizer: "adamw" as OptimizerName, weightDecay: 0.05, seed: 0, cacheDir: ".cache" },
  // Each data role's transform: augmentation for training, DINO's k-NN transform for the source domain.
  transform: { pretrain: "train", knn: "knn", transferTrain: "train", transferTest: "eval" } as Record<string, TransformKind>,
};

// The embedded default study: configs/default.json, bundled into dist/run.js. Its backbone is the shipped DINO one
// (backbones/), found from any working directory (util/shipped.ts).
export const DEFAULT_STUDY = DEFAULT_STUDY_JSON;
// The default study on a backbone pre-trained with labels in the study itself: configs/default-supervised.json.
export const SUPERVISED_STUDY = SUPERVISED_STUDY_JSON;
// The default study's ViT: the shipped backbone's architecture, which the supervised study pre-trains (a test checks
// the two agree).
export const DEFAULT_MODEL: ModelSpec = SUPERVISED_STUDY.backbone.pretrain.model;

// ---- a small checker that collects every error with its key path ----

export class Checker {
  errors: string[] = [];

  fail(path: string, expected: string, got: unknown): undefined {
    this.errors.push(`${path}: expected ${expected}, got ${describeJson(got)}`);
    return undefined;
  }

  // The object at `path` with exactly the keys of `known` allowed; returns it (or undefined after an error).
  object(v: unknown, path: string, known: string[]): Record<string, unknown> | undefined {
    if (!isObject(v)) return this.fail(path, "an object", v);
    const o = v;
    for (const k of Object.keys(o)) {
      if (!known.includes(k)) this.errors.push(`${join(path, k)}: unknown key (known keys: ${known.join(", ")})`);
    }
    return o;
  }

  string(v: unknown, path: string): string | undefined {
    return typeof v === "string" && v.length > 0 ? v : this.fail(path, "a non-empty string", v);
  }

  number(v: unknown, path: string, what: string, ok: (n: number) => boolean): number | undefined {
    return typeof v === "number" && Number.isFinite(v) && ok(v) ? v : this.fail(path, what, v);
  }

  boolean(v: unknown, path: string): boolean | undefined {
    return typeof v === "boolean" ? v : this.fail(path, "true or false", v);
  }

  // JSON reads integers beyond 2^53 rounded (9007199254740993 as ...992): refused rather than used so.
  int(v: unknown, path: string, min: number): number | undefined {
    if (typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v)) return this.fail(path, `an integer >= ${min} below 2^53 (larger ones are read rounded)`, v);
    return this.number(v, path, `an integer >= ${min}`, (n) => Number.isInteger(n) && n >= min);
  }

  positive(v: unknown, path: string): number | undefined {
    return this.number(v, path, "a number > 0", (n) => n > 0);
  }

  enumeration<T extends string>(v: unknown, path: string, values: readonly T[]): T | undefined {
    return typeof v === "string" && (values as readonly string[]).includes(v) ? (v as T) : this.fail(path, `one of ${values.join(", ")}`, v);
  }

  // Exactly n items, e.g. [0.5, 0.5, 0.5]; `what` names them in the error.
  tuple<T>(v: unknown, path: string, n: number, what: string, item: (x: unknown, p: string) => T | undefined): T[] | undefined {
    if (!Array.isArray(v) || v.length !== n) return this.fail(path, `an array of ${n} ${what}`, v);
    const out = v.map((x, i) => item(x, `${path}[${i}]`));
    return out.every((x) => x !== undefined) ? (out as T[]) : undefined;
  }

  array<T>(v: unknown, path: string, item: (x: unknown, p: string) => T | undefined): T[] | undefined {
    if (!Array.isArray(v) || v.length === 0) return this.fail(path, "a non-empty array", v);
    const out = v.map((x, i) => item(x, `${path}[${i}]`));
    return out.every((x) => x !== undefined) ? (out as T[]) : undefined;
  }

  // A required key: reports it missing when absent.
  required<T>(o: Record<string, unknown>, key: string, path: string, check: (v: unknown, p: string) => T | undefined): T | undefined {
    if (!(key in o)) {
      this.errors.push(`${join(path, key)}: missing (required)`);
      return undefined;
    }
    return check(o[key], join(path, key));
  }

  // An optional key: its default when absent.
  optional<T>(o: Record<string, unknown>, key: string, path: string, fallback: T, check: (v: unknown, p: string) => T | undefined): T | undefined {
    return key in o ? check(o[key], join(path, key)) : fallback;
  }
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

export class ConfigError extends Error {}

type RGB = [number, number, number];
const DATA_KEYS = ["dataset", "root", "split", "classes", "perClass", "skipPerClass", "fraction", "transform", "mean", "std", "interpolation", "resampler", "scale"];
const MODEL_KEYS = ["imageSize", "patchSize", "width", "depth", "heads", "mlpHidden"];
const PRETRAIN_KEYS = ["model", "data", "steps", "batchSize", "lr", "warmupSteps", "optimizer", "weightDecay", "seed", "cacheDir", "microBatch", "precision", "lossScale"];
export const DINO_KEYS = [
  "method", "model", "data", "head", "crops", "steps", "batchSize", "lr", "minLr", "warmupSteps", "weightDecay",
  "weightDecayEnd", "momentum", "warmupTeacherTemp", "teacherTemp", "teacherTempWarmupSteps", "studentTemp",
  "centerMomentum", "clipGrad", "freezeLastLayerSteps", "seed", "collapse", "knnEvery", "logEvery", "checkpointEvery",
  "precision", "lossScale",
];
const TRAINING_KEYS = ["steps", "batchSize", "evalEvery", "warmupSteps", "schedule", "optimizer", "momentum", "weightDecay", "clipNorm", "lossEvery", "microBatch", "precision", "lossScale"];
const LOSS_SCALE_KEYS = ["init", "backoff", "growth", "interval"];
const TOP_KEYS = ["$comment", "name", "backbone", "imageSize", "knn", "transfer", "strategies", "learningRates", "headInit", "linearProbe", "seeds", "training", "selectBy", "analysis"];
const TRANSFORMS: TransformKind[] = ["train", "eval", "knn"];

export function dataSpec(c: Checker, v: unknown, path: string, transform: TransformKind): DataSpec | undefined {
  const o = c.object(v, path, DATA_KEYS);
  if (!o) return undefined;
  const spec: Partial<DataSpec> = {
    dataset: c.required(o, "dataset", path, (x, p) => c.enumeration(x, p, DATASET_NAMES)),
    root: c.optional(o, "root", path, undefined, (x, p) => c.string(x, p)),
    split: c.required(o, "split", path, (x, p) => c.string(x, p)),
    classes: c.optional(o, "classes", path, undefined, (x, p) => {
      if (typeof x === "string") {
        try {
          return parseClassList(x);
        } catch {
          return c.fail(p, 'a class list like "0-4" or "0,2,7-9"', x);
        }
      }
      return c.array(x, p, (y, q) => c.int(y, q, 0));
    }),
    perClass: c.optional(o, "perClass", path, undefined, (x, p) => c.int(x, p, 1)),
    skipPerClass: c.optional(o, "skipPerClass", path, undefined, (x, p) => c.int(x, p, 0)),
    fraction: c.optional(o, "fraction", path, undefined, (x, p) => c.number(x, p, "a number in (0, 1]", (n) => n > 0 && n <= 1)),
    transform: c.optional(o, "transform", path, transform, (x, p) => c.enumeration(x, p, TRANSFORMS)),
    // Absent stays absent (the transform's defaults), so the config.json of earlier runs still matches.
    mean: c.optional(o, "mean", path, undefined, (x, p) => c.tuple(x, p, 3, "numbers", (y, q) => c.number(y, q, "a number", () => true)) as RGB | undefined),
    std: c.optional(o, "std", path, undefined, (x, p) => c.tuple(x, p, 3, "numbers > 0", (y, q) => c.positive(y, q)) as RGB | undefined),
    interpolation: c.optional(o, "interpolation", path, undefined, (x, p) => c.enumeration(x, p, INTERPOLATIONS)),
    resampler: c.optional(o, "resampler", path, undefined, (x, p) => c.enumeration(x, p, RESAMPLERS)),
    scale: c.optional(o, "scale", path, undefined, (x, p) => {
      const range = c.tuple(x, p, 2, "numbers in (0, 1]", (y, q) => c.number(y, q, "a number in (0, 1]", (n) => n > 0 && n <= 1));
      if (range && range[0] > range[1]) c.errors.push(`${p}: expected [min, max] with min <= max, got [${range.join(", ")}]`);
      return range as [number, number] | undefined;
    }),
  };
  if (spec.scale && spec.transform && spec.transform !== "train") {
    c.errors.push(`${path}.scale: expected no scale with transform "${spec.transform}" (RandomResizedCrop's area range, train only), got [${spec.scale.join(", ")}]`);
  }
  return spec as DataSpec;
}

// transfer.val: a split's data spec, or {"fraction": f}; not both (a fraction of a val split is perClass's job, so
// that "fraction" in transfer.val always means images held out of training), and never the test or training split
// but for images after theirs (skipPerClass).
function valSpec(c: Checker, v: unknown, path: string, transfer: { train?: DataSpec; test?: DataSpec }): ValSpec | undefined {
  if (!isObject(v)) return c.fail(path, 'a data spec or {"fraction": f}', v);
  const o = v;
  const hasSplit = "dataset" in o || "split" in o;
  if (hasSplit && "fraction" in o) {
    c.errors.push(`${path}: expected either a split (a data spec, like transfer.test) or {"fraction": f} held out of transfer.train, got both a split and a fraction (perClass takes part of a split)`);
    return undefined;
  }
  if (!hasSplit) {
    const held = c.object(v, path, ["fraction"]);
    const fraction = held && c.required(held, "fraction", path, (x, p) => c.number(x, p, "a number in (0, 1), the share of each class of transfer.train held out", (n) => n > 0 && n < 1));
    return fraction === undefined ? undefined : { fraction };
  }
  const spec = dataSpec(c, v, path, DEFAULTS.transform.transferTest);
  // Where a spec reads from: its root, else its dataset's default root (not the working directory).
  const rootOf = (d: DataSpec) => resolve(d.root ?? defaultRoot(d.dataset) ?? "");
  const place = (d: DataSpec) => JSON.stringify([d.dataset, rootOf(d), d.split]);
  // One split serves both where skipPerClass takes the val images after the other's (the images are compared one by
  // one when the data is open: study/validation.ts).
  for (const key of ["test", "train"] as const) {
    const other = transfer[key];
    if (spec?.dataset && spec.split && spec.skipPerClass === undefined && other?.dataset && other.split && place(spec) === place(other)) {
      const hint = key === "train" ? '; {"fraction": f} holds part of it out of training' : "";
      c.errors.push(`${path}: expected a split other than transfer.${key}'s, got the same (${spec.dataset} ${spec.split} in ${rootOf(spec)}), without a skipPerClass that takes images after its own${hint}`);
    }
  }
  return spec;
}

export function modelSpec(c: Checker, v: unknown, path: string): ModelSpec | undefined {
  const o = c.object(v, path, MODEL_KEYS);
  if (!o) return undefined;
  const m = Object.fromEntries(MODEL_KEYS.map((k) => [k, c.required(o, k, path, (x, p) => c.int(x, p, 1))])) as unknown as ModelSpec;
  if (MODEL_KEYS.some((k) => m[k as keyof ModelSpec] === undefined)) return undefined;
  if (m.imageSize % m.patchSize !== 0) c.errors.push(`${path}.imageSize: expected a multiple of patchSize ${m.patchSize}, got ${m.imageSize}`);
  if (!headsFit(m.width, m.heads)) {
    c.errors.push(`${path}.heads: expected a divisor of width ${m.width} leaving a head dim that is a multiple of 4, got ${m.heads}`);
  }
  return m;
}

// A supervised pre-training (a "method" of "supervised" is the same as none, and is dropped: the config's identity
// stays that of earlier run folders), or with "method": "dino" DINO's (dinoSpec) with a cacheDir.
export function pretrainSpec(c: Checker, v: unknown, path: string): PretrainSpec | StudyDinoSpec | undefined {
  if (isObject(v) && v.method === "dino") {
    const o = c.object(v, path, [...DINO_KEYS, "cacheDir"])!;
    const cacheDir = c.optional(o, "cacheDir", path, DEFAULTS.pretrain.cacheDir, (x, p) => c.string(x, p));
    return { ...dinoSpec(c, o, path), cacheDir } as StudyDinoSpec;
  }
  const { method, ...rest } = isObject(v) ? v : { method: undefined };
  if (method !== undefined && method !== "supervised") return c.fail(join(path, "method"), "one of supervised, dino", method);
  const o = c.object(isObject(v) ? rest : v, path, PRETRAIN_KEYS);
  if (!o) return undefined;
  return {
    model: c.required(o, "model", path, (x, p) => modelSpec(c, x, p)),
    data: c.required(o, "data", path, (x, p) => dataSpec(c, x, p, DEFAULTS.transform.pretrain)),
    steps: c.required(o, "steps", path, (x, p) => c.int(x, p, 1)),
    batchSize: c.required(o, "batchSize", path, (x, p) => c.int(x, p, 1)),
    lr: c.required(o, "lr", path, (x, p) => c.positive(x, p)),
    warmupSteps: c.optional(o, "warmupSteps", path, DEFAULTS.pretrain.warmupSteps, (x, p) => c.int(x, p, 0)),
    optimizer: c.optional(o, "optimizer", path, DEFAULTS.pretrain.optimizer, (x, p) => c.enumeration(x, p, OPTIMIZERS)),
    weightDecay: c.optional(o, "weightDecay", path, DEFAULTS.pretrain.weightDecay, (x, p) => c.number(x, p, "a number >= 0", (n) => n >= 0)),
    seed: c.optional(o, "seed", path, DEFAULTS.pretrain.seed, (x, p) => c.int(x, p, 0)),
    cacheDir: c.optional(o, "cacheDir", path, DEFAULTS.pretrain.cacheDir, (x, p) => c.string(x, p)),
    microBatch: c.optional(o, "microBatch", path, undefined, (x, p) => c.int(x, p, 1)),
    ...precisionSpec(c, o, path),
  } as PretrainSpec;
}

function range(c: Checker, v: unknown, path: string): [number, number] | undefined {
  const r = c.tuple(v, path, 2, "numbers in (0, 1]", (y, q) => c.number(y, q, "a number in (0, 1]", (n) => n > 0 && n <= 1));
  if (r && r[0] > r[1]) return c.fail(path, "[min, max] with min <= max", r);
  return r as [number, number] | undefined;
}

// A DINO pre-training's settings from the object `o` at `path` (whose keys the caller checks: DINO_KEYS and its own),
// with DINO's defaults.
export function dinoSpec(c: Checker, o: Record<string, unknown>, path: string): DinoSpec {
  const model = c.required(o, "model", path, (x, p) => modelSpec(c, x, p));
  const steps = c.required(o, "steps", path, (x, p) => c.int(x, p, 1));
  const batchSize = c.required(o, "batchSize", path, (x, p) => c.int(x, p, 1));
  const fraction = (x: unknown, p: string) => c.number(x, p, "a number in [0, 1]", (n) => n >= 0 && n <= 1);
  const nonNegative = (x: unknown, p: string) => c.number(x, p, "a number >= 0", (n) => n >= 0);
  const head = c.optional(o, "head", path, DINO_HEAD_DEFAULTS, (x, p) => {
    const h = c.object(x, p, ["hidden", "bottleneck", "prototypes"]);
    if (!h) return undefined;
    return {
      hidden: c.optional(h, "hidden", p, DINO_HEAD_DEFAULTS.hidden, (y, q) => c.int(y, q, 1)),
      bottleneck: c.optional(h, "bottleneck", p, DINO_HEAD_DEFAULTS.bottleneck, (y, q) => c.int(y, q, 1)),
      prototypes: c.optional(h, "prototypes", p, DINO_HEAD_DEFAULTS.prototypes, (y, q) => c.int(y, q, 1)),
    };
  });
  const crops = c.required(o, "crops", path, (x, p) => {
    const k = c.object(x, p, ["localSize", "localCrops", "globalScale", "localScale", "color", "blur", "sampling"]);
    if (!k) return undefined;
    const out = {
      localSize: c.required(k, "localSize", p, (y, q) => c.int(y, q, 1)),
      localCrops: c.optional(k, "localCrops", p, 8, (y, q) => c.int(y, q, 0)),
      globalScale: c.optional(k, "globalScale", p, MULTI_CROP_DEFAULTS.globalScale, (y, q) => range(c, y, q)),
      localScale: c.optional(k, "localScale", p, MULTI_CROP_DEFAULTS.localScale, (y, q) => range(c, y, q)),
      color: c.required(k, "color", p, (y, q) => c.enumeration(y, q, ["rgb", "grayscale"] as const)),
      blur: c.optional(k, "blur", p, undefined, (y, q) => c.boolean(y, q)),
      sampling: c.optional(k, "sampling", p, undefined, (y, q) => c.enumeration(y, q, CROP_SAMPLINGS)),
    };
    if (out.blur === undefined) delete out.blur;
    if (out.sampling === undefined) delete out.sampling;
    if (model && out.localSize !== undefined && out.localSize % model.patchSize !== 0) {
      c.errors.push(`${p}.localSize: expected a multiple of model.patchSize ${model.patchSize}, got ${out.localSize}`);
    }
    return out;
  });
  const spec = {
    method: "dino",
    model,
    data: c.required(o, "data", path, (x, p) => dataSpec(c, x, p, DEFAULTS.transform.pretrain)),
    head,
    crops,
    steps,
    batchSize,
    // DINO's defaults: lr 0.0005 x batch / 256 after a warm-up of 10 of 100 epochs; the teacher's temperature
    // warms up from 0.04 to 0.07 over 30 of 100 epochs (its recipe for ViTs trained long).
    lr: c.optional(o, "lr", path, batchSize && (0.0005 * batchSize) / 256, (x, p) => c.positive(x, p)),
    minLr: c.optional(o, "minLr", path, 1e-6, nonNegative),
    warmupSteps: c.optional(o, "warmupSteps", path, steps && Math.floor(0.1 * steps), (x, p) => c.int(x, p, 0)),
    weightDecay: c.optional(o, "weightDecay", path, 0.04, nonNegative),
    weightDecayEnd: c.optional(o, "weightDecayEnd", path, 0.4, nonNegative),
    momentum: c.optional(o, "momentum", path, 0.996, fraction),
    warmupTeacherTemp: c.optional(o, "warmupTeacherTemp", path, 0.04, (x, p) => c.positive(x, p)),
    teacherTemp: c.optional(o, "teacherTemp", path, 0.07, (x, p) => c.positive(x, p)),
    teacherTempWarmupSteps: c.optional(o, "teacherTempWarmupSteps", path, steps && Math.floor(0.3 * steps), (x, p) => c.int(x, p, 0)),
    studentTemp: c.optional(o, "studentTemp", path, 0.1, (x, p) => c.positive(x, p)),
    centerMomentum: c.optional(o, "centerMomentum", path, 0.9, fraction),
    clipGrad: c.optional(o, "clipGrad", path, 3, nonNegative),
    freezeLastLayerSteps: c.optional(o, "freezeLastLayerSteps", path, 0, (x, p) => c.int(x, p, 0)),
    seed: c.optional(o, "seed", path, 0, (x, p) => c.int(x, p, 0)),
    collapse: c.optional(o, "collapse", path, COLLAPSE_DEFAULTS, (x, p) => {
      const k = c.object(x, p, ["window", "uniform", "constant"]);
      if (!k) return undefined;
      return {
        window: c.optional(k, "window", p, COLLAPSE_DEFAULTS.window, (y, q) => c.int(y, q, 0)),
        uniform: c.optional(k, "uniform", p, COLLAPSE_DEFAULTS.uniform, (y, q) => c.number(y, q, "a fraction in (0, 1]", (n) => n > 0 && n <= 1)),
        constant: c.optional(k, "constant", p, COLLAPSE_DEFAULTS.constant, fraction),
      };
    }),
    knnEvery: c.optional(o, "knnEvery", path, 0, (x, p) => c.int(x, p, 0)),
    logEvery: c.optional(o, "logEvery", path, 10, (x, p) => c.int(x, p, 1)),
    checkpointEvery: c.optional(o, "checkpointEvery", path, steps && Math.max(1, Math.ceil(steps / 10)), (x, p) => c.int(x, p, 1)),
    ...precisionSpec(c, o, path),
  };
  if (spec.steps !== undefined && spec.warmupSteps !== undefined && spec.warmupSteps >= spec.steps) {
    c.errors.push(`${join(path, "warmupSteps")}: expected fewer than steps (${spec.steps}), got ${spec.warmupSteps}`);
  }
  if (spec.crops?.sampling === "grid")
    for (const key of ["interpolation", "resampler"] as const)
      if (spec.data?.[key]) c.errors.push(`${join(path, `data.${key}`)}: expected none with crops.sampling "grid" (it samples bilinearly itself), got "${spec.data[key]}"`);
  if (spec.data?.scale) c.errors.push(`${join(path, "data.scale")}: expected no scale for DINO (its crops take crops.globalScale and crops.localScale), got [${spec.data.scale.join(", ")}]`);
  c.errors.push(...dinoSpecConflicts(spec as DinoSpec).map((problem) => join(path, problem)));
  return spec as DinoSpec;
}

function backboneSpec(c: Checker, v: unknown, path: string): BackboneSpec | undefined {
  const o = c.object(v, path, ["checkpoint", "sha256", "heads", "key", "pretrain"]);
  if (!o) return undefined;
  if (("checkpoint" in o) === ("pretrain" in o)) {
    c.errors.push(`${path}: expected exactly one of checkpoint and pretrain, got ${"checkpoint" in o ? "both" : "neither"}`);
  }
  if ("sha256" in o && !("checkpoint" in o)) c.errors.push(`${path}.sha256: expected it only with a checkpoint, got it with pretrain`);
  return {
    checkpoint: c.optional(o, "checkpoint", path, undefined, (x, p) => c.string(x, p)),
    sha256: c.optional(o, "sha256", path, undefined, (x, p) =>
      typeof x === "string" && /^[0-9a-f]{64}$/.test(x) ? x : c.fail(p, "64 lower-case hex digits (a SHA-256)", x),
    ),
    heads: c.optional(o, "heads", path, undefined, (x, p) => c.int(x, p, 1)),
    key: c.optional(o, "key", path, undefined, (x, p) => c.string(x, p)),
    pretrain: c.optional(o, "pretrain", path, undefined, (x, p) => pretrainSpec(c, x, p)),
  };
}

// The index of the first number of `xs` not above the one before it (-1: ascending and distinct throughout).
export function firstUnordered(xs: readonly number[]): number {
  return xs.findIndex((x, i) => i > 0 && x <= xs[i - 1]);
}

// A non-empty array of numbers `item` accepts, ascending and distinct; `above(x)` says what the next one must be.
function ascending(c: Checker, v: unknown, path: string, item: (x: unknown, p: string) => number | undefined, above: (x: number) => string): number[] | undefined {
  const xs = c.array(v, path, item);
  const unordered = xs ? firstUnordered(xs) : -1;
  return unordered > 0 ? c.fail(`${path}[${unordered}]`, `${above(xs![unordered - 1])} (ascending, distinct)`, xs![unordered]) : xs;
}

// Steps of training, each >= `min`, ascending and distinct (each <= training.steps: checked with the whole config).
function ascendingSteps(c: Checker, v: unknown, path: string, min: number): number[] | undefined {
  return ascending(c, v, path, (y, q) => c.int(y, q, min), (x) => `a step after ${x}`);
}

function linearProbeSpec(c: Checker, v: unknown, path: string): LinearProbeSpec | undefined {
  const o = c.object(v, path, ["lr", "steps", "headNorm"]);
  if (!o) return undefined;
  return {
    lr: c.required(o, "lr", path, (x, p) => c.positive(x, p)),
    ...("steps" in o && { steps: c.required(o, "steps", path, (x, p) => c.int(x, p, 1)) }),
    ...("headNorm" in o && { headNorm: c.required(o, "headNorm", path, (x, p) => (x === "drawn" ? x : c.number(x, p, 'a number > 0 or "drawn"', (n) => n > 0))) }),
  } as LinearProbeSpec;
}

// analysis.interpolate: weights in [0, 1], ascending and distinct.
function interpolationWeights(c: Checker, v: unknown, path: string): number[] | undefined {
  return ascending(c, v, path, (y, q) => c.number(y, q, "a number in [0, 1]", (n) => n >= 0 && n <= 1), (x) => `a weight above ${x}`);
}

function knnSpec(c: Checker, v: unknown, path: string): KnnSpec | undefined {
  const o = c.object(v, path, ["bank", "queries", "ks", "reportK", "temperature", "batchSize", "atSteps", "val", "otherBanks"]);
  if (!o) return undefined;
  const ks = c.optional(o, "ks", path, DEFAULTS.knn.ks, (x, p) => c.array(x, p, (y, q) => c.int(y, q, 1)));
  const reportK = c.optional(o, "reportK", path, DEFAULTS.knn.reportK, (x, p) => c.int(x, p, 1));
  if (ks && reportK !== undefined && !ks.includes(reportK)) c.errors.push(`${path}.reportK: expected one of ks (${ks.join(", ")}), got ${reportK}`);
  return {
    bank: c.required(o, "bank", path, (x, p) => dataSpec(c, x, p, DEFAULTS.transform.knn)),
    queries: c.required(o, "queries", path, (x, p) => dataSpec(c, x, p, DEFAULTS.transform.knn)),
    ks,
    reportK,
    temperature: c.optional(o, "temperature", path, DEFAULTS.knn.temperature, (x, p) =>
      c.number(x, p, `a number >= 1/700 (${MIN_TEMPERATURE.toPrecision(3)}: below it the votes exp(sim / T) overflow)`, (n) => n >= MIN_TEMPERATURE)),
    batchSize: c.optional(o, "batchSize", path, DEFAULTS.knn.batchSize, (x, p) => c.int(x, p, 1)),
    atSteps: c.optional(o, "atSteps", path, undefined, (x, p) => ascendingSteps(c, x, p, 0)),
    // Absent stays absent, so the config.json of earlier runs still matches.
    ...("val" in o && { val: dataSpec(c, o.val, `${path}.val`, DEFAULTS.transform.knn) }),
    ...("otherBanks" in o && { otherBanks: c.array(o.otherBanks, `${path}.otherBanks`, (x, p) => dataSpec(c, x, p, DEFAULTS.transform.knn)) }),
  } as KnnSpec;
}

function analysisSpec(c: Checker, v: unknown, path: string): AnalysisSpec | undefined {
  const resetGrain = (x: unknown, p: string) => (x === "layers" ? x : typeof x === "boolean" ? x : c.fail(p, 'true, false or "layers"', x));
  const o = c.object(v, path, ["images", "gridImages", "bankPerClass", "atSteps", "resets", "resetsBetweenSteps", "interpolate", "interpolateHead", "strategies", "tableRates"]);
  if (!o) return undefined;
  if ("interpolateHead" in o && !("interpolate" in o)) c.errors.push(`${path}.interpolateHead: expected analysis.interpolate beside it (the weights to move the head at), got none`);
  if ((o.resetsBetweenSteps === true || o.resetsBetweenSteps === "layers") && !("atSteps" in o)) c.errors.push(`${path}.resetsBetweenSteps: expected analysis.atSteps beside it (the kept steps to put the parts back to), got none`);
  return {
    // CKA compares features across the images: at least two.
    images: c.optional(o, "images", path, DEFAULTS.analysis.images, (x, p) => c.int(x, p, 2)),
    gridImages: c.optional(o, "gridImages", path, DEFAULTS.analysis.gridImages, (x, p) => c.int(x, p, 1)),
    bankPerClass: c.optional(o, "bankPerClass", path, undefined, (x, p) => c.int(x, p, 1)),
    // Absent stays absent, so the config.json of earlier runs still matches. Step 0 is the original itself.
    ...("atSteps" in o && { atSteps: c.required(o, "atSteps", path, (x, p) => ascendingSteps(c, x, p, 1)) }),
    ...("resets" in o && { resets: c.required(o, "resets", path, resetGrain) }),
    ...("resetsBetweenSteps" in o && { resetsBetweenSteps: c.required(o, "resetsBetweenSteps", path, resetGrain) }),
    ...("interpolate" in o && { interpolate: c.required(o, "interpolate", path, (x, p) => interpolationWeights(c, x, p)) }),
    ...("interpolateHead" in o && { interpolateHead: c.required(o, "interpolateHead", path, (x, p) => c.enumeration(x, p, INTERPOLATION_HEADS)) }),
    // Which strategies the config has is checked once its strategies are known.
    ...("strategies" in o && { strategies: c.required(o, "strategies", path, (x, p) => c.array(x, p, (y, q) => c.string(y, q))) }),
    ...("tableRates" in o && { tableRates: c.required(o, "tableRates", path, (x, p) => c.boolean(x, p)) }),
  } as AnalysisSpec;
}

function lossScaleSpec(c: Checker, v: unknown, path: string): Partial<LossScaleSettings> | undefined {
  const o = c.object(v, path, LOSS_SCALE_KEYS);
  if (!o) return undefined;
  const spec: Partial<LossScaleSettings> = {
    init: c.optional(o, "init", path, undefined, (x, p) => c.number(x, p, "a finite number > 0", (n) => n > 0 && Number.isFinite(n))),
    backoff: c.optional(o, "backoff", path, undefined, (x, p) => c.number(x, p, "a number in (0, 1)", (n) => n > 0 && n < 1)),
    growth: c.optional(o, "growth", path, undefined, (x, p) => c.number(x, p, "a finite number > 1", (n) => n > 1 && Number.isFinite(n))),
    interval: c.optional(o, "interval", path, undefined, (x, p) => c.int(x, p, 1)),
  };
  return Object.fromEntries(Object.entries(spec).filter(([, x]) => x !== undefined));
}

// `precision` and `lossScale` of a training, a pre-training or a DINO pre-training. "f32" is left out like an absent
// key, so that the config's identity is that of runs from before the key; absent lossScale keys stay absent (the
// loops fill in LOSS_SCALE_DEFAULTS, GradScaler's).
function precisionSpec(c: Checker, o: Record<string, unknown>, path: string): { precision?: Exclude<Precision, "f32">; lossScale?: Partial<LossScaleSettings> } {
  const given = c.optional(o, "precision", path, undefined, (x, p) => c.enumeration(x, p, PRECISIONS));
  const precision = given === "f32" ? undefined : given;
  const lossScale = c.optional(o, "lossScale", path, undefined, (x, p) => lossScaleSpec(c, x, p));
  if (lossScale !== undefined && precision !== "f16") c.errors.push(`${join(path, "lossScale")}: expected only with precision "f16" (loss scaling is for f16 gradients), got precision "${precision ?? "f32"}"`);
  return { ...(precision && { precision }), ...(lossScale && { lossScale }) };
}

// `schedule` of a training: after the warm-up, "cosine" (the paper's decay to 0) or "constant" (the peak rate to the
// end). "cosine" is left out like an absent key, so that config.json and the checkpoints of earlier runs match.
function scheduleSpec(c: Checker, o: Record<string, unknown>, path: string): { schedule?: "constant" } {
  const given = c.optional(o, "schedule", path, undefined, (x, p) => c.enumeration(x, p, ["cosine", "constant"] as const));
  return given === "constant" ? { schedule: given } : {};
}

function trainingSpec(c: Checker, v: unknown, path: string): StudyTraining | undefined {
  const o = c.object(v, path, TRAINING_KEYS);
  if (!o) return undefined;
  const t = {
    steps: c.required(o, "steps", path, (x, p) => c.int(x, p, 1)),
    batchSize: c.required(o, "batchSize", path, (x, p) => c.int(x, p, 1)),
    evalEvery: c.required(o, "evalEvery", path, (x, p) => c.int(x, p, 1)),
    warmupSteps: c.optional(o, "warmupSteps", path, DEFAULTS.training.warmupSteps, (x, p) => c.int(x, p, 0)),
    ...scheduleSpec(c, o, path),
    optimizer: c.optional(o, "optimizer", path, DEFAULTS.training.optimizer, (x, p) => c.enumeration(x, p, OPTIMIZERS)),
    momentum: c.optional(o, "momentum", path, DEFAULTS.training.momentum, (x, p) => c.number(x, p, "a number in [0, 1)", (n) => n >= 0 && n < 1)),
    weightDecay: c.optional(o, "weightDecay", path, DEFAULTS.training.weightDecay, (x, p) => c.number(x, p, "a number >= 0", (n) => n >= 0)),
    clipNorm: c.optional(o, "clipNorm", path, undefined, (x, p) => c.positive(x, p)),
    lossEvery: c.optional(o, "lossEvery", path, DEFAULTS.training.lossEvery, (x, p) => c.int(x, p, 1)),
    // Absent stays absent (not batchSize), so the run folder's config.json of earlier runs still matches.
    microBatch: c.optional(o, "microBatch", path, undefined, (x, p) => c.int(x, p, 1)),
    ...precisionSpec(c, o, path),
  };
  if (t.steps !== undefined && t.warmupSteps !== undefined && t.warmupSteps >= t.steps) {
    c.errors.push(`${path}.warmupSteps: expected fewer than steps (${t.steps}), got ${t.warmupSteps}`);
  }
  return t as StudyTraining;
}

// A strategy that fits every backbone; with the pre-training's model known, one that fits it (a checkpoint's
// shape is checked as soon as its header is read, by the runner).
function strategy(c: Checker, v: unknown, path: string, shape: BackboneShape | undefined): Strategy | undefined {
  const text = c.string(v, path);
  if (text === undefined) return undefined;
  let s: Strategy;
  try {
    s = parseStrategy(text);
  } catch {
    return c.fail(path, `a strategy: ${STRATEGY_FORMS}`, text);
  }
  const problem = strategyProblem(s, shape);
  return problem ? c.fail(path, shape ? `${problem} (backbone.pretrain.model)` : problem, text) : s;
}

// One value for every strategy, or {"<strategy name>": value, ...} (learningRates: [0.01, 0.001] or {"full":
// [0.01], "linear": [0.1]}; headInit: "uniform" or {"full": "trunc-normal", ...}). Which names it must hold is
// checked once the strategies are known.
function perStrategy<T>(v: unknown, path: string, one: (x: unknown, p: string) => T | undefined): T | Record<string, T> | undefined {
  if (!isObject(v)) return one(v, path);
  const out: Record<string, T> = {};
  for (const [name, x] of Object.entries(v)) {
    const value = one(x, join(path, name));
    if (value !== undefined) out[name] = value;
  }
  return Object.keys(out).length === Object.keys(v).length ? out : undefined;
}

// The learning rates a strategy's cells train with.
export function ratesFor(config: StudyConfig, s: Strategy): number[] {
  const rates = config.learningRates;
  return Array.isArray(rates) ? rates : rates[strategyName(s)];
}

// How a strategy's new head is initialised.
export function headInitFor(config: StudyConfig, s: Strategy): HeadInit {
  const init = config.headInit ?? DEFAULTS.headInit;
  return typeof init === "string" ? init : init[strategyName(s)];
}

// Checks a parsed JSON value and fills in defaults; throws a ConfigError listing every problem.
export function parseStudyConfig(json: unknown, source = "config"): StudyConfig {
  const c = new Checker();
  const o = c.object(json, "", TOP_KEYS);
  if (!o) throw new ConfigError(`${source}: expected a JSON object at the top level, got ${describeJson(json)}`);
  const name = c.optional(o, "name", "", DEFAULTS.name, (x, p) => {
    const v = c.string(x, p);
    // It names the default run folder, runs/<name>: "." and ".." would be runs/ itself or the folder above it.
    if (v === "." || v === "..") return c.fail(p, `a name other than "." or ".."`, v);
    return v === undefined || /^[\w.-]+$/.test(v) ? v : c.fail(p, "a name of letters, digits, '.', '_' and '-'", v);
  });
  const backbone = c.required(o, "backbone", "", (x, p) => backboneSpec(c, x, p));
  const model = backbone?.pretrain?.model;
  const shape = model && { depth: model.depth, width: model.width };
  const config = {
    name,
    backbone,
    imageSize: c.optional(o, "imageSize", "", undefined, (x, p) => c.int(x, p, 1)),
    knn: c.required(o, "knn", "", (x, p) => knnSpec(c, x, p)),
    transfer: c.required(o, "transfer", "", (x, p) => {
      const t = c.object(x, p, ["train", "test", "val"]);
      if (!t) return undefined;
      const transfer: StudyConfig["transfer"] = {
        train: c.required(t, "train", p, (y, q) => dataSpec(c, y, q, DEFAULTS.transform.transferTrain))!,
        test: c.required(t, "test", p, (y, q) => dataSpec(c, y, q, DEFAULTS.transform.transferTest))!,
      };
      // Absent stays absent, so the config.json of earlier runs still matches.
      if ("val" in t) transfer.val = valSpec(c, t.val, `${p}.val`, transfer);
      return transfer;
    }),
    strategies: c.required(o, "strategies", "", (x, p) => c.array(x, p, (y, q) => strategy(c, y, q, shape))),
    learningRates: c.required(o, "learningRates", "", (x, p) => perStrategy(x, p, (y, q) => c.array(y, q, (z, r) => c.positive(z, r)))),
    headInit: c.optional(o, "headInit", "", undefined, (x, p) => perStrategy(x, p, (y, q) => c.enumeration(y, q, HEAD_INITS))),
    // Absent stays absent, so the config.json of earlier runs still matches.
    ...("linearProbe" in o && { linearProbe: c.required(o, "linearProbe", "", (x, p) => linearProbeSpec(c, x, p)) }),
    seeds: c.optional(o, "seeds", "", DEFAULTS.seeds, (x, p) => c.array(x, p, (y, q) => c.int(y, q, 0))),
    training: c.required(o, "training", "", (x, p) => trainingSpec(c, x, p)),
    selectBy: c.optional(o, "selectBy", "", DEFAULTS.selectBy, (x, p) => c.enumeration(x, p, ["transfer", "mean", "knee"] as const)),
    analysis: c.optional(o, "analysis", "", undefined, (x, p) => analysisSpec(c, x, p)),
  };
  const names = config.strategies?.map(strategyName);
  const probed = config.strategies?.filter((s) => s?.probeFirst).map(strategyName) ?? [];
  if (probed.length > 0 && !("linearProbe" in o)) c.errors.push(`linearProbe: missing (${probed.join(", ")} train a linear probe first: its lr, and its steps where not training.steps)`);
  if (probed.length === 0 && "linearProbe" in o && config.strategies) c.errors.push("linearProbe: expected an -lpft strategy to use it, got none (a linear probe first is a strategy's -lpft suffix)");
  // The probe's schedule is training's with its own steps: the warm-up must end before them.
  const probeSteps = config.linearProbe?.steps;
  const warmup = config.training?.warmupSteps;
  if (probeSteps !== undefined && warmup !== undefined && probeSteps <= warmup) c.errors.push(`linearProbe.steps: expected more than training.warmupSteps (${warmup}), got ${probeSteps}`);
  const rates = config.learningRates;
  const distinct: Record<string, unknown[] | undefined> = { strategies: names, seeds: config.seeds, "analysis.strategies": config.analysis?.strategies };
  if (Array.isArray(rates)) distinct.learningRates = rates;
  else if (rates) for (const [name, list] of Object.entries(rates)) distinct[`learningRates.${name}`] = list;
  const perName = { learningRates: Array.isArray(rates) ? undefined : rates, headInit: typeof config.headInit === "object" ? config.headInit : undefined };
  for (const [key, byName] of Object.entries(perName)) {
    if (!byName || !names) continue;
    for (const name of Object.keys(byName)) if (!names.includes(name)) c.errors.push(`${key}.${name}: expected a strategy of the config (${names.join(", ")}), got one that is not`);
    for (const name of names) if (!(name in byName)) c.errors.push(`${key}.${name}: missing (a per-strategy ${key} needs every strategy)`);
  }
  config.analysis?.strategies?.forEach((name, i) => {
    if (names && !names.includes(name)) c.errors.push(`analysis.strategies[${i}]: expected a strategy of the config (${names.join(", ")}), got "${name}"`);
  });
  for (const [key, list] of Object.entries(distinct)) {
    if (list && new Set(list).size !== list.length) c.errors.push(`${key}: expected distinct values, got [${list.join(", ")}]`);
  }
  const steps = config.training?.steps;
  for (const [key, atSteps] of [["knn.atSteps", config.knn?.atSteps], ["analysis.atSteps", config.analysis?.atSteps]] as const) {
    const late = atSteps && steps !== undefined ? atSteps.findIndex((s) => s > steps) : -1;
    if (late >= 0) c.errors.push(`${key}[${late}]: expected a step <= training.steps (${steps}), got ${atSteps![late]}`);
  }
  if (c.errors.length > 0) throw new ConfigError(`${source}: ${c.errors.length} problem${c.errors.length > 1 ? "s" : ""}:\n  ${c.errors.join("\n  ")}`);
  return config as StudyConfig;
}

// The canonical JSON form of a config (a run folder's config.json, results.json): strategies by name.
export function configJson(config: StudyConfig): Record<string, unknown> {
  return { ...config, strategies: config.strategies.map(strategyName) };
}

// What makes two configs the same study: the canonical JSON under runIdentity's rule (training.microBatch and
// backbone.pretrain.microBatch may change). study/changes.ts compares two of them key by key for a run folder.
export function studyIdentity(config: StudyConfig): string {
  return runIdentity(configJson(config));
}
