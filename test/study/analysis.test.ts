// The per-block analysis of a run folder, end to end on a miniature study (tiny ViT, synthetic patterns): the
// study's `analysis` key writes every file once all cells are done, and a rerun keeps them (or only the cells'
// numbers, where the table's rows have changed); a linear-probe cell is
// the original at every block, Block Expansion's blocks below its new block are unchanged; with every query and the
// study's bank, the last block's layer-wise k-NN is the study's own k-NN of each cell and of the original. Then
// `analyze` on the command line (some strategies' cells, those at the table's rates), and bad input: not a run
// folder, no finished cells, a missing checkpoint or backbone, an unreadable backbone.json, --images that is not a
// positive integer, a strategy the config lacks.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configJson, parseStudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import { analysisFileNames, analyzeRun } from "../../study/analysis.js";
import type { CellAnalysis, RunAnalysis } from "../../study/analysis-results.js";
import type { PartMove, PartMoves } from "../../eval/part-moves.js";
import { type BaselineResult, type CellResult, type Correct, unpackCorrect, unpackPredicted } from "../../study/results.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { miniStudy } from "./program.js";
import { unpackBits } from "../../util/bits.js";
import { runCli } from "../bad-input/harness.js";

useEngine();

let root: string;
const run = () => join(root, "run");

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "analysis-test-"));
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 16, test: 8 }, seed: 4, noise: 160 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// program.ts's miniature study, its backbone pre-trained for 8 steps, with four strategies and the analysis key.
function study() {
  const mini = miniStudy(join(root, "data"), join(root, "cache"));
  return parseStudyConfig({
    ...mini,
    name: "mini-analysis",
    backbone: { pretrain: { ...mini.backbone.pretrain, steps: 8 } },
    knn: { ...mini.knn, ks: [5], batchSize: 10 },
    strategies: ["full", "linear", "lora-r2", "block-p1"],
    learningRates: [0.05],
    analysis: { images: 14, gridImages: 2 },
  });
}

const readJson = async <T>(path: string) => JSON.parse(await readFile(path, "utf8")) as T;

let first: Promise<{ log: string[] }> | undefined;
function runOnce() {
  first ??= (async () => {
    const log: string[] = [];
    await runExperiment({ config: study(), out: run(), log: (l) => log.push(l) });
    return { log };
  })();
  return first;
}

