// The source k-NN class by class (study/knn-classes.ts): each class's queries taken apart from the rest, against
// hand-counted answers and against the whole row's change (the queries' mean of the classes' changes), at each point
// and between points; its CSVs, its parts of table.md and its figures, and their removal where the results have none.
import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { classesBetweenCsv, classesSince, knnByClass, knnClassesCsv } from "../../study/knn-classes.js";
import { changeFromOriginal, pairedChange } from "../../study/comparisons.js";
import { summarize } from "../../study/results.js";
import { tableMarkdown, writeReport } from "../../study/report.js";
import { forgettingClassesCurveSpec, forgettingClassesSpec } from "../../study/figures/forgetting-classes.js";
import { renderSvg } from "../../plot/render.js";
import { QUERIES, baselineWithAnswers, cellsWithAnswers, config, notes } from "./fixture.js";

const u8 = (a: number[]) => Uint8Array.from(a);

describe("knnByClass", () => {
  // Six queries of classes a, b, a, c, b, a; d has none.
  const queries = { classes: ["a", "b", "c", "d"], labels: [0, 1, 0, 2, 1, 0] };
  const original = [u8([1, 1, 0, 1, 0, 1])];
  const seeds = [[u8([0, 1, 0, 1, 1, 1])], [u8([1, 0, 0, 1, 1, 0])]];

  it("scores each class on its own queries, paired with the original's answers there; a class without queries is left out", () => {
    const [a, b, c, ...rest] = knnByClass(seeds, original, queries);
    expect(rest).toEqual([]);
    expect([a.name, a.queries, b.name, b.queries, c.name, c.queries]).toEqual(["a", 3, "b", 2, "c", 1]);
    // a: the original right on 2 of 3, the seeds on 1 of 3 each.
    expect(a.original).toBeCloseTo(200 / 3, 12);
    expect(a.knn).toBeCloseTo(100 / 3, 12);
    expect(a.change).toEqual({ ...changeFromOriginal([[u8([0, 0, 1])], [u8([1, 0, 0])]], [u8([1, 0, 1])]), banks: 1 });
    expect(a.change.mean).toBeCloseTo(-100 / 3, 12);
    // b: the original 1 of 2, the seeds 2 and 1 of 2.
    expect([b.original, b.knn, b.change.mean]).toEqual([50, 75, 25]);
    expect([c.original, c.knn, c.change.mean]).toEqual([100, 100, 0]);
  });

  it("from one point of a curve to the next: each seed's answers paired with its own before, class by class", () => {
    const before = [[u8([1, 1, 0, 1, 0, 1])], [u8([0, 1, 1, 1, 1, 0])]];
    const [a, b, c] = classesSince(seeds, before, queries);
    // a's queries (0, 2, 5): seed 0 from 1, 0, 1 to 0, 0, 1; seed 1 from 0, 1, 0 to 1, 0, 0.
    expect([a.name, a.queries, a.before, a.knn]).toEqual(["a", 3, 50, 100 / 3]);
    expect(a.change).toEqual({ ...pairedChange([[[u8([0, 0, 1]), u8([1, 0, 1])]], [[u8([1, 0, 0]), u8([0, 1, 0])]]]), banks: 1 });
    expect([b.before, b.knn, b.change.mean]).toEqual([75, 75, 0]);
    expect([c.before, c.knn, c.change.mean]).toEqual([100, 100, 0]);
  });

  it("refuses labels of another number of queries than the answers", () => {
    expect(() => knnByClass(seeds, original, { ...queries, labels: [0, 1, 0] })).toThrow("summary: expected a class for each of the 6 k-NN queries the answers are of, got 3");
  });

  it("over the banks too: each class's accuracy the mean over them, its change paired bank by bank", () => {
    const banks = [original[0], u8([0, 1, 1, 1, 0, 0])];
    const both = seeds.map(([s], i) => [s, i === 0 ? u8([1, 1, 1, 0, 0, 0]) : u8([0, 0, 1, 1, 1, 1])]);
    const [a] = knnByClass(both, banks, queries);
    expect(a.original).toBeCloseTo(100 / 2, 12); // 2 of 3 against the bank, 1 of 3 against the other
    expect(a.knn).toBeCloseTo((100 * (1 + 1 + 2 + 2)) / 12, 12);
    const pick = (x: Uint8Array) => u8([x[0], x[2], x[5]]);
    expect(a.change).toEqual({ ...changeFromOriginal(both.map((s) => s.map(pick)), banks.map(pick)), banks: 2 });
  });
});

