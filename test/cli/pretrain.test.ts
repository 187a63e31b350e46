// The `pretrain` command on a synthetic dataset with a tiny ViT: DINO and supervised runs write a backbone that
// loads as a ViT, a manifest whose SHA-256 is the file's, and the held-out k-NN scores; missing flags and bad
// configs are refused naming the flag, file or key; so are a folder of the other method's pre-training and a changed
// setting. A rerun keeps the initialisation's k-NN score. Supervised pre-training in f16 records its loss scaling.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pretrainCommand } from "../../cli/pretrain.js";
import { UsageError } from "../../util/command.js";
import { loadVit } from "../../vit/load.js";
import { readSafetensors } from "../../vit/safetensors.js";
import { skipWithoutF16, useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";

useEngine();

let root: string;
const model = { imageSize: 8, patchSize: 4, width: 16, depth: 1, heads: 2, mlpHidden: 32 };
const data = (split: string) => ({ dataset: "npy", root: join(root, "data"), split });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "pretrain-cli-"));
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 4, test: 2 }, seed: 2 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// What the last run printed to stderr (the run's log lines).
let said: string[] = [];

async function runWith(config: unknown, out: string): Promise<string[]> {
  const path = join(root, `${out}.json`);
  await writeFile(path, JSON.stringify(config));
  const printed: string[] = [];
  said = [];
  const log = vi.spyOn(console, "log").mockImplementation((line: string) => void printed.push(line));
  const err = vi.spyOn(console, "error").mockImplementation((line: string) => void said.push(line));
  try {
    await pretrainCommand.run(["--config", path, "--out", join(root, out)]);
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
  return printed;
}

async function expectBackbone(out: string): Promise<Record<string, unknown>> {
  const manifest = JSON.parse(await readFile(join(root, out, "backbone.json"), "utf8"));
  const bytes = await readFile(join(root, out, "backbone.safetensors"));
  expect(manifest.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
  const { model: vit } = await loadVit(join(root, out, "backbone.safetensors"), { heads: 2 });
  expect(vit.config).toMatchObject({ imageSize: 8, patchSize: 4, width: 16, depth: 1, classes: 0 });
  vit.dispose();
  return manifest;
}

const knn = () => ({ bank: data("train"), queries: data("test"), k: 3, batchSize: 16 });

describe("pretrain command", () => {
  it("pre-trains with DINO and scores the teacher's backbone", async () => {
    const printed = await runWith(
      {
        method: "dino",
        model,
        data: data("train"),
        head: { hidden: 16, bottleneck: 8, prototypes: 10 },
        crops: { localSize: 4, localCrops: 2, color: "grayscale" },
        steps: 4,
        batchSize: 8,
        knnEvery: 2,
        knn: knn(),
      },
      "dino",
    );
    expect(printed.filter((l) => l.startsWith("source 3-NN at step")).map((l) => l.split(":")[0])).toEqual([
      "source 3-NN at step 0",
      "source 3-NN at step 2",
      "source 3-NN at step 4",
    ]);
    const manifest = await expectBackbone("dino");
    expect(manifest).toMatchObject({ method: "dino", hyperParameters: { lr: (0.0005 * 8) / 256, warmupSteps: 0, teacherTempWarmupSteps: 1 } });
  });

  it("pre-trains with labels", async () => {
    const printed = await runWith({ method: "supervised", model, data: { ...data("train"), transform: "eval" }, steps: 3, batchSize: 8, lr: 0.001, knn: knn() }, "supervised");
    expect(printed.filter((l) => l.startsWith("source 3-NN")).length).toBe(2);
    expect(await expectBackbone("supervised")).toMatchObject({ method: "supervised", metrics: { knn: [{ step: 0 }, { step: 3 }] } });
    // A rerun resumes at the end and keeps the initialisation's score: it scores the seed's initialisation again.
    await runWith({ method: "supervised", model, data: { ...data("train"), transform: "eval" }, steps: 3, batchSize: 8, lr: 0.001, knn: knn() }, "supervised");
    expect(said).toContain(`resuming the pre-training in ${join(root, "supervised")} from step 3 of 3`);
    expect((await expectBackbone("supervised")).metrics).toMatchObject({ knn: [{ step: 0 }, { step: 3 }] });
  });

  // One folder, one pre-training: the other method would resume from nothing and overwrite the backbone.
  it("refuses a folder holding the other method's pre-training, and names a changed setting", async () => {
    const supervised = { model, data: { ...data("train"), transform: "eval" }, steps: 1, batchSize: 8, lr: 0.001 };
    const dino = { method: "dino", model, data: data("train"), head: { hidden: 16, bottleneck: 8, prototypes: 10 }, crops: { localSize: 4, localCrops: 2, color: "grayscale" }, steps: 1, batchSize: 8 };
    await runWith(dino, "held-dino");
    await runWith(supervised, "held-supervised");
    const manifests = async () => Promise.all(["held-dino", "held-supervised"].map((d) => readFile(join(root, d, "backbone.json"), "utf8")));
    const before = await manifests();
    await expect(runWith(supervised, "held-dino")).rejects.toThrow(
      `pretrain: ${join(root, "held-dino")} holds a DINO pre-training (${join(root, "held-dino", "backbone.json")}), not a supervised pre-training (method: dino -> supervised)`,
    );
    await expect(runWith(dino, "held-supervised")).rejects.toThrow(`holds a supervised pre-training (${join(root, "held-supervised", "backbone.json")}), not a DINO pre-training`);
    expect(await manifests()).toEqual(before);
    await expect(runWith({ ...supervised, lr: 0.002 }, "held-supervised")).rejects.toThrow("was written by a run with other settings or data (lr: 0.001 -> 0.002)");
    await expect(runWith({ ...dino, lr: 0.002 }, "held-dino")).rejects.toThrow("was written by a run with other settings or data (lr: 0.000015625 -> 0.002)");
  });

  // Mixed precision through train/train.ts: the loss scale in the checkpoint and the metrics, forced overflows (from
  // 2^40, as in test/train/train.test.ts) skipped; exact resume of such a run: test/train/train.test.ts.
  it("pre-trains with labels in f16, with loss scaling", async (ctx) => {
    skipWithoutF16(ctx);
    const config = { model, data: { ...data("train"), transform: "eval" }, steps: 4, batchSize: 8, lr: 0.001, precision: "f16", lossScale: { init: 2 ** 40, backoff: 2 ** -12 } };
    await runWith(config, "supervised-f16");
    await expectBackbone("supervised-f16");
    const csv = (await readFile(join(root, "supervised-f16", "train", "metrics.csv"), "utf8")).trim().split("\n");
    expect(csv[0]).toBe("step,loss,lr,accuracy,images_per_second,loss_scale,skipped_steps");
    // overflows at 2^40, 2^28 and 2^16
    expect(csv.slice(1).map((l) => l.split(",").slice(5).join(","))).toEqual(["268435456,1", "65536,2", "16,3", "16,3"]);
    const { tensors } = await readSafetensors(join(root, "supervised-f16", "train", "last.safetensors"));
    expect(tensors.get("lossScale.scale")!.data).toEqual(new Float32Array([16]));
    expect(tensors.get("optimizer.step")!.data).toEqual(new Float32Array([1])); // AdamW: the one step not skipped
  });

  it("refuses a study's run folder as --out, and takes a folder holding the pre-training's own config", async () => {
    const supervised = { model, data: { ...data("train"), transform: "eval" }, steps: 1, batchSize: 8, lr: 0.001 };
    const study = join(root, "a-study");
    await mkdir(study, { recursive: true });
    await writeFile(join(study, "config.json"), JSON.stringify({ name: "s", strategies: ["linear"], learningRates: [0.1] }));
    await expect(runWith(supervised, "a-study")).rejects.toThrow(new UsageError(`--out: ${study} holds a study's run folder (${join(study, "config.json")}); pre-train into another folder`));
    expect(existsSync(join(study, "backbone.json"))).toBe(false);
    await mkdir(join(root, "own-config"), { recursive: true });
    await writeFile(join(root, "own-config", "config.json"), JSON.stringify(supervised));
    await runWith(supervised, "own-config");
    expect(existsSync(join(root, "own-config", "backbone.json"))).toBe(true);
  });

  it("refuses missing flags and bad configs", async () => {
    await expect(pretrainCommand.run(["--out", "x"])).rejects.toThrow(UsageError);
    await expect(pretrainCommand.run(["--config", join(root, "none.json"), "--out", "x"])).rejects.toThrow("none.json");
    await expect(runWith({ method: "dino", model, data: data("train"), steps: 4, batchSize: 8, crops: { localSize: 5, color: "blue" }, lr: -1 }, "bad")).rejects.toThrow(
      /3 problems:\n {2}crops\.color: expected one of rgb, grayscale, got "blue"\n {2}crops\.localSize: expected a multiple of model\.patchSize 4, got 5\n {2}lr: expected a number > 0, got -1/,
    );
    await expect(runWith({ method: "moco" }, "bad")).rejects.toThrow('method: expected one of supervised, dino, got "moco"');
    const supervised = { model, data: data("train"), steps: 3, batchSize: 8, lr: 0.001 };
    await expect(runWith({ ...supervised, precision: "bf16" }, "bad")).rejects.toThrow('precision: expected one of f32, f16, int8, int8x2, got "bf16"');
    await expect(runWith({ ...supervised, lossScale: { init: 8 } }, "bad")).rejects.toThrow('lossScale: expected only with precision "f16"');
    await expect(runWith({ ...supervised, precision: "int8", lossScale: { init: 8 } }, "bad")).rejects.toThrow('lossScale: expected only with precision "f16" (loss scaling is for f16 gradients), got precision "int8"');
    const dino = { method: "dino", model, data: data("train"), steps: 4, batchSize: 8, crops: { localSize: 4, color: "grayscale" } };
    await expect(runWith({ ...dino, precision: "f16", lossScale: { backoff: 2 } }, "bad")).rejects.toThrow("lossScale.backoff: expected a number in (0, 1), got 2");
  });
});
