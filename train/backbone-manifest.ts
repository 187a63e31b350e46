// The manifest beside a pre-trained backbone (`<dir>/backbone.json`): what made it (method, settings, the data's
// identity, seed), what it measured, and the SHA-256 of the checkpoint file, so a study or a reader can tell the
// file is the one described.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import type { DatasetIdentity } from "../data/dataset.js";
import type { ModelSpec } from "../vit/config.js";
import { sha256File } from "../peft/save.js";
import { writeJsonAtomic } from "../util/atomic.js";

export const BACKBONE_MANIFEST_FORMAT = "peft-vit-webgpu/backbone@1";

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
  const manifestPath = join(dirname(path), "backbone.json");
  if (!existsSync(manifestPath)) return `checkpoint ${path}`;
  const m = JSON.parse(await readFile(manifestPath, "utf8")) as BackboneManifest;
  const made = m.hyperParameters as { model?: ModelSpec; steps?: number } | undefined;
  const described = m.format === BACKBONE_MANIFEST_FORMAT && m.file === basename(path) && made?.model && made.steps !== undefined;
  if (!described || m.sha256 !== sha256) return `checkpoint ${path}`;
  return `${describeBackbone(m.method, made.model!, made.steps!, m.data)} (checkpoint ${path})`;
}
