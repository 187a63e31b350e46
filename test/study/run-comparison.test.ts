// Two run folders' cells against each other (study/run-comparison.ts): B's cells less A's seed by seed and image by
// image, what differs in the configs, each table row against the other's, what only one run finished, and the runs
// it refuses to pair. Run folders written by hand from the fixture's study (two strategies, two rates, two seeds).
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type StudyConfig, configJson, parseStudyConfig } from "../../study/config.js";
import type { CellOutcome, CellResult } from "../../study/results.js";
import { readRunFolder } from "../../study/run-folder.js";
import { compareRuns, runComparisonMarkdown } from "../../study/run-comparison.js";
import { packBits } from "../../util/bits.js";
import { QUERIES, answeredCell, answers, cells, config, diverged, writeRunFolder } from "./fixture.js";

const root = mkdtempSync(join(tmpdir(), "run-comparison-"));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// Run A: each cell right on 30 + seed test images and 20 + seed queries, full at 0.1 on two more.
const cellsA = cells.map((c) => answeredCell(c, 30 + c.seed + (c.strategy === "full" && c.lr === 0.1 ? 2 : 0), 20 + c.seed));
const writeRun = (name: string, study: StudyConfig, results: CellOutcome[]) => writeRunFolder(join(root, name), study, results);
const base = JSON.parse(JSON.stringify(configJson(config)));
const withConfig = (overrides: Record<string, unknown>) => parseStudyConfig({ ...base, ...overrides });
// A cell whose backbone after each step of `steps` was right on `right(step)` of the queries (the seed's own run).
const curvedCell = (c: CellResult, right: (step: number) => number, steps = config.knn.atSteps!): CellResult => ({
  ...c,
  knnCurve: steps.map((step) => ({ step, knn: { ...c.knn, "20": { top1: (100 * right(step)) / QUERIES, top5: 99 } }, correct: { count: QUERIES, bits: packBits(answers(right(step), c.seed)) } })),
});
const compared = async (a: string, b: string, opts = {}) => compareRuns(await readRunFolder(a, "compare"), await readRunFolder(b, "compare"), opts);