describe("a study with the analysis key", () => {
  it("writes every analysis file once all cells are done, and a rerun keeps them", async () => {
    const { log } = await runOnce();
    for (const f of analysisFileNames({})) expect(existsSync(join(run(), f)), f).toBe(true);
    expect(log.some((l) => l.startsWith("analysis: 4 cell(s) against the original backbone, 14 source images, a k-NN bank of 48"))).toBe(true);
    const a = await readJson<RunAnalysis>(join(run(), "analysis.json"));
    expect(a.cells.map((c) => c.id)).toEqual(["full_lr0.05_s0", "linear_lr0.05_s0", "lora-r2_lr0.05_s0", "block-p1_lr0.05_s0"]);
    expect(a.key).toEqual({ images: 14, gridImages: 2, cells: a.cells.map((c) => c.id) });
    expect(a.images.count).toBe(14);
    expect(a.strategies.map((s) => [s.strategy, s.seeds])).toEqual([["full", 1], ["linear", 1], ["lora-r2", 1], ["block-p1", 1]]);
    // analysis.csv: the original's k-NN per block, then per cell and block CKA (2), k-NN, the whole block's and
    // each of its 6 layers' weight change, one divergence per head, the output change; and the embedding's and final
    // norm's weight change, the embeddings' output change; the output change on the target-domain images, the
    // embeddings' and each block's; the patch projection's along its patches' first direction and the rest, on either
    // domain's images; where it moved (full fine-tuning), gradient descent's next move on it and its turn, the same way,
    // and in weight space, its size and turn on each part it trained (the embeddings, 2 blocks, the final norm).
    const csv = (await readFile(join(run(), "analysis.csv"), "utf8")).trim().split("\n");
    expect(csv[0]).toBe("cell,strategy,lr,seed,measure,block,part,value");
    expect(csv).toHaveLength(1 + 2 + 4 * (2 * (2 + 1 + 7 + 2 + 1) + 2 + 1 + 3 + 4) + 2 * 2 * 3 + 3 * 4);
    for (const measure of ["weight_descent_turn", "weight_descent_spread"]) expect(csv.filter((l) => l.includes(`,${measure},`)).map((l) => l.split(",")[5])).toEqual(["embedding", "0", "1", "norm"]);
    const turns = csv.filter((l) => l.includes(",patch_descent_turn,")).map((l) => l.split(","));
    expect(turns.map((l) => l.slice(0, 7).join(","))).toEqual(["", "transfer.test"].flatMap((set) => ["along", "rest"].map((d) => `full_lr0.05_s0,full,0.05,0,patch_descent_turn,${d},${set}`)));
    const g = a.cells[0].patchDescent!;
    turns.forEach((l, i) => expect(Number(l[7])).toBeCloseTo([g.source.along, g.source.rest, g.target!.along, g.target!.rest][i].turn, 5));
    expect(csv).toContain("linear_lr0.05_s0,linear,0.05,0,patch_change,along,transfer.test,0.00000");
    expect(csv).toContain("linear_lr0.05_s0,linear,0.05,0,output_change,embedding,,0.00000");
    expect(csv).toContain("linear_lr0.05_s0,linear,0.05,0,output_change,1,transfer.test,0.00000");
    // The target-domain images: as many as the analysed ones, of transfer.test.
    expect(a.targetImages!.count).toBe(14);
    expect(a.targetImages!.split).toBe(study().transfer.test.split);
    const full = a.cells[0];
    expect(full.targetOutputChange!.embedding).toBeGreaterThan(0);
    expect(full.targetOutputChange!.embedding).not.toBe(full.outputChange.embedding);
    const on = log.findIndex((l) => l.startsWith(`analysis: each part's own output change on 14 target-domain images (${a.targetImages!.name} ${a.targetImages!.split}), run on the original's input to it`));
    expect(on).toBeGreaterThan(0);
    // The patches' first directions, and the rows whose patch projection moved (full fine-tuning's alone).
    const d = a.patchDirections!;
    expect(Math.min(d.source.share, d.target!.share, d.source.flatness, d.target!.flatness)).toBeGreaterThan(0);
    const patch = log.findIndex((l) => l.startsWith("analysis: the patch projection's output change along the first principal direction of the patches it reads"));
    const c = full.patchChange!;
    expect(log[patch + 1]).toBe(`  full: ${[c.source, c.target!].map((x) => `${x.along.toFixed(3)} ± 0.000 / ${x.rest.toFixed(3)} ± 0.000`).join("; ")}`);
    expect(log[patch + 2]).toMatch(/^analysis: /);
    // Gradient descent's next move on it, on as many of transfer.train's images as are analysed.
    expect([a.trainImages!.count, a.trainImages!.split]).toEqual([14, study().transfer.train.split]);
    const descent = log.findIndex((l) => l.startsWith(`analysis: gradient descent's next move on the patch projection, minus the training loss's gradient on 14 training images (${a.trainImages!.name} ${a.trainImages!.split})`));
    // (analysis.json as JSON keeps a NaN as null.)
    const shown = (p: { change: number; turn: number; spread: number }) => `${p.change.toFixed(3)} (turn ${p.turn.toFixed(2)}, spread ${(p.spread ?? NaN).toFixed(3)})`;
    expect(log[descent + 1]).toBe(`  full: ${[g.source, g.target!].map((x) => `${shown(x.along)} / ${shown(x.rest)}`).join("; ")}`);
    expect(g.source.along.spread).toBeNull(); // NaN: the 14 training images make no full batch of the study's 16
    expect(Math.abs(g.source.along.turn)).toBeLessThanOrEqual(1);
    expect(a.cells.slice(1).map((c) => c.patchDescent)).toEqual([undefined, undefined, undefined]);
    expect(log[on + 1]).toBe(`  full: ${[full.targetOutputChange!.embedding, ...full.targetOutputChange!.blocks].map((v) => `${v.toFixed(3)} ± 0.000`).join(" / ")}`);
    expect(csv).toContain("block-p1_lr0.05_s0,block-p1,0.05,0,weight_change,0,attn.qkv,0.00000");

    const before = (await stat(join(run(), "analysis.json"))).mtimeMs;
    const again: string[] = [];
    await runExperiment({ config: study(), out: run(), log: (l) => again.push(l) });
    expect(again.some((l) => l.includes("analysis.json is up to date (4 cells, 14 images)"))).toBe(true);
    expect((await stat(join(run(), "analysis.json"))).mtimeMs).toBe(before);

    // A damaged analysis.json (a cell's measure gone) is made again, not kept as up to date: in a copy of the run.
    const damaged = join(root, "damaged-analysis");
    await cp(run(), damaged, { recursive: true });
    const json = await readJson<RunAnalysis>(join(damaged, "analysis.json"));
    delete (json.cells[1] as Partial<CellAnalysis>).cka;
    await writeFile(join(damaged, "analysis.json"), JSON.stringify(json));
    const third: string[] = [];
    await runExperiment({ config: study(), out: damaged, log: (l) => third.push(l) });
    expect(third.some((l) => l.includes("is up to date"))).toBe(false);
    expect((await readJson<RunAnalysis>(join(damaged, "analysis.json"))).cells[1].cka).toEqual(a.cells[1].cka);
    // So is one of a build before the layer-wise answers: each block's change from the original needs them.
    const earlier = join(root, "earlier-analysis");
    await cp(run(), earlier, { recursive: true });
    await writeFile(join(earlier, "analysis.json"), JSON.stringify({ ...a, original: { ...a.original, knnCorrect: undefined }, cells: a.cells.map((c) => ({ ...c, knnCorrect: undefined })) }));
    const fresh: string[] = [];
    await runExperiment({ config: study(), out: earlier, log: (l) => fresh.push(l) });
    expect(fresh.some((l) => l.includes("is up to date"))).toBe(false);
    expect((await readJson<RunAnalysis>(join(earlier, "analysis.json"))).cells.map((c) => c.knnCorrect)).toEqual(a.cells.map((c) => c.knnCorrect));
    // And one of a build before the output change, which the log names.
    const noOutput = join(root, "no-output-change");
    await cp(run(), noOutput, { recursive: true });
    await writeFile(join(noOutput, "analysis.json"), JSON.stringify({ ...a, cells: a.cells.map(({ outputChange: _, ...c }) => c) }));
    const sixth: string[] = [];
    await runExperiment({ config: study(), out: noOutput, log: (l) => sixth.push(l) });
    expect(sixth).toContain(`analysis: ${join(noOutput, "analysis.json")} lacks each part's output change (a build before them): its cells are measured anew`);
    expect((await readJson<RunAnalysis>(join(noOutput, "analysis.json"))).cells.map((c) => c.outputChange)).toEqual(a.cells.map((c) => c.outputChange));
    // And one of a build before gradient descent's next move on the patch projection.
    const noDescent = join(root, "no-descent");
    await cp(run(), noDescent, { recursive: true });
    await writeFile(join(noDescent, "analysis.json"), JSON.stringify({ ...a, cells: a.cells.map(({ patchDescent: _, ...c }) => c) }));
    const seventh: string[] = [];
    await runExperiment({ config: study(), out: noDescent, log: (l) => seventh.push(l) });
    expect(seventh).toContain(`analysis: ${join(noDescent, "analysis.json")} lacks gradient descent's next move on the patch projection (a build before them): its cells are measured anew`);
    expect((await readJson<RunAnalysis>(join(noDescent, "analysis.json"))).cells.map((c) => c.patchDescent)).toEqual(a.cells.map((c) => c.patchDescent));
    // And of a build before its next move on each part's weights, or before that move's batches' spread.
    const noParts = join(root, "no-weight-descent");
    await cp(run(), noParts, { recursive: true });
    await writeFile(join(noParts, "analysis.json"), JSON.stringify({ ...a, cells: a.cells.map(({ weightDescent: _, ...c }) => c) }));
    const eighth: string[] = [];
    await runExperiment({ config: study(), out: noParts, log: (l) => eighth.push(l) });
    expect(eighth).toContain(`analysis: ${join(noParts, "analysis.json")} lacks gradient descent's next move on each part's weights and its batches' spread (a build before them): its cells are measured anew`);
    expect((await readJson<RunAnalysis>(join(noParts, "analysis.json"))).cells.map((c) => c.weightDescent)).toEqual(a.cells.map((c) => c.weightDescent));
    const unspread = (m: PartMoves): PartMoves => {
      const bare = ({ spread: _, ...p }: PartMove) => p;
      return { embedding: bare(m.embedding), blocks: m.blocks.map(bare), norm: bare(m.norm) };
    };
    await writeFile(join(noParts, "analysis.json"), JSON.stringify({ ...a, cells: a.cells.map((c) => ({ ...c, ...(c.weightDescent && { weightDescent: unspread(c.weightDescent) }) })) }));
    const ninth: string[] = [];
    await runExperiment({ config: study(), out: noParts, log: (l) => ninth.push(l) });
    expect(ninth.some((l) => l.includes("lacks gradient descent's next move on each part's weights and its batches' spread"))).toBe(true);
    expect((await readJson<RunAnalysis>(join(noParts, "analysis.json"))).cells.map((c) => c.weightDescent)).toEqual(a.cells.map((c) => c.weightDescent));

    // An analysis.json whose summary is of other rows (the table's rows chose other rates then: another selectBy,
    // knn.val) keeps its cells' numbers and makes the summary and figures anew: in a copy of the run.
    const moved = join(root, "moved-rows");
    await cp(run(), moved, { recursive: true });
    await writeFile(join(moved, "analysis.json"), JSON.stringify({ ...a, strategies: a.strategies.map((row) => ({ ...row, lr: 0.5 })) }));
    const fourth: string[] = [];
    await runExperiment({ config: study(), out: moved, log: (l) => fourth.push(l) });
    expect(fourth).toContain("analysis: its summary is not the one made of its cells now (the table's rows, or the summary's form, have changed); the numbers of its 4 cell(s) kept, its summary and files made anew");
    expect(fourth.some((l) => / cell\(s\) against the original backbone/.test(l))).toBe(false);
    const remade = await readJson<RunAnalysis>(join(moved, "analysis.json"));
    expect(remade.cells).toEqual(a.cells);
    expect(remade.strategies).toEqual(a.strategies);
    // So are files gone missing, and the log says which it was.
    await rm(join(moved, "analysis-knn.png"));
    const fifth: string[] = [];
    await runExperiment({ config: study(), out: moved, log: (l) => fifth.push(l) });
    expect(fifth).toContain("analysis: 1 of its files missing; the numbers of its 4 cell(s) kept, its summary and files made anew");
    expect(existsSync(join(moved, "analysis-knn.png"))).toBe(true);

    // A NaN kept in analysis.json (the CKA of a block whose features are constant), which JSON writes as null, is
    // NaN again when read back: the CSV says NaN (its formatting threw on null) and the row's mean is no number
    // (the summary took null for 0).
    const nan = join(root, "nan-cka");
    await cp(run(), nan, { recursive: true });
    const first = a.cells[0];
    const cells = a.cells.map((c) => (c === first ? { ...c, cka: { ...c.cka, cls: [NaN, ...c.cka.cls.slice(1)] } } : c));
    await writeFile(join(nan, "analysis.json"), JSON.stringify({ ...a, cells, strategies: a.strategies.map((row) => ({ ...row, lr: 0.5 })) }));
    await runExperiment({ config: study(), out: nan, log: () => undefined });
    expect(await readFile(join(nan, "analysis.csv"), "utf8")).toContain(`${first.id},${first.strategy},${first.lr},${first.seed},cka_cls,0,,NaN\n`);
    const row = (await readJson<RunAnalysis>(join(nan, "analysis.json"))).strategies.find((r) => r.strategy === first.strategy && r.lr === first.lr)!;
    expect(row.ckaCls[0].mean).toBeNull(); // NaN, as JSON writes it
  });

  it("finds linear probing unchanged at every block, and Block Expansion unchanged below its new block", async () => {
    await runOnce();
    const a = await readJson<RunAnalysis>(join(run(), "analysis.json"));
    for (const c of a.cells.filter((c) => c.strategy === "linear")) {
      for (const v of [...c.cka.cls, ...c.cka.pooled]) expect(v).toBeCloseTo(1, 6);
      expect(c.weights.blocks).toEqual([0, 0]);
      expect([c.weights.embedding, c.weights.norm]).toEqual([0, 0]);
      expect(c.knn).toEqual(a.original.knn);
      expect(c.knnCorrect).toEqual(a.original.knnCorrect); // query by query
      expect(c.attention.flat()).toEqual([0, 0, 0, 0]);
    }
    // Each block's answers: as many right as its accuracy says; linear probing's change 0 at every block.
    for (const c of [...a.cells, a.original]) {
      c.knnCorrect.forEach((x, i) => expect((100 * unpackBits(x.bits, x.count)!.reduce((s, b) => s + b, 0)) / x.count).toBeCloseTo(c.knn[i], 9));
    }
    expect(a.strategies.find((s) => s.strategy === "linear")!.knnChange.map((d) => d.mean)).toEqual([0, 0]);
    for (const c of a.cells.filter((c) => c.strategy === "block-p1")) {
      // block-p1 on 2 blocks: one new block after block 1 (the last); block 0 is below it.
      expect(c.weights.added).toEqual([1]);
      expect(c.cka.cls[0]).toBeCloseTo(1, 6);
      expect(c.weights.blocks).toEqual([0, 0]);
      expect(c.knn[0]).toBe(a.original.knn[0]);
      expect(c.attention.flat()).toEqual([0, 0, 0, 0]);
      expect(c.cka.cls[1]).toBeLessThan(1 - 1e-4);
    }
    for (const c of a.cells.filter((c) => c.strategy === "full")) {
      expect(Math.min(...c.weights.blocks)).toBeGreaterThan(0);
      expect(c.cka.cls[0]).toBeLessThan(1 - 1e-4);
    }
  });

  it("gives, with every query and the study's bank, each cell's and the original's k-NN at the last block", async () => {
    await runOnce();
    const out = join(root, "all-queries");
    const lines: string[] = [];
    const { analysis: a } = await analyzeRun(run(), { images: 1000, out, log: (l) => lines.push(l) });
    expect(a.images.count).toBe(24);
    expect(lines).toContain("analysis: 4 cell(s) against the original backbone, 24 source images (all knn.queries holds, of the 1000 asked for), a k-NN bank of 48");
    const baseline = await readJson<BaselineResult>(join(run(), "baseline.json"));
    expect(a.original.knn[1]).toBe(baseline.knn["5"].top1);
    for (const c of a.cells) {
      const result = await readJson<CellResult>(join(run(), "cells", c.id, "result.json"));
      expect(c.knn[1], c.id).toBeCloseTo(result.knn["5"].top1, 6);
    }
  });

  it("gives each block's change class by class of the analysed images, and makes an analysis without their classes anew, its cells kept", async () => {
    await runOnce();
    const out = join(root, "by-class");
    const { analysis: a } = await analyzeRun(run(), { images: 1000, out });
    expect(a.labels!.classes.length).toBe(3);
    expect(a.labels!.labels.length).toBe(a.images.count);
    const csv = (await readFile(join(out, "analysis-classes.csv"), "utf8")).trim().split("\n");
    expect(csv.length).toBe(1 + a.strategies.length * a.depth * 3);
    for (const s of a.strategies) {
      s.knnByClass!.forEach((classes, block) => {
        expect(classes.reduce((n, c) => n + c.queries, 0)).toBe(a.images.count);
        expect(classes.reduce((sum, c) => sum + c.queries * c.change.mean, 0) / a.images.count, `${s.strategy} block ${block}`).toBeCloseTo(s.knnChange[block].mean, 9);
      });
    }
    expect(existsSync(join(out, "analysis-classes.svg"))).toBe(true);
    // An analysis.json of a build before the images' classes: its cells' numbers kept, its summary and files anew.
    const path = join(out, "analysis.json");
    const { labels: _, ...before } = JSON.parse(await readFile(path, "utf8")) as RunAnalysis;
    await writeFile(path, JSON.stringify({ ...before, strategies: before.strategies.map(({ knnByClass: __, ...s }) => s) }));
    const lines: string[] = [];
    const again = await analyzeRun(run(), { images: 1000, out, reuse: true, log: (l) => lines.push(l) });
    expect(lines).toContain(`analysis: its images' classes missing (a build before them); the numbers of its ${a.cells.length} cell(s) kept, its summary and files made anew`);
    expect(again.analysis.strategies).toEqual(a.strategies);
    expect((await analyzeRun(run(), { images: 1000, out, reuse: true })).reused).toBe(true);
  });

  it("keeps the class each block gave each image, gives each block's confusion, and measures anew an analysis without them", async () => {
    await runOnce();
    const out = join(root, "confusion");
    const { analysis: a } = await analyzeRun(run(), { images: 1000, out });
    const labels = a.labels!.labels;
    // The classes given agree with the answers: right exactly where given the image's own class.
    for (const x of [a.original, ...a.cells].flatMap((c) => c.knnCorrect)) {
      const right = unpackCorrect(x);
      expect(Array.from(unpackPredicted(x)!, (g, q) => (g === labels[q] ? 1 : 0))).toEqual(Array.from(right));
    }
    for (const s of a.strategies) {
      expect(s.knnConfusion).toHaveLength(a.depth);
      s.knnConfusion!.forEach((c, block) => {
        // Its diagonal is the block's change class by class; each line sums to 0.
        expect(c.lines.map((line, i) => line.change[i].mean)).toEqual(s.knnByClass![block].map((k) => k.change.mean));
        for (const line of c.lines) expect(line.change.reduce((sum, x) => sum + x.mean, 0)).toBeCloseTo(0, 9);
      });
      if (s.strategy === "linear") expect(s.knnConfusion!.every((c) => c.every.change.every((x) => x.mean === 0))).toBe(true);
    }
    const csv = (await readFile(join(out, "analysis-confusion.csv"), "utf8")).trim().split("\n");
    expect(csv[0]).toBe("strategy,lr,seeds,step,block,class,given,queries,original_share,share,change,change_lo,change_hi,banks");
    expect(csv.length).toBe(1 + a.strategies.length * a.depth * (3 + 1) * 3);
    expect(await readFile(join(out, "analysis-confusion.svg"), "utf8")).toContain(">At which depth lost images are taken for another class<");
    // An analysis.json of a build before the classes given: measured anew, and the log says why.
    const path = join(out, "analysis.json");
    const bare = (x: Correct) => ({ count: x.count, bits: x.bits });
    const before = JSON.parse(await readFile(path, "utf8")) as RunAnalysis;
    await writeFile(path, JSON.stringify({ ...before, original: { ...before.original, knnCorrect: before.original.knnCorrect.map(bare) }, cells: before.cells.map((c) => ({ ...c, knnCorrect: c.knnCorrect.map(bare) })) }));
    const lines: string[] = [];
    const again = await analyzeRun(run(), { images: 1000, out, reuse: true, log: (l) => lines.push(l) });
    expect(lines).toContain(`analysis: ${path} lacks the class each block gave each image (a build before them): its cells are measured anew`);
    expect(again.reused).toBe(false);
    expect(again.analysis.strategies.map((s) => s.knnConfusion)).toEqual(a.strategies.map((s) => s.knnConfusion));
  });
});

