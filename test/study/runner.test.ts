// A miniature study end to end: a tiny ViT pre-trained on three synthetic pattern classes, fine-tuned on three
// others with all five strategies, then every output file checked for shape. Then what a rerun does: finished
// cells are skipped, a run stopped after one cell finishes only the rest, a config grown by a strategy, a rate and
// a seed reuses the finished cells, another config needs --force, and strategies that do not fit the backbone are
// refused before any work. Cells that diverge are recorded, named in the table, skipped or retried on a rerun. The
// forgetting curve's points, and the config keys for the authors' departures (normalisation, crop, head) reach the cells.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { configJson, parseStudyConfig, type StudyConfig } from "../../study/config.js";
import type { CellResult, CurvePoint } from "../../study/results.js";
import type { ClassKnn } from "../../study/knn-classes.js";
import type { KnnConfusion } from "../../study/knn-confusion.js";
import { passTooLarge, runExperiment } from "../../study/runner.js";
import { cellsOf } from "../../study/cells.js";
import { parseStrategy, strategyName } from "../../peft/strategy.js";
import { PassTooLargeError } from "../../train/train.js";
import { readSafetensors, writeSafetensors } from "../../vit/safetensors.js";
import { loadVit } from "../../vit/load.js";
import { exportCommand } from "../../cli/export.js";
import { sha256File } from "../../peft/save.js";
import { writeNpy } from "../../data/npy.js";
import { packBits, unpackBits } from "../../util/bits.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { MINI_MODEL, miniData, miniStudy } from "./program.js";

