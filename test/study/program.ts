// For the tests that run a miniature study through the real program as child processes (workers.test.ts,
// slurm.test.ts): the bundle of the current source, the study's data and config, a child process's outcome, and the
// comparison of two run folders' results.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { expect } from "vitest";
import { writeSynthetic } from "../train/synthetic.js";

export const ROOT = resolve(__dirname, "../..");

// Bundles the current source (scripts/build.mjs's options) as node_modules/.cache/peft-vit-webgpu-test/<name>.js,
// inside node_modules so that the externals (webgpu, sharp) resolve as they do from dist/. Each test file its own.
export async function buildProgram(name: string): Promise<string> {
  const path = join(ROOT, "node_modules", ".cache", "peft-vit-webgpu-test", `${name}.js`);
  const { buildBundle } = (await import(pathToFileURL(join(ROOT, "scripts", "build.mjs")).href)) as { buildBundle: (outfile: string, options?: object) => Promise<unknown> };
  await buildBundle(path, { logLevel: "warning" });
  return path;
}

// Three cells (full, LoRA, Block Expansion) of a tiny ViT on faults.test.ts's noisy patterns, four steps each with
// a checkpoint at step 2. The backbone's cache is an absolute folder: the checkpoints record its path, and runs
// compared byte for byte must share it.
export async function writeMiniStudy(dir: string): Promise<unknown> {
  const data = join(dir, "data");
  await writeSynthetic(data, { size: 8, perClass: { train: 24, test: 8 }, seed: 2, noise: 160 });
  const spec = (split: string, classes: string) => ({ dataset: "npy", root: data, split, classes, transform: "eval" });
  return {
    name: "mini",
    backbone: {
      pretrain: {
        model: { imageSize: 8, patchSize: 4, width: 16, depth: 2, heads: 2, mlpHidden: 32 },
        data: spec("train", "0-2"),
        steps: 6,
        batchSize: 16,
        lr: 0.003,
        warmupSteps: 1,
        cacheDir: join(dir, "cache"),
      },
    },
    knn: { bank: spec("train", "0-2"), queries: spec("test", "0-2"), ks: [3, 5], reportK: 5, batchSize: 32 },
    transfer: { train: spec("train", "3-5"), test: spec("test", "3-5") },
    strategies: ["full", "lora-r2", "block-p1"],
    learningRates: [0.3],
    training: { steps: 4, batchSize: 16, evalEvery: 2, warmupSteps: 1, lossEvery: 2 },
  };
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
