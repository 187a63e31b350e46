// The `pretrain` command's config, parsed once into typed values and checked whole (every problem named by key
// path, as study/config.ts does): a supervised pre-training (`"method": "supervised"`, the keys of a study's
// backbone.pretrain) or DINO (`"method": "dino"`, train/dino-pretrain.ts DinoSpec, DINO's defaults), and optionally
// `knn`, a held-out source subset on which the backbone's weighted k-NN accuracy is measured (for DINO every
// knnEvery steps, at the start and at the end; for supervised at the end).
import type { DataSpec } from "../data/spec.js";
import type { PretrainSpec } from "../train/pretrain.js";
import type { DinoSpec } from "../train/dino-pretrain.js";
import { DINO_HEAD_DEFAULTS } from "../train/dino-head.js";
import { COLLAPSE_DEFAULTS } from "../train/dino-collapse.js";
import { MULTI_CROP_DEFAULTS } from "../data/multi-crop.js";
import { Checker, ConfigError, DEFAULTS, dataSpec, describe, modelSpec, pretrainSpec } from "./config.js";

export interface PretrainKnn {
  bank: DataSpec; // labelled source images: the neighbours
  queries: DataSpec; // held-out labelled source images, classified by their neighbours
  k: number; // DINO reports 20
  temperature: number;
  batchSize: number; // images per forward pass for features
}

export type PretrainConfig = { method: "supervised"; spec: PretrainSpec; knn?: PretrainKnn } | { method: "dino"; spec: DinoSpec; knn?: PretrainKnn };

const METHODS = ["supervised", "dino"] as const;
const DINO_KEYS = [
  "$comment", "method", "model", "data", "head", "crops", "steps", "batchSize", "lr", "minLr", "warmupSteps", "weightDecay",
  "weightDecayEnd", "momentum", "warmupTeacherTemp", "teacherTemp", "teacherTempWarmupSteps", "studentTemp",
  "centerMomentum", "clipGrad", "freezeLastLayerSteps", "seed", "collapse", "knnEvery", "logEvery", "checkpointEvery", "knn",
];

function knnSpec(c: Checker, v: unknown, path: string): PretrainKnn | undefined {
  const o = c.object(v, path, ["bank", "queries", "k", "temperature", "batchSize"]);
  if (!o) return undefined;
  return {
    bank: c.required(o, "bank", path, (x, p) => dataSpec(c, x, p, DEFAULTS.transform.knn)),
    queries: c.required(o, "queries", path, (x, p) => dataSpec(c, x, p, DEFAULTS.transform.knn)),
    k: c.optional(o, "k", path, DEFAULTS.knn.reportK, (x, p) => c.int(x, p, 1)),
    temperature: c.optional(o, "temperature", path, DEFAULTS.knn.temperature, (x, p) => c.positive(x, p)),
    batchSize: c.optional(o, "batchSize", path, DEFAULTS.knn.batchSize, (x, p) => c.int(x, p, 1)),
  } as PretrainKnn;
}

function range(c: Checker, v: unknown, path: string): [number, number] | undefined {
  const r = c.tuple(v, path, 2, "numbers in (0, 1]", (y, q) => c.number(y, q, "a number in (0, 1]", (n) => n > 0 && n <= 1));
  if (r && r[0] > r[1]) return c.fail(path, "[min, max] with min <= max", r);
  return r as [number, number] | undefined;
}

