// The study configuration: which backbone, which data for k-NN (source domain) and fine-tuning (transfer domain),
// which strategies, learning rates, seeds and training settings. A JSON file is checked completely before any work
// starts: every unknown key and every wrong type is reported with its key path (`training.steps: expected an
// integer >= 1, got "100"`), all of them at once.
//
// Relative paths (checkpoint, dataset roots, cache folder) are relative to the working directory.
import { DATASET_NAMES } from "../data/registry.js";
import { parseClassList } from "../data/subset.js";
import { parseStrategy, strategyName } from "../peft/strategy.js";
import type { OptimizerName } from "../train/train.js";
import type { PretrainSpec } from "../train/pretrain.js";
import type { DataSpec } from "../data/spec.js";
import type { TransformKind } from "../data/transforms.js";
import type { ModelSpec } from "../vit/config.js";

export interface BackboneSpec {
  checkpoint?: string; // a ViT checkpoint file (.pth / .safetensors, timm, DINO or Hugging Face layout)
  heads?: number; // for the checkpoint: attention heads when width is not 64 per head
  key?: string; // for a .pth: the sub-dictionary holding the weights, e.g. "teacher"
  pretrain?: PretrainSpec; // exactly one of checkpoint and pretrain
}

export interface KnnSpec {
  bank: DataSpec; // source-domain training images: the neighbours
  queries: DataSpec; // source-domain test images: classified by their neighbours
  ks: number[]; // neighbour counts evaluated (one pass serves all)
  reportK: number; // the k in the table and figure (DINO reports 20)
  temperature: number; // vote weight exp(sim / T), DINO: 0.07
  batchSize: number; // images per forward pass for features
}

export interface TrainingSpec {
  steps: number;
  batchSize: number;
  evalEvery: number; // transfer test accuracy every this many steps (and at the end)
  warmupSteps: number;
  optimizer: OptimizerName;
  momentum: number;
  weightDecay: number;
  clipNorm?: number;
  lossEvery: number; // losses are read back (and checked) every this many steps
  microBatch?: number; // images per forward + backward pass, gradients accumulated; default (and any >= batchSize): one pass
}

export interface StudyConfig {
  name: string;
  backbone: BackboneSpec;
  imageSize?: number; // input resolution of every image; default: the backbone's native size
  knn: KnnSpec;
  transfer: { train: DataSpec; test: DataSpec };
  strategies: string[]; // full, linear, top-K, lora-rR, block-pP (peft/strategy.ts), canonical names
  learningRates: number[];
  seeds: number[];
  training: TrainingSpec;
  selectBy: "transfer" | "mean"; // how the table picks each strategy's learning rate
}

// ---- a small checker that collects every error with its key path ----

class Checker {
  errors: string[] = [];

  fail(path: string, expected: string, got: unknown): undefined {
    this.errors.push(`${path}: expected ${expected}, got ${describe(got)}`);
    return undefined;
  }

  // The object at `path` with exactly the keys of `known` allowed; returns it (or undefined after an error).
  object(v: unknown, path: string, known: string[]): Record<string, unknown> | undefined {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return this.fail(path, "an object", v);
    const o = v as Record<string, unknown>;
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

  int(v: unknown, path: string, min: number): number | undefined {
    return this.number(v, path, `an integer >= ${min}`, (n) => Number.isInteger(n) && n >= min);
  }

  positive(v: unknown, path: string): number | undefined {
    return this.number(v, path, "a number > 0", (n) => n > 0);
  }

