// analysis.resets: each part of every best backbone put back where fine-tuning started, one at a time, and scored
// as the study scores a cell. The fine-tuned model scored so gives its result.json's answers image by image; with
// every part reset it gives the original backbone's source k-NN answers (baseline.json), whatever the strategy;
// the parts are the strategy's trained ones; the resets leave the model as they found it (the other measures equal
// an analysis without them); the key decides reuse. With analysis.atSteps the backbones kept at those steps are
// reset too: each scored as it is gives the k-NN curve's answers at its step, the best step's resets are the best
// checkpoint's. By layers, each block's layers are reset apart, and all of them are all of the blocks. With
// analysis.resetsBetweenSteps each kept backbone's parts are put back to the kept step before as well: all of them
// give that step's k-NN answers, the other numbers are an analysis's without them, and they need no resets to the
// start beside them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStudyConfig, type StudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import { analysisFileNames, analyzeRun } from "../../study/analysis.js";
import type { RunAnalysis } from "../../study/analysis-results.js";
import { cellFolder, cellResultPath } from "../../study/cells.js";
import type { CellResult } from "../../study/results.js";
import { readJsonFile } from "../../util/json-file.js";
import { useEngine } from "../helpers.js";
import { writeMiniStudy } from "./program.js";

useEngine();