describe("analyze on the command line", () => {
  it("analyses a run folder into --out with --images", async () => {
    await runOnce();
    const out = join(root, "cli-out");
    const r = await runCli(["analyze", run(), "--images", "6", "--grid-images", "1", "--bank-per-class", "4", "--out", out]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(join(out, "analysis-attention.png"));
    const a = await readJson<RunAnalysis>(join(out, "analysis.json"));
    expect(a.key).toEqual({ images: 6, gridImages: 1, bankPerClass: 4, cells: a.cells.map((c) => c.id) });
    expect(a.bank.count).toBe(12);
  });

  it("draws an analysis of the same key anew with --redraw, measuring nothing; without one, measures", async () => {
    await runOnce();
    const out = join(root, "cli-redraw");
    const args = ["analyze", run(), "--images", "6", "--out", out, "--redraw"];
    const first = await runCli(args);
    expect(first.code, first.err).toBe(0);
    expect(first.err).toContain("cell(s) against the original backbone");
    const [json, svg] = [await readFile(join(out, "analysis.json"), "utf8"), await readFile(join(out, "analysis-knn.svg"), "utf8")];
    await writeFile(join(out, "analysis-knn.svg"), "a figure of an earlier build");
    const again = await runCli(args);
    expect(again.code, again.err).toBe(0);
    expect(again.err).toContain("analysis: asked to draw anew; the numbers of its 4 cell(s) kept, its summary and files made anew");
    expect(again.err).not.toContain("cell(s) against the original backbone");
    expect(await readFile(join(out, "analysis-knn.svg"), "utf8")).toBe(svg);
    expect(JSON.parse(await readFile(join(out, "analysis.json"), "utf8")).cells).toEqual(JSON.parse(json).cells);
  });

  it("resets each part of the backbones with --resets, where the config does not ask for it", async () => {
    await runOnce();
    const out = join(root, "cli-resets");
    const r = await runCli(["analyze", run(), "--images", "6", "--resets", "--out", out]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(join(out, "analysis-resets.png"));
    const a = await readJson<RunAnalysis>(join(out, "analysis.json"));
    expect(a.key.resets).toBe(true);
    expect(a.cells.every((c) => c.resets !== undefined)).toBe(true);
  });

  it("resets each block's layers apart with --reset-layers", async () => {
    await runOnce();
    const out = join(root, "cli-reset-layers");
    const r = await runCli(["analyze", run(), "--images", "6", "--reset-layers", "--out", out]);
    expect(r.code, r.err).toBe(0);
    const a = await readJson<RunAnalysis>(join(out, "analysis.json"));
    expect(a.key.resets).toBe("layers");
    expect(a.cells.find((c) => c.strategy === "full")!.resets!.units.map((u) => u.unit)).toContain("block 0 mlp.fc1");
  });

  it("analyses only the chosen cells with --strategies and --table-rates, or the analysis key's (--all-rates: every rate's), and names a strategy the config lacks", async () => {
    const { analysis: _, ...json } = JSON.parse(JSON.stringify(configJson(study())));
    const twoRates = { ...json, strategies: ["full", "linear"], learningRates: { full: [0.05, 0.5], linear: [0.05] } };
    const dir = join(root, "two-rates");
    await runExperiment({ config: parseStudyConfig(twoRates), out: dir });
    const table = (await readJson<{ table: { strategy: string; lr: number }[] }>(join(dir, "results.json"))).table;
    const fullRate = table.find((r) => r.strategy === "full")!.lr;
    const analysed = async (folder: string, out: string, ...flags: string[]) => {
      const r = await runCli(["analyze", folder, "--images", "6", "--out", join(root, out), ...flags]);
      expect(r.code, r.err).toBe(0);
      return (await readJson<RunAnalysis>(join(root, out, "analysis.json"))).cells.map((c) => c.id);
    };
    expect(await analysed(dir, "chosen-all")).toEqual(["full_lr0.05_s0", "full_lr0.5_s0", "linear_lr0.05_s0"]);
    expect(await analysed(dir, "chosen-rates", "--table-rates")).toEqual([`full_lr${fullRate}_s0`, "linear_lr0.05_s0"]);
    expect(await analysed(dir, "chosen-full", "--strategies", "Full", "--table-rates")).toEqual([`full_lr${fullRate}_s0`]);
    // The analysis key's strategies and tableRates choose so where no flag does.
    const keyed = join(root, "two-rates-keyed");
    await cp(dir, keyed, { recursive: true });
    await writeFile(join(keyed, "config.json"), JSON.stringify({ ...twoRates, analysis: { images: 6, gridImages: 1, strategies: ["full"], tableRates: true } }));
    expect(await analysed(keyed, "chosen-by-key")).toEqual([`full_lr${fullRate}_s0`]);
    // --all-rates widens what the key narrows; --strategies names others than the key's.
    expect(await analysed(keyed, "chosen-all-rates", "--all-rates")).toEqual(["full_lr0.05_s0", "full_lr0.5_s0"]);
    expect(await analysed(keyed, "chosen-all-strategies", "--all-rates", "--strategies", "full,linear")).toEqual(["full_lr0.05_s0", "full_lr0.5_s0", "linear_lr0.05_s0"]);
    let r = await runCli(["analyze", dir, "--table-rates", "--all-rates"]);
    expect([r.code, r.err]).toEqual([2, expect.stringContaining("flags --table-rates and --all-rates: expected one of them, got both")]);
    r = await runCli(["analyze", dir, "--strategies", "full,top-1"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`analyze: expected strategies of ${join(dir, "config.json")} (full, linear), got "top-1"`);
    r = await runCli(["analyze", dir, "--strategies", "ful"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--strategies: strategy: unknown "ful"');
  });

  it("says so where --grid-images asks for more images than are analysed, and shows them all", async () => {
    await runOnce();
    const out = join(root, "cli-grid");
    const r = await runCli(["analyze", run(), "--images", "3", "--grid-images", "5", "--bank-per-class", "4", "--out", out]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("analysis: --grid-images 5 is more than the 3 image(s) analysed: the attention grid shows all 3");
    expect((await readJson<RunAnalysis>(join(out, "analysis.json"))).key.gridImages).toBe(3);
  });

  it("names bad input: a bad --images, not a run folder, no finished cells, a missing checkpoint or backbone, bad JSON", async () => {
    await runOnce();
    for (const images of ["0", "-3"]) {
      const r = await runCli(["analyze", run(), "--images", images]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`flag --images: expected an integer >= 1, got ${images}`);
    }
    expect((await runCli(["analyze", run(), "--images", "2.5"])).err).toContain('flag --images: expected an integer, got "2.5"');
    expect((await runCli(["analyze", run(), "--images", "1"])).err).toContain("flag --images: expected at least 2 images (CKA compares features across them), got 1");
    expect((await runCli(["analyze", "--images", "3"])).err).toContain("expected a run folder: analyze RUN_DIR");

    const nowhere = join(root, "nowhere");
    let r = await runCli(["analyze", nowhere]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`analyze: ${nowhere} is not a run folder: expected ${join(nowhere, "config.json")}, found none`);

    const empty = join(root, "empty");
    await mkdir(empty, { recursive: true });
    await cp(join(run(), "config.json"), join(empty, "config.json"));
    r = await runCli(["analyze", empty]);
    expect(r.err).toContain(`analyze: ${empty} has no finished cells`);

    const broken = join(root, "broken");
    await cp(run(), broken, { recursive: true });
    await rm(join(broken, "cells", "lora-r2_lr0.05_s0", "best.safetensors"));
    r = await runCli(["analyze", broken]);
    expect(r.err).toContain(`analyze: cell lora-r2_lr0.05_s0 is finished but its checkpoint ${join(broken, "cells", "lora-r2_lr0.05_s0", "best.safetensors")} is missing`);

    // Another cell's checkpoint in a cell's folder: refused before any work, by the checkpoint's own manifest.
    const lora = join(run(), "cells", "lora-r2_lr0.05_s0", "best.safetensors");
    await cp(lora, join(broken, "cells", "lora-r2_lr0.05_s0", "best.safetensors"));
    await cp(lora, join(broken, "cells", "full_lr0.05_s0", "best.safetensors"));
    r = await runCli(["analyze", broken]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`analyze: ${join(broken, "cells", "full_lr0.05_s0", "best.safetensors")} was trained as lora-r2, lr 0.05, seed 0, not as cell full_lr0.05_s0 (full, lr 0.05, seed 0)`);

    const moved = join(root, "moved");
    await cp(run(), moved, { recursive: true });
    await writeFile(join(moved, "backbone.json"), JSON.stringify({ kind: "pretrain", path: join(root, "gone.safetensors") }));
    r = await runCli(["analyze", moved]);
    expect(r.err).toContain(`analyze: the original backbone ${join(root, "gone.safetensors")} (named by ${join(moved, "backbone.json")}) does not exist; --backbone FILE names where it is now`);
    await writeFile(join(moved, "backbone.json"), "{ not json");
    r = await runCli(["analyze", moved]);
    expect(r.err).toContain(`analyze: ${join(moved, "backbone.json")}: expected JSON, got a parse error`);
    await expect(analyzeRun(run(), { images: 0 })).rejects.toThrow("analyze: expected images to be an integer >= 1, got 0");
  });
});
