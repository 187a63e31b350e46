// The manifest beside a pre-trained backbone: written with the file's hash, and read back to describe the file, only
// where it is the file the manifest describes. Which method's pre-training a folder holds (its manifest, else the
// checkpoint of a run under way), and the other method refused there.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { checkPretrainFolder, describeBackbone, describeCheckpoint, heldPretraining, holdsPretraining, writeBackboneManifest } from "../../train/backbone-manifest.js";
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

  it("names a damaged manifest beside the checkpoint", async () => {
    const path = join(dir, "backbone.safetensors");
    await writeFile(path, "weights");
    await writeFile(join(dir, "backbone.json"), '{"format": ');
    await expect(describeCheckpoint(path, await sha256File(path))).rejects.toThrow(`experiment: ${join(dir, "backbone.json")}: expected JSON, got a parse error: `);
    await rm(join(dir, "backbone.json"));
  });
});

describe("the pre-training a folder holds", () => {
  it("is its manifest's, else the one whose checkpoint a run under way left; the other method is refused", async () => {
    const folder = async (name: string, files: Record<string, string>) => {
      const at = join(dir, name);
      for (const [file, text] of Object.entries(files)) {
        await mkdir(dirname(join(at, file)), { recursive: true });
        await writeFile(join(at, file), text);
      }
      return at;
    };
    const empty = await folder("empty", {});
    expect([holdsPretraining(empty), await heldPretraining(empty, "t")]).toEqual([false, undefined]);
    await checkPretrainFolder(join(dir, "absent"), "dino");

    const dino = await folder("dino-running", { "last.safetensors": "" });
    const supervised = await folder("supervised-running", { "train/last.safetensors": "" });
    expect(await heldPretraining(dino, "t")).toEqual({ method: "dino", file: join(dino, "last.safetensors") });
    expect(await heldPretraining(supervised, "t")).toEqual({ method: "supervised", file: join(supervised, "train", "last.safetensors") });
    expect([dino, supervised].map(holdsPretraining)).toEqual([true, true]);
    await checkPretrainFolder(dino, "dino");
    await expect(checkPretrainFolder(dino, "supervised")).rejects.toThrow(
      `pretrain: ${dino} holds a DINO pre-training (${join(dino, "last.safetensors")}), not a supervised pre-training (method: dino -> supervised); delete ${dino} (or use another folder) to start over`,
    );
    await expect(checkPretrainFolder(supervised, "dino")).rejects.toThrow("method: supervised -> dino");

    // Finished: the manifest tells, whatever else the folder holds.
    const finished = await folder("finished", { "last.safetensors": "", "backbone.safetensors": "weights" });
    await writeBackboneManifest(join(finished, "backbone.safetensors"), { method: "supervised", hyperParameters: {}, data, seed: 0, metrics: {} });
    await expect(checkPretrainFolder(finished, "dino")).rejects.toThrow(`holds a supervised pre-training (${join(finished, "backbone.json")})`);

    const bad = await folder("bad", { "backbone.json": JSON.stringify({ format: "peft-vit-webgpu/backbone@1", method: "moco" }) });
    await expect(checkPretrainFolder(bad, "dino")).rejects.toThrow(`pretrain: ${join(bad, "backbone.json")}: expected a backbone manifest (format peft-vit-webgpu/backbone@1, method supervised or dino), got format "peft-vit-webgpu/backbone@1", method "moco"`);
    const broken = await folder("broken", { "backbone.json": "{" });
    await expect(checkPretrainFolder(broken, "dino")).rejects.toThrow(`pretrain: ${join(broken, "backbone.json")}: expected JSON, got a parse error`);
  });
});
