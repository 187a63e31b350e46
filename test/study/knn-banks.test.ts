// Other draws of the k-NN bank (knn.otherBanks, study/knn-banks.ts) in miniature studies: each cell's best
// checkpoint classifies the queries against each other bank (the same numbers as a study whose bank it is), kept in
// knn-banks.json before result.json, and the original backbone's queries in the run folder's; the k-NN differences'
// intervals, and each row's forgetting at its best checkpoints, are then over seeds, banks and queries; the
// banks are added to a finished run folder without training a cell, only a bank without scores is scored; each point
// of the forgetting curve is scored against every bank (step 0's answers the original's), and the per-block
// analysis's layer-wise k-NN and its resets too, of the best backbones and of those kept along fine-tuning; and
// banks of other classes or sizes, or sharing images with the bank, the queries or each other, are refused by name.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStudyConfig, type StudyConfig } from "../../study/config.js";
import type { TimedPoint } from "../../study/knn-curve.js";
import { runExperiment } from "../../study/runner.js";
import { analyzeRun } from "../../study/analysis.js";
import type { RunAnalysis } from "../../study/analysis-results.js";
import type { KnnBankScores } from "../../study/result-files.js";
import { crossedMeanInterval3 } from "../../util/stats.js";
import { changeFromOriginal } from "../../study/comparisons.js";
import { packBits, unpackBits } from "../../util/bits.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { miniData, miniStudy } from "./program.js";

useEngine();

const root = mkdtempSync(join(tmpdir(), "knn-banks-test-"));
// The training split's images of classes 0-2 in draws of 8 per class: `n`th draw.
const draw = (n: number, more: Record<string, unknown> = {}) => ({ ...miniData(join(root, "data"), "train", "0-2"), ...(n > 0 && { skipPerClass: 8 * n }), perClass: 8, ...more });

