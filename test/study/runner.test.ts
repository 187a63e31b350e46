// A miniature study end to end: a tiny ViT pre-trained on three synthetic pattern classes, fine-tuned on three
// others with all five strategies, then every output file checked for shape. Then what a rerun does: finished
// cells are skipped, a run stopped after one cell finishes only the rest, another config needs --force, and
// strategies that do not fit the backbone are refused before any work.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { parseStudyConfig, type StudyConfig } from "../../study/config.js";
import { cellsOf, passTooLarge, runExperiment } from "../../study/runner.js";
import { parseStrategy, strategyName } from "../../peft/strategy.js";
import { PassTooLargeError } from "../../train/train.js";
import { readSafetensors } from "../../vit/safetensors.js";
import { loadVit } from "../../vit/load.js";
import { exportCommand } from "../../cli/export.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";

useEngine();

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "experiment-test-"));
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 24, test: 8 }, seed: 2 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function study(overrides: Record<string, unknown> = {}): StudyConfig {
  const data = (split: string, classes: string) => ({ dataset: "npy", root: join(root, "data"), split, classes, transform: "eval" });
  return parseStudyConfig({
    name: "mini",
    backbone: {
      pretrain: {
        model: { imageSize: 8, patchSize: 4, width: 16, depth: 2, heads: 2, mlpHidden: 32 },
        data: data("train", "0-2"),
        steps: 6,
        batchSize: 16,
        lr: 0.003,
        warmupSteps: 1,
        cacheDir: join(root, "cache"),
      },
    },
    knn: { bank: data("train", "0-2"), queries: data("test", "0-2"), ks: [3, 5], reportK: 5, batchSize: 32 },
    transfer: { train: data("train", "3-5"), test: data("test", "3-5") },
    strategies: ["full", "top-1", "linear", "lora-r2", "block-p1"],
    learningRates: [0.05],
    training: { steps: 4, batchSize: 16, evalEvery: 2, warmupSteps: 1, lossEvery: 2 },
    ...overrides,
  });
}

const lines = async (path: string) => (await readFile(path, "utf8")).trim().split("\n");

// The first run of the default miniature study into `folder`, made once and shared by the tests that need it, so
// that each test also runs alone.
const out = () => join(root, "run");
let firstRun: Promise<{ r: Awaited<ReturnType<typeof runExperiment>>; log: string[] }> | undefined;
function runOnce() {
  firstRun ??= (async () => {
    const log: string[] = [];
    const r = await runExperiment({ config: study(), out: out(), log: (l) => log.push(l) });
    return { r, log };
  })();
  return firstRun;
}