function dinoSpec(c: Checker, o: Record<string, unknown>): DinoSpec {
  const model = c.required(o, "model", "", (x, p) => modelSpec(c, x, p));
  const steps = c.required(o, "steps", "", (x, p) => c.int(x, p, 1));
  const batchSize = c.required(o, "batchSize", "", (x, p) => c.int(x, p, 1));
  const fraction = (x: unknown, p: string) => c.number(x, p, "a number in [0, 1]", (n) => n >= 0 && n <= 1);
  const nonNegative = (x: unknown, p: string) => c.number(x, p, "a number >= 0", (n) => n >= 0);
  const head = c.optional(o, "head", "", DINO_HEAD_DEFAULTS, (x, p) => {
    const h = c.object(x, p, ["hidden", "bottleneck", "prototypes"]);
    if (!h) return undefined;
    return {
      hidden: c.optional(h, "hidden", p, DINO_HEAD_DEFAULTS.hidden, (y, q) => c.int(y, q, 1)),
      bottleneck: c.optional(h, "bottleneck", p, DINO_HEAD_DEFAULTS.bottleneck, (y, q) => c.int(y, q, 1)),
      prototypes: c.optional(h, "prototypes", p, DINO_HEAD_DEFAULTS.prototypes, (y, q) => c.int(y, q, 1)),
    };
  });
  const crops = c.required(o, "crops", "", (x, p) => {
    const k = c.object(x, p, ["localSize", "localCrops", "globalScale", "localScale", "color", "blur"]);
    if (!k) return undefined;
    const out = {
      localSize: c.required(k, "localSize", p, (y, q) => c.int(y, q, 1)),
      localCrops: c.optional(k, "localCrops", p, 8, (y, q) => c.int(y, q, 0)),
      globalScale: c.optional(k, "globalScale", p, MULTI_CROP_DEFAULTS.globalScale, (y, q) => range(c, y, q)),
      localScale: c.optional(k, "localScale", p, MULTI_CROP_DEFAULTS.localScale, (y, q) => range(c, y, q)),
      color: c.required(k, "color", p, (y, q) => c.enumeration(y, q, ["rgb", "grayscale"] as const)),
      blur: c.optional(k, "blur", p, undefined, (y, q) => (typeof y === "boolean" ? y : c.fail(q, "true or false", y))),
    };
    if (out.blur === undefined) delete out.blur;
    if (model && out.localSize !== undefined && out.localSize % model.patchSize !== 0) {
      c.errors.push(`${p}.localSize: expected a multiple of model.patchSize ${model.patchSize}, got ${out.localSize}`);
    }
    return out;
  });
  const spec = {
    method: "dino",
    model,
    data: c.required(o, "data", "", (x, p) => dataSpec(c, x, p, DEFAULTS.transform.pretrain)),
    head,
    crops,
    steps,
    batchSize,
    // DINO's defaults: lr 0.0005 x batch / 256 after a warm-up of 10 of 100 epochs; the teacher's temperature
    // warms up from 0.04 to 0.07 over 30 of 100 epochs (its recipe for ViTs trained long).
    lr: c.optional(o, "lr", "", batchSize && (0.0005 * batchSize) / 256, (x, p) => c.positive(x, p)),
    minLr: c.optional(o, "minLr", "", 1e-6, nonNegative),
    warmupSteps: c.optional(o, "warmupSteps", "", steps && Math.floor(0.1 * steps), (x, p) => c.int(x, p, 0)),
    weightDecay: c.optional(o, "weightDecay", "", 0.04, nonNegative),
    weightDecayEnd: c.optional(o, "weightDecayEnd", "", 0.4, nonNegative),
    momentum: c.optional(o, "momentum", "", 0.996, fraction),
    warmupTeacherTemp: c.optional(o, "warmupTeacherTemp", "", 0.04, (x, p) => c.positive(x, p)),
    teacherTemp: c.optional(o, "teacherTemp", "", 0.07, (x, p) => c.positive(x, p)),
    teacherTempWarmupSteps: c.optional(o, "teacherTempWarmupSteps", "", steps && Math.floor(0.3 * steps), (x, p) => c.int(x, p, 0)),
    studentTemp: c.optional(o, "studentTemp", "", 0.1, (x, p) => c.positive(x, p)),
    centerMomentum: c.optional(o, "centerMomentum", "", 0.9, fraction),
    clipGrad: c.optional(o, "clipGrad", "", 3, nonNegative),
    freezeLastLayerSteps: c.optional(o, "freezeLastLayerSteps", "", 0, (x, p) => c.int(x, p, 0)),
    seed: c.optional(o, "seed", "", 0, (x, p) => c.int(x, p, 0)),
    collapse: c.optional(o, "collapse", "", COLLAPSE_DEFAULTS, (x, p) => {
      const k = c.object(x, p, ["window", "uniform", "constant"]);
      if (!k) return undefined;
      return {
        window: c.optional(k, "window", p, COLLAPSE_DEFAULTS.window, (y, q) => c.int(y, q, 0)),
        uniform: c.optional(k, "uniform", p, COLLAPSE_DEFAULTS.uniform, (y, q) => c.number(y, q, "a fraction in (0, 1]", (n) => n > 0 && n <= 1)),
        constant: c.optional(k, "constant", p, COLLAPSE_DEFAULTS.constant, fraction),
      };
    }),
    knnEvery: c.optional(o, "knnEvery", "", 0, (x, p) => c.int(x, p, 0)),
    logEvery: c.optional(o, "logEvery", "", 10, (x, p) => c.int(x, p, 1)),
    checkpointEvery: c.optional(o, "checkpointEvery", "", steps && Math.max(1, Math.ceil(steps / 10)), (x, p) => c.int(x, p, 1)),
  };
  if (spec.steps !== undefined && spec.warmupSteps !== undefined && spec.warmupSteps >= spec.steps) {
    c.errors.push(`warmupSteps: expected fewer than steps (${spec.steps}), got ${spec.warmupSteps}`);
  }
  if (spec.data?.scale) c.errors.push(`data.scale: expected no scale for DINO (its crops take crops.globalScale and crops.localScale), got [${spec.data.scale.join(", ")}]`);
  return spec as DinoSpec;
}

// Checks a parsed JSON value and fills in defaults; throws a ConfigError listing every problem.
export function parsePretrainConfig(json: unknown, source = "config"): PretrainConfig {
  const c = new Checker();
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ConfigError(`${source}: expected a JSON object at the top level, got ${describe(json)}`);
  const o = json as Record<string, unknown>;
  const method = c.optional(o, "method", "", "supervised" as const, (x, p) => c.enumeration(x, p, METHODS));
  const knn = c.optional(o, "knn", "", undefined, (x, p) => knnSpec(c, x, p));
  let config: PretrainConfig | undefined;
  if (method === "dino") {
    c.object(o, "", DINO_KEYS);
    config = { method, spec: dinoSpec(c, o), knn };
  } else if (method === "supervised") {
    const { method: _m, knn: _k, $comment: _c, ...rest } = o;
    const spec = pretrainSpec(c, rest, "");
    if (spec && spec.warmupSteps !== undefined && spec.steps !== undefined && spec.warmupSteps >= spec.steps) {
      c.errors.push(`warmupSteps: expected fewer than steps (${spec.steps}), got ${spec.warmupSteps}`);
    }
    config = spec && { method, spec, knn };
  }
  if (c.errors.length > 0 || !config) throw new ConfigError(`${source}: ${c.errors.length} problem${c.errors.length > 1 ? "s" : ""}:\n  ${c.errors.join("\n  ")}`);
  return config;
}