  enumeration<T extends string>(v: unknown, path: string, values: readonly T[]): T | undefined {
    return typeof v === "string" && (values as readonly string[]).includes(v) ? (v as T) : this.fail(path, `one of ${values.join(", ")}`, v);
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

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  return JSON.stringify(v);
}

export class ConfigError extends Error {}

const DATA_KEYS = ["dataset", "root", "split", "classes", "perClass", "fraction", "transform"];
const MODEL_KEYS = ["imageSize", "patchSize", "width", "depth", "heads", "mlpHidden"];
const PRETRAIN_KEYS = ["model", "data", "steps", "batchSize", "lr", "warmupSteps", "optimizer", "weightDecay", "seed", "cacheDir", "microBatch"];
const TRAINING_KEYS = ["steps", "batchSize", "evalEvery", "warmupSteps", "optimizer", "momentum", "weightDecay", "clipNorm", "lossEvery", "microBatch"];
const TOP_KEYS = ["$comment", "name", "backbone", "imageSize", "knn", "transfer", "strategies", "learningRates", "seeds", "training", "selectBy"];
const TRANSFORMS: TransformKind[] = ["train", "eval", "knn"];
const OPTIMIZERS: OptimizerName[] = ["sgd", "adamw"];

function dataSpec(c: Checker, v: unknown, path: string, transform: TransformKind): DataSpec | undefined {
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
    fraction: c.optional(o, "fraction", path, undefined, (x, p) => c.number(x, p, "a number in (0, 1]", (n) => n > 0 && n <= 1)),
    transform: c.optional(o, "transform", path, transform, (x, p) => c.enumeration(x, p, TRANSFORMS)),
  };
  return spec as DataSpec;
}

function modelSpec(c: Checker, v: unknown, path: string): ModelSpec | undefined {
  const o = c.object(v, path, MODEL_KEYS);
  if (!o) return undefined;
  const m = Object.fromEntries(MODEL_KEYS.map((k) => [k, c.required(o, k, path, (x, p) => c.int(x, p, 1))])) as unknown as ModelSpec;
  if (MODEL_KEYS.some((k) => m[k as keyof ModelSpec] === undefined)) return undefined;
  if (m.imageSize % m.patchSize !== 0) c.errors.push(`${path}.imageSize: expected a multiple of patchSize ${m.patchSize}, got ${m.imageSize}`);
  if (m.width % m.heads !== 0 || (m.width / m.heads) % 4 !== 0) {
    c.errors.push(`${path}.heads: expected a divisor of width ${m.width} leaving a head dim that is a multiple of 4, got ${m.heads}`);
  }
  return m;
}

function pretrainSpec(c: Checker, v: unknown, path: string): PretrainSpec | undefined {
  const o = c.object(v, path, PRETRAIN_KEYS);
  if (!o) return undefined;
  return {
    model: c.required(o, "model", path, (x, p) => modelSpec(c, x, p)),
    data: c.required(o, "data", path, (x, p) => dataSpec(c, x, p, "train")),
    steps: c.required(o, "steps", path, (x, p) => c.int(x, p, 1)),
    batchSize: c.required(o, "batchSize", path, (x, p) => c.int(x, p, 1)),
    lr: c.required(o, "lr", path, (x, p) => c.positive(x, p)),
    warmupSteps: c.optional(o, "warmupSteps", path, 0, (x, p) => c.int(x, p, 0)),
    optimizer: c.optional(o, "optimizer", path, "adamw" as OptimizerName, (x, p) => c.enumeration(x, p, OPTIMIZERS)),
    weightDecay: c.optional(o, "weightDecay", path, 0.05, (x, p) => c.number(x, p, "a number >= 0", (n) => n >= 0)),
    seed: c.optional(o, "seed", path, 0, (x, p) => c.int(x, p, 0)),
    cacheDir: c.optional(o, "cacheDir", path, ".cache", (x, p) => c.string(x, p)),
    microBatch: c.optional(o, "microBatch", path, undefined, (x, p) => c.int(x, p, 1)),
  } as PretrainSpec;
}

function backboneSpec(c: Checker, v: unknown, path: string): BackboneSpec | undefined {
  const o = c.object(v, path, ["checkpoint", "heads", "key", "pretrain"]);
  if (!o) return undefined;
  if (("checkpoint" in o) === ("pretrain" in o)) {
    c.errors.push(`${path}: expected exactly one of checkpoint and pretrain, got ${"checkpoint" in o ? "both" : "neither"}`);
  }
  return {
    checkpoint: c.optional(o, "checkpoint", path, undefined, (x, p) => c.string(x, p)),
    heads: c.optional(o, "heads", path, undefined, (x, p) => c.int(x, p, 1)),
    key: c.optional(o, "key", path, undefined, (x, p) => c.string(x, p)),
    pretrain: c.optional(o, "pretrain", path, undefined, (x, p) => pretrainSpec(c, x, p)),
  };
}

function knnSpec(c: Checker, v: unknown, path: string): KnnSpec | undefined {
  const o = c.object(v, path, ["bank", "queries", "ks", "reportK", "temperature", "batchSize"]);
  if (!o) return undefined;
  const ks = c.optional(o, "ks", path, [10, 20, 100, 200], (x, p) => c.array(x, p, (y, q) => c.int(y, q, 1)));
  const reportK = c.optional(o, "reportK", path, 20, (x, p) => c.int(x, p, 1));
  if (ks && reportK !== undefined && !ks.includes(reportK)) c.errors.push(`${path}.reportK: expected one of ks (${ks.join(", ")}), got ${reportK}`);
  return {
    bank: c.required(o, "bank", path, (x, p) => dataSpec(c, x, p, "knn")),
    queries: c.required(o, "queries", path, (x, p) => dataSpec(c, x, p, "knn")),
    ks,
    reportK,
    temperature: c.optional(o, "temperature", path, 0.07, (x, p) => c.positive(x, p)),
    batchSize: c.optional(o, "batchSize", path, 64, (x, p) => c.int(x, p, 1)),
  } as KnnSpec;
}

function trainingSpec(c: Checker, v: unknown, path: string): TrainingSpec | undefined {
  const o = c.object(v, path, TRAINING_KEYS);
  if (!o) return undefined;
  const t = {
    steps: c.required(o, "steps", path, (x, p) => c.int(x, p, 1)),
    batchSize: c.required(o, "batchSize", path, (x, p) => c.int(x, p, 1)),
    evalEvery: c.required(o, "evalEvery", path, (x, p) => c.int(x, p, 1)),
    warmupSteps: c.optional(o, "warmupSteps", path, 0, (x, p) => c.int(x, p, 0)),
    optimizer: c.optional(o, "optimizer", path, "sgd" as OptimizerName, (x, p) => c.enumeration(x, p, OPTIMIZERS)),
    momentum: c.optional(o, "momentum", path, 0.9, (x, p) => c.number(x, p, "a number in [0, 1)", (n) => n >= 0 && n < 1)),
    weightDecay: c.optional(o, "weightDecay", path, 0, (x, p) => c.number(x, p, "a number >= 0", (n) => n >= 0)),
    clipNorm: c.optional(o, "clipNorm", path, undefined, (x, p) => c.positive(x, p)),
    lossEvery: c.optional(o, "lossEvery", path, 10, (x, p) => c.int(x, p, 1)),
    // Absent stays absent (not batchSize), so the run folder's config.json of earlier runs still matches.
    microBatch: c.optional(o, "microBatch", path, undefined, (x, p) => c.int(x, p, 1)),
  };
  if (t.steps !== undefined && t.warmupSteps !== undefined && t.warmupSteps >= t.steps) {
    c.errors.push(`${path}.warmupSteps: expected fewer than steps (${t.steps}), got ${t.warmupSteps}`);
  }
  return t as TrainingSpec;
}

function strategy(c: Checker, v: unknown, path: string, depth: number | undefined): string | undefined {
  const text = c.string(v, path);
  if (text === undefined) return undefined;
  try {
    const s = parseStrategy(text);
    if (depth !== undefined && s.kind === "top-k" && s.k > depth) return c.fail(path, `top-k with k <= depth ${depth}`, text);
    if (depth !== undefined && s.kind === "block" && !s.positions && depth % s.p !== 0) return c.fail(path, `block-pP with P dividing depth ${depth}`, text);
    return strategyName(s);
  } catch {
    return c.fail(path, "a strategy: full, linear, top-K, lora-rR, block-pP or block@POS[,POS]", text);
  }
}

// Checks a parsed JSON value and fills in defaults; throws a ConfigError listing every problem.
export function parseStudyConfig(json: unknown, source = "config"): StudyConfig {
  const c = new Checker();
  const o = c.object(json, "", TOP_KEYS);
  if (!o) throw new ConfigError(`${source}: expected a JSON object at the top level, got ${describe(json)}`);
  const name = c.optional(o, "name", "", "study", (x, p) => {
    const v = c.string(x, p);
    // It names the default run folder, runs/<name>.
    return v === undefined || /^[\w.-]+$/.test(v) ? v : c.fail(p, "a name of letters, digits, '.', '_' and '-'", v);
  });
  const backbone = c.required(o, "backbone", "", (x, p) => backboneSpec(c, x, p));
  const depth = backbone?.pretrain?.model?.depth;
  const config = {
    name,
    backbone,
    imageSize: c.optional(o, "imageSize", "", undefined, (x, p) => c.int(x, p, 1)),
    knn: c.required(o, "knn", "", (x, p) => knnSpec(c, x, p)),
    transfer: c.required(o, "transfer", "", (x, p) => {
      const t = c.object(x, p, ["train", "test"]);
      if (!t) return undefined;
      return {
        train: c.required(t, "train", p, (y, q) => dataSpec(c, y, q, "train")),
        test: c.required(t, "test", p, (y, q) => dataSpec(c, y, q, "eval")),
      };
    }),
    strategies: c.required(o, "strategies", "", (x, p) => c.array(x, p, (y, q) => strategy(c, y, q, depth))),
    learningRates: c.required(o, "learningRates", "", (x, p) => c.array(x, p, (y, q) => c.positive(y, q))),
    seeds: c.optional(o, "seeds", "", [0], (x, p) => c.array(x, p, (y, q) => c.int(y, q, 0))),
    training: c.required(o, "training", "", (x, p) => trainingSpec(c, x, p)),
    selectBy: c.optional(o, "selectBy", "", "transfer" as const, (x, p) => c.enumeration(x, p, ["transfer", "mean"] as const)),
  };
  for (const key of ["strategies", "learningRates", "seeds"] as const) {
    const list = config[key] as unknown[] | undefined;
    if (list && new Set(list).size !== list.length) c.errors.push(`${key}: expected distinct values, got [${list.join(", ")}]`);
  }
  if (c.errors.length > 0) throw new ConfigError(`${source}: ${c.errors.length} problem${c.errors.length > 1 ? "s" : ""}:\n  ${c.errors.join("\n  ")}`);
  return config as StudyConfig;
}

// The config as a run folder's identity (eval/experiment.ts refuses a folder of another one): all of it but
// training.microBatch and backbone.pretrain.microBatch, which change only how a step's gradient is summed (float
// rounding), so a run stopped by a binding-size error can go on with a smaller one.
export function studyIdentity(config: StudyConfig): string {
  const { microBatch: _, ...training } = config.training;
  let backbone = config.backbone;
  if (backbone.pretrain) {
    const { microBatch: _passes, ...pretrain } = backbone.pretrain;
    backbone = { ...backbone, pretrain };
  }
  return JSON.stringify({ ...config, backbone, training });
}

// The embedded default study (also in configs/default.json, which a test keeps identical): Fashion-MNIST split in
// two domains, classes 0-4 (source: a small ViT pre-trained on them, the k-NN bank and queries) and classes 5-9
// (transfer, relabelled 0-4). Sized to finish in under 10 minutes on a 2-core CPU through lavapipe.
export const DEFAULT_STUDY = {
  $comment: "The default forgetting study: source = Fashion-MNIST classes 0-4, transfer = classes 5-9. Sized for a 2-core CPU.",
  name: "fashion-mnist-split",
  backbone: {
    pretrain: {
      model: { imageSize: 28, patchSize: 7, width: 64, depth: 4, heads: 2, mlpHidden: 256 },
      data: { dataset: "fashion-mnist", split: "train", classes: "0-4", transform: "eval" },
      steps: 160,
      batchSize: 64,
      lr: 0.0015,
      warmupSteps: 16,
      optimizer: "adamw",
      weightDecay: 0.05,
      seed: 0,
      cacheDir: ".cache",
    },
  },
  knn: {
    bank: { dataset: "fashion-mnist", split: "train", classes: "0-4", perClass: 150, transform: "eval" },
    queries: { dataset: "fashion-mnist", split: "test", classes: "0-4", perClass: 60, transform: "eval" },
    ks: [10, 20],
    reportK: 20,
    temperature: 0.07,
    batchSize: 128,
  },
  transfer: {
    train: { dataset: "fashion-mnist", split: "train", classes: "5-9", perClass: 400, transform: "eval" },
    test: { dataset: "fashion-mnist", split: "test", classes: "5-9", perClass: 100, transform: "eval" },
  },
  strategies: ["full", "top-1", "linear", "lora-r4", "block-p1"],
  learningRates: [0.05, 0.01],
  seeds: [0],
  training: { steps: 60, batchSize: 32, evalEvery: 30, warmupSteps: 6, optimizer: "sgd", momentum: 0.9, weightDecay: 0, lossEvery: 10 },
  selectBy: "transfer",
};
