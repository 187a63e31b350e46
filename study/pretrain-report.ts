// The curves of pre-training runs, for `report`: an engine `pretrain` run folder, DINO's (metrics.json's k-NN scores,
// written at every checkpoint, so a run still going reports what it has) or a finished supervised one's (the scores
// at step 0 and the end, in backbone.json's metrics: it keeps no k-NN scores until it finishes), or a JSON curve of
// scripts/dino-torch-reference.py (--out: {"knn": [{"step", "knn20"}], "device", "args"}), each a line of
// pretrain-knn.{vl.json,svg,png} (study/figures/pretrain-curves.ts) and a column of pretrain-knn.csv.
import { existsSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic.js";
import { describeJson, isObject, readJsonFile } from "../util/json-file.js";
import { holdsPretraining, readBackboneManifest } from "../train/backbone-manifest.js";
import { figureFiles } from "../plot/render.js";
import { type PretrainCurve, pretrainCurvesSpec } from "./figures/pretrain-curves.js";

// Whether `path` is something readPretrainCurve reads: a folder with no study config.json and DINO's metrics.json or
// a pre-training's manifest or checkpoint, or a .json file.
export function isPretrainRun(path: string): boolean {
  if (!existsSync(path)) return false;
  if (statSync(path).isFile()) return path.endsWith(".json");
  return !existsSync(join(path, "config.json")) && (existsSync(join(path, "metrics.json")) || holdsPretraining(path));
}

// The JSON holding a run's k-NN scores ("knn") and its file: the PyTorch script's curve or DINO's metrics.json, else
// the manifest's metrics. A supervised run under way has none yet.
async function scoresOf(full: string): Promise<{ file: string; json: Record<string, unknown> }> {
  const file = statSync(full).isFile() ? full : join(full, "metrics.json");
  if (existsSync(file)) return { file, json: ((await readJsonFile(file, "report")) ?? {}) as Record<string, unknown> };
  const manifest = await readBackboneManifest(full, "report");
  if (!manifest) throw new Error(`report: ${full} holds a pre-training under way with no k-NN scores yet (a supervised one writes them to backbone.json when it finishes)`);
  return { file: join(full, "backbone.json"), json: manifest.metrics };
}

export async function readPretrainCurve(path: string): Promise<PretrainCurve> {
  const full = resolve(path);
  const reference = statSync(full).isFile(); // the PyTorch script's curve, else an engine run folder
  const { file, json } = await scoresOf(full);
  if (!isObject(json)) throw new Error(`report: expected an object with a "knn" list in ${file}, got ${describeJson(json)}`);
  const knn = json.knn;
  // A study's config.json (its "knn" the k-NN settings) is a .json file too: report reads its run folder instead.
  if (reference && (isObject(knn) || "strategies" in json || "backbone" in json)) {
    const folder = basename(full) === "config.json" ? `its run folder, ${dirname(full)}` : "the run folder it wrote (experiment --out)";
    throw new Error(`report: ${file} looks like a study's config, not a k-NN curve: pass ${folder}`);
  }
  if (!Array.isArray(knn)) throw new Error(`report: expected a "knn" list in ${file}, got ${knn === undefined ? "none" : describeJson(knn)}`);
  if (knn.length === 0) throw new Error(`report: ${full} has no k-NN curve: ${file} holds no k-NN scores (a pre-training scores its backbone only with "knn" in its config)`);
  // Each point checked, so that a broken curve is refused rather than drawn: a step once, an accuracy in %.
  const seen = new Map<number, number>(); // step -> index
  const points = knn.map((k: unknown, i) => {
    const at = `report: ${file}: knn[${i}]`;
    if (!isObject(k)) throw new Error(`${at}: expected an object with a step and an accuracy, got ${describeJson(k)}`);
    const key = "accuracy" in k ? "accuracy" : "knn20"; // the engine's, the PyTorch script's
    const step = k.step;
    const value = k[key];
    if (typeof step !== "number" || typeof value !== "number") throw new Error(`${at}: expected an object with a step and an accuracy, got ${JSON.stringify(k)}`);
    if (!Number.isInteger(step) || step < 0) throw new Error(`${at}.step: expected an integer >= 0, got ${describeJson(step)}`);
    if (!(value >= 0 && value <= 100)) throw new Error(`${at}.${key}: expected a top-1 accuracy in % (0 to 100), got ${describeJson(value)}`);
    if (seen.has(step)) throw new Error(`${at}.step: expected each step once, got ${step} again (knn[${seen.get(step)}] has it)`);
    seen.set(step, i);
    return { step, knn: value };
  });
  const device = typeof json.device === "string" ? `, ${json.device}` : "";
  const run = reference ? `PyTorch: ${basename(full, ".json")}${device}` : `engine: ${basename(full)}`;
  return { run, points };
}

// Writes pretrain-knn.csv and the figure into `out`; returns their paths.
export async function writePretrainReport(out: string, curves: PretrainCurve[]): Promise<string[]> {
  const steps = [...new Set(curves.flatMap((c) => c.points.map((p) => p.step)))].sort((a, b) => a - b);
  const at = curves.map((c) => new Map(c.points.map((p) => [p.step, p.knn])));
  const csv = [["step", ...curves.map((c) => JSON.stringify(c.run))].join(","), ...steps.map((s) => [s, ...at.map((m) => m.get(s)?.toFixed(2) ?? "")].join(","))].join("\n") + "\n";
  const files: [string, string | Uint8Array][] = [["pretrain-knn.csv", csv], ...(await figureFiles([["pretrain-knn", pretrainCurvesSpec(curves)]]))];
  for (const [name, data] of files) await writeFileAtomic(join(out, name), data);
  return files.map(([name]) => join(out, name));
}
