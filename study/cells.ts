// A study's cells, the units of work: one per strategy x learning rate x seed, in config order (strategies, then
// each one's rates, then seeds), numbered from 1 in that order. The numbers are what `experiment --cells 3,7-9`,
// `--shard i/n` and a Slurm array task's index name; they hold as long as the config's strategies, rates and seeds
// do (growing a run renumbers the cells after the first one added; `--list-cells` shows the numbers).
import { join } from "node:path";
import { type StudyConfig, ratesFor } from "./config.js";
import { type Strategy, strategyName } from "../peft/strategy.js";
import { BEST_CHECKPOINT, LAST_CHECKPOINT } from "../train/checkpoint.js";

export interface Cell {
  id: string; // file-name safe: "lora-r8_lr0.01_s0"
  strategy: Strategy;
  lr: number;
  seed: number;
}

export function cellsOf(config: StudyConfig): Cell[] {
  const cells: Cell[] = [];
  for (const strategy of config.strategies) {
    const name = strategyName(strategy).replace(/[@,]/g, "_");
    for (const lr of ratesFor(config, strategy)) {
      for (const seed of config.seeds) cells.push({ id: `${name}_lr${lr}_s${seed}`, strategy, lr, seed });
    }
  }
  return cells;
}

// Where a run folder keeps a cell: cells/<id>/ holds its training (checkpoints, metrics), its claim (claim.json),
// result.json once it finished or diverged: the file whose presence says "done", with knn.val its best
// checkpoint's scores on those images (knn-val.json, study/knn-val.ts), and with analysis.atSteps the backbones of
// those steps (step-<n>.safetensors).
export function cellsFolder(out: string): string {
  return join(out, "cells");
}

export function cellFolder(out: string, id: string): string {
  return join(cellsFolder(out), id);
}

export function cellResultPath(out: string, id: string): string {
  return join(cellFolder(out, id), "result.json");
}

export function cellClaimPath(out: string, id: string): string {
  return join(cellFolder(out, id), "claim.json");
}

export function cellKnnValPath(out: string, id: string): string {
  return join(cellFolder(out, id), "knn-val.json");
}

export function cellKnnBanksPath(out: string, id: string): string {
  return join(cellFolder(out, id), KNN_BANKS_FILE);
}

export const KNN_CURVE_FILE = "knn-curve.json";

// The queries against knn.otherBanks (study/knn-banks.ts): a cell's in its folder, the original backbone's in the run
// folder beside baseline.json.
export const KNN_BANKS_FILE = "knn-banks.json";

export function originalKnnBanksPath(out: string): string {
  return join(out, KNN_BANKS_FILE);
}

export function cellKnnCurvePath(out: string, id: string): string {
  return join(cellFolder(out, id), KNN_CURVE_FILE);
}

export function cellCheckpointPath(out: string, id: string): string {
  return join(cellFolder(out, id), BEST_CHECKPOINT);
}

// An -lpft cell's linear probe (study/runner.ts): its checkpoints and metrics, in a folder of the cell's own.
export const PROBE_FOLDER = "probe";

// The head an -lpft cell's fine-tuning started from: its probe's last checkpoint.
export function cellProbePath(out: string, id: string): string {
  return join(cellFolder(out, id), PROBE_FOLDER, LAST_CHECKPOINT);
}

// The backbone a cell kept at a step of analysis.atSteps: its trainable tensors and manifest, as the best checkpoint's.
export const stepFile = (step: number): string => `step-${step}.safetensors`;

export function cellStepPath(out: string, id: string, step: number): string {
  return join(cellFolder(out, id), stepFile(step));
}

// "3,7-9" -> [3, 7, 8, 9]: cell numbers from 1 to `count`, ascending, each once. `what` names the flag in errors.
export function parseCellList(text: string, count: number, what = "--cells"): number[] {
  const picked = new Set<number>();
  const bad = (why: string) => new Error(`${what}: expected cell numbers from 1 to ${count} such as "3,7-9", got "${text}": ${why}`);
  const parts = text.split(",").map((p) => p.trim());
  if (parts.every((p) => p === "")) throw bad("no cell named");
  for (const part of parts) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw bad(`"${part}" is neither a number nor a range a-b`);
    const [from, to] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (from > to) throw bad(`the range ${part} runs backwards`);
    if (from < 1 || to > count) throw bad(`${part} is outside 1-${count}`);
    for (let i = from; i <= to; i++) picked.add(i);
  }
  return [...picked].sort((a, b) => a - b);
}

// "--shard i/n": the i-th of n interleaved shares of the cells (i from 1): cells i, i + n, i + 2n, ... Interleaving
// mixes cheap and costly strategies in each share. A shard may be empty when n exceeds the number of cells.
export function parseShard(text: string, count: number): number[] {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new Error(`--shard: expected i/n with 1 <= i <= n, such as "2/4", got "${text}"`);
  const [i, n] = [Number(m[1]), Number(m[2])];
  // Past 2^53 the numbers are read rounded: 9007199254740993/9007199254740993 as another shard.
  if (!Number.isSafeInteger(n) || n < 1 || i < 1 || i > n) throw new Error(`--shard: expected i/n with 1 <= i <= n < 2^53, got "${text}"`);
  const picked: number[] = [];
  for (let c = i; c <= count; c += n) picked.push(c);
  return picked;
}

// [1, 2, 3, 7, 9, 10] -> "1-3,7,9-10": the form parseCellList reads, and a Slurm --array list.
export function formatCellList(numbers: number[]): string {
  const parts: string[] = [];
  for (let k = 0; k < numbers.length; ) {
    let j = k;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j] + 1) j++;
    parts.push(j === k ? String(numbers[k]) : `${numbers[k]}-${numbers[j]}`);
    k = j + 1;
  }
  return parts.join(",");
}