describe("a miniature study", () => {
  it("runs end to end and writes every output file", async () => {
    const config = study();
    const { r, log } = await runOnce();
    const ids = cellsOf(config).map((c) => c.id);
    expect(ids).toEqual(["full_lr0.05_s0", "top-1_lr0.05_s0", "linear_lr0.05_s0", "lora-r2_lr0.05_s0", "block-p1_lr0.05_s0"]);
    expect(r.ran).toEqual(ids);
    expect(r.complete).toBe(true);
    expect(log.some((l) => l.includes("stand-in for DINO"))).toBe(true);

    const results = JSON.parse(await readFile(join(out(), "results.json"), "utf8"));
    expect(results.cells.map((c: { id: string }) => c.id)).toEqual(ids);
    expect(results.table.map((t: { strategy: string }) => t.strategy)).toEqual(config.strategies.map(strategyName));
    expect(Object.keys(results.baseline.knn)).toEqual(["3", "5"]);
    for (const c of results.cells) {
      expect(c.transferAccuracy).toBeGreaterThanOrEqual(0);
      expect(c.transferAccuracy).toBeLessThanOrEqual(100);
      expect(c.bestStep === 2 || c.bestStep === 4).toBe(true);
      expect(Object.keys(c.knn)).toEqual(["3", "5"]);
      expect(c.trainableParams).toBeGreaterThan(0);
    }
    // Linear probing leaves the backbone untouched: its k-NN accuracy is the original's, to the bit.
    const linear = results.cells.find((c: { strategy: string }) => c.strategy === "linear");
    expect(linear.knn).toEqual(results.baseline.knn);
    expect(linear.trainableParams).toBe(3 * 16 + 3);

    const csv = await lines(join(out(), "results.csv"));
    expect(csv.length).toBe(1 + 1 + 5);
    expect(csv.every((l) => l.split(",").length === 16)).toBe(true);
    const table = (await lines(join(out(), "table.md"))).filter((l) => l.startsWith("| "));
    expect(table.length).toBe(1 + 1 + 5); // header, original backbone, strategies
    expect(table.every((l) => l.split("|").length === 8)).toBe(true); // six columns
    const svg = await readFile(join(out(), "figure2.svg"), "utf8");
    for (const s of config.strategies) expect(svg).toContain(`>${strategyName(s)}<`);
    const png = await sharp(join(out(), "figure2.png")).metadata();
    expect([png.format, png.width, png.height]).toEqual(["png", 1520, 1000]);
    for (const f of ["config.json", "backbone.json", "baseline.json"]) expect(existsSync(join(out(), f)), f).toBe(true);

    const cellDir = join(out(), "cells", "lora-r2_lr0.05_s0");
    expect((await lines(join(cellDir, "metrics.csv"))).length).toBe(1 + 4);
    expect((await readSafetensors(join(cellDir, "last.safetensors"))).metadata.step).toBe("4");
    expect([...(await readSafetensors(join(cellDir, "best.safetensors"))).tensors.keys()].sort()).toEqual(
      ["blocks.0.attn.qkv.lora_q.A", "blocks.0.attn.qkv.lora_q.B", "blocks.0.attn.qkv.lora_v.A", "blocks.0.attn.qkv.lora_v.B",
       "blocks.1.attn.qkv.lora_q.A", "blocks.1.attn.qkv.lora_q.B", "blocks.1.attn.qkv.lora_v.A", "blocks.1.attn.qkv.lora_v.B",
       "head.bias", "head.weight"].sort(),
    );
  });

  it("writes cell checkpoints that `export` turns into a plain ViT with the cell's head", async () => {
    await runOnce();
    const backbone = JSON.parse(await readFile(join(out(), "backbone.json"), "utf8")).path as string;
    for (const [id, file] of [["lora-r2_lr0.05_s0", "best.safetensors"], ["block-p1_lr0.05_s0", "last.safetensors"]]) {
      const merged = join(root, `${id}-merged.safetensors`);
      const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
      // No --heads: the manifest records the backbone's 2 (width 16 / 64 would not even divide).
      await exportCommand.run(["--base", backbone, "--finetuned", join(out(), "cells", id, file), "--out", merged, "--merge"]);
      quiet.mockRestore();
      const { model } = await loadVit(merged, { heads: 2 });
      expect(model.config.classes).toBe(3);
      expect(model.blocks.length).toBe(id.startsWith("block") ? 3 : 2);
      for (const [, t] of model.parameters()) t.dispose();
    }
  });

  it("skips finished cells and the cached pre-training on a rerun", async () => {
    await runOnce();
    const log: string[] = [];
    const r = await runExperiment({ config: study(), out: out(), log: (l) => log.push(l) });
    expect(r.ran).toEqual([]);
    expect(r.skipped.length).toBe(5);
    expect(r.complete).toBe(true);
    expect(log.some((l) => l.startsWith("backbone: cached"))).toBe(true);
  });

  it("after a run stopped early, finishes only the remaining cells", async () => {
    const config = study({ strategies: ["linear", "lora-r2"], learningRates: [0.05, 0.01] });
    const dir = join(root, "killed");
    const first = await runExperiment({ config, out: dir, maxCells: 1 });
    expect(first.ran).toEqual(["linear_lr0.05_s0"]);
    expect(first.complete).toBe(false);
    expect(existsSync(join(dir, "results.json"))).toBe(false);
    const second = await runExperiment({ config, out: dir });
    expect(second.skipped).toEqual(["linear_lr0.05_s0"]);
    expect(second.ran).toEqual(["linear_lr0.01_s0", "lora-r2_lr0.05_s0", "lora-r2_lr0.01_s0"]);
    expect(second.complete).toBe(true);
    expect((await lines(join(dir, "results.csv"))).length).toBe(1 + 1 + 4);
  });

  it("refuses a folder holding another config unless forced", async () => {
    const dir = join(root, "another");
    await runExperiment({ config: study({ strategies: ["lora-r2"] }), out: dir, maxCells: 1 });
    expect(existsSync(join(dir, "cells", "lora-r2_lr0.05_s0"))).toBe(true);
    const other = study({ strategies: ["linear"], learningRates: [0.05] });
    await expect(runExperiment({ config: other, out: dir })).rejects.toThrow(/holds a run of another config .*--force/);
    const forced = await runExperiment({ config: other, out: dir, force: true });
    expect(forced.ran).toEqual(["linear_lr0.05_s0"]);
    expect(existsSync(join(dir, "cells", "lora-r2_lr0.05_s0"))).toBe(false);
  });

  it("refuses strategies that do not fit a checkpoint backbone, and missing data, before any work", async () => {
    const base = study();
    const config = { ...base, backbone: { checkpoint: "test/fixtures/vit-tiny.safetensors", heads: 2 }, strategies: [parseStrategy("top-20")] };
    const dir = join(root, "bad");
    await expect(runExperiment({ config, out: dir })).rejects.toThrow(/strategies\[0\]: expected top-k with k <= depth \d+ \(the backbone's\), got top-20/);
    expect(existsSync(join(dir, "baseline.json"))).toBe(false);
    const missing = { ...base, knn: { ...base.knn, bank: { ...base.knn.bank, root: join(root, "nowhere") } } };
    await expect(runExperiment({ config: missing, out: join(root, "bad2") })).rejects.toThrow(/knn\.bank: .*nowhere/);
  });
});

describe("errors of the study layer", () => {
  it("name the config key that sets a pass's size when a pass outgrows a binding", () => {
    const e = new PassTooLargeError("train: step 3: matmul: expected y within maxStorageBufferBindingSize 134217728 bytes, got (37824, 3072)", 4);
    const named = passTooLarge(e, "backbone.pretrain.microBatch") as Error;
    expect(named.message).toBe(
      "train: step 3: matmul: expected y within maxStorageBufferBindingSize 134217728 bytes, got (37824, 3072) " +
        "(a smaller backbone.pretrain.microBatch, now 4, keeps each pass's tensors within one binding)",
    );
    expect(named.cause).toBe(e);
    const other = new Error("disk full");
    expect(passTooLarge(other, "training.microBatch")).toBe(other);
  });
});
