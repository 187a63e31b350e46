// The `pretrain` command on a synthetic dataset with a tiny ViT: DINO and supervised runs write a backbone that
// loads as a ViT, a manifest whose SHA-256 is the file's, and the held-out k-NN scores; missing flags and bad
// configs are refused naming the flag, file or key.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pretrainCommand } from "../../cli/pretrain.js";
import { UsageError } from "../../util/command.js";
import { loadVit } from "../../vit/load.js";
import { useEngine } from "../helpers.js";
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

async function runWith(config: unknown, out: string): Promise<string[]> {
  const path = join(root, `${out}.json`);
  await writeFile(path, JSON.stringify(config));
  const printed: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((line: string) => void printed.push(line));
  const err = vi.spyOn(console, "error").mockImplementation(() => undefined);
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
  for (const [, t] of vit.parameters()) t.dispose();
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
  });

  it("refuses missing flags and bad configs", async () => {
    await expect(pretrainCommand.run(["--out", "x"])).rejects.toThrow(UsageError);
    await expect(pretrainCommand.run(["--config", join(root, "none.json"), "--out", "x"])).rejects.toThrow("none.json");
    await expect(runWith({ method: "dino", model, data: data("train"), steps: 4, batchSize: 8, crops: { localSize: 5, color: "blue" }, lr: -1 }, "bad")).rejects.toThrow(
      /3 problems:\n {2}crops\.color: expected one of rgb, grayscale, got "blue"\n {2}crops\.localSize: expected a multiple of model\.patchSize 4, got 5\n {2}lr: expected a number > 0, got -1/,
    );
    await expect(runWith({ method: "moco" }, "bad")).rejects.toThrow('method: expected one of supervised, dino, got "moco"');
  });
});
