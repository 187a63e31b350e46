// The manifest beside a pre-trained backbone: written with the file's hash, and read back to describe the file, only
// where it is the file the manifest describes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeBackbone, describeCheckpoint, writeBackboneManifest } from "../../train/backbone-manifest.js";
import { sha256File } from "../../peft/save.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "backbone-manifest-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const model = { imageSize: 28, patchSize: 7, width: 64, depth: 4, heads: 2, mlpHidden: 256 };
const data = { name: "fashion-mnist", root: "/data", split: "train", count: 10, hash: "0123456789abcdef", subset: "classes 0,1 -> 0..1" };

describe("describeCheckpoint", () => {
  it("describes a checkpoint by its manifest: method, model, steps and data", async () => {
    const path = join(dir, "backbone.safetensors");
    await writeFile(path, "weights");
    await writeBackboneManifest(path, { method: "dino", hyperParameters: { model, steps: 500 }, data, seed: 0, metrics: {} });
    expect(await describeCheckpoint(path, await sha256File(path))).toBe(`ViT (64 wide, 4 blocks, 2 heads, patch 7) pre-trained with DINO for 500 steps on fashion-mnist classes 0,1 -> 0..1 (checkpoint ${path})`);
    expect(describeBackbone("supervised", model, 400, { name: "cifar10" })).toBe("ViT (64 wide, 4 blocks, 2 heads, patch 7) pre-trained with labels for 400 steps on cifar10");
  });

  it("gives only the path where the file is not the one its manifest describes, or there is no manifest", async () => {
    const path = join(dir, "backbone.safetensors");
    await writeFile(path, "other weights"); // the manifest's hash no longer holds
    expect(await describeCheckpoint(path, await sha256File(path))).toBe(`checkpoint ${path}`);
    const other = join(dir, "other.safetensors"); // a file the manifest does not name
    await writeFile(other, "weights");
    expect(await describeCheckpoint(other, await sha256File(other))).toBe(`checkpoint ${other}`);
    await rm(join(dir, "backbone.json"));
    expect(await describeCheckpoint(path, await sha256File(path))).toBe(`checkpoint ${path}`);
  });
});