let root: string;
let config: StudyConfig;
const out = () => join(root, "run");
const read = async <T>(path: string) => (await readJsonFile(path, "test")) as T;
const readAnalysis = (dir = out()) => read<RunAnalysis>(join(dir, "analysis.json"));
const FULL_PARTS = ["patch_embed", "cls_token", "pos_embed", "block 0", "block 1", "norm"];
const PATCH_PARTS = ["patch_embed along the first direction", "patch_embed along the others"];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "analysis-resets-"));
  const study = await writeMiniStudy(root);
  // Four steps, checkpoints at 2 and 4, both kept (the best checkpoint is one of them) and on the k-NN curve.
  config = parseStudyConfig({
    ...study,
    knn: { ...study.knn, atSteps: [0, 2, 4] },
    strategies: ["full", "top-1", "lora-r2", "block-p1", "linear"],
    analysis: { images: 12, gridImages: 2, atSteps: [2, 4], resets: true },
  });
  const r = await runExperiment({ config, out: out() });
  expect(r.complete).toBe(true);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("analysis.resets in a study", () => {
  it("resets the parts each strategy trained, in the model's order, then all of them and all but each", async () => {
    const a = await readAnalysis();
    expect(a.key.resets).toBe(true);
    const units = Object.fromEntries(a.cells.map((c) => [c.strategy, c.resets!.units.map((u) => u.unit)]));
    expect(units).toEqual({
      // The patch projection's change along its patches' first direction and the rest, put back apart, last.
      full: [...FULL_PARTS, "all", ...FULL_PARTS.map((p) => `all but ${p}`), ...PATCH_PARTS],
      // Two parts: all but one is the other's reset.
      "top-1": ["block 1", "norm", "all"],
      "lora-r2": ["block 0", "block 1", "all"],
      // block-p1 on two blocks: one new block, after block 1.
      "block-p1": ["new block after 1"],
      linear: [],
    });
    const added = a.cells.find((c) => c.strategy === "block-p1")!.resets!.units[0];
    expect([added.block, added.added]).toEqual([1, true]);
  });

  it("scores the fine-tuned model as the study did, image by image, and with every part reset as the original backbone", async () => {
    const a = await readAnalysis();
    const baseline = await read<{ knn: Record<string, { top1: number }>; correct: { bits: string } }>(join(out(), "baseline.json"));
    for (const c of a.cells) {
      const result = await read<CellResult>(cellResultPath(out(), c.id));
      const r = c.resets!;
      expect([r.tuned.transfer, r.tuned.transferCorrect, r.tuned.knn, r.tuned.knnCorrect], c.id).toEqual([result.transferAccuracy, result.correct!.transfer, result.knn["5"].top1, result.correct!.knn]);
      // Every part at once (block-p1's one new block is all it trained).
      const all = r.units.find((u) => u.unit === "all") ?? (c.strategy === "block-p1" ? r.units[0] : undefined);
      if (all) expect([all.knn, all.knnCorrect.bits], `${c.id} ${all.unit}`).toEqual([baseline.knn["5"].top1, baseline.correct.bits]);
    }
    // Some part's reset changes something: the scores are not the fine-tuned model's over and over.
    const full = a.cells.find((c) => c.strategy === "full")!.resets!;
    expect(full.units.some((u) => u.knnCorrect.bits !== full.tuned.knnCorrect.bits || u.transferCorrect.bits !== full.tuned.transferCorrect.bits)).toBe(true);
  });

  it("leaves every model as it found it: the other measures are those of an analysis without resets", async () => {
    const plain = join(root, "plain");
    await analyzeRun(out(), { out: plain, resets: false });
    const [a, b] = [await readAnalysis(), await readAnalysis(plain)];
    expect(b.key.resets).toBeUndefined();
    expect(b.cells.every((c) => c.resets === undefined && c.atSteps!.every((t) => t.resets === undefined))).toBe(true);
    const withoutResets = ({ resets: _, atSteps, ...rest }: (typeof a.cells)[number]) => ({ ...rest, atSteps: atSteps!.map(({ resets: _r, ...t }) => t) });
    expect(a.cells.map(withoutResets)).toEqual(b.cells);
  });

  it("summarises each row's parts, paired with its own fine-tuned answers, in the log, the CSV and a figure", async () => {
    const a = await readAnalysis();
    for (const f of analysisFileNames({ atSteps: [2, 4], resets: true })) expect(existsSync(join(out(), f)), f).toBe(true);
    const full = a.strategies.find((s) => s.strategy === "full")!.resets!;
    const cell = a.cells.find((c) => c.strategy === "full")!.resets!;
    expect(full.units.map((u) => [u.unit, u.seeds, u.knn.mean, u.transfer.mean])).toEqual(cell.units.map((u) => [u.unit, 1, u.knn, u.transfer]));
    // One seed: the change is that seed's, its interval over the images alone.
    for (const [i, u] of full.units.entries()) {
      expect(u.knnChange.mean).toBeCloseTo(cell.units[i].knn - cell.tuned.knn, 9);
      expect(u.transferChange.mean).toBeCloseTo(cell.units[i].transfer - cell.tuned.transfer, 9);
    }
    // Each part's change alone: "all" against "all but" it; none where there is no "all but" (top-1's two parts).
    const all = cell.units.find((u) => u.unit === "all")!;
    for (const u of full.units) {
      const allBut = cell.units.find((v) => v.unit === `all but ${u.unit}`);
      if (!allBut) expect(u.alone, u.unit).toBeUndefined();
      else {
        expect(u.alone!.knnChange.mean, u.unit).toBeCloseTo(all.knn - allBut.knn, 9);
        expect(u.alone!.transferChange.mean, u.unit).toBeCloseTo(all.transfer - allBut.transfer, 9);
      }
    }
    expect(full.units.filter((u) => u.alone).map((u) => u.unit)).toEqual(FULL_PARTS);
    expect(a.strategies.find((s) => s.strategy === "top-1")!.resets!.units.some((u) => u.alone)).toBe(false);
    expect(a.strategies.find((s) => s.strategy === "linear")!.resets!.units).toEqual([]);
    const csv = (await readFile(join(out(), "analysis.csv"), "utf8")).split("\n");
    const id = a.cells.find((c) => c.strategy === "full")!.id;
    expect(csv).toContain(`${id},full,0.3,0,reset_knn_top1,none,,${cell.tuned.knn.toPrecision(6)}`);
    expect(csv).toContain(`${id},full,0.3,0,reset_transfer,block 0,,${cell.units[3].transfer.toPrecision(6)}`);
    const svg = await readFile(join(out(), "analysis-resets.svg"), "utf8");
    for (const text of [">What each part's change cost and bought<", ">Part reset<", ">new block after 1<", ">top-1<"]) expect(svg).toContain(text);
    expect(svg).not.toContain(">linear<");
  });

  it("resets the backbones kept at analysis.atSteps: each as it is gives the k-NN curve's answers at its step, the best step's are the best checkpoint's", async () => {
    const a = await readAnalysis();
    const baseline = await read<{ correct: { bits: string } }>(join(out(), "baseline.json"));
    for (const c of a.cells) {
      const result = await read<CellResult & { bestStep: number }>(cellResultPath(out(), c.id));
      const curve = await read<{ points: { step: number; correct: { bits: string } }[] }>(join(cellFolder(out(), c.id), "knn-curve.json"));
      expect(c.atSteps!.map((t) => t.step), c.id).toEqual([2, 4]);
      for (const t of c.atSteps!) {
        expect(t.resets!.tuned.knnCorrect.bits, `${c.id} step ${t.step}`).toBe(curve.points.find((p) => p.step === t.step)!.correct.bits);
        expect(t.resets!.units.map((u) => u.unit)).toEqual(c.resets!.units.map((u) => u.unit));
        const all = t.resets!.units.find((u) => u.unit === "all") ?? (c.strategy === "block-p1" ? t.resets!.units[0] : undefined);
        if (all) expect(all.knnCorrect.bits, `${c.id} step ${t.step} ${all.unit}`).toBe(baseline.correct.bits);
      }
      expect(c.atSteps!.find((t) => t.step === result.bestStep)!.resets, c.id).toEqual(c.resets);
    }
    // Summarised per step as the best backbones are, in analysis-steps.csv, the log and a figure of their own.
    const full = a.strategies.find((s) => s.strategy === "full")!;
    const cell = a.cells.find((c) => c.strategy === "full")!;
    expect(full.atSteps!.map((t) => t.resets!.units.map((u) => [u.unit, u.seeds, u.knn.mean]))).toEqual(cell.atSteps!.map((t) => t.resets!.units.map((u) => [u.unit, 1, u.knn])));
    const csv = (await readFile(join(out(), "analysis-steps.csv"), "utf8")).split("\n");
    expect(csv).toContain(`${cell.id},full,0.3,0,2,reset_knn_top1,patch_embed,,${cell.atSteps![0].resets!.units[0].knn.toPrecision(6)}`);
    expect(csv).toContain(`${cell.id},full,0.3,0,4,reset_transfer,none,,${cell.atSteps![1].resets!.tuned.transfer.toPrecision(6)}`);
    const svg = await readFile(join(out(), "analysis-steps-resets.svg"), "utf8");
    for (const text of [">How soon each part's change costs the source domain<", ">Part reset<", ">new block after 1<", ">patch_embed<", ">Fine-tuning step<"]) expect(svg).toContain(text);
    expect(svg).not.toContain(">all but patch_embed<");
    expect(svg).not.toContain(">linear<");
  });

  it("by layers: each block's layers reset apart, in the block's order; every layer at once is every block at once", async () => {
    const layers = join(root, "layers");
    await analyzeRun(out(), { out: layers, resets: "layers" });
    const [a, byBlocks] = [await readAnalysis(layers), await readAnalysis()];
    expect(a.key.resets).toBe("layers");
    const LAYERS = ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"];
    const parts = Object.fromEntries(a.cells.map((c) => [c.strategy, c.resets!.units.filter((u) => u.unit !== "all" && !u.unit.startsWith("all but")).map((u) => u.unit)]));
    expect(parts).toEqual({
      full: ["patch_embed", "cls_token", "pos_embed", ...LAYERS.map((l) => `block 0 ${l}`), ...LAYERS.map((l) => `block 1 ${l}`), "norm", ...PATCH_PARTS],
      "top-1": [...LAYERS.map((l) => `block 1 ${l}`), "norm"],
      "lora-r2": ["block 0 attn.qkv", "block 1 attn.qkv"],
      "block-p1": LAYERS.map((l) => `new block after 1 ${l}`),
      linear: [],
    });
    const layer = a.cells.find((c) => c.strategy === "full")!.resets!.units[3];
    expect([layer.block, layer.layer]).toEqual([0, "norm1"]);
    for (const c of a.cells.filter((c) => c.strategy !== "linear")) {
      const blocks = byBlocks.cells.find((b) => b.id === c.id)!.resets!;
      const all = (r: typeof blocks) => r.units.find((u) => u.unit === "all") ?? r.units[0]; // block-p1 by blocks: its one part
      const scores = ({ transfer, transferCorrect, knn, knnCorrect }: ReturnType<typeof all>) => ({ transfer, transferCorrect, knn, knnCorrect });
      expect(c.resets!.tuned, c.id).toEqual(blocks.tuned);
      expect(scores(all(c.resets!)), c.id).toEqual(scores(all(blocks)));
    }
    // Too many parts for the x axis (full: 33 units): down the y axis.
    const svg = await readFile(join(layers, "analysis-resets.svg"), "utf8");
    for (const text of [">block 0 mlp.fc1<", ">all but block 1 attn.qkv<", ">new block after 1 mlp.fc2<"]) expect(svg).toContain(text);
  });

  it("is part of the key: a study's rerun reuses it, an analysis without resets (or without the kept steps' resets) is made anew with them", async () => {
    const lines: string[] = [];
    const again = await analyzeRun(out(), { reuse: true, log: (l) => lines.push(l) });
    expect(again.reused).toBe(true);
    const plain = join(root, "plain");
    const made = await analyzeRun(out(), { out: plain, reuse: true, log: (l) => lines.push(l) });
    expect(made.reused).toBe(false);
    expect(made.analysis.key.resets).toBe(true);
    expect(lines.some((l) => l.startsWith("analysis: each part reset where fine-tuning started"))).toBe(true);
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}full: patch_embed [+-]\d+\.\d \[.* \(alone [+-]\d+\.\d \[/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}full at step 2: patch_embed [+-]\d+\.\d \[/));
    // An analysis.json whose kept steps were not reset (a build before them) is made anew, not kept.
    const before = await readAnalysis(plain);
    for (const c of before.cells) for (const t of c.atSteps!) delete t.resets;
    await writeFile(join(plain, "analysis.json"), JSON.stringify(before));
    const anew = await analyzeRun(out(), { out: plain, reuse: true });
    expect(anew.reused).toBe(false);
    expect(anew.analysis.cells.every((c) => c.atSteps!.every((t) => t.resets !== undefined))).toBe(true);
    // So is one whose patch projection was put back whole alone (a build before its parts), and the log says why.
    const whole = await readAnalysis(plain);
    for (const c of whole.cells) c.resets!.units = c.resets!.units.filter((u) => !PATCH_PARTS.includes(u.unit));
    await writeFile(join(plain, "analysis.json"), JSON.stringify(whole));
    const why: string[] = [];
    const parts = await analyzeRun(out(), { out: plain, reuse: true, log: (l) => why.push(l) });
    expect(parts.reused).toBe(false);
    expect(why).toContain(`analysis: ${join(plain, "analysis.json")} lacks the patch projection's change along its patches' first direction and the rest put back apart (a build before them): its cells are measured anew`);
    expect(parts.analysis.cells.find((c) => c.strategy === "full")!.resets!.units.slice(-2).map((u) => u.unit)).toEqual(PATCH_PARTS);
  });
});

