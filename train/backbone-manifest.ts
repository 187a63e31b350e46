// The manifest beside a pre-trained backbone (`<dir>/backbone.json`): what made it (method, settings, the data's
// identity, seed), what it measured, and the SHA-256 of the checkpoint file, so a study or a reader can tell the
// file is the one described. And which method's pre-training a folder holds, finished (its manifest) or under way
// (the checkpoint it resumes from), so that one method never resumes from or overwrites the other's.
import { existsSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import type { DatasetIdentity } from "../data/dataset.js";
import type { ModelSpec } from "../vit/config.js";
import { sha256File } from "../peft/save.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { readJsonFile } from "../util/json-file.js";
import { BACKBONE_MANIFEST_FORMAT, manifestBeside } from "../vit/checkpoint.js";
import { LAST_CHECKPOINT } from "./checkpoint.js";

export { BACKBONE_MANIFEST_FORMAT };

export interface BackboneManifest {
  format: typeof BACKBONE_MANIFEST_FORMAT;
  file: string; // the checkpoint's name, beside the manifest
  sha256: string;
  method: "supervised" | "dino";
  hyperParameters: unknown; // the whole spec it was trained with
  data: DatasetIdentity;
  seed: number;
  metrics: Record<string, unknown>;
}

export type PretrainMethod = BackboneManifest["method"];

// Where each method's run keeps the checkpoint it resumes from, in its folder: DINO's own, the trainer's in train/.
export const RESUME_CHECKPOINT: Record<PretrainMethod, string> = { supervised: join("train", LAST_CHECKPOINT), dino: "last.safetensors" };

const WHAT: Record<PretrainMethod, string> = { supervised: "a supervised pre-training", dino: "a DINO pre-training" };
const METHODS = Object.keys(WHAT) as PretrainMethod[];

// Writes <dir of path>/backbone.json for the checkpoint at `path`; returns the manifest.
export async function writeBackboneManifest(path: string, m: Omit<BackboneManifest, "format" | "file" | "sha256">): Promise<BackboneManifest & { path: string }> {
  const manifest: BackboneManifest = { format: BACKBONE_MANIFEST_FORMAT, file: basename(path), sha256: await sha256File(path), ...m };
  const manifestPath = join(dirname(path), "backbone.json");
  await writeJsonAtomic(manifestPath, manifest);
  return { ...manifest, path: manifestPath };
}

// One line on what a pre-trained backbone is, for a study's notes and report.
export function describeBackbone(method: BackboneManifest["method"], model: ModelSpec, steps: number, data: Pick<DatasetIdentity, "name" | "subset">): string {
  const how = method === "dino" ? "with DINO" : "with labels";
  return `ViT (${model.width} wide, ${model.depth} blocks, ${model.heads} heads, patch ${model.patchSize}) pre-trained ${how} for ${steps} steps on ${data.name} ${data.subset ?? ""}`.trimEnd();
}

// What the checkpoint at `path` (whose SHA-256 the caller has: `sha256`) is: describeBackbone's line where a
// manifest beside it describes this very file (a backbone from `pretrain`, the hash matching), else just its path.
export async function describeCheckpoint(path: string, sha256: string): Promise<string> {
  const m = (await manifestBeside(path, "experiment"))?.manifest as BackboneManifest | undefined;
  const made = m?.hyperParameters as { model?: ModelSpec; steps?: number } | undefined;
  if (!m || !made?.model || made.steps === undefined || m.sha256 !== sha256) return `checkpoint ${path}`;
  return `${describeBackbone(m.method, made.model!, made.steps!, m.data)} (checkpoint ${path})`;
}

// The manifest in `dir`, or undefined where there is none; one that is not JSON or not a manifest is refused, named.
export async function readBackboneManifest(dir: string, who: string): Promise<BackboneManifest | undefined> {
  const path = join(dir, "backbone.json");
  if (!existsSync(path)) return undefined;
  const m = (await readJsonFile(path, who)) as Partial<BackboneManifest> | null;
  if (m?.format !== BACKBONE_MANIFEST_FORMAT || !METHODS.includes(m.method!)) {
    throw new Error(`${who}: ${path}: expected a backbone manifest (format ${BACKBONE_MANIFEST_FORMAT}, method supervised or dino), got format ${JSON.stringify(m?.format) ?? "none"}, method ${JSON.stringify(m?.method) ?? "none"}`);
  }
  return m as BackboneManifest;
}

// Whether `dir` holds a pre-training, finished or under way (synchronous: for telling folders apart).
export function holdsPretraining(dir: string): boolean {
  return [join(dir, "backbone.json"), ...Object.values(RESUME_CHECKPOINT).map((f) => join(dir, f))].some((p) => existsSync(p));
}

// The method of the pre-training `dir` holds and the file that tells it: the manifest's (a finished run), else the
// one whose checkpoint is there (a run under way); undefined for a new or empty folder.
export async function heldPretraining(dir: string, who: string): Promise<{ method: PretrainMethod; file: string } | undefined> {
  const manifest = await readBackboneManifest(dir, who);
  if (manifest) return { method: manifest.method, file: join(dir, "backbone.json") };
  const method = METHODS.find((m) => existsSync(join(dir, RESUME_CHECKPOINT[m])));
  return method && { method, file: join(dir, RESUME_CHECKPOINT[method]) };
}

// Refuses to pre-train into `dir` with `method` where it holds the other method's pre-training, before any work.
export async function checkPretrainFolder(dir: string, method: PretrainMethod): Promise<void> {
  const held = await heldPretraining(dir, "pretrain");
  if (held && held.method !== method) {
    throw new Error(`pretrain: ${dir} holds ${WHAT[held.method]} (${held.file}), not ${WHAT[method]} (method: ${held.method} -> ${method}); delete ${dir} (or use another folder) to start over`);
  }
}