describe("compareRuns", () => {
  it("finds nothing between a run and a copy of it: every difference 0, no change of the config", async () => {
    const [a, b] = [await writeRun("a", config, cellsA), await writeRun("a-copy", config, cellsA)];
    const c = await compared(a, b);
    expect(c.changes).toEqual([]);
    expect(c.pairs.map((p) => [p.strategy, p.lrA, p.lrB])).toEqual([["full", 0.01, 0.01], ["full", 0.1, 0.1], ["linear", 0.01, 0.01], ["linear", 0.1, 0.1]]);
    for (const p of c.pairs) expect([p.transfer.mean, p.transfer.lo, p.transfer.hi, p.knn.mean, p.seeds, p.images]).toEqual([0, 0, 0, 0, [0, 1], true]);
    expect(runComparisonMarkdown(c)).toContain("Their configs hold the same study");
  });

  it("pairs B's cells with A's seed by seed and image by image, and names what differs in B's config", async () => {
    // B trained longer: each cell right on 4 more test images, and on 2 + seed fewer queries.
    const longer = withConfig({ training: { ...base.training, steps: 90 } });
    const cellsB = cellsA.map((c) => answeredCell(c, Math.round((c.transferAccuracy * QUERIES) / 100) + 4, 18));
    const [a, b] = [join(root, "a"), await writeRun("longer", longer, cellsB)];
    const c = await compared(a, b);
    expect(c.changes).toEqual(["training.steps: 60 -> 90"]);
    for (const p of c.pairs) {
      expect(p.transfer.mean, `${p.strategy} ${p.lrA}`).toBeCloseTo((100 * 4) / QUERIES, 10);
      // Seed 0 loses 2 queries, seed 1 loses 3: the mean is -2.5 queries' worth, and the seeds' spread widens it.
      expect(p.knn.mean).toBeCloseTo((-100 * 2.5) / QUERIES, 10);
      expect(p.knn.lo).toBeLessThan(p.knn.mean);
      expect(p.knn.hi).toBeGreaterThan(p.knn.mean);
      const mine = cellsA.filter((x) => x.strategy === p.strategy && x.lr === p.lrA);
      expect(p.a.transfer).toBeCloseTo(mine.reduce((s, x) => s + x.transferAccuracy, 0) / 2, 10);
      expect(p.b.transfer - p.a.transfer).toBeCloseTo(p.transfer.mean, 10);
    }
    const markdown = runComparisonMarkdown(c);
    expect(markdown).toContain("What differs in B's config from A's: training.steps: 60 -> 90.");
    expect(markdown).toContain("| full | 0.1 | 2 | 81.25 / 51.25 | 91.25 / 45.00 | +10.00 [");
  });

  it("with tableRates, sets each strategy's table row in B against its row in A, whose rates may differ", async () => {
    // In B full fine-tuning at 0.01 transfers best: its row moves there.
    const cellsB = cellsA.map((c) => (c.strategy === "full" && c.lr === 0.01 ? answeredCell(c, 36, 20 + c.seed) : c));
    const c = await compared(join(root, "a"), await writeRun("rows", config, cellsB), { tableRates: true });
    expect(c.pairs.map((p) => [p.strategy, p.lrA, p.lrB])).toEqual([["full", 0.1, 0.01], ["linear", 0.1, 0.1]]);
    expect(c.pairs[0].transfer.mean).toBeCloseTo((100 * (36 - 32.5)) / QUERIES, 10);
    expect(runComparisonMarkdown(c)).toContain("Each strategy at its table rate in each run (lr: A's -> B's)");
    expect(runComparisonMarkdown(c)).toContain("| full | 0.1 -> 0.01 | 2 |");
  });

  it("with rates, sets each strategy's cells at one rate in A against those at another in B", async () => {
    const c = await compared(join(root, "a"), join(root, "rows"), { rates: [0.1, 0.01] });
    expect(c.pairs.map((p) => [p.strategy, p.lrA, p.lrB])).toEqual([["full", 0.1, 0.01], ["linear", 0.1, 0.01]]);
    expect(c.pairs[0].transfer.mean).toBeCloseTo((100 * (36 - 32.5)) / QUERIES, 10);
    expect(c.pairs[1].transfer.mean).toBe(0); // linear's cells at 0.01 answer as those at 0.1
    expect(runComparisonMarkdown(c)).toContain("Each strategy at 0.1 in A and 0.01 in B, B's cells - A's in points");
    await expect(compared(join(root, "a"), join(root, "rows"), { rates: [0.1, 0.3] })).rejects.toThrow("finished with a common seed (full lr 0.1: A only; linear lr 0.1: A only)");
  });

  it("names the rates one run alone finished, and keeps to the strategies asked for", async () => {
    const fewer = withConfig({ learningRates: [0.1] });
    const c = await compared(join(root, "a"), await writeRun("fewer", fewer, cellsA.filter((x) => x.lr === 0.1)), { strategies: ["linear"] });
    expect(c.pairs.map((p) => [p.strategy, p.lrA])).toEqual([["linear", 0.1]]);
    expect(c.unpaired).toEqual(["linear lr 0.01: A only"]);
    expect(c.changes).toEqual(["learningRates: [0.1,0.01] -> [0.1]"]);
    expect(runComparisonMarkdown(c)).toContain("Not compared: linear lr 0.01: A only.");
  });

  it("pairs the seeds both runs finished, and names a seed that diverged", async () => {
    const lost = [...cellsA.filter((x) => x.id !== "full_lr0.1_s1"), diverged("full", 0.1, 1, 20)];
    const c = await compared(join(root, "a"), await writeRun("diverged", config, lost), { strategies: ["full"] });
    expect(c.pairs.map((p) => [p.lrA, p.seeds])).toEqual([[0.01, [0, 1]], [0.1, [0]]]);
    expect(c.unpaired).toEqual(["full lr 0.1: seed 1 diverged in B"]);
  });

  it("refuses runs of other test images or queries, another k, a strategy not in both, and runs with no cell in common", async () => {
    const a = join(root, "a");
    const test = withConfig({ transfer: { ...base.transfer, test: { ...base.transfer.test, perClass: 7 } } });
    await expect(compared(a, await writeRun("other-test", test, cellsA))).rejects.toThrow(
      new RegExp(`^compare: ${a} and ${join(root, "other-test")} scored other transfer\\.test images \\(.*against.*"perClass":7.*\\): their cells cannot be paired image by image$`),
    );
    const queries = withConfig({ knn: { ...base.knn, queries: { ...base.knn.queries, perClass: 7 } } });
    await expect(compared(a, await writeRun("other-queries", queries, cellsA))).rejects.toThrow("scored other knn.queries images");
    const k10 = withConfig({ knn: { ...base.knn, reportK: 10 } });
    const at10 = cellsA.map((x) => ({ ...x, knn: { ...x.knn, "10": x.knn["20"] } })); // its bits answer at k = 10
    await expect(compared(a, await writeRun("k10", k10, at10))).rejects.toThrow(`compare: ${a} reports the 20-NN and ${join(root, "k10")} the 10-NN (knn.reportK): expected the same k`);
    await expect(compared(a, a, { strategies: ["lora-r4"] })).rejects.toThrow("compare: --strategies: expected strategies of both runs (full, linear), got lora-r4");
    const other = withConfig({ seeds: [2] });
    const seed2 = cellsA.filter((x) => x.seed === 0).map((x) => ({ ...x, id: x.id.replace(/_s0$/, "_s2"), seed: 2 }));
    await expect(compared(a, await writeRun("seed2", other, seed2))).rejects.toThrow(
      `compare: no strategy and rate that both ${a} and ${join(root, "seed2")} finished with a common seed (full lr 0.1: no seed finished in both; full lr 0.01: no seed finished in both; linear lr 0.1: no seed finished in both; linear lr 0.01: no seed finished in both)`,
    );
    await mkdir(join(root, "empty"), { recursive: true });
    await writeFile(join(root, "empty", "config.json"), JSON.stringify(configJson(config)));
    await expect(compared(a, join(root, "empty"))).rejects.toThrow(`compare: ${join(root, "empty")} has no finished cells`);
  });

  it("with curve, pairs each strategy's forgetting curves step by step, seed by seed and query by query", async () => {
    // B forgets from step 10 on: each seed's backbone right on 2 + seed fewer queries there.
    const curvesA = cellsA.map((c) => curvedCell(c, () => 30));
    const curvesB = cellsA.map((c) => curvedCell(c, (step) => (step >= 10 ? 28 - c.seed : 30)));
    const [a, b] = [await writeRun("curve-a", config, curvesA), await writeRun("curve-b", config, curvesB)];
    const c = await compared(a, b, { curve: true });
    expect(c.curveSteps).toEqual([0, 1, 3, 10, 30, 60]);
    for (const p of c.pairs) {
      expect(p.curve!.map((q) => q.step)).toEqual(c.curveSteps);
      for (const q of p.curve!) {
        expect([q.seeds, q.images, q.banks]).toEqual([[0, 1], true, 1]);
        expect(q.a).toBeCloseTo(75, 10);
        expect(q.knn.mean, `${p.strategy} ${p.lrA} step ${q.step}`).toBeCloseTo(q.step >= 10 ? (-100 * 2.5) / QUERIES : 0, 10);
        expect(q.b - q.a).toBeCloseTo(q.knn.mean, 10);
      }
      // The seeds disagree (2 and 3 queries): an interval about the mean.
      expect(p.curve![3].knn.lo).toBeLessThan(p.curve![3].knn.mean);
      expect(p.curve![3].knn.hi).toBeGreaterThan(p.curve![3].knn.mean);
    }
    const markdown = runComparisonMarkdown(c);
    expect(markdown).toContain("Along fine-tuning (knn.atSteps): each pair's cells' backbones after 0, 1, 3, 10, 30, 60 steps, B's source k-NN - A's in points, paired by seed and by image");
    expect(markdown).toContain("of these 24, about 1.2 would exclude 0 by chance");
    expect(markdown).toContain("| full | 0.1 | 0 | 2 | 75.00 | 75.00 | 0.00 [0.00, 0.00] |");
    expect(markdown).toContain("| full | 0.1 | 10 | 2 | 75.00 | 68.75 | -6.25 [-15.11, +2.61] |");
    // Without the flag, no curve.
    const plain = await compared(a, b);
    expect([plain.curveSteps, plain.pairs[0].curve]).toEqual([undefined, undefined]);
    expect(runComparisonMarkdown(plain)).not.toContain("Along fine-tuning");
  });

  it("with curve, pairs the steps both runs scored, over the seeds alone where the points kept no answers, and names the others", async () => {
    // The cells of run A keep their points' scores without their answers (a build before them).
    const fewer = withConfig({ knn: { ...base.knn, atSteps: [0, 10, 30] } });
    const c = await compared(join(root, "a"), await writeRun("fewer-steps", fewer, cellsA.map((x) => curvedCell(x, () => 30, [0, 10, 30]))), { curve: true });
    expect(c.curveSteps).toEqual([0, 10, 30]);
    expect(c.unpaired).toEqual(["knn.atSteps 1, 3, 60: A only"]);
    expect(c.pairs[0].curve!.map((q) => q.images)).toEqual([false, false, false]);
    expect(runComparisonMarkdown(c)).toContain("paired by seed: mean [95% confidence interval, Student's t] over the seeds both finished");
    expect(runComparisonMarkdown(c)).toContain("Not compared: knn.atSteps 1, 3, 60: A only.");
  });

  it("with curve, pairs the points against the other banks too where both runs drew the same ones", async () => {
    // Against the other bank, B's backbones after step 10 are right on 4 fewer queries; against knn.bank on none.
    const onBanks = withConfig({ knn: { ...base.knn, otherBanks: [base.knn.bank] } });
    const point = (right: number, seed: number) => ({ knn: { "20": { top1: (100 * right) / QUERIES, top5: 99 } }, correct: { count: QUERIES, bits: packBits(answers(right, seed)) } });
    const banked = (c: CellResult, other: (step: number) => number) => ({
      ...curvedCell(c, () => 30),
      otherBanks: [point(30, c.seed)],
      knnCurve: curvedCell(c, () => 30).knnCurve!.map((p) => ({ ...p, otherBanks: [point(other(p.step), c.seed)] })),
    });
    const a = await writeRun("banks-a", onBanks, cellsA.map((c) => banked(c, () => 30)));
    const b = await writeRun("banks-b", onBanks, cellsA.map((c) => banked(c, (step) => (step >= 10 ? 26 : 30))));
    const q = (await compared(a, b, { curve: true })).pairs[0].curve!;
    expect(q.map((x) => [x.step, x.banks])).toEqual([[0, 2], [1, 2], [3, 2], [10, 2], [30, 2], [60, 2]]);
    expect(q[3].knn.mean).toBeCloseTo((-100 * 4) / QUERIES / 2, 10); // the mean over both banks
    expect(q[2].knn.mean).toBe(0);
    // Against another draw of the other bank in B, the points pair against knn.bank alone.
    const redrawn = withConfig({ knn: { ...base.knn, otherBanks: [{ ...base.knn.bank, perClass: 7 }] } });
    const c = await writeRun("banks-c", redrawn, cellsA.map((c) => banked(c, () => 26)));
    expect((await compared(a, c, { curve: true })).pairs[0].curve!.map((x) => [x.banks, x.knn.mean])).toEqual(q.map(() => [1, 0]));
  });

  it("with curve, refuses runs that did not score their backbones after some same step", async () => {
    const { atSteps: _, ...knn } = base.knn;
    const none = withConfig({ knn });
    const b = await writeRun("no-steps", none, cellsA.map((x) => ({ ...x, knnCurve: undefined })));
    await expect(compared(join(root, "a"), b, { curve: true })).rejects.toThrow(
      `compare: --curve: expected runs that scored their backbones after some same step of fine-tuning (knn.atSteps), got ${join(root, "a")} at steps 0, 1, 3, 10, 30, 60 and ${b} at none`,
    );
    expect((await compared(join(root, "a"), b)).pairs.length).toBe(4); // without the flag, the cells alone
  });
});