useEngine();

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "experiment-test-"));
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 24, test: 8 }, seed: 2 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// program.ts's miniature study on clear patterns, with all five strategies at a lower rate.
function study(overrides: Record<string, unknown> = {}): StudyConfig {
  return parseStudyConfig({
    ...miniStudy(join(root, "data"), join(root, "cache")),
    strategies: ["full", "top-1", "linear", "lora-r2", "block-p1"],
    learningRates: [0.05],
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
      // Which test images and k-NN queries (at reportK) the best checkpoint got right: as many as its accuracies say.
      const right = ({ bits, count }: { bits: string; count: number }) => (100 * unpackBits(bits, count)!.reduce((a, b) => a + b)) / count;
      expect([c.correct.transfer.count, c.correct.knn.count]).toEqual([results.cells[0].correct.transfer.count, results.cells[0].correct.knn.count]);
      expect(right(c.correct.transfer), c.id).toBe(c.transferAccuracy);
      expect(right(c.correct.knn), c.id).toBe(c.knn["5"].top1);
    }
    // Linear probing leaves the backbone untouched: its k-NN accuracy is the original's, to the bit.
    const linear = results.cells.find((c: { strategy: string }) => c.strategy === "linear");
    expect(linear.knn).toEqual(results.baseline.knn);
    expect(linear.trainableParams).toBe(3 * 16 + 3);

    const csv = await lines(join(out(), "results.csv"));
    expect(csv.length).toBe(1 + 1 + 5);
    expect(csv.every((l) => l.split(",").length === 16)).toBe(true);
    const md = await lines(join(out(), "table.md"));
    const table = md.slice(0, md.indexOf("", 2)).filter((l) => l.startsWith("| ")); // Table 1, before the rest
    expect(table.length).toBe(1 + 1 + 5); // header, original backbone, strategies
    expect(table.every((l) => l.split("|").length === 8)).toBe(true); // six columns
    const svg = await readFile(join(out(), "figure2.svg"), "utf8");
    for (const s of config.strategies) expect(svg).toContain(`>${strategyName(s)}<`);
    const png = await sharp(join(out(), "figure2.png")).metadata();
    const [, width, height] = /^<svg [^>]*width="(\d+)" height="(\d+)"/.exec(svg)!.map(Number);
    expect([png.format, png.width, png.height]).toEqual(["png", 2 * width, 2 * height]);
    expect(existsSync(join(out(), "forgetting.svg"))).toBe(false); // no knn.atSteps
    // The forgetting class by class: a line per row and class of the queries, each row's lines over every query.
    const byClass = (await lines(join(out(), "knn-classes.csv"))).slice(1).map((l) => l.split(","));
    expect(byClass.length).toBe(5 * 3);
    expect(byClass.every((l) => l[3] === "best")).toBe(true); // no knn.atSteps: no curve
    for (const s of config.strategies) expect(byClass.filter((l) => l[0] === strategyName(s)).reduce((n, l) => n + Number(l[5]), 0)).toBe(results.cells[0].correct.knn.count);
    expect(existsSync(join(out(), "forgetting-classes.svg"))).toBe(true);
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
      model.dispose();
    }
  });

  it("exports unmerged in timm's layout, which features reads, but for LoRA's adapters, and never over an input", async () => {
    await runOnce();
    const backbone = JSON.parse(await readFile(join(out(), "backbone.json"), "utf8")).path as string;
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    const exported = async (id: string) => {
      const path = join(root, `${id}-plain.safetensors`);
      await exportCommand.run(["--base", backbone, "--finetuned", join(out(), "cells", id, "best.safetensors"), "--out", path]);
      return path;
    };
    // Full fine-tuning has nothing to merge: its unmerged file is a plain ViT, its head count in the metadata.
    const full = await loadVit(await exported("full_lr0.05_s0"));
    expect(full.model.config.heads).toBe(2);
    expect(full.unused).toEqual([]);
    full.model.dispose();
    const lora = await exported("lora-r2_lr0.05_s0");
    expect((await loadVit(lora)).unused.some((k) => k.includes("lora"))).toBe(true);
    const { features } = await import("../../cli/features.js");
    await writeNpy(join(root, "one.npy"), new Float32Array(3 * 8 * 8), [1, 3, 8, 8]);
    await expect(features.run(["--weights", lora, "--input", join(root, "one.npy"), "--out", join(root, "f.npy")])).rejects.toThrow(`features: ${lora} holds LoRA adapters (`);
    const cell = join(out(), "cells", "lora-r2_lr0.05_s0", "best.safetensors");
    for (const [flag, input] of [["base", backbone], ["finetuned", cell]]) {
      await expect(exportCommand.run(["--base", backbone, "--finetuned", cell, "--out", input])).rejects.toThrow(`--out: expected a file other than --${flag}, which it would overwrite, got ${input}`);
    }
    quiet.mockRestore();
  });

  it("skips finished cells and the cached pre-training on a rerun, and says so at the start", async () => {
    await runOnce();
    const log: string[] = [];
    const r = await runExperiment({ config: study(), out: out(), log: (l) => log.push(l) });
    expect(r.ran).toEqual([]);
    expect(r.skipped.length).toBe(5);
    expect(r.complete).toBe(true);
    expect(log[0]).toBe(`skipping 5 finished cell(s): ${r.skipped.join(", ")}`);
    expect(log.some((l) => l.startsWith("backbone: cached"))).toBe(true);
  });

  it("removes the claims a killed run left on finished work (killed after the result, before the release)", async () => {
    await runOnce();
    const now = new Date().toISOString();
    const gone = spawnSync(process.execPath, ["-e", ""]).pid!;
    const dead = JSON.stringify({ host: hostname(), pid: gone, token: `${hostname()}-${gone}`, claimed: now, heartbeat: now });
    const claims = [join(out(), "prepare.claim.json"), join(out(), "cells", "linear_lr0.05_s0", "claim.json")];
    for (const path of claims) await writeFile(path, dead);
    const log: string[] = [];
    const r = await runExperiment({ config: study(), out: out(), log: (l) => log.push(l) });
    expect(r.ran).toEqual([]);
    for (const path of claims) {
      expect(existsSync(path), path).toBe(false);
      expect(log).toContain(`removed the claim ${path} that host ${hostname()} pid ${gone} left on its finished work`);
    }
  });

  it("after a run stopped early, finishes only the remaining cells, estimating the time they take", async () => {
    const config = study({ strategies: ["linear", "lora-r2"], learningRates: [0.05, 0.01] });
    const dir = join(root, "killed");
    const first = await runExperiment({ config, out: dir, maxCells: 1 });
    expect(first.ran).toEqual(["linear_lr0.05_s0"]);
    expect(first.complete).toBe(false);
    expect(existsSync(join(dir, "results.json"))).toBe(false);
    const log: string[] = [];
    const second = await runExperiment({ config, out: dir, log: (l) => log.push(l) });
    expect(second.skipped).toEqual(["linear_lr0.05_s0"]);
    expect(second.ran).toEqual(["linear_lr0.01_s0", "lora-r2_lr0.05_s0", "lora-r2_lr0.01_s0"]);
    expect(second.complete).toBe(true);
    expect((await lines(join(dir, "results.csv"))).length).toBe(1 + 1 + 4);
    const etas = log.filter((l) => l.includes("cell(s) left: about"));
    expect(etas.map((l) => l.trim().split(" ")[0])).toEqual(["2", "1"]);
    expect(etas[1]).toMatch(/, at \d+\.\d s per cell \(the mean of the 2 trained whole so far\)$/);
  });

  it("logs a cell resuming from its last checkpoint before it trains, and times no ETA on it", async () => {
    const config = study({ strategies: ["linear"], learningRates: [0.05, 0.01] });
    const dir = join(root, "resumed");
    await runExperiment({ config, out: dir });
    for (const id of ["linear_lr0.05_s0", "linear_lr0.01_s0"]) await rm(join(dir, "cells", id, "result.json"));
    const log: string[] = [];
    const r = await runExperiment({ config, out: dir, log: (l) => log.push(l) });
    expect(r.ran).toEqual(["linear_lr0.05_s0", "linear_lr0.01_s0"]);
    const at = log.indexOf("  resuming cell linear_lr0.05_s0 from step 4 of 4");
    expect(at).toBe(log.indexOf("cell 1/2: linear, lr 0.05, seed 0") + 1);
    // Resumed at its last step, the first cell trained nothing here: its seconds would promise the second in no time.
    expect(log.filter((l) => l.includes("cell(s) left: about"))).toEqual([]);
  });

  it("grows by a strategy, a learning rate and a seed, reusing the finished cells", async () => {
    const dir = join(root, "grown");
    const small = await runExperiment({ config: study({ strategies: ["linear"] }), out: dir });
    expect(small.ran).toEqual(["linear_lr0.05_s0"]);
    const kept = await readFile(join(dir, "cells", "linear_lr0.05_s0", "result.json"), "utf8");
    // From one rate for every strategy to rates per strategy: linear gets a second one.
    const config = study({ strategies: ["linear", "lora-r2"], learningRates: { linear: [0.05, 0.01], "lora-r2": [0.05] }, seeds: [0, 1] });
    const log: string[] = [];
    const grown = await runExperiment({ config, out: dir, log: (l) => log.push(l) });
    expect(grown.skipped).toEqual(["linear_lr0.05_s0"]);
    expect(grown.ran).toEqual(cellsOf(config).map((c) => c.id).filter((id) => id !== "linear_lr0.05_s0"));
    expect(await readFile(join(dir, "cells", "linear_lr0.05_s0", "result.json"), "utf8")).toBe(kept);
    expect(log[0]).toBe(
      'config changed, finished cells kept: strategies: ["linear"] -> ["linear","lora-r2"]; learningRates: [0.05] -> {"linear":[0.05,0.01],"lora-r2":[0.05]}; seeds: [0] -> [0,1]',
    );
    expect(log[1]).toBe(`  5 cell(s) added: ${grown.ran.join(", ")}`);
    const results = JSON.parse(await readFile(join(dir, "results.json"), "utf8"));
    expect(results.cells.length).toBe(6);
    expect(results.table.map((t: { strategy: string; seeds: number }) => [t.strategy, t.seeds])).toEqual([["linear", 2], ["lora-r2", 2]]);
    expect(JSON.parse(await readFile(join(dir, "config.json"), "utf8")).seeds).toEqual([0, 1]);
    // Shrinking keeps the dropped cells' folders but leaves them out of the results.
    const shrunk = await runExperiment({ config: study({ strategies: ["lora-r2"], seeds: [0, 1] }), out: dir, log: (l) => log.push(l) });
    expect(shrunk.ran).toEqual([]);
    expect(shrunk.results.cells.map((c) => c.id)).toEqual(["lora-r2_lr0.05_s0", "lora-r2_lr0.05_s1"]);
    expect(log).toContain("  4 cell(s) no longer in the config, kept in cells/ but left out of the results: linear_lr0.05_s0, linear_lr0.05_s1, linear_lr0.01_s0, linear_lr0.01_s1");
    expect(existsSync(join(dir, "cells", "linear_lr0.01_s1", "result.json"))).toBe(true);
  });

  it("refuses a folder holding another config, naming the keys, unless forced", async () => {
    const dir = join(root, "another");
    await runExperiment({ config: study({ strategies: ["lora-r2"] }), out: dir, maxCells: 1 });
    expect(existsSync(join(dir, "cells", "lora-r2_lr0.05_s0"))).toBe(true);
    const other = study({ strategies: ["linear"], training: { steps: 6, batchSize: 16, evalEvery: 2, warmupSteps: 1, lossEvery: 2 } });
    const e = (await runExperiment({ config: other, out: dir }).catch((err: unknown) => err)) as Error;
    expect(e.message).toBe(
      `experiment: ${dir} holds a run of another config (${join(dir, "config.json")}), whose finished cells this one cannot use:\n` +
        "  training.steps: 4 -> 6\n" +
        "use --force to discard them and start over, or choose another --out",
    );
    const forced = await runExperiment({ config: other, out: dir, force: true });
    expect(forced.ran).toEqual(["linear_lr0.05_s0"]);
    expect(existsSync(join(dir, "cells", "lora-r2_lr0.05_s0"))).toBe(false);
  });

  it("checks what the data and the backbone bound, and that the data's classes agree, before it touches the run folder, --force included", async () => {
    const dir = join(root, "forced");
    const base = study({ strategies: ["linear"] });
    await runExperiment({ config: base, out: dir });
    const result = join(dir, "cells", "linear_lr0.05_s0", "result.json");
    expect(existsSync(result)).toBe(true);
    const pretrain = base.backbone.pretrain!;
    const refused: [StudyConfig, RegExp][] = [
      [{ ...base, training: { ...base.training, batchSize: 100 } }, /experiment: training\.batchSize: expected at most the 72 images of transfer\.train \(every step takes a whole batch\), got 100/],
      [{ ...base, knn: { ...base.knn, ks: [3, 5, 100] } }, /experiment: knn\.ks: expected neighbour counts of at most the 72 images of knn\.bank, got 100/],
      [{ ...base, imageSize: 10 }, /experiment: imageSize: expected a multiple of the backbone's patch size 4 \(its images are 8 px\), got 10/],
      [{ ...base, backbone: { pretrain: { ...pretrain, batchSize: 1000 } } }, /backbone\.pretrain\.batchSize: expected at most the 72 images of backbone\.pretrain\.data, got 1000/],
      [{ ...base, transfer: { ...base.transfer, train: { ...base.transfer.train, root: join(root, "nowhere") } } }, /experiment: transfer\.train: .*nowhere/],
      // Queries or test images of other classes would be scored against labels that mean other classes.
      [{ ...base, knn: { ...base.knn, queries: { ...base.knn.queries, classes: [3, 4, 5] } } }, /^experiment: expected knn\.queries to have the 3 classes of knn\.bank in the same order, got label 0 "3" where knn\.bank has "0" \(give both the same classes\)$/],
      [{ ...base, transfer: { ...base.transfer, test: { ...base.transfer.test, classes: [3, 5, 4] } } }, /^experiment: expected transfer\.test to have the 3 classes of transfer\.train in the same order, got label 1 "5" where transfer\.train has "4"/],
      [{ ...base, transfer: { ...base.transfer, test: { ...base.transfer.test, classes: [3, 4] } } }, /^experiment: expected transfer\.test to have the 3 classes of transfer\.train in the same order, got 2 classes/],
    ];
    for (const [config, message] of refused) {
      await expect(runExperiment({ config, out: dir, force: true })).rejects.toThrow(message);
      expect(existsSync(result)).toBe(true);
    }
  });

  it("takes a new config in a folder that holds no results yet, saying so", async () => {
    const dir = join(root, "unfinished");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "config.json"), JSON.stringify(configJson(study({ strategies: ["linear"], training: { steps: 6, batchSize: 16, evalEvery: 2 } }))));
    const log: string[] = [];
    const r = await runExperiment({ config: study({ strategies: ["linear"] }), out: dir, log: (l) => log.push(l) });
    expect(r.ran).toEqual(["linear_lr0.05_s0"]);
    expect(log).toContain(`config changed: ${dir} holds no results yet, so the new config replaces ${join(dir, "config.json")}`);
    expect(JSON.parse(await readFile(join(dir, "config.json"), "utf8"))).toEqual(configJson(study({ strategies: ["linear"] })));
  });

  it("refuses another backbone file or other data under the same config, naming what changed", async () => {
    const dir = join(root, "inputs");
    const data = join(root, "inputs-data");
    await writeSynthetic(data, { size: 8, perClass: { train: 24, test: 8 }, seed: 2 });
    const backbone = join(root, "inputs-backbone.safetensors");
    await writeFile(backbone, await readFile("test/fixtures/vit-tiny.safetensors"));
    const shape = (split: string, classes: string) => ({ dataset: "npy", root: data, split, classes, transform: "eval" });
    const config = parseStudyConfig({
      ...miniStudy(data, join(root, "cache")),
      backbone: { checkpoint: backbone, heads: 2 },
      knn: { bank: shape("train", "0-2"), queries: shape("test", "0-2"), ks: [3, 5], reportK: 5 },
      strategies: ["linear"],
      learningRates: [0.05],
    });
    await runExperiment({ config, out: dir, maxCells: 0 });
    const recorded = JSON.parse(await readFile(join(dir, "backbone.json"), "utf8")) as { sha256: string };
    expect(recorded.sha256).toBe(await sha256File(backbone));
    expect(JSON.parse(await readFile(join(dir, "baseline.json"), "utf8")).data.bank).toMatchObject({ name: "npy", split: "train", count: 72 });

    // Another file under the same path: one weight changed.
    const { tensors, metadata } = await readSafetensors(backbone);
    const [name, t] = [...tensors].find(([n]) => n.endsWith("norm.weight"))!;
    t.data[0] += 1;
    await writeSafetensors(backbone, tensors, metadata);
    const swapped = (await runExperiment({ config, out: dir }).catch((e: unknown) => e)) as Error;
    expect(swapped.message, name).toBe(`experiment: the backbone ${backbone} hashes to ${await sha256File(backbone)}, but this run folder's baseline and cells were computed from one hashing to ${recorded.sha256} (${join(dir, "backbone.json")}): restore that file, or start over with --force or another --out`);
    t.data[0] -= 1;
    await writeSafetensors(backbone, tensors, metadata);

    // Other data under the same config: fewer source training images.
    await writeSynthetic(data, { size: 8, perClass: { train: 20, test: 8 }, seed: 2 });
    const grown = (await runExperiment({ config, out: dir }).catch((e: unknown) => e)) as Error;
    expect(grown.message).toMatch(new RegExp(`^experiment: the data differs from the data of this run folder's baseline and cells \\(${join(dir, "baseline.json")}\\):\n  bank.count: 72 -> 60\n  bank.hash: "[0-9a-f]{16}" -> "[0-9a-f]{16}"\n`));
    expect(grown.message).toContain("transferTrain.count: ");
    expect(existsSync(join(dir, "cells"))).toBe(false);
  });

  it("names a damaged result.json or baseline.json, with the way out", async () => {
    const dir = join(root, "damaged");
    const config = study({ strategies: ["linear"] });
    await runExperiment({ config, out: dir });
    const result = join(dir, "cells", "linear_lr0.05_s0", "result.json");
    const good = await readFile(result, "utf8");
    const cases: [string, string, string][] = [
      [result, "{}", `experiment: ${result}: expected a cell's result, found no "id" in the folder of cell linear_lr0.05_s0; delete the cell's folder ${join(dir, "cells", "linear_lr0.05_s0")} to train it again`],
      [result, JSON.stringify({ ...JSON.parse(good), lr: "fast" }), `found "lr": "fast" (a number)`],
      [result, JSON.stringify({ ...JSON.parse(good), knn: {} }), `found its "knn" without the top-1 and top-5 accuracies at k = 5 (knn.reportK)`],
      [result, JSON.stringify({ ...JSON.parse(good), correct: { ...JSON.parse(good).correct, knn: { count: 3, bits: "!" } } }), `found its "correct" without the k-NN query images' bits (a "count" and its "bits", packed)`],
      [result, JSON.stringify({ ...JSON.parse(good), correct: { ...JSON.parse(good).correct, transfer: { count: 2, bits: packBits([1, 1]) } } }), `found its "correct" transfer test bits right on 100% of the images, where its accuracy is ${JSON.parse(good).transferAccuracy}%`],
      [result, "", `experiment: ${result}: expected JSON, got a parse error`],
      [join(dir, "baseline.json"), "{}", `experiment: ${join(dir, "baseline.json")}: expected the original backbone's k-NN accuracy, found its "knn" without the top-1 and top-5 accuracies at k = 5 (knn.reportK); delete it to measure it again`],
      [join(dir, "baseline.json"), '{"broken', `experiment: ${join(dir, "baseline.json")}: expected JSON, got a parse error`],
      [join(dir, "baseline.json"), JSON.stringify({ ...JSON.parse(await readFile(join(dir, "baseline.json"), "utf8")), correct: { count: 2, bits: packBits([0, 0]) } }), `found its "correct" k-NN query bits right on 0% of the images, where its accuracy is`],
      [join(dir, "backbone.json"), '{"kind": "pretrain", "sha256": 7}', `experiment: ${join(dir, "backbone.json")}: expected the record of the study's backbone (its "path", and its "sha256" from builds that record it), found no "path", "sha256": 7`],
    ];
    for (const [path, text, message] of cases) {
      const before = await readFile(path, "utf8");
      await writeFile(path, text);
      await expect(runExperiment({ config, out: dir })).rejects.toThrow(message);
      await writeFile(path, before);
    }
  });

  it("refuses strategies that do not fit a checkpoint backbone, missing data and a precision the adapter lacks, before any work", async () => {
    const base = study();
    // depth 2, width 32; its pinned SHA-256 is right, so the strategies are what is refused
    const checkpoint = { checkpoint: "test/fixtures/vit-tiny.safetensors", heads: 2, sha256: await sha256File("test/fixtures/vit-tiny.safetensors") };
    const config = { ...base, backbone: checkpoint, strategies: ["linear", "top-20", "lora-r33", "block@3"].map(parseStrategy) };
    const dir = join(root, "bad");
    const refused = runExperiment({ config, out: dir });
    await expect(refused).rejects.toThrow(/strategies\[1\]: expected top-K with 0 <= K <= depth 2 \(backbone\.checkpoint .*vit-tiny\.safetensors\), got top-20/);
    await expect(refused).rejects.toThrow(/strategies\[2\]: expected lora-rR with 1 <= R <= width 32 .*, got lora-r33/);
    await expect(refused).rejects.toThrow(/strategies\[3\]: expected block@POS with distinct positions in 1\.\.depth 2 .*, got block@3/);
    expect(existsSync(dir)).toBe(false); // checked from the header, before the run folder is claimed
    const heads = { ...base, backbone: { ...checkpoint, heads: 4 }, strategies: [parseStrategy("linear")] };
    await expect(runExperiment({ config: heads, out: dir })).rejects.toThrow("experiment: backbone.heads: checkpoint: expected 2 heads, as the file's metadata states, got 4");
    const missing = { ...base, knn: { ...base.knn, bank: { ...base.knn.bank, root: join(root, "nowhere") } } };
    await expect(runExperiment({ config: missing, out: join(root, "bad2") })).rejects.toThrow(/knn\.bank: .*nowhere/);
    // A precision the adapter cannot run (the CPU driver has no i8 subgroup matrices); a preparation alone trains no cell.
    const int8 = { ...base, training: { ...base.training, precision: "int8" as const } };
    await expect(runExperiment({ config: int8, out: join(root, "bad3") })).rejects.toThrow(/experiment: precision "int8" \(training\.precision\) needs subgroup matrices of i8/);
    expect(existsSync(join(root, "bad3"))).toBe(false);
  });
});