describe("knnByClass in the study's results", () => {
  // The fixture's 40 queries in four classes of 10, the last class's name one a CSV must quote.
  const queries = { classes: ["zero", "one", "two", "crane, bird"], labels: Array.from({ length: QUERIES }, (_, q) => q % 4) };
  const answered = summarize(config, baselineWithAnswers, cellsWithAnswers, notes, queries);

  it("gives each row, and each point of its curve, its change by class, whose queries' mean is the whole change; none without the queries' classes", () => {
    for (const row of answered.table) {
      const byClass = row.knnByClass!;
      expect(byClass.map((c) => [c.name, c.queries])).toEqual(queries.classes.map((name) => [name, 10]));
      expect(byClass.reduce((s, c) => s + c.queries * c.change.mean, 0) / QUERIES).toBeCloseTo(row.knnChange!.mean, 10);
      expect(byClass.reduce((s, c) => s + c.queries * c.original, 0) / QUERIES).toBeCloseTo(80, 10);
      for (const p of row.knnCurve!) {
        expect(p.byClass!.reduce((s, c) => s + c.queries * c.change.mean, 0) / QUERIES, `step ${p.step}`).toBeCloseTo(p.change!.mean, 10);
        if (p.step === 0) expect(p.byClass!.every((c) => c.change.mean === 0 && c.knn === c.original)).toBe(true); // the original itself
      }
    }
    const without = summarize(config, baselineWithAnswers, cellsWithAnswers, notes).table;
    expect(without.every((row) => row.knnByClass === undefined && row.knnCurve!.every((p) => p.byClass === undefined))).toBe(true);
  });

  it("gives each point after the first its change by class since the point before, whose queries' mean is the row's change there; knn-classes-between.csv and table.md hold it", () => {
    for (const row of answered.table) {
      const [first, ...rest] = row.knnCurve!;
      expect(first.byClassSincePrevious).toBeUndefined();
      for (const p of rest) expect(p.byClassSincePrevious!.reduce((s, c) => s + c.queries * c.change.mean, 0) / QUERIES, `step ${p.step}`).toBeCloseTo(p.sincePrevious!.mean, 10);
    }
    const lines = classesBetweenCsv(answered.table).trim().split("\n");
    expect(lines[0]).toBe("strategy,lr,seeds,from,to,class,queries,knn_top1_from,knn_top1_to,change,change_lo,change_hi,banks");
    const steps = config.knn.atSteps!;
    expect(lines.length).toBe(1 + answered.table.length * 4 * (steps.length - 1));
    const [full] = answered.table;
    const c = full.knnCurve![1].byClassSincePrevious![3];
    expect(lines[4]).toBe(`full,${full.lr},2,${steps[0]},${steps[1]},"crane, bird",10,${c.before.toFixed(2)},${c.knn.toFixed(2)},${c.change.mean.toFixed(2)},${c.change.lo.toFixed(2)},${c.change.hi.toFixed(2)},1`);
    const md = tableMarkdown(answered).split("\n");
    const at = md.indexOf("| Strategy | Steps | zero | one | two | crane, bird |");
    expect(md[at - 2]).toBe("By class (knn-classes-between.csv): the same on each class's queries, paired the same way, the interval over the seeds and the class's queries.");
    expect(md[at + 2].startsWith(`| full | ${steps[0]} → ${steps[1]} | `)).toBe(true);
    const end = md.findIndex((l, i) => i >= at + 2 && !l.startsWith("| "));
    expect(end - at - 2).toBe(answered.table.length * (steps.length - 1)); // a line per row and span
  });

  it("writes knn-classes.csv, a line per row, class and point (best, then each step), names quoted where they hold a comma, ends empty without an interval", () => {
    const lines = knnClassesCsv(answered.table).trim().split("\n");
    expect(lines[0]).toBe("strategy,lr,seeds,step,class,queries,original_knn_top1,knn_top1,change,change_lo,change_hi,banks");
    const steps = config.knn.atSteps!;
    expect(lines.length).toBe(1 + answered.table.length * 4 * (1 + steps.length));
    const [full] = answered.table;
    const c = full.knnByClass![3];
    expect(lines[4]).toBe(`full,${full.lr},2,best,"crane, bird",10,${c.original.toFixed(2)},${c.knn.toFixed(2)},${c.change.mean.toFixed(2)},${c.change.lo.toFixed(2)},${c.change.hi.toFixed(2)},1`);
    const last = full.knnCurve!.at(-1)!;
    const d = last.byClass![0];
    expect(lines[4 * steps.length + 1]).toBe(`full,${full.lr},2,${last.step},zero,10,${d.original.toFixed(2)},${d.knn.toFixed(2)},${d.change.mean.toFixed(2)},${d.change.lo.toFixed(2)},${d.change.hi.toFixed(2)},1`);
    const one = { ...answered, table: [{ ...full, knnCurve: undefined, knnByClass: [{ ...c, change: { ...c.change, lo: NaN, hi: NaN } }] }] };
    expect(knnClassesCsv(one.table).trim().split("\n")[1].endsWith(`,${c.change.mean.toFixed(2)},,,1`)).toBe(true);
  });

  it("puts a column per class into table.md, headed by the original's accuracy on it; for more than 20 classes, each row's three worst", () => {
    const md = tableMarkdown(answered).split("\n");
    const header = md.findIndex((l) => l.startsWith("| Strategy | Seeds | zero ("));
    expect(md[header - 2]).toMatch(/^Forgetting by class \(knn-classes\.csv, forgetting-classes\.png\): .* mean \[95% confidence interval\] over the seeds and the class's queries\. Each interval is 95% on its own: of these \d+, about [\d.]+ would exclude 0 by chance/);
    const [full] = answered.table;
    const zero = full.knnByClass![0];
    expect(md[header]).toContain(`| zero (${zero.original.toFixed(1)}%, 10 queries) |`);
    expect(md[header + 2].startsWith("| full | 2 | ")).toBe(true);
    // 25 classes: no columns, the three classes each row lost most.
    const many = { classes: Array.from({ length: 25 }, (_, i) => `c${i}`), labels: Array.from({ length: QUERIES }, (_, q) => q % 25) };
    const wide = tableMarkdown(summarize(config, baselineWithAnswers, cellsWithAnswers, notes, many)).split("\n");
    expect(wide.some((l) => l.startsWith("| Strategy | Seeds | c0"))).toBe(false);
    const at = wide.findIndex((l) => l.startsWith("Forgetting by class (knn-classes.csv: every one of the 25 classes of knn.queries)"));
    expect(at).toBeGreaterThan(0);
    expect(wide[at + 2]).toMatch(/^- full: c\d+ [-+\d.]+( \[[-+\d.]+, [-+\d.]+\])?; c\d+ .*; c\d+ /);
  });

  it("draws the figures for at most 20 classes, at the best checkpoints and along the curve, and a report without them removes the files an earlier one wrote", async () => {
    const dir = await mkdtemp(join(tmpdir(), "knn-classes-"));
    try {
      await writeReport(dir, answered);
      const svg = await readFile(join(dir, "forgetting-classes.svg"), "utf8");
      expect(svg).toContain(">Forgetting by source class: ");
      expect(svg).toContain(">mean over 2 seeds; error bars: the 95% interval<");
      expect(svg).toContain(">over seeds and queries<");
      for (const name of queries.classes) expect(svg).toContain(`>${name} (`);
      expect(svg).toContain("stroke-dasharray"); // the line at 0
      expect(svg).not.toContain("the original's answers on every query");
      // A row with the original's answers on every query (linear probing's, where its seeds do not shift them) is named.
      const zero = { mean: 0, lo: 0, hi: 0, n: 2, banks: 1 };
      const frozen = { ...answered, table: answered.table.map((row) => (row.trainableParams < 1000 ? { ...row, knnByClass: row.knnByClass!.map((c) => ({ ...c, change: zero })) } : row)) };
      const named = await renderSvg(forgettingClassesSpec(frozen), "test");
      expect(named).toContain(">the original's answers on every query, bars of 0:<");
      expect(named.split(">linear<").length - 1).toBe(2); // the subtitle's line after it, and the legend
      // Along the curve: a panel per strategy, a line per class; linear probing's, at 0 throughout, named instead.
      const curve = await readFile(join(dir, "forgetting-classes-curve.svg"), "utf8");
      expect(curve).toContain(">How soon each source class is forgotten<");
      for (const name of ["full", "linear", ...queries.classes]) expect(curve, name).toContain(`>${name}<`);
      const frozenCurve = await renderSvg(forgettingClassesCurveSpec({ ...frozen, table: frozen.table.map((row) => (row.trainableParams < 1000 ? { ...row, knnCurve: row.knnCurve!.map((p) => ({ ...p, byClass: p.byClass!.map((c) => ({ ...c, change: zero })) })) } : row)) }), "test");
      expect(frozenCurve).toContain(">not drawn, the original's answers throughout:<");
      expect(existsSync(join(dir, "forgetting-classes.png"))).toBe(true);
      await writeReport(dir, summarize(config, baselineWithAnswers, cellsWithAnswers, notes));
      for (const f of ["knn-classes.csv", "knn-classes-between.csv", "forgetting-classes.svg", "forgetting-classes.png", "forgetting-classes.vl.json", "forgetting-classes-curve.svg", "forgetting-classes-curve.png"]) expect(existsSync(join(dir, f)), f).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