describe("analysis.resetsBetweenSteps", () => {
  const between = () => join(root, "between");
  let lines: string[];

  beforeAll(async () => {
    lines = [];
    await analyzeRun(out(), { out: between(), resetsBetweenSteps: true, log: (l) => lines.push(l) });
  });

  it("puts each kept backbone's parts back to the kept step before: all of them give that step's k-NN answers", async () => {
    const a = await readAnalysis(between());
    expect(a.key.resetsBetweenSteps).toBe(true);
    for (const c of a.cells) {
      const curve = await read<{ points: { step: number; correct: { bits: string } }[] }>(join(cellFolder(out(), c.id), "knn-curve.json"));
      const [first, second] = c.atSteps!;
      expect(first.resetsToPrevious, c.id).toBeUndefined();
      const r = second.resetsToPrevious!;
      expect(r.from, c.id).toBe(2);
      // The model as it is: scored once, as its resets to step 0 scored it.
      expect(r.tuned, c.id).toEqual(second.resets!.tuned);
      expect(r.units.map((u) => u.unit), c.id).toEqual(second.resets!.units.map((u) => u.unit));
      const all = r.units.find((u) => u.unit === "all") ?? (c.strategy === "block-p1" ? r.units[0] : undefined);
      if (all) expect(all.knnCorrect.bits, `${c.id} ${all.unit}`).toBe(curve.points.find((p) => p.step === 2)!.correct.bits);
    }
    // Some part's change between steps 2 and 4 changed some answer: the scores are not the model's over and over.
    const full = a.cells.find((c) => c.strategy === "full")!.atSteps![1].resetsToPrevious!;
    expect(full.units.some((u) => u.knnCorrect.bits !== full.tuned.knnCorrect.bits || u.transferCorrect.bits !== full.tuned.transferCorrect.bits)).toBe(true);
  });

  it("changes no other number: without them, the analysis of the resets alone", async () => {
    const [a, b] = [await readAnalysis(between()), await readAnalysis()];
    const without = ({ atSteps, ...rest }: (typeof a.cells)[number]) => ({ ...rest, atSteps: atSteps!.map(({ resetsToPrevious: _, ...t }) => t) });
    expect(a.cells.map(without)).toEqual(b.cells);
  });

  it("summarises each row's span, part by part, in the log, analysis-steps.csv and a figure", async () => {
    const a = await readAnalysis(between());
    for (const f of analysisFileNames({ atSteps: [2, 4], resets: true, resetsBetweenSteps: true })) expect(existsSync(join(between(), f)), f).toBe(true);
    const row = a.strategies.find((s) => s.strategy === "full")!;
    const cell = a.cells.find((c) => c.strategy === "full")!;
    expect(row.atSteps![0].resetsToPrevious).toBeUndefined();
    const [summary, r] = [row.atSteps![1].resetsToPrevious!, cell.atSteps![1].resetsToPrevious!];
    expect(summary.from).toBe(2);
    expect(summary.units.map((u) => [u.unit, u.seeds, u.knn.mean])).toEqual(r.units.map((u) => [u.unit, 1, u.knn]));
    for (const [i, u] of summary.units.entries()) expect(u.knnChange.mean, u.unit).toBeCloseTo(r.units[i].knn - r.tuned.knn, 9);
    const csv = (await readFile(join(between(), "analysis-steps.csv"), "utf8")).split("\n");
    expect(csv).toContain(`${cell.id},full,0.3,0,4,reset_to_previous_knn_top1,patch_embed,,${r.units[0].knn.toPrecision(6)}`);
    expect(csv).toContain(`${cell.id},full,0.3,0,4,reset_to_previous_transfer,none,,${r.tuned.transfer.toPrecision(6)}`);
    expect(csv.some((l) => l.startsWith(`${cell.id},full,0.3,0,2,reset_to_previous`))).toBe(false);
    expect(lines.some((l) => l.startsWith("analysis: each part of a kept backbone put back to its value at the kept step before"))).toBe(true);
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}full 2 -> 4: patch_embed [+-]\d+\.\d \[/));
    const svg = await readFile(join(between(), "analysis-steps-resets-between.svg"), "utf8");
    for (const text of [">Which part's change between kept steps cost or won back the source domain<", ">Part put back<", ">2 → 4<", ">patch_embed<", ">new block after 1<"]) expect(svg).toContain(text);
    expect(svg).not.toContain(">all but patch_embed<");
    expect(svg).not.toContain(">linear<");
  });

  it("runs without the resets to the start, the same numbers; by layers too; asked without kept steps, it says so", async () => {
    const alone = join(root, "between-alone");
    await analyzeRun(out(), { out: alone, resets: false, resetsBetweenSteps: true });
    const [a, both] = [await readAnalysis(alone), await readAnalysis(between())];
    expect(a.key.resets).toBeUndefined();
    expect(a.cells.every((c) => c.resets === undefined && c.atSteps!.every((t) => t.resets === undefined))).toBe(true);
    expect(a.cells.map((c) => c.atSteps![1].resetsToPrevious)).toEqual(both.cells.map((c) => c.atSteps![1].resetsToPrevious));
    const layers = join(root, "between-layers");
    await analyzeRun(out(), { out: layers, resets: false, resetsBetweenSteps: "layers" });
    const byLayers = await readAnalysis(layers);
    expect(byLayers.key.resetsBetweenSteps).toBe("layers");
    const units = byLayers.cells.find((c) => c.strategy === "top-1")!.atSteps![1].resetsToPrevious!.units.map((u) => u.unit);
    expect(units.slice(0, 2)).toEqual(["block 1 norm1", "block 1 attn.qkv"]);
    // A run folder whose config keeps no steps.
    const bare = join(root, "no-steps");
    await mkdir(bare);
    const { analysis: _, ...rest } = await read<Record<string, unknown>>(join(out(), "config.json"));
    await writeFile(join(bare, "config.json"), JSON.stringify(rest));
    await expect(analyzeRun(bare, { resetsBetweenSteps: true })).rejects.toThrow(`analyze: putting each kept backbone's parts back to the kept step before (resetsBetweenSteps) needs kept steps, and ${join(bare, "config.json")} has no analysis.atSteps`);
  });

  it("is part of the key: an analysis without them is made anew with them", async () => {
    expect((await analyzeRun(out(), { out: between(), resetsBetweenSteps: true, reuse: true })).reused).toBe(true);
    // An analysis.json whose kept steps were not put back to the step before (a build before them) is made anew.
    const before = await readAnalysis(between());
    for (const c of before.cells) for (const t of c.atSteps!) delete t.resetsToPrevious;
    await writeFile(join(between(), "analysis.json"), JSON.stringify(before));
    const anew = await analyzeRun(out(), { out: between(), resetsBetweenSteps: true, reuse: true });
    expect(anew.reused).toBe(false);
    expect(anew.analysis.cells.every((c) => c.atSteps![1].resetsToPrevious !== undefined)).toBe(true);
  });
});
