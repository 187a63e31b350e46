// The `pretrain` command's config, parsed once into typed values and checked whole (every problem named by key
// path, as study/config.ts does): what a study's backbone.pretrain holds, supervised (`"method": "supervised"` or
// none) or DINO (`"method": "dino"`, study/config.ts dinoSpec, DINO's defaults), but for cacheDir, and optionally
// `knn`, a held-out source subset on which the backbone's weighted k-NN accuracy is measured (for DINO every
// knnEvery steps, at the start and at the end; for supervised at the end).
import type { DataSpec } from "../data/spec.js";
import type { PretrainSpec } from "../train/pretrain.js";
import type { DinoSpec } from "../train/dino-pretrain.js";
import { Checker, ConfigError, DEFAULTS, DINO_KEYS, dataSpec, dinoSpec, pretrainSpec } from "./config.js";
import { describeJson } from "../util/json-file.js";

export interface PretrainKnn {
  bank: DataSpec; // labelled source images: the neighbours
  queries: DataSpec; // held-out labelled source images, classified by their neighbours
  k: number; // DINO reports 20
  temperature: number;
  batchSize: number; // images per forward pass for features
}

export type PretrainConfig = { method: "supervised"; spec: PretrainSpec; knn?: PretrainKnn } | { method: "dino"; spec: DinoSpec; knn?: PretrainKnn };

const METHODS = ["supervised", "dino"] as const;

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

// Checks a parsed JSON value and fills in defaults; throws a ConfigError listing every problem.
export function parsePretrainConfig(json: unknown, source = "config"): PretrainConfig {
  const c = new Checker();
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ConfigError(`${source}: expected a JSON object at the top level, got ${describeJson(json)}`);
  const o = json as Record<string, unknown>;
  const method = c.optional(o, "method", "", "supervised" as const, (x, p) => c.enumeration(x, p, METHODS));
  const knn = c.optional(o, "knn", "", undefined, (x, p) => knnSpec(c, x, p));
  let config: PretrainConfig | undefined;
  if (method === "dino") {
    c.object(o, "", ["$comment", "knn", ...DINO_KEYS]);
    const spec = dinoSpec(c, o, "");
    config = { method, spec, knn };
  } else if (method === "supervised") {
    const { method: _m, knn: _k, $comment: _c, ...rest } = o;
    const spec = pretrainSpec(c, rest, "") as PretrainSpec | undefined;
    if (spec && spec.warmupSteps !== undefined && spec.steps !== undefined && spec.warmupSteps >= spec.steps) {
      c.errors.push(`warmupSteps: expected fewer than steps (${spec.steps}), got ${spec.warmupSteps}`);
    }
    config = spec && { method, spec, knn };
  }
  if (c.errors.length > 0 || !config) throw new ConfigError(`${source}: ${c.errors.length} problem${c.errors.length > 1 ? "s" : ""}:\n  ${c.errors.join("\n  ")}`);
  return config;
}
