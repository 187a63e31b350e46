// The manifest beside a pre-trained backbone (`<dir>/backbone.json`): what made it (method, settings, the data's
// identity, seed), what it measured, and the SHA-256 of the checkpoint file, so a study or a reader can tell the
// file is the one described.
import { dirname, basename, join } from "node:path";
import type { DatasetIdentity } from "../data/dataset.js";
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
