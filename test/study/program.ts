// The miniature study that the study tests share (runner, validation, analysis, faults, workers, slurm): its model,
// data and config. And for the tests that run the real program as child processes (faults, workers, slurm,
// test/run.test.ts): the bundle of the current source, a child process's outcome, and the comparison of two run
// folders' results.
import { spawn } from "node:child_process";
import { readFile, rm, symlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { expect } from "vitest";
import { writeSynthetic } from "../train/synthetic.js";

export const ROOT = resolve(__dirname, "../..");

// Bundles the current source (scripts/build.mjs's options) as node_modules/.cache/peft-vit-webgpu-test/<name>.js,
// inside node_modules so that the externals (webgpu, sharp) resolve as they do from dist/. Each test file its own.
// With `shipped`, laid out as the tool is: <name>/dist/run.js beside <name>/backbones (a link to the repository's).
export async function buildProgram(name: string, { shipped = false } = {}): Promise<string> {
  const cache = join(ROOT, "node_modules", ".cache", "peft-vit-webgpu-test");
  const path = shipped ? join(cache, name, "dist", "run.js") : join(cache, `${name}.js`);
  const { buildBundle } = (await import(pathToFileURL(join(ROOT, "scripts", "build.mjs")).href)) as { buildBundle: (outfile: string, options?: object) => Promise<unknown> };
  await buildBundle(path, { logLevel: "warning" });
  if (shipped) {
    await rm(join(cache, name, "backbones"), { force: true });
    await symlink(join(ROOT, "backbones"), join(cache, name, "backbones"));
  }
  return path;
}

// The miniature study's ViT: 8 px images, 4 px patches, 2 blocks of width 16.
export const MINI_MODEL = { imageSize: 8, patchSize: 4, width: 16, depth: 2, heads: 2, mlpHidden: 32 };

// An npy split of test/train/synthetic.ts's pattern classes in `root`, as the miniature study's configs name them.
export const miniData = (root: string, split: string, classes: string) => ({ dataset: "npy", root, split, classes, transform: "eval" });

// The miniature study's config as JSON, for a test to override key by key: a tiny ViT pre-trained for 6 steps on
// classes 0-2 of the patterns in `dataRoot` (its k-NN source domain), fine-tuned on classes 3-5 by three cells
// (full, LoRA, Block Expansion), four steps each with a checkpoint at step 2.
export function miniStudy(dataRoot: string, cacheDir: string) {
  const data = (split: string, classes: string) => miniData(dataRoot, split, classes);
  return {
    name: "mini",
    backbone: {
      pretrain: {
        model: MINI_MODEL,
        data: data("train", "0-2"),
        steps: 6,
        batchSize: 16,
        lr: 0.003,
        warmupSteps: 1,
        cacheDir,
      },
    },
    knn: { bank: data("train", "0-2"), queries: data("test", "0-2"), ks: [3, 5], reportK: 5, batchSize: 32 },
    transfer: { train: data("train", "3-5"), test: data("test", "3-5") },
    strategies: ["full", "lora-r2", "block-p1"],
    learningRates: [0.3],
    training: { steps: 4, batchSize: 16, evalEvery: 2, warmupSteps: 1, lossEvery: 2 },
  };
}

// Writes the miniature study's data to <dir>/data and returns its config. The patterns carry noise of +-160
// instead of +-30: with little noise every k-NN accuracy is 100 % and every transfer accuracy 33.33 %, and a run
// that got them wrong would still match; with this data the numbers differ between cells, between a cell's best and
// last step, and along its k-NN curve. The backbone's cache is <dir>/cache unless the caller names another: the
// checkpoints record its path, and runs compared byte for byte must share it.
export async function writeMiniStudy(dir: string, cacheDir = join(dir, "cache")): Promise<ReturnType<typeof miniStudy>> {
  await writeSynthetic(join(dir, "data"), { size: 8, perClass: { train: 24, test: 8 }, seed: 2, noise: 160 });
  return miniStudy(join(dir, "data"), cacheDir);
}

export const MINI_CELLS = ["full_lr0.3_s0", "lora-r2_lr0.3_s0", "block-p1_lr0.3_s0"];

export interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

// `node <program> ...args`, to its end (killed after `limitMs`, and then an error with its output).
export function runProgram(program: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; limitMs?: number } = {}): Promise<Outcome> {
  const child = spawn(process.execPath, [program, ...args], { cwd: o.cwd, env: { ...process.env, PEFT_TUNE: "0", ...o.env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const limit = o.limitMs ?? 120_000;
  const watchdog = setTimeout(() => child.kill("SIGKILL"), limit);
  return new Promise((done, fail) => {
    child.on("error", fail);
    child.on("close", (code, signal) => {
      clearTimeout(watchdog);
      if (signal === "SIGKILL") fail(new Error(`${args.join(" ")} ran past ${limit / 1000} s:\n${stderr}`));
      else done({ code, stdout, stderr });
    });
  });
}

// Timings differ between runs; everything else must not.
const TIMING_KEYS = new Set(["seconds", "trainSeconds", "imagesPerSecond", "knnSeconds"]);
export function withoutTimings(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimings);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).filter(([k]) => !TIMING_KEYS.has(k)).map(([k, v]) => [k, withoutTimings(v)]));
  }
  return value;
}

const json = async (path: string) => JSON.parse(await readFile(path, "utf8"));

// Two run folders of the same study hold the same results: every cell's checkpoints byte for byte, result.json and
// results.json but for timings.
export async function expectSameResults(run: string, reference: string, cells: string[]): Promise<void> {
  for (const cell of cells) {
    for (const name of ["best.safetensors", "last.safetensors"]) {
      const [a, b] = [await readFile(join(run, "cells", cell, name)), await readFile(join(reference, "cells", cell, name))];
      expect(a.equals(b), `${cell}/${name}`).toBe(true);
    }
    expect(withoutTimings(await json(join(run, "cells", cell, "result.json"))), `${cell}/result.json`).toEqual(withoutTimings(await json(join(reference, "cells", cell, "result.json"))));
  }
  expect(withoutTimings(await json(join(run, "results.json")))).toEqual(withoutTimings(await json(join(reference, "results.json"))));
}