beforeAll(async () => {
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 24, test: 8 }, seed: 2, noise: 160 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// The miniature study with full fine-tuning at two rates and two seeds, the bank the first draw; `otherBanks` its
// knn.otherBanks, `bank` another bank, `atSteps` its forgetting curve's steps, `analysis` its analysis key.
function study(o: { otherBanks?: unknown[]; bank?: unknown; atSteps?: number[]; analysis?: object } = {}): StudyConfig {
  const mini = miniStudy(join(root, "data"), join(root, "cache"));
  return parseStudyConfig({
    ...mini,
    knn: { ...mini.knn, bank: o.bank ?? draw(0), ...(o.otherBanks && { otherBanks: o.otherBanks }), ...(o.atSteps && { atSteps: o.atSteps }) },
    ...(o.analysis && { analysis: o.analysis }),
    strategies: ["full"],
    learningRates: [0.3, 0.03],
    seeds: [0, 1],
  });
}

const IDS = ["full_lr0.3_s0", "full_lr0.3_s1", "full_lr0.03_s0", "full_lr0.03_s1"];
const banksFile = async (dir: string, id: string): Promise<KnnBankScores[]> => JSON.parse(await readFile(join(dir, "cells", id, "knn-banks.json"), "utf8")).banks;

describe("knn.otherBanks", () => {
  it("classifies each cell's queries against every other bank, as a study whose bank it is, and the k-NN intervals count the banks", async () => {
    const dir = join(root, "with-banks");
    const config = study({ otherBanks: [draw(1), draw(2)] });
    const r = await runExperiment({ config, out: dir });
    const asBanks = [await runExperiment({ config: study({ bank: draw(1) }), out: join(root, "as-bank1") }), await runExperiment({ config: study({ bank: draw(2) }), out: join(root, "as-bank2") })];
    for (const id of IDS) {
      const file = await banksFile(dir, id);
      const cell = r.results.cells.find((c) => c.id === id)!;
      expect(file.map((b) => b.spec)).toEqual(config.knn.otherBanks);
      expect(file.map((b) => b.data.subset)).toEqual(["classes 0,1,2 -> 0..2; first 8 per class after the first 8", "classes 0,1,2 -> 0..2; first 8 per class after the first 16"]);
      // The same training, the same best checkpoint: its k-NN with that bank as the bank.
      asBanks.forEach((as, b) => {
        const there = as.results.cells.find((c) => c.id === id)!;
        expect(file[b].knn).toEqual(there.knn);
        expect(file[b].correct).toEqual(there.correct!.knn);
        expect(cell.otherBanks![b]).toEqual({ knn: there.knn, correct: there.correct!.knn });
      });
    }
    expect(r.results.notes.data["knn.otherBanks[1]"]).toMatchObject({ split: "train", count: 24 });
    // The rate comparison's k-NN interval: three-way over the seeds, the three banks and the queries.
    const [rates] = r.results.rates;
    expect(rates.banks).toBe(3);
    const answers = (id: string) => {
      const c = r.results.cells.find((x) => x.id === id)!;
      return [c.correct!.knn, ...c.otherBanks!.map((b) => b.correct)].map((x) => unpackBits(x.bits, x.count)!);
    };
    const other = (seed: number) => `full_lr${rates.lr}_s${seed}`;
    const row = (seed: number) => `full_lr${rates.rowLr}_s${seed}`;
    const table = [0, 1].map((seed) => answers(other(seed)).map((x, b) => Float64Array.from(x, (v, i) => 100 * (v - answers(row(seed))[b][i]))));
    expect(rates.knn).toEqual(crossedMeanInterval3(table));
    expect(rates.knn.hi - rates.knn.lo).toBeGreaterThan(0);
    // Each row's k-NN against the other banks: the mean over them, then over the seeds; a column per cell.
    const mean = (id: string) => (r.results.cells.find((c) => c.id === id)!.otherBanks!.reduce((a, b) => a + b.knn["5"].top1, 0)) / 2;
    const chosen = r.results.table[0];
    expect(chosen.otherBanksKnn).toBeCloseTo((mean(`full_lr${chosen.lr}_s0`) + mean(`full_lr${chosen.lr}_s1`)) / 2, 10);
    const csv = (await readFile(join(dir, "results.csv"), "utf8")).trim().split("\n");
    const column = csv[0].split(",").indexOf("other_banks_knn5_top1");
    expect(column).toBeGreaterThan(0);
    expect(csv.slice(2).map((line) => line.split(",")[column])).toEqual(r.results.cells.map((c) => mean(c.id).toFixed(2)));
    const md = await readFile(join(dir, "table.md"), "utf8");
    expect(md).toContain("The queries were classified against 2 other draw(s) of the bank too (knn.otherBanks: npy train (classes 0,1,2 -> 0..2; first 8 per class after the first 8), 24 images; ");
    expect(md).toContain("The source k-NN intervals are over the bank and its 2 other draw(s) (knn.otherBanks) as well");
    // The original's queries against the other banks, beside baseline.json: the original backbone's k-NN of a study
    // whose bank it is. Each row's forgetting is then over the banks too.
    const original = JSON.parse(await readFile(join(dir, "knn-banks.json"), "utf8")).banks as KnnBankScores[];
    expect(original.map((b) => b.spec)).toEqual(config.knn.otherBanks);
    asBanks.forEach((as, b) => expect({ knn: original[b].knn, correct: original[b].correct }).toEqual({ knn: as.results.baseline.knn, correct: as.results.baseline.correct }));
    expect(r.results.baseline.otherBanks).toEqual(original.map((b) => ({ knn: b.knn, correct: b.correct })));
    const bits = (x: { bits: string; count: number }) => unpackBits(x.bits, x.count)!;
    const group = r.results.cells.filter((c) => c.lr === chosen.lr);
    const originals = [r.results.baseline.correct!, ...original.map((b) => b.correct)].map(bits);
    expect(chosen.knnChange).toEqual({ ...changeFromOriginal(group.map((c) => [c.correct!.knn, ...c.otherBanks!.map((b) => b.correct)].map(bits)), originals), banks: 3 });
    expect(md).toContain("Over the bank and its 2 other draw(s) (knn.otherBanks) as well (three-way crossed), the mean over every bank.");
  });

  it("scores each point of the forgetting curve against every bank in the same pass: step 0 is the original's, the changes are three-way", async () => {
    const dir = join(root, "curve-banks");
    const atSteps = [0, 2, 4];
    const config = study({ otherBanks: [draw(1), draw(2)], atSteps });
    const r = await runExperiment({ config, out: dir });
    const asBank1 = await runExperiment({ config: study({ bank: draw(1), atSteps }), out: join(root, "curve-as-bank1") });
    const original = JSON.parse(await readFile(join(dir, "knn-banks.json"), "utf8")).banks as KnnBankScores[];
    for (const id of IDS) {
      const file = JSON.parse(await readFile(join(dir, "cells", id, "knn-curve.json"), "utf8")).points as TimedPoint[];
      const cell = r.results.cells.find((c) => c.id === id)!;
      const there = asBank1.results.cells.find((c) => c.id === id)!;
      for (const p of file) {
        expect(p.banks!.map((b) => b.spec)).toEqual(config.knn.otherBanks);
        // The same model at that step: the scores of a study whose bank it is.
        const same = there.knnCurve!.find((q) => q.step === p.step)!;
        expect({ knn: p.banks![0].knn, correct: p.banks![0].correct }).toEqual({ knn: same.knn, correct: same.correct });
      }
      // Before the first update, the original's answers against every bank, to the bit.
      expect(file[0].banks!.map((b) => b.correct)).toEqual(original.map((b) => b.correct));
      // The best checkpoint's scores against the banks are its curve point's (one pass, counted in the curve's time).
      const best = file.find((p) => p.step === cell.bestStep)!;
      expect(await banksFile(dir, id)).toEqual(best.banks!.map((b) => ({ ...b, seconds: 0 })));
      expect(cell.knnCurve!.map((p) => p.otherBanks)).toEqual(file.map((p) => p.banks!.map((b) => ({ knn: b.knn, correct: b.correct }))));
    }
    const bits = (x: { bits: string; count: number }) => unpackBits(x.bits, x.count)!;
    const chosen = r.results.table[0];
    const group = r.results.cells.filter((c) => c.lr === chosen.lr);
    const originals = [r.results.baseline.correct!, ...original.map((b) => b.correct)].map(bits);
    for (const point of chosen.knnCurve!) {
      const at = group.map((c) => c.knnCurve!.find((p) => p.step === point.step)!);
      expect(point.change).toEqual({ ...changeFromOriginal(at.map((p) => [p.correct!, ...p.otherBanks!.map((b) => b.correct)].map(bits)), originals), banks: 3 });
    }
    expect(chosen.knnCurve![0].change).toEqual({ mean: 0, lo: 0, hi: 0, n: 2, banks: 3 });
    const md = await readFile(join(dir, "table.md"), "utf8");
    expect(md).not.toContain("†");
    expect(md).toContain("after 0, 2, 4 fine-tuning steps, its queries against every other bank too (the figure draws knn.bank's).");
    // A curve of a build before its points kept the banks' scores: its changes against knn.bank alone, marked.
    for (const id of IDS) {
      const path = join(dir, "cells", id, "knn-curve.json");
      const points = (JSON.parse(await readFile(path, "utf8")).points as TimedPoint[]).map(({ banks: _, ...p }) => p);
      await writeFile(path, JSON.stringify({ points }));
    }
    const old = await runExperiment({ config, out: dir });
    expect(old.ran).toEqual([]);
    expect(old.results.table[0].knnChange!.banks).toBe(3);
    expect(old.results.table[0].knnCurve!.map((p) => p.change!.banks)).toEqual([1, 1, 1]);
    expect(await readFile(join(dir, "table.md"), "utf8")).toContain("; † against knn.bank alone, where the original or a cell (a curve of a build before its points kept those scores) was not classified against every bank.");
  });

  it("gives the per-block analysis's layer-wise k-NN against every bank: the last block's is the cells' k-NN there", async () => {
    const dir = join(root, "analysis-banks");
    await runExperiment({ config: study(), out: dir });
    const before = await analyzeRun(dir, { images: 1000, reuse: true });
    expect(before.analysis.otherBanks).toBeUndefined();
    // The banks added to the finished folder (their scores made, nothing trained): the analysis is made anew.
    const config = study({ otherBanks: [draw(1), draw(2)] });
    expect((await runExperiment({ config, out: dir })).ran).toEqual([]);
    const lines: string[] = [];
    const { analysis: a, reused } = await analyzeRun(dir, { images: 1000, log: (l) => lines.push(l), reuse: true });
    expect(reused).toBe(false);
    expect(lines).toContain("analysis: 4 cell(s) against the original backbone, 24 source images (all knn.queries holds, of the 1000 asked for), a k-NN bank of 24 and 2 other draw(s) of it");
    expect(a.key.otherBanks).toEqual(config.knn.otherBanks);
    expect(a.otherBanks!.map((b) => b.subset)).toEqual(["classes 0,1,2 -> 0..2; first 8 per class after the first 8", "classes 0,1,2 -> 0..2; first 8 per class after the first 16"]);
    // With every query and the study's banks, the last block's layer-wise k-NN is the study's k-NN against that bank:
    // the original's (knn-banks.json beside baseline.json), query by query, and each cell's (its knn-banks.json). The
    // analysis computes the features by another path (each block's output normed on its own), whose rounding can
    // flip a near-tied vote: at lr 0.3, where full fine-tuning's k-NN falls to chance, one query of 24 did against
    // one bank. So the cells at 0.03.
    const last = a.depth - 1;
    const original = JSON.parse(await readFile(join(dir, "knn-banks.json"), "utf8")).banks as KnnBankScores[];
    // The classes given as well (three classes).
    a.original.otherBanks!.forEach((b, i) => expect(b.knnCorrect[last]).toEqual(original[i].correct));
    expect(original.every((b) => b.correct.predicted !== undefined)).toBe(true);
    for (const c of a.cells.filter((x) => x.lr === 0.03)) {
      const file = await banksFile(dir, c.id);
      c.otherBanks!.forEach((b, i) => expect(b.knn[last], c.id).toBeCloseTo(file[i].knn["5"].top1, 6));
    }
    // Each row's change per block is three-way, over the seeds, the three banks and the queries.
    const bits = (x: { bits: string; count: number }) => unpackBits(x.bits, x.count)!;
    const [row] = a.strategies;
    const group = a.cells.filter((c) => c.strategy === row.strategy && c.lr === row.lr);
    for (let block = 0; block < a.depth; block++) {
      const answers = (x: { knnCorrect: { bits: string; count: number }[]; otherBanks?: { knnCorrect: { bits: string; count: number }[] }[] }) => [x.knnCorrect[block], ...x.otherBanks!.map((b) => b.knnCorrect[block])].map(bits);
      expect(row.knnChange[block]).toEqual({ ...changeFromOriginal(group.map(answers), answers(a.original)), banks: 3 });
    }
    expect(lines.some((l) => l.startsWith("analysis: each block's layer-wise 5-NN less the original's, in points: mean [95% interval over seeds, the bank and its 2 other draw(s) and images]"))).toBe(true);
    // Against knn.bank, the same numbers as before.
    expect(a.cells.map((c) => c.knn)).toEqual(before.analysis.cells.map((c) => c.knn));
    expect(await readFile(join(dir, "analysis-knn.svg"), "utf8")).toContain(">original, over seeds, banks and images<");
    const csv = (await readFile(join(dir, "analysis.csv"), "utf8")).split("\n");
    expect(csv).toContain(`original,original,,,knn_top1,${last},knn.otherBanks[1],${a.original.otherBanks![1].knn[last].toPrecision(6)}`);
    expect(csv.filter((l) => l.includes(",knn_top1,") && l.includes("knn.otherBanks")).length).toBe(2 * a.depth * (1 + a.cells.length));
  });

  it("scores the analysis's resets against every bank: the study's answers there, and the source k-NN changes over the banks", async () => {
    const dir = join(root, "analysis-banks"); // the folder of the test above, with its two other banks
    const lines: string[] = [];
    const { analysis: a } = await analyzeRun(dir, { out: join(root, "resets-banks"), resets: true, log: (l) => lines.push(l) });
    const original = JSON.parse(await readFile(join(dir, "knn-banks.json"), "utf8")).banks as KnnBankScores[];
    for (const c of a.cells) {
      const file = await banksFile(dir, c.id);
      expect(c.resets!.tuned.otherBanks!.map((b) => b.knnCorrect), c.id).toEqual(file.map((b) => b.correct));
      const all = c.resets!.units.find((u) => u.unit === "all")!;
      expect(all.otherBanks!.map((b) => b.knnCorrect), c.id).toEqual(original.map((b) => b.correct));
    }
    const [row] = a.strategies;
    expect(row.resets!.banks).toBe(3);
    const group = a.cells.filter((c) => c.strategy === row.strategy && c.lr === row.lr);
    const answers = (s: { knnCorrect: { bits: string; count: number }; otherBanks?: { knnCorrect: { bits: string; count: number } }[] }) =>
      [s.knnCorrect, ...s.otherBanks!.map((b) => b.knnCorrect)].map((x) => unpackBits(x.bits, x.count)!);
    const unit = row.resets!.units[0];
    const seeds = group.map((c) => {
      const [mine, tuned] = [answers(c.resets!.units[0]), answers(c.resets!.tuned)];
      return mine.map((x, b) => Float64Array.from(x, (right, q) => 100 * (right - tuned[b][q])));
    });
    expect(unit.knnChange).toEqual(crossedMeanInterval3(seeds, 0.95));
    expect(lines.some((l) => l.startsWith("analysis: each part reset where fine-tuning started: the source 5-NN it wins back and the transfer it changes, in points: mean [95% interval over seeds, the banks (the source k-NN's) and images]"))).toBe(true);
    expect(await readFile(join(root, "resets-banks", "analysis-resets.svg"), "utf8")).toContain(">(source k-NN) and images<");
    const csv = (await readFile(join(root, "resets-banks", "analysis.csv"), "utf8")).split("\n");
    const c = a.cells[0];
    expect(csv).toContain(`${c.id},${c.strategy},${c.lr},${c.seed},reset_knn_top1,all,knn.otherBanks[1],${c.resets!.units.find((u) => u.unit === "all")!.otherBanks![1].knn.toPrecision(6)}`);
    // An analysis.json whose resets were not scored against the other banks (a build before them) is made anew.
    const path = join(root, "resets-banks", "analysis.json");
    const before = JSON.parse(await readFile(path, "utf8")) as RunAnalysis;
    for (const c of before.cells) delete c.resets!.tuned.otherBanks;
    await writeFile(path, JSON.stringify(before));
    const again = await analyzeRun(dir, { out: join(root, "resets-banks"), resets: true, reuse: true });
    expect(again.reused).toBe(false);
    expect(again.analysis.cells.every((c) => c.resets!.tuned.otherBanks!.length === 2)).toBe(true);
    expect((await analyzeRun(dir, { out: join(root, "resets-banks"), resets: true, reuse: true })).reused).toBe(true);
  });

  it("measures the backbones kept at analysis.atSteps against every bank, their resets too, and makes an analysis of a build before them anew", async () => {
    const dir = join(root, "steps-banks");
    const r = await runExperiment({ config: study({ otherBanks: [draw(1), draw(2)], analysis: { images: 1000, gridImages: 2, atSteps: [2, 4], resets: true } }), out: dir });
    expect(r.complete).toBe(true);
    const path = join(dir, "analysis.json");
    const a = JSON.parse(await readFile(path, "utf8")) as RunAnalysis;
    // The step that is the best checkpoint's gives the best checkpoint's numbers, against every bank.
    for (const c of a.cells) {
      const { bestStep } = JSON.parse(await readFile(join(dir, "cells", c.id, "result.json"), "utf8")) as { bestStep: number };
      const atBest = c.atSteps!.find((t) => t.step === bestStep)!;
      expect(c.atSteps!.map((t) => t.otherBanks!.length), c.id).toEqual([2, 2]);
      expect(atBest.otherBanks, c.id).toEqual(c.otherBanks);
      expect(atBest.resets!.tuned.otherBanks, c.id).toEqual(c.resets!.tuned.otherBanks);
    }
    // Each row's change per block at each step is three-way, over the seeds that kept it, the three banks and the queries.
    type Answers = { knnCorrect: { bits: string; count: number }[]; otherBanks?: { knnCorrect: { bits: string; count: number }[] }[] };
    for (const row of a.strategies) {
      const group = a.cells.filter((c) => c.strategy === row.strategy && c.lr === row.lr);
      for (const t of row.atSteps!) {
        const kept = group.map((c) => c.atSteps!.find((k) => k.step === t.step)!);
        for (let block = 0; block < a.depth; block++) {
          const answers = (x: Answers) => [x.knnCorrect[block], ...x.otherBanks!.map((b) => b.knnCorrect[block])].map((y) => unpackBits(y.bits, y.count)!);
          expect(t.knnChange[block], `${row.strategy} step ${t.step} block ${block}`).toEqual({ ...changeFromOriginal(kept.map(answers), answers(a.original)), banks: 3 });
        }
        expect(t.resets!.banks).toBe(3);
      }
    }
    expect(await readFile(join(dir, "analysis-steps-knn.svg"), "utf8")).toContain(">original, over seeds, banks and images<");
    expect(await readFile(join(dir, "analysis-steps-resets.svg"), "utf8")).toContain(">image by image, over seeds, banks and images<");
    const c = a.cells[0];
    const csv = (await readFile(join(dir, "analysis-steps.csv"), "utf8")).split("\n");
    expect(csv).toContain(`${c.id},${c.strategy},${c.lr},${c.seed},2,knn_top1,1,knn.otherBanks[1],${c.atSteps![0].otherBanks![1].knn[1].toPrecision(6)}`);
    // An analysis.json whose kept steps were measured against knn.bank alone (a build before them) is made anew.
    for (const cell of a.cells) for (const t of cell.atSteps!) delete t.otherBanks;
    await writeFile(path, JSON.stringify(a));
    const again = await analyzeRun(dir, { reuse: true });
    expect(again.reused).toBe(false);
    expect(again.analysis.cells.every((x) => x.atSteps!.every((t) => t.otherBanks!.length === 2))).toBe(true);
    expect((await analyzeRun(dir, { reuse: true })).reused).toBe(true);
  });

  it("is scored for a finished run folder's cells when added, only for the banks without scores, and not when reordered", async () => {
    const dir = join(root, "added");
    await runExperiment({ config: study(), out: dir });
    expect(existsSync(join(dir, "cells", IDS[0], "knn-banks.json"))).toBe(false);
    const log: string[] = [];
    const run = (otherBanks: unknown[]) => runExperiment({ config: study({ otherBanks }), out: dir, log: (l) => log.push(l) });
    const added = await run([draw(1)]);
    expect(added.ran).toEqual([]);
    expect(log).toContain("knn.otherBanks: classifying 4 cell(s)' queries against the other banks from their best checkpoints");
    expect(log).toContain("knn.otherBanks: classifying the original backbone's queries against the other banks");
    expect(added.results.table[0].knnChange!.banks).toBe(2);
    const first = await banksFile(dir, IDS[0]);
    const grown = await run([draw(1), draw(2)]);
    expect(grown.ran).toEqual([]);
    const both = await banksFile(dir, IDS[0]);
    expect(both[0]).toEqual(first[0]); // kept as it was, its seconds too
    expect(both[1].knn).toEqual((await banksFile(join(root, "with-banks"), IDS[0]))[1].knn);
    log.length = 0;
    const reordered = await run([draw(2), draw(1)]);
    expect(log.filter((l) => l.startsWith("knn.otherBanks"))).toEqual([]);
    expect(reordered.results.cells[0].otherBanks!.map((b) => b.knn)).toEqual([both[1].knn, both[0].knn]);
    expect(reordered.results.rates[0].banks).toBe(3);
    // A damaged file, and one whose bits are of another number of queries (as many right, so the count alone tells),
    // are scored anew, to the same numbers.
    const path = (id: string) => join(dir, "cells", id, "knn-banks.json");
    await writeFile(path(IDS[1]), "{");
    const wrong = JSON.parse(await readFile(path(IDS[2]), "utf8"));
    wrong.banks[0] = { ...wrong.banks[0], knn: { ...wrong.banks[0].knn, 5: { ...wrong.banks[0].knn[5], top1: 100 } }, correct: { count: 3, bits: packBits([1, 1, 1]) } };
    await writeFile(path(IDS[2]), JSON.stringify(wrong));
    log.length = 0;
    const mended = await run([draw(2), draw(1)]);
    expect(log.filter((l) => l.startsWith("knn.otherBanks"))).toEqual(["knn.otherBanks: classifying 2 cell(s)' queries against the other banks from their best checkpoints"]);
    expect(mended.results.cells.map((c) => c.otherBanks)).toEqual(reordered.results.cells.map((c) => c.otherBanks));
  });

  it("gives the banks' entries of an earlier build the classes given, from the best checkpoints, where the pass gives their scores; the rows' confusion is then over every bank", async () => {
    const dir = join(root, "banks-ungiven");
    const config = study({ otherBanks: [draw(1)] });
    const fresh = await runExperiment({ config, out: dir });
    expect(fresh.results.table.every((row) => row.knnConfusion!.banks === 2)).toBe(true);
    const strip = async (path: string, edit: (b: KnnBankScores) => KnnBankScores = (b) => b) => {
      const banks = JSON.parse(await readFile(path, "utf8")).banks as KnnBankScores[];
      const kept = JSON.stringify({ banks });
      await writeFile(path, JSON.stringify({ banks: banks.map((b) => edit({ ...b, correct: { count: b.correct.count, bits: b.correct.bits } })) }));
      return kept;
    };
    const id = `full_lr${fresh.results.table[0].lr}_s0`; // a cell of the table's row
    const cellPath = join(dir, "cells", id, "knn-banks.json");
    const [cellKept, originalKept] = [await strip(cellPath), await strip(join(dir, "knn-banks.json"))];
    const log: string[] = [];
    const r = await runExperiment({ config, out: dir, log: (l) => log.push(l) });
    expect(log).toContain("knn.otherBanks: classifying 1 cell(s)' queries against the other banks from their best checkpoints");
    expect(log).toContain("knn.otherBanks: classifying the original backbone's queries against the other banks");
    expect(JSON.parse(await readFile(cellPath, "utf8"))).toEqual(JSON.parse(cellKept));
    expect(JSON.parse(await readFile(join(dir, "knn-banks.json"), "utf8"))).toEqual(JSON.parse(originalKept));
    expect(r.results.table).toEqual(fresh.results.table);
    // A pass that no longer gives the entry's scores leaves it as it was.
    await strip(cellPath, (b) => ({ ...b, knn: { ...b.knn, 5: { ...b.knn[5], top5: b.knn[5].top5 - 1 } } }));
    const before = await readFile(cellPath, "utf8");
    log.length = 0;
    const left = await runExperiment({ config, out: dir, log: (l) => log.push(l) });
    expect(log.some((l) => l.startsWith(`  ${id}: against knn.otherBanks[0] it scores `) && l.endsWith("its file holds: left without the classes given"))).toBe(true);
    expect(JSON.parse(await readFile(cellPath, "utf8"))).toEqual(JSON.parse(before));
    expect([left.results.table[0].knnChange!.banks, left.results.table[0].knnConfusion!.banks]).toEqual([2, 1]);
  });

  it("takes the original's answers against the banks from a linear-probing cell of a folder that lacks them, and scores the rest", async () => {
    const mini = miniStudy(join(root, "data"), join(root, "cache"));
    const linear = (otherBanks: unknown[]) =>
      parseStudyConfig({ ...mini, knn: { ...mini.knn, bank: draw(0), otherBanks }, strategies: ["linear"], learningRates: [0.3], seeds: [0] });
    const dir = join(root, "linear-banks");
    await runExperiment({ config: linear([draw(1)]), out: dir });
    const measured = await readFile(join(dir, "knn-banks.json"), "utf8");
    // The cell's answers are the original's to the bit: its backbone is frozen.
    expect(JSON.parse(measured).banks.map((b: KnnBankScores) => b.correct)).toEqual((await banksFile(dir, "linear_lr0.3_s0")).map((b) => b.correct));
    await rm(join(dir, "knn-banks.json"));
    const log: string[] = [];
    const r = await runExperiment({ config: linear([draw(1), draw(2)]), out: dir, log: (l) => log.push(l) });
    expect(log).toContain("knn.otherBanks: the original backbone's queries against the other banks from cell linear_lr0.3_s0, whose backbone is the original's");
    expect(log).toContain("knn.otherBanks: classifying the original backbone's queries against the other banks"); // draw(2), which the cell's file lacked
    const banks = JSON.parse(await readFile(join(dir, "knn-banks.json"), "utf8")).banks as KnnBankScores[];
    expect(banks[0].correct).toEqual(JSON.parse(measured).banks[0].correct);
    expect(banks[1].correct).toEqual((await banksFile(dir, "linear_lr0.3_s0"))[1].correct);
    expect(r.results.table[0].knnChange).toEqual({ mean: 0, lo: 0, hi: 0, n: 1, banks: 3 });
  });

  it("refuses banks of other classes or sizes, or sharing images with the bank, the queries or each other, by name, before any work", async () => {
    const refused = (otherBanks: unknown[]) => runExperiment({ config: study({ otherBanks }), out: join(root, "refused") });
    await expect(refused([draw(1, { classes: "0-1" })])).rejects.toThrow("experiment: expected knn.otherBanks[0] to have the 3 classes of knn.bank in the same order, got 2 classes (give both the same classes)");
    await expect(refused([draw(1), draw(2, { perClass: 4 })])).rejects.toThrow("experiment: knn.otherBanks[1]: expected as many images as knn.bank (24: another draw of it), got 12");
    await expect(refused([draw(1, { skipPerClass: 4 })])).rejects.toThrow(/^experiment: knn\.otherBanks\[0\]: expected no image of knn\.bank, got 12 of them \(the first: .*train.*\)$/);
    await expect(refused([{ ...miniData(join(root, "data"), "test", "0-2") }])).rejects.toThrow(/^experiment: knn\.otherBanks\[0\]: expected no image of knn\.queries, got 24 of them/);
    await expect(refused([draw(1), draw(1, { skipPerClass: 12 })])).rejects.toThrow(/^experiment: knn\.otherBanks\[1\]: expected no image of knn\.otherBanks\[0\], got 12 of them/);
    expect(existsSync(join(root, "refused", "cells"))).toBe(false);
  });
});