describe("a study with diverging cells", () => {
  // full diverges at lr 1e30 but not at 0.05; lora-r2 diverges at its only rate.
  const config = () => study({ strategies: ["full", "lora-r2"], learningRates: { full: [0.05, 1e30], "lora-r2": [1e30] } });
  const dir = () => join(root, "diverging");
  let first: Promise<{ r: Awaited<ReturnType<typeof runExperiment>>; log: string[] }> | undefined;
  const runFirst = () =>
    (first ??= (async () => {
      const log: string[] = [];
      return { r: await runExperiment({ config: config(), out: dir(), log: (l) => log.push(l) }), log };
    })());

  it("records the diverged cells, goes on and completes, and the table names them", async () => {
    const { r, log } = await runFirst();
    expect(r.ran).toEqual(["full_lr0.05_s0", "full_lr1e+30_s0", "lora-r2_lr1e+30_s0"]);
    expect(r.diverged).toEqual(["full_lr1e+30_s0", "lora-r2_lr1e+30_s0"]);
    expect(r.complete).toBe(true);
    const cell = JSON.parse(await readFile(join(dir(), "cells", "full_lr1e+30_s0", "result.json"), "utf8"));
    expect(Object.keys(cell)).toEqual(["id", "strategy", "lr", "seed", "diverged"]);
    expect(cell.diverged.step).toBeGreaterThan(0);
    expect(cell.diverged.message).toMatch(new RegExp(`^train: .* at step ${cell.diverged.step} \\(lr`));
    expect(log).toContain(`  recorded as diverged in ${join(dir(), "cells", "full_lr1e+30_s0", "result.json")}, left out of the table; going on with the next cell (--retry-diverged trains it again)`);

    const results = JSON.parse(await readFile(join(dir(), "results.json"), "utf8"));
    expect(results.cells.map((c: { id: string }) => c.id)).toEqual(["full_lr0.05_s0"]);
    expect(results.diverged.map((c: { id: string }) => c.id)).toEqual(r.diverged);
    const table = await readFile(join(dir(), "table.md"), "utf8");
    expect(table).toMatch(/^\| full \| .* \| 0\.05 \(1e\+30 diverged\) \|$/m);
    expect(table).toContain("| lora-r2 | – | every rate diverged | – | – | 1e+30 |");
    expect(table).toContain(`lora-r2 lr 1e+30 seed 0 at step ${results.diverged[1].diverged.step}`);
  });

  it("skips the diverged cells on a rerun, and trains them again with retryDiverged", async () => {
    await runFirst();
    const log: string[] = [];
    const again = await runExperiment({ config: config(), out: dir(), log: (l) => log.push(l) });
    expect(again.ran).toEqual([]);
    expect(again.skipped).toEqual(["full_lr0.05_s0", "full_lr1e+30_s0", "lora-r2_lr1e+30_s0"]);
    expect(log.slice(0, 2)).toEqual([
      "skipping 1 finished cell(s): full_lr0.05_s0",
      "skipping 2 diverged cell(s) (--retry-diverged trains them again): full_lr1e+30_s0, lora-r2_lr1e+30_s0",
    ]);
    const retried = await runExperiment({ config: config(), out: dir(), retryDiverged: true, log: (l) => log.push(l) });
    expect(log).toContain("--retry-diverged: training 2 diverged cell(s) again from scratch: full_lr1e+30_s0, lora-r2_lr1e+30_s0");
    expect(retried.ran).toEqual(["full_lr1e+30_s0", "lora-r2_lr1e+30_s0"]);
    expect(retried.diverged).toEqual(["full_lr1e+30_s0", "lora-r2_lr1e+30_s0"]);
  });

  it("names a checkpoint resumed from as suspect when the loss is non-finite right after it, and retrying starts over", async () => {
    await runFirst();
    // The finished cell made unfinished again, resuming from a step-2 checkpoint whose weights overflow the next step.
    const cellDir = join(dir(), "cells", "full_lr0.05_s0");
    await rm(join(cellDir, "result.json"));
    const last = join(cellDir, "last.safetensors");
    const { tensors, metadata } = await readSafetensors(last);
    for (const [name, t] of tensors) if (!name.startsWith("optimizer.")) t.data.fill(1e30);
    await writeSafetensors(last, tensors, { ...metadata, step: "2", optimizerSteps: "2", loaderBatch: "2" });
    const log: string[] = [];
    const r = await runExperiment({ config: config(), out: dir(), log: (l) => log.push(l) });
    expect(r.ran).toEqual(["full_lr0.05_s0"]);
    const resuming = log.indexOf("  resuming cell full_lr0.05_s0 from step 2 of 4");
    expect(resuming).toBeGreaterThan(0);
    expect(log[resuming + 1]).toMatch(/^ {2}train: the loss became (NaN|Infinity) at step 3 .* the checkpoint it resumed from, .*last\.safetensors \(step 2\), is suspect/);
    expect(r.results.table).toEqual([]);
    expect(await readFile(join(dir(), "table.md"), "utf8")).toContain("| full | – | every rate diverged | – | – | 0.05, 1e+30 |");
    const retried = await runExperiment({ config: config(), out: dir(), retryDiverged: true });
    expect(retried.diverged).toEqual(["full_lr1e+30_s0", "lora-r2_lr1e+30_s0"]);
    expect(retried.results.cells.map((c) => [c.id, c.bestStep > 0])).toEqual([["full_lr0.05_s0", true]]);
  });

  it("stops when the backbone's pre-training diverges, naming backbone.pretrain.lr", async () => {
    const base = study({ strategies: ["linear"] });
    const config = { ...base, backbone: { pretrain: { ...base.backbone.pretrain!, lr: 1e30 } } };
    await expect(runExperiment({ config, out: join(root, "pretrain-diverged") })).rejects.toThrow(
      /^experiment: the backbone's pre-training diverged: train: .*; a smaller backbone\.pretrain\.lr \(now 1e\+30\) should train it$/,
    );
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

// On noisy images at a high rate, as test/study/faults.test.ts, with the k-NN over all six classes (three of them
// unseen in pre-training), so that k-NN accuracies differ between models and along a curve: on the clear images,
// or the pre-training's three classes alone, every one is 100 %.
describe("the forgetting curve (knn.atSteps)", () => {
  const STEPS = [0, 1, 2, 4];
  const strategies = ["full", "linear", "lora-r2", "block-p1"];
  const config = (atSteps?: number[]) => {
    const { backbone, knn, transfer } = miniStudy(join(root, "noisy"), join(root, "cache"));
    const all = (split: string) => miniData(join(root, "noisy"), split, "0-5");
    return study({ strategies, learningRates: [0.3], backbone, knn: { ...knn, bank: all("train"), queries: all("test"), ...(atSteps && { atSteps }) }, transfer });
  };
  const dir = () => join(root, "curve");
  let run: ReturnType<typeof runExperiment> | undefined;
  const runCurve = () =>
    (run ??= (async () => {
      await writeSynthetic(join(root, "noisy"), { size: 8, perClass: { train: 24, test: 8 }, seed: 2, noise: 160 });
      return runExperiment({ config: config(STEPS), out: dir() });
    })());
  const cellResult = async (id: string, folder = dir()): Promise<CellResult> => JSON.parse(await readFile(join(folder, "cells", id, "result.json"), "utf8"));

  it("scores every cell's backbone at those steps, into result.json, results.json and forgetting.*", async () => {
    const r = await runCurve();
    expect(r.complete).toBe(true);
    const results = JSON.parse(await readFile(join(dir(), "results.json"), "utf8"));
    for (const c of results.cells as CellResult[]) {
      expect(c.knnCurve!.map((p) => p.step), c.id).toEqual(STEPS);
      for (const p of c.knnCurve!) expect(Object.keys(p.knn)).toEqual(["3", "5"]);
      expect(await cellResult(c.id)).toEqual(c);
      // The curve's points, with their k-NN time, as measured.
      const stored = JSON.parse(await readFile(join(dir(), "cells", c.id, "knn-curve.json"), "utf8")).points;
      expect(stored.map(({ step, knn, correct }: CurvePoint) => ({ step, knn, correct }))).toEqual(c.knnCurve);
      // The best checkpoint's k-NN is the curve's point where the curve has its step, a pass of its own elsewhere.
      const curveSeconds = stored.reduce((a: number, p: { seconds: number }) => a + p.seconds, 0);
      if (STEPS.includes(c.bestStep)) expect(c.knnSeconds).toBeCloseTo(curveSeconds, 9);
      else expect(c.knnSeconds).toBeGreaterThan(curveSeconds);
    }
    // One seed: each row's curve is its cell's top-1 at reportK, with a std of 0, and its change from the original
    // that cell's less the original's, with an interval over the queries alone.
    for (const row of results.table) {
      const c = results.cells.find((x: CellResult) => x.strategy === row.strategy);
      type Point = { change: { mean: number; lo: number; hi: number; n: number }; sincePrevious?: unknown; byClassSincePrevious?: unknown; answersSincePrevious?: unknown; byClass: ClassKnn[]; confusion: KnnConfusion };
      expect(row.knnCurve.every((p: Point) => p.byClass.length === 6)).toBe(true); // the queries' six classes, at each step
      // The classes given, kept with the answers (six classes): each point's confusion, whose diagonal is its change by class.
      for (const p of row.knnCurve as Point[]) expect(p.confusion.lines.map((line, i) => line.change[i])).toEqual(p.byClass.map(({ change: { banks: _, ...c } }) => c));
      expect(row.knnCurve.map(({ change: _, byClass: __, confusion: ___, sincePrevious: ____, byClassSincePrevious: _____, answersSincePrevious: ______, ...p }: Point) => p)).toEqual(c.knnCurve.map((p: CurvePoint) => ({ step: p.step, knn: p.knn["5"].top1, knnStd: 0 })));
      row.knnCurve.forEach(({ change }: Point, i: number) => {
        expect(change.mean).toBeCloseTo(c.knnCurve[i].knn["5"].top1 - results.baseline.knn["5"].top1, 9);
        expect(change.n).toBe(1);
        expect(change.lo).toBeLessThanOrEqual(change.mean);
        expect(change.hi).toBeGreaterThanOrEqual(change.mean);
      });
    }
    // Numbers a wrong curve could get wrong: the original's accuracy is not 100 %, and every strategy that trains
    // its backbone moves it from step to step.
    expect(results.baseline.knn["5"].top1).toBeLessThan(100);
    for (const c of results.cells.filter((x: CellResult) => x.strategy !== "linear")) {
      expect(new Set(c.knnCurve.map((p: CurvePoint) => p.knn["5"].top1)).size, c.id).toBeGreaterThan(1);
    }
    for (const f of ["forgetting.vl.json", "forgetting.svg", "forgetting.png"]) expect(existsSync(join(dir(), f)), f).toBe(true);
    expect(await readFile(join(dir(), "forgetting.svg"), "utf8")).toContain(">Fine-tuning step (symmetric log scale)<");
  });

  it("starts at the original backbone for every strategy, exactly: LoRA (B = 0) and added blocks (zeroed projections) add zeros", async () => {
    await runCurve();
    const { knn, correct } = JSON.parse(await readFile(join(dir(), "baseline.json"), "utf8"));
    // Exact, not within a tolerance: k-NN scores count queries, and the identity-start strategies add exact zeros
    // to every feature, so the votes are the original's, query by query.
    for (const s of strategies) expect((await cellResult(`${s}_lr0.3_s0`)).knnCurve![0], s).toEqual({ step: 0, knn, correct });
    const results = JSON.parse(await readFile(join(dir(), "results.json"), "utf8"));
    for (const row of results.table) expect(row.knnCurve[0].change, row.strategy).toEqual({ mean: 0, lo: 0, hi: 0, n: 1, banks: 1 });
  });

  it("is flat at the original backbone's accuracy for linear probing, whose backbone never changes", async () => {
    await runCurve();
    const { knn, correct } = JSON.parse(await readFile(join(dir(), "baseline.json"), "utf8"));
    expect((await cellResult("linear_lr0.3_s0")).knnCurve).toEqual(STEPS.map((step) => ({ step, knn, correct })));
  });

  it("adds the original's answers to a baseline.json of an earlier build, and reads the curve answers an earlier result.json lacks from knn-curve.json", async () => {
    await runCurve();
    const earlier = join(root, "curve-earlier");
    await cp(dir(), earlier, { recursive: true });
    const baselinePath = join(earlier, "baseline.json");
    const { correct, ...before } = JSON.parse(await readFile(baselinePath, "utf8"));
    await writeFile(baselinePath, JSON.stringify(before));
    for (const s of strategies) {
      const path = join(earlier, "cells", `${s}_lr0.3_s0`, "result.json");
      const c: CellResult = JSON.parse(await readFile(path, "utf8"));
      await writeFile(path, JSON.stringify({ ...c, knnCurve: c.knnCurve!.map(({ step, knn }) => ({ step, knn })) }));
    }
    const log: string[] = [];
    await runExperiment({ config: config(STEPS), out: earlier, log: (l) => log.push(l) });
    // full's curve point at step 0 measured the original itself: its answers, with no k-NN pass.
    expect(log).toContain("the original backbone's answers query by query from cell full_lr0.3_s0, which measured it (baseline.json of an earlier build)");
    expect(JSON.parse(await readFile(baselinePath, "utf8"))).toEqual({ ...before, correct });
    // The same results as the folder that kept them all along.
    const results = async (folder: string) => JSON.parse(await readFile(join(folder, "results.json"), "utf8"));
    const [now, fresh] = [await results(earlier), await results(dir())];
    expect(now.table).toEqual(fresh.table);
    expect(now.cells).toEqual(fresh.cells);
    // Where no cell measured the original (no curve, linear probing's answers gone), a k-NN pass gives them.
    const bare = join(root, "curve-bare");
    await cp(earlier, bare, { recursive: true });
    await writeFile(join(bare, "baseline.json"), JSON.stringify(before));
    for (const s of strategies) {
      const path = join(bare, "cells", `${s}_lr0.3_s0`, "result.json");
      const c: CellResult = JSON.parse(await readFile(path, "utf8"));
      await writeFile(path, JSON.stringify({ ...c, knnCurve: c.knnCurve!.map(({ step, knn }) => ({ step, knn })), ...(s === "linear" && { correct: undefined }) }));
      await rm(join(bare, "cells", `${s}_lr0.3_s0`, "knn-curve.json"));
    }
    log.length = 0;
    await runExperiment({ config: config(STEPS), out: bare, log: (l) => log.push(l) });
    expect(log).toContain("k-NN of the original backbone again, for its answers query by query (baseline.json of an earlier build)");
    expect(JSON.parse(await readFile(join(bare, "baseline.json"), "utf8"))).toEqual({ ...before, correct });
    // A baseline whose scores the original no longer gives keeps no answers: the changes go without it.
    const moved = { ...before, knn: { ...before.knn, "5": { ...before.knn["5"], top1: before.knn["5"].top1 + 1 } } };
    await writeFile(baselinePath, JSON.stringify(moved));
    log.length = 0;
    await runExperiment({ config: config(STEPS), out: earlier, log: (l) => log.push(l) });
    expect(log.some((l) => l.includes(`not the ${JSON.stringify(moved.knn)} of ${baselinePath}: left without them`))).toBe(true);
    expect(JSON.parse(await readFile(baselinePath, "utf8"))).toEqual(moved);
    expect((await results(earlier)).table.every((row: { knnChange?: unknown; knnCurve: { change?: unknown }[] }) => !row.knnChange && row.knnCurve.every((p) => !p.change))).toBe(true);
    // knn-curve.json whose point has other scores than result.json's gives that point no answers; answers in
    // result.json that disagree with its accuracy are named.
    await writeFile(baselinePath, JSON.stringify({ ...before, correct }));
    const curvePath = join(earlier, "cells", "full_lr0.3_s0", "knn-curve.json");
    const curve = JSON.parse(await readFile(curvePath, "utf8"));
    await writeFile(curvePath, JSON.stringify({ points: curve.points.map((p: CurvePoint) => (p.step === 2 ? { ...p, knn: { ...p.knn, "3": { ...p.knn["3"], top5: -1 } } } : p)) }));
    await runExperiment({ config: config(STEPS), out: earlier, log: () => undefined });
    const full = (await results(earlier)).table.find((row: { strategy: string }) => row.strategy === "full");
    expect(full.knnCurve.filter((p: { change?: unknown }) => !p.change).map((p: { step: number }) => p.step)).toEqual([2]);
    const resultPath = join(earlier, "cells", "full_lr0.3_s0", "result.json");
    const c: CellResult = JSON.parse(await readFile(resultPath, "utf8"));
    const wrong = { count: c.correct!.knn.count, bits: packBits(new Array(c.correct!.knn.count).fill(1)) };
    await writeFile(resultPath, JSON.stringify({ ...c, knnCurve: c.knnCurve!.map((p) => (p.step === 1 ? { ...p, correct: wrong } : p)) }));
    await expect(runExperiment({ config: config(STEPS), out: earlier, log: () => undefined })).rejects.toThrow(
      `found its "correct" "knnCurve" point at step 1's k-NN query bits right on 100% of the images, where its accuracy is ${c.knnCurve![1].knn["5"].top1}%`,
    );
  });

  it("adds the classes given to a baseline.json and cells whose answers lack them, from a cell, a k-NN pass or the best checkpoints; refuses classes given that are not a byte per query", async () => {
    await runCurve();
    const results = async (folder: string) => JSON.parse(await readFile(join(folder, "results.json"), "utf8"));
    const fresh = await results(dir());
    expect(fresh.table.every((row: { knnConfusion?: unknown }) => row.knnConfusion)).toBe(true);
    const earlier = join(root, "curve-ungiven");
    await cp(dir(), earlier, { recursive: true });
    const baselinePath = join(earlier, "baseline.json");
    const baseline = JSON.parse(await readFile(baselinePath, "utf8"));
    const { predicted: _, ...bits } = baseline.correct;
    await writeFile(baselinePath, JSON.stringify({ ...baseline, correct: bits }));
    const log: string[] = [];
    await runExperiment({ config: config(STEPS), out: earlier, log: (l) => log.push(l) });
    expect(log).toContain("the original backbone's classes given query by query from cell full_lr0.3_s0, which measured it (baseline.json of an earlier build)");
    expect(JSON.parse(await readFile(baselinePath, "utf8"))).toEqual(baseline);
    expect((await results(earlier)).table).toEqual(fresh.table);
    // No cell kept the classes given (an earlier build's): the original's k-NN again, and each cell's best
    // checkpoint's, which give the rows their confusion there; the curves, whose points have no checkpoint, go without.
    await writeFile(baselinePath, JSON.stringify({ ...baseline, correct: bits }));
    const strip = ({ predicted: _p, ...c }: { predicted?: string }) => c;
    for (const s of strategies) {
      const path = join(earlier, "cells", `${s}_lr0.3_s0`, "result.json");
      const c: CellResult = JSON.parse(await readFile(path, "utf8"));
      await writeFile(path, JSON.stringify({ ...c, correct: { ...c.correct, knn: strip(c.correct!.knn) }, knnCurve: c.knnCurve!.map((p) => ({ ...p, correct: strip(p.correct!) })) }));
    }
    // A worker given a selection of cells leaves the upgrades to the preparation and `collect`.
    log.length = 0;
    await runExperiment({ config: config(STEPS), out: earlier, cells: [1], log: (l) => log.push(l) });
    expect(log.some((l) => l.startsWith("adding the class given"))).toBe(false);
    expect((await cellResult(`${strategies[0]}_lr0.3_s0`, earlier)).correct!.knn.predicted).toBeUndefined();
    log.length = 0;
    await runExperiment({ config: config(STEPS), out: earlier, log: (l) => log.push(l) });
    expect(log).toContain("k-NN of the original backbone again, for its classes given query by query (baseline.json of an earlier build)");
    expect(JSON.parse(await readFile(baselinePath, "utf8"))).toEqual(baseline);
    expect(log).toContain(`adding the class given to each k-NN query of ${strategies.length} cell(s) of an earlier build, from their best checkpoints`);
    for (const s of strategies) expect((await cellResult(`${s}_lr0.3_s0`, earlier)).correct, s).toEqual((await cellResult(`${s}_lr0.3_s0`)).correct);
    const table = (await results(earlier)).table;
    type Row = { knnCurve: { confusion?: unknown }[] };
    expect(table.every((row: Row) => row.knnCurve.every((p) => !p.confusion))).toBe(true);
    const curveless = ({ knnCurve: _k, ...row }: Row) => row;
    expect(table.map(curveless)).toEqual(fresh.table.map(curveless));
    // A best checkpoint that no longer scores as its result.json says is left without them.
    const stale = join(earlier, "cells", "lora-r2_lr0.3_s0", "result.json");
    const lora: CellResult = JSON.parse(await readFile(stale, "utf8"));
    const moved = { ...lora.knn, "5": { ...lora.knn["5"], top5: lora.knn["5"].top5 - 1 } };
    await writeFile(stale, JSON.stringify({ ...lora, knn: moved, correct: { ...lora.correct, knn: strip(lora.correct!.knn) } }));
    log.length = 0;
    await runExperiment({ config: config(STEPS), out: earlier, log: (l) => log.push(l) });
    expect(log.some((l) => l.startsWith("  lora-r2_lr0.3_s0: its best checkpoint scores ") && l.endsWith(`not the ${JSON.stringify(moved)} of its result.json (or not on the same queries): left without them`))).toBe(true);
    expect((await cellResult("lora-r2_lr0.3_s0", earlier)).correct!.knn.predicted).toBeUndefined();
    const resultPath = join(earlier, "cells", "full_lr0.3_s0", "result.json");
    const c: CellResult = JSON.parse(await readFile(resultPath, "utf8"));
    await writeFile(resultPath, JSON.stringify({ ...c, correct: { ...c.correct, knn: { ...c.correct!.knn, predicted: "AAE=" } } }));
    await expect(runExperiment({ config: config(STEPS), out: earlier, log: () => undefined })).rejects.toThrow(`${resultPath}: expected a cell's result, found its "correct" k-NN query "predicted" not the classes given to ${c.correct!.knn.count} images (a byte each, in base64)`);
  });

  const plain = () => join(root, "curve-plain");
  let runPlain: ReturnType<typeof runExperiment> | undefined;
  const runWithoutCurve = () => (runPlain ??= runCurve().then(() => runExperiment({ config: config(), out: plain() })));

  it("scores the model after the step's update: at the best step, what the best checkpoint scores", async () => {
    // The study takes the curve's point at the best step as the cell's k-NN; without a curve it scores the best
    // checkpoint itself. The two must agree.
    await runWithoutCurve();
    for (const s of strategies) {
      const c = await cellResult(`${s}_lr0.3_s0`);
      const checkpoint = await cellResult(`${s}_lr0.3_s0`, plain());
      expect(c.knnCurve!.find((p) => p.step === c.bestStep)!.knn, s).toEqual(checkpoint.knn);
      expect(c.correct, s).toEqual(checkpoint.correct);
    }
  });

  it("changes nothing in training: the checkpoints and results are those of the same cells without the curve", async () => {
    await runWithoutCurve();
    const timings = ({ trainSeconds: _t, imagesPerSecond: _i, knnSeconds: _k, knnCurve: _c, ...rest }: CellResult) => rest;
    for (const s of strategies) {
      const id = `${s}_lr0.3_s0`;
      for (const f of ["best.safetensors", "last.safetensors"]) {
        const [a, b] = await Promise.all([readFile(join(dir(), "cells", id, f)), readFile(join(plain(), "cells", id, f))]);
        expect(a.equals(b), `${id}/${f}`).toBe(true);
      }
      expect(timings(await cellResult(id)), id).toEqual(timings(await cellResult(id, plain())));
    }
  });
});

describe("the config keys that choose the authors' departures", () => {
  it("reach the cells: normalisation, interpolation, crop scale, head initialisation, top-K-frozen-norm", async () => {
    const plain = study({ strategies: ["top-1", "top-1-frozen-norm"] });
    const json = JSON.parse(JSON.stringify(configJson(plain))); // a copy: configJson shares the config's objects
    const half = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
    json.transfer.train = { ...json.transfer.train, ...half, transform: "train", scale: [0.5, 1], interpolation: "bicubic" };
    json.transfer.test = { ...json.transfer.test, ...half };
    json.headInit = { "top-1": "trunc-normal", "top-1-frozen-norm": "uniform" };
    const [a, b] = [join(root, "keys-plain"), join(root, "keys-chosen")];
    await runExperiment({ config: plain, out: a });
    await runExperiment({ config: parseStudyConfig(json), out: b });
    const result = async (dir: string, id: string): Promise<CellResult> => JSON.parse(await readFile(join(dir, "cells", id, "result.json"), "utf8"));
    const manifest = async (dir: string, id: string) => JSON.parse((await readSafetensors(join(dir, "cells", id, "best.safetensors"))).metadata.manifest);
    // The final norm's weight and bias (2 x width 16) are what top-1 trains and top-1-frozen-norm does not.
    expect((await result(a, "top-1_lr0.05_s0")).trainableParams - (await result(a, "top-1-frozen-norm_lr0.05_s0")).trainableParams).toBe(32);
    expect((await manifest(b, "top-1_lr0.05_s0")).headInit).toBe("trunc-normal");
    expect((await manifest(b, "top-1-frozen-norm_lr0.05_s0")).headInit).toBe("uniform");
    // Other pixels and another head train another model: the same cell's loss differs.
    for (const id of ["top-1_lr0.05_s0", "top-1-frozen-norm_lr0.05_s0"]) {
      expect((await result(b, id)).finalLoss, id).not.toBe((await result(a, id)).finalLoss);
    }
  });
});

describe("a strategy with a layer-wise rate decay", () => {
  it("is a row of its own, its rates keyed by its name, its cells trained and recorded with the decay", async () => {
    const config = study({ strategies: ["top-2", "top-2-lrd0.5"], learningRates: { "top-2": [0.05], "top-2-lrd0.5": [0.05] } });
    const dir = join(root, "layer-decay");
    const r = await runExperiment({ config, out: dir });
    expect(r.complete).toBe(true);
    expect(r.results.table.map((row) => strategyName(row.strategy))).toEqual(["top-2", "top-2-lrd0.5"]);
    const [plain, decayed] = ["top-2_lr0.05_s0", "top-2-lrd0.5_lr0.05_s0"].map((id) => r.results.cells.find((c) => c.id === id)!);
    expect(decayed.trainableParams).toBe(plain.trainableParams);
    expect(decayed.finalLoss).not.toBe(plain.finalLoss);
    const manifest = async (id: string) => JSON.parse((await readSafetensors(join(dir, "cells", id, "best.safetensors"))).metadata.manifest);
    expect((await manifest(decayed.id)).hyperParameters.layerDecay).toBe(0.5);
    expect((await manifest(decayed.id)).strategy).toBe("top-2-lrd0.5");
    expect((await manifest(plain.id)).hyperParameters).not.toHaveProperty("layerDecay");
    expect(await lines(join(dir, "table.md"))).toEqual(expect.arrayContaining([expect.stringMatching(/^\| top-2-lrd0\.5 \|/)]));
  });
});

describe("workers sharing a run folder (cells, claims, collect)", () => {
  it("runs a selection of cells, prepares once, leaves the report to collect, which names the missing cells", async () => {
    const config = study({ strategies: ["linear", "lora-r2"], learningRates: [0.05, 0.01] });
    const dir = join(root, "shared");
    const log: string[] = [];
    const some = await runExperiment({ config, out: dir, cells: [2, 4], log: (l) => log.push(l) });
    expect(some.ran).toEqual(["linear_lr0.01_s0", "lora-r2_lr0.01_s0"]);
    expect(some.files).toEqual([]);
    expect(some.missing).toEqual(["linear_lr0.05_s0", "lora-r2_lr0.05_s0"]);
    expect(log).toContain("cell 4/4: lora-r2, lr 0.01, seed 0");
    for (const f of ["config.json", "baseline.json", "backbone.json"]) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(existsSync(join(dir, "results.json"))).toBe(false);
    expect(existsSync(join(dir, "prepare.claim.json"))).toBe(false);
    for (const id of some.ran) expect(existsSync(join(dir, "cells", id, "claim.json")), id).toBe(false);

    const partial = await runExperiment({ config, out: dir, collect: true });
    expect(partial.ran).toEqual([]);
    expect(partial.files.map((f) => f.slice(dir.length + 1))).toContain("table.md");
    expect(JSON.parse(await readFile(join(dir, "results.json"), "utf8")).missing).toEqual(["linear_lr0.05_s0", "lora-r2_lr0.05_s0"]);
    expect(await readFile(join(dir, "table.md"), "utf8")).toContain("left out: linear_lr0.05_s0, lora-r2_lr0.05_s0.");

    // Collect trains nothing: from a working folder without the pre-training's cache (here: the cache moved away) it
    // says so, where it pre-trained the backbone again.
    await rename(join(root, "cache"), join(root, "cache-away"));
    try {
      await expect(runExperiment({ config, out: dir, collect: true })).rejects.toThrow(
        `experiment: --collect trains nothing, but the backbone's pre-training is not cached in ${join(root, "cache", "pretrain")}`,
      );
      expect(existsSync(join(root, "cache"))).toBe(false);
    } finally {
      await rm(join(root, "cache"), { recursive: true, force: true });
      await rename(join(root, "cache-away"), join(root, "cache"));
    }

    // A worker with another config is refused; one with the same finishes the rest, and collect completes the report.
    const other = study({ strategies: ["linear"], learningRates: [0.05] });
    await expect(runExperiment({ config: other, out: dir, cells: [1] })).rejects.toThrow(`experiment: ${join(dir, "config.json")} holds another config than this one`);
    const rest = await runExperiment({ config, out: dir, cells: [1, 2, 3] });
    expect(rest.ran).toEqual(["linear_lr0.05_s0", "lora-r2_lr0.05_s0"]);
    const full = await runExperiment({ config, out: dir, collect: true });
    expect(full.missing).toEqual([]);
    expect(full.complete).toBe(true);
  });

  it("skips a cell another live worker holds until it has a result, and takes over a dead worker's claim", async () => {
    const config = study({ strategies: ["linear"], learningRates: [0.05, 0.01] });
    const dir = join(root, "claimed");
    await runExperiment({ config, out: dir, prepareOnly: true });
    // A live worker elsewhere holds cell 1; the claim of a process that has exited (this host) holds cell 2.
    const now = new Date().toISOString();
    const claim = (host: string, pid: number) => JSON.stringify({ host, pid, token: `${host}-${pid}`, claimed: now, heartbeat: now });
    const gone = spawnSync(process.execPath, ["-e", ""]).pid!;
    await mkdir(join(dir, "cells", "linear_lr0.05_s0"), { recursive: true });
    await mkdir(join(dir, "cells", "linear_lr0.01_s0"), { recursive: true });
    await writeFile(join(dir, "cells", "linear_lr0.05_s0", "claim.json"), claim("elsewhere", 1));
    await writeFile(join(dir, "cells", "linear_lr0.01_s0", "claim.json"), claim(hostname(), gone));
    const log: string[] = [];
    const timing = { heartbeatMs: 1_000, staleMs: 60_000, pollMs: 50 };
    const running = runExperiment({ config, out: dir, cells: [1, 2], claimTiming: timing, log: (l) => log.push(l) });
    // Once this worker waits for cell 1 (after training cell 2), the live worker finishes it: a copy of cell 2's
    // result under cell 1's id stands in for its work. (Written as soon as cell 2's result is there, it could beat
    // this worker to its check, which then has nothing to wait for.)
    const waiting = `waiting for 1 cell(s) that other workers are training: linear_lr0.05_s0 (host elsewhere pid 1)`;
    await vi.waitFor(() => expect(log).toContain(waiting), { timeout: 30_000, interval: 50 });
    const result = JSON.parse(await readFile(join(dir, "cells", "linear_lr0.01_s0", "result.json"), "utf8"));
    await writeFile(join(dir, "cells", "linear_lr0.05_s0", "result.json"), JSON.stringify({ ...result, id: "linear_lr0.05_s0", lr: 0.05 }));
    const r = await running;
    expect(r.ran).toEqual(["linear_lr0.01_s0"]);
    expect(log).toContain(`taking over the stale claim ${join(dir, "cells", "linear_lr0.01_s0", "claim.json")} of host ${hostname()} pid ${gone}: its process ${gone} on this host is gone`);
    expect(existsSync(join(dir, "cells", "linear_lr0.05_s0", "claim.json"))).toBe(true); // the other worker's, untouched
  });
});

describe("a study with a DINO backbone (backbone.pretrain.method dino)", () => {
  const dino = (extra: Record<string, unknown> = {}) => ({
    method: "dino",
    model: MINI_MODEL,
    data: { dataset: "npy", root: join(root, "data"), split: "train", classes: "0-2" },
    head: { hidden: 16, bottleneck: 8, prototypes: 10 },
    crops: { localSize: 4, localCrops: 2, color: "grayscale" },
    steps: 3,
    batchSize: 16,
    cacheDir: join(root, "cache"),
    ...extra,
  });

  it("pre-trains the backbone with DINO into the cache, and a rerun finds it there", async () => {
    const config = study({ backbone: { pretrain: dino() }, strategies: ["linear"], name: "dino" });
    const log: string[] = [];
    const r = await runExperiment({ config, out: join(root, "dino-run"), log: (l) => log.push(l) });
    expect(r.complete).toBe(true);
    expect(log.some((l) => l.startsWith("backbone: DINO pre-training on npy"))).toBe(true);
    const backbone = JSON.parse(await readFile(join(root, "dino-run", "backbone.json"), "utf8"));
    expect(backbone).toMatchObject({ kind: "pretrain", method: "dino" });
    expect(backbone.path).toContain(join(root, "cache", "pretrain", "dino-"));
    const again: string[] = [];
    await runExperiment({ config, out: join(root, "dino-run-2"), log: (l) => again.push(l) });
    expect(again).toContain(`backbone: cached ${backbone.path}`);
  });

  it("finishes a DINO pre-training killed between its backbone and its manifest: the same backbone, and the manifest", async () => {
    const config = study({ backbone: { pretrain: dino() }, strategies: ["linear"], name: "dino" });
    await runExperiment({ config, out: join(root, "dino-manifest"), log: () => undefined });
    const { path } = JSON.parse(await readFile(join(root, "dino-manifest", "backbone.json"), "utf8"));
    const manifestPath = join(path, "..", "backbone.json");
    const [backbone, manifest] = [await readFile(path), await readFile(manifestPath, "utf8")];
    await rm(manifestPath);
    const log: string[] = [];
    await runExperiment({ config, out: join(root, "dino-manifest-2"), log: (l) => log.push(l) });
    expect(log).not.toContain(`backbone: cached ${path}`);
    expect((await readFile(path)).equals(backbone)).toBe(true);
    expect(await readFile(manifestPath, "utf8")).toBe(manifest);
  });

  it("stops when the backbone's DINO pre-training collapses, naming backbone.pretrain", async () => {
    const config = study({ backbone: { pretrain: dino({ teacherTemp: 1000, warmupTeacherTemp: 1000, collapse: { window: 2 }, logEvery: 1 }) }, strategies: ["linear"], name: "dino-collapse" });
    await expect(runExperiment({ config, out: join(root, "dino-collapse"), log: () => undefined })).rejects.toThrow(
      "experiment: the backbone's DINO pre-training collapsed (backbone.pretrain): dino: the teacher collapsed to uniform outputs",
    );
  });
});
