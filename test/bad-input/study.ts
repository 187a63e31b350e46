// The miniature study the config and export cases start from: six synthetic pattern classes of 8x8 images (npy),
// a 2-block ViT pre-trained for 2 steps on classes 0-2, one linear-probe cell on classes 3-5. Small enough that
// running it whole takes a few seconds on the CPU driver.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeSynthetic } from "../train/synthetic.js";
import { runCli } from "./harness.js";
import { write } from "./files.js";

export async function writeMiniData(dataRoot: string): Promise<void> {
  await writeSynthetic(dataRoot, { size: 8, perClass: { train: 4, test: 4 }, seed: 1 });
}

// The study's config as JSON, its data in dataRoot and its pre-trained backbone cached in cacheDir.
export function miniConfig(dataRoot: string, cacheDir: string): Record<string, unknown> {
  const data = (split: string, classes: string) => ({ dataset: "npy", root: dataRoot, split, classes, transform: "eval" });
  return {
    name: "mini",
    backbone: {
      pretrain: {
        model: { imageSize: 8, patchSize: 4, width: 16, depth: 2, heads: 2, mlpHidden: 32 },
        data: data("train", "0-2"),
        steps: 2,
        batchSize: 8,
        lr: 0.003,
        cacheDir,
      },
    },
    knn: { bank: data("train", "0-2"), queries: data("test", "0-2"), ks: [3, 5], reportK: 5 },
    transfer: { train: data("train", "3-5"), test: data("test", "3-5") },
    strategies: ["linear"],
    learningRates: [0.05],
    training: { steps: 4, batchSize: 8, evalEvery: 2 },
  };
}

export interface StudyRun {
  config: string; // the config file
  run: string; // the run folder
  backbone: string; // the pre-trained backbone the cell was fine-tuned from
  cell: string; // the linear cell's folder: best.safetensors, last.safetensors, result.json
}

// Runs the study through the CLI into <dir>/study once, however many cases ask for it.
export function sharedStudy(dir: () => string): () => Promise<StudyRun> {
  let done: Promise<StudyRun> | undefined;
  return () => (done ??= runStudy(join(dir(), "study")));
}

async function runStudy(dir: string): Promise<StudyRun> {
  await writeMiniData(join(dir, "data"));
  const config = await write(join(dir, "mini.json"), JSON.stringify(miniConfig(join(dir, "data"), join(dir, "cache"))));
  const run = join(dir, "run");
  const r = await runCli(["experiment", "--config", config, "--out", run]);
  if (r.code !== 0) throw new Error(`the miniature study failed (exit ${r.code}):\n${r.out}\n${r.err}`);
  const backbone = (JSON.parse(await readFile(join(run, "backbone.json"), "utf8")) as { path: string }).path;
  return { config, run, backbone, cell: join(run, "cells", "linear_lr0.05_s0") };
}
