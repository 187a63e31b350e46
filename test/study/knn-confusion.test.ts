// Where each row's forgotten queries went (study/knn-confusion.ts): the share of each class's queries given each
// class, less the original's, against hand-counted classes, against the row's change by class (its diagonal) and
// summing to 0 across each line; the banks it is over where some answer set lacks the classes given; its CSV, its
// part of table.md and its figure, and their removal where the results have none.
import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EVERY_QUERY, answersBetweenCsv, answersSince, confusionMoves, knnConfusion, knnConfusionCsv } from "../../study/knn-confusion.js";
import { changeFromOriginal, pairedChange } from "../../study/comparisons.js";
import { type BaselineResult, type CellResult, type Correct, summarize, unpackCorrect } from "../../study/results.js";
import { tableMarkdown, writeReport } from "../../study/report.js";
import { forgettingConfusionCurveSpec, forgettingConfusionSpec } from "../../study/figures/forgetting-confusion.js";
import { renderSvg } from "../../plot/render.js";
import { packBits, packBytes } from "../../util/bits.js";
import { QUERIES, baselineWithAnswers, cellsWithAnswers, config, notes } from "./fixture.js";

const u8 = (a: number[]) => Uint8Array.from(a);

describe("knnConfusion", () => {
  // Six queries of classes a, b, a, c, b, a; d has none.
  const queries = { classes: ["a", "b", "c", "d"], labels: [0, 1, 0, 2, 1, 0] };
  const original = [u8([0, 1, 1, 2, 0, 0])];
  const seeds = [[u8([1, 1, 1, 2, 1, 3])], [u8([0, 0, 3, 2, 1, 1])]];

  it("counts each class's queries by the class given, paired with the original's; a class without queries has no line but is a class given", () => {
    const c = knnConfusion(seeds, original, queries);
    expect(c.given).toEqual(["a", "b", "c", "d"]);
    expect(c.banks).toBe(1);
    expect(c.lines.map((l) => [l.name, l.queries])).toEqual([["a", 3], ["b", 2], ["c", 1]]);
    const [a, b, cc] = c.lines;
    // a's queries (0, 2, 5): the original gave a, b, a; the seeds b, b, d and a, d, b.
    expect(a.original.map((x) => x * 3)).toEqual([200, 100, 0, 0]);
    expect(a.knn.map((x) => x * 6)).toEqual([100, 300, 0, 200]);
    expect(a.change[1]).toEqual(changeFromOriginal([[u8([1, 1, 0])], [u8([0, 0, 1])]], [u8([0, 1, 0])]));
    expect(a.change[1].mean).toBeCloseTo(100 / 6, 12);
    // b's queries (1, 4): the original b, a; the seeds b, b and a, b.
    expect([b.original, b.knn]).toEqual([[50, 50, 0, 0], [25, 75, 0, 0]]);
    expect(cc.change.map((x) => x.mean)).toEqual([0, 0, 0, 0]);
    // Each line's changes sum to 0: a query given another class left the one it had.
    for (const line of [...c.lines, c.every]) expect(line.change.reduce((s, x) => s + x.mean, 0)).toBeCloseTo(0, 12);
  });

  it("has a line of every query, whatever its class: how often each class is the answer, the queries-weighted mean of the lines", () => {
    const c = knnConfusion(seeds, original, queries);
    expect([c.every.name, c.every.queries]).toEqual([EVERY_QUERY, 6]);
    expect(c.every.original.map((x) => x * 6)).toEqual([300, 200, 100, 0]);
    expect(c.every.change[3]).toEqual(changeFromOriginal(seeds.map((b) => b.map((a) => Uint8Array.from(a, (x) => (x === 3 ? 1 : 0)))), [u8([0, 0, 0, 0, 0, 0])]));
    c.given.forEach((_, j) => expect(c.lines.reduce((s, l) => s + l.queries * l.change[j].mean, 0) / 6).toBeCloseTo(c.every.change[j].mean, 12));
  });

  it("has on its diagonal each class's own change, paired as the class's accuracy is", () => {
    const right = (a: Uint8Array) => Uint8Array.from(a, (given, q) => (given === queries.labels[q] ? 1 : 0));
    const c = knnConfusion(seeds, original, queries);
    const members = [[0, 2, 5], [1, 4], [3]];
    c.lines.forEach((line, i) => {
      const of = (a: Uint8Array) => Uint8Array.from(members[i], (q) => right(a)[q]);
      expect(line.change[i]).toEqual(changeFromOriginal(seeds.map((b) => b.map(of)), original.map(of)));
    });
  });

  it("over the banks too: each share the mean over them, its change paired bank by bank", () => {
    const banks = [original[0], u8([1, 1, 1, 2, 1, 0])];
    const both = seeds.map(([s], i) => [s, i === 0 ? u8([0, 1, 0, 2, 1, 1]) : u8([1, 1, 0, 0, 1, 0])]);
    const [a] = knnConfusion(both, banks, queries).lines;
    expect(a.original[0]).toBeCloseTo(50, 12); // 2 of 3 given a against the bank, 1 of 3 against the other
    const as = (c: number) => (x: Uint8Array) => u8([0, 2, 5].map((q) => (x[q] === c ? 1 : 0)));
    expect(a.change[1]).toEqual(changeFromOriginal(both.map((s) => s.map(as(1))), banks.map(as(1))));
  });

  it("from one point of a curve to the next: how often each class is the answer, each seed paired query by query with its own before", () => {
    const before = [[u8([0, 0, 1, 2, 1, 0])], [u8([0, 0, 3, 2, 1, 3])]];
    const since = answersSince(seeds, before, queries.classes);
    expect([since.given, since.banks, since.every.name, since.every.queries]).toEqual([queries.classes, 1, EVERY_QUERY, 6]);
    // Class b: seed 0 from 2 to 4 queries of 6, seed 1 from 1 to 2.
    expect([since.every.original[1], since.every.knn[1]]).toEqual([25, 50]);
    const as = (c: number) => (x: Uint8Array) => Uint8Array.from(x, (v) => (v === c ? 1 : 0));
    expect(since.every.change[1]).toEqual(pairedChange(seeds.map((seed, i) => seed.map((a, b) => [as(1)(a), as(1)(before[i][b])] as [Uint8Array, Uint8Array]))));
    expect(since.every.change.reduce((sum, c) => sum + c.mean, 0)).toBeCloseTo(0, 12);
  });

  it("refuses labels of another number of queries, and a class given beyond the queries' classes", () => {
    expect(() => knnConfusion(seeds, original, { ...queries, labels: [0, 1, 0] })).toThrow("summary: expected a class for each of the 6 k-NN queries the classes given are of, got 3");
    expect(() => knnConfusion([[u8([0, 1, 1, 7, 0, 0])]], original, queries)).toThrow("summary: a k-NN query given class 7, where knn.queries has 4 classes");
  });

  it("lists the moves off the diagonal that grew, largest first", () => {
    // a's queries went to d (+33.3) and b (+16.7); b's to a fell (-25), and c's stayed.
    const moves = confusionMoves(knnConfusion(seeds, original, queries));
    expect(moves.map((m) => [m.from, m.to, m.queries])).toEqual([["a", "d", 3], ["a", "b", 3]]);
    expect(moves[0].change.mean).toBeCloseTo(100 / 3, 12);
    expect(moves[1].change.mean).toBeCloseTo(100 / 6, 12);
  });
});

// The fixture's 40 queries in four classes of 10, the last class's name one a CSV must quote, each answer set given
// the classes its right answers say: a query's own where right, else another (fixed by the query, so the original's
// answers give the original's classes wherever they recur, as at step 0).
const queries = { classes: ["zero", "one", "two", "crane, bird"], labels: Array.from({ length: QUERIES }, (_, q) => q % 4) };
const withGiven = (c: Correct): Correct => ({ ...c, predicted: packBytes(Array.from(unpackCorrect(c), (right, q) => (right ? q % 4 : (q % 4) + 1 + (q % 3)) % 4)) });
const baselineGiven: BaselineResult = { ...baselineWithAnswers, correct: withGiven(baselineWithAnswers.correct) };
const cellsGiven: CellResult[] = cellsWithAnswers.map((c) => ({
  ...c,
  correct: { ...c.correct!, knn: withGiven(c.correct!.knn) },
  knnCurve: c.knnCurve!.map((p) => ({ ...p, correct: withGiven(p.correct!) })),
}));

describe("knnConfusion in the study's results", () => {
  const given = summarize(config, baselineGiven, cellsGiven, notes, queries);

  it("gives each row, and each point of its curve, its confusion, whose diagonal is its change by class; none where an answer set lacks the classes given", () => {
    for (const row of given.table) {
      const points = [{ byClass: row.knnByClass!, confusion: row.knnConfusion! }, ...row.knnCurve!.map((p) => ({ byClass: p.byClass!, confusion: p.confusion! }))];
      for (const { byClass, confusion } of points) {
        expect(confusion.lines.map((l) => l.name)).toEqual(queries.classes);
        expect(confusion.lines.map((line, i) => line.change[i])).toEqual(byClass.map(({ change: { banks: _, ...c } }) => c));
        expect(confusion.lines.map((line, i) => line.knn[i])).toEqual(byClass.map((c) => c.knn));
        expect(confusion.every.queries).toBe(QUERIES);
      }
    }
    // The answers of builds before the classes given, the original's or a cell's: no confusion, the classes as they were.
    const old = summarize(config, baselineWithAnswers, cellsGiven, notes, queries).table;
    expect(old.every((row) => row.knnConfusion === undefined && row.knnByClass && row.knnCurve!.every((p) => p.confusion === undefined))).toBe(true);
    // Full fine-tuning's row (at 0.1) holds the cell of an earlier build; linear probing's rows do not.
    const [full, linear] = summarize(config, baselineGiven, [cellsWithAnswers[0], ...cellsGiven.slice(1)], notes, queries).table;
    expect([full.lr, cellsWithAnswers[0].id]).toEqual([0.1, "full_lr0.1_s0"]);
    expect([full.knnConfusion, full.knnByClass?.length, linear.knnConfusion?.lines.length]).toEqual([undefined, 4, 4]);
  });

  it("gives each point after the first how often each class is the answer since the point before; the spans add up to the last point's line of every query; table.md holds them", () => {
    for (const row of given.table) {
      const [first, ...rest] = row.knnCurve!;
      expect(first.answersSincePrevious).toBeUndefined();
      given.table[0].knnConfusion!.given.forEach((_, j) => {
        const sum = rest.reduce((s, p) => s + p.answersSincePrevious!.every.change[j].mean, 0);
        expect(sum, `${row.lr} class ${j}`).toBeCloseTo(row.knnCurve!.at(-1)!.confusion!.every.change[j].mean, 9); // step 0 is the original
      });
    }
    const md = tableMarkdown(given).split("\n");
    const at = md.findIndex((l) => l.startsWith("As the answer (knn-answers-between.csv): the share of every query given each class at a step less at the step before"));
    expect(md[at]).toContain("over the seeds and every query.");
    expect(md[at + 2]).toBe("| Strategy | Steps | zero | one | two | crane, bird |");
    const [full] = given.table;
    const [, second] = full.knnCurve!;
    expect(md[at + 4].startsWith(`| full | ${full.knnCurve![0].step} → ${second.step} | `)).toBe(true);
    expect(tableMarkdown(summarize(config, baselineWithAnswers, cellsWithAnswers, notes, queries))).not.toContain("As the answer");
  });

  it("is over every bank where every answer set there holds the classes given, else over knn.bank alone", () => {
    const bank = (c: Correct) => ({ knn: { "20": { top1: 0, top5: 0 } }, correct: c });
    const shifted = (c: Correct): Correct => withGiven({ ...c, bits: packBits(unpackCorrect(c).map((x, q) => (q < 4 ? 1 - x : x))) });
    const base = { ...baselineGiven, otherBanks: [bank(shifted(baselineGiven.correct!))] };
    const cells = cellsGiven.map((c) => ({ ...c, otherBanks: [bank(shifted(c.correct!.knn))] }));
    const [row] = summarize(config, base, cells, notes, queries).table;
    expect([row.knnChange!.banks, row.knnConfusion!.banks]).toEqual([2, 2]);
    const bare = cells.map((c, i) => (i === 0 ? { ...c, otherBanks: [bank({ count: QUERIES, bits: c.otherBanks[0].correct.bits })] } : c));
    const [alone] = summarize(config, base, bare, notes, queries).table;
    expect([alone.knnChange!.banks, alone.knnConfusion!.banks]).toEqual([2, 1]);
    expect(alone.knnConfusion).toEqual(summarize(config, baselineGiven, cellsGiven, notes, queries).table[0].knnConfusion);
  });

  it("writes knn-confusion.csv, a line per row, class, class given and point (best, then each step), names quoted where they hold a comma", () => {
    const lines = knnConfusionCsv(given.table).trim().split("\n");
    expect(lines[0]).toBe("strategy,lr,seeds,step,class,given,queries,original_share,share,change,change_lo,change_hi,banks");
    const steps = config.knn.atSteps!;
    expect(lines.length).toBe(1 + given.table.length * 20 * (1 + steps.length));
    const [full] = given.table;
    const line = full.knnConfusion!.lines[3];
    const c = line.change[0];
    expect(lines[13]).toBe(`full,${full.lr},2,best,"crane, bird",zero,10,${line.original[0].toFixed(2)},${line.knn[0].toFixed(2)},${c.mean.toFixed(2)},${c.lo.toFixed(2)},${c.hi.toFixed(2)},1`);
    expect(lines[17].startsWith(`full,${full.lr},2,best,(every query),zero,40,`)).toBe(true);
    expect(lines[21].startsWith(`full,${full.lr},2,${steps[0]},zero,zero,10,`)).toBe(true);
  });

  it("writes knn-answers-between.csv, a line per row, span and class given, its shares at both steps and the change between them", () => {
    const lines = answersBetweenCsv(given.table).trim().split("\n");
    expect(lines[0]).toBe("strategy,lr,seeds,from,to,given,queries,share_from,share_to,change,change_lo,change_hi,banks");
    const steps = config.knn.atSteps!;
    expect(lines.length).toBe(1 + given.table.length * (steps.length - 1) * 4);
    const [full] = given.table;
    const third = full.knnCurve![2];
    const since = third.answersSincePrevious!;
    const c = since.every.change[3];
    expect(lines[4 + 4]).toBe(`full,${full.lr},2,${steps[1]},${steps[2]},"crane, bird",${QUERIES},${since.every.original[3].toFixed(2)},${since.every.knn[3].toFixed(2)},${c.mean.toFixed(2)},${c.lo.toFixed(2)},${c.hi.toFixed(2)},1`);
    // Its shares are the confusion's lines of every query at the two steps.
    expect(since.every.original[3]).toBeCloseTo(full.knnCurve![1].confusion!.every.knn[3], 10);
    expect(since.every.knn[3]).toBeCloseTo(third.confusion!.every.knn[3], 10);
    expect(answersBetweenCsv(summarize(config, baselineWithAnswers, cellsWithAnswers, notes, queries).table)).toBe(lines[0] + "\n");
  });

  it("puts each row's three moves that grew most into table.md", () => {
    const md = tableMarkdown(given).split("\n");
    const at = md.findIndex((l) => l.startsWith("Where the forgotten queries went (knn-confusion.csv, forgetting-confusion.png): "));
    expect(md[at]).toMatch(/mean \[95% confidence interval\] over the seeds and the class's queries\. The three moves .* and the classes given most more and most less often, in points of every query:$/);
    const [full] = given.table;
    const [m] = confusionMoves(full.knnConfusion!);
    expect(md[at + 2]).toMatch(new RegExp(`^- full: ${m.from} → ${m.to} \\+${m.change.mean.toFixed(2)} \\[`));
    const answers = full.knnConfusion!.every.change.map((c) => c.mean);
    const name = (mean: number) => full.knnConfusion!.given[answers.indexOf(mean)];
    expect(md[at + 2]).toContain(`; as the answer, ${name(Math.max(...answers))} +${Math.max(...answers).toFixed(2)} [`);
    expect(md[at + 2]).toContain(`, ${name(Math.min(...answers))} ${Math.min(...answers).toFixed(2)} [`);
    expect(md.slice(at).find((l) => l.startsWith("- linear: "))).toBeDefined();
    expect(tableMarkdown(summarize(config, baselineWithAnswers, cellsGiven, notes, queries))).not.toContain("Where the forgotten queries went");
  });

  it("draws the moves that grew most at the curve's last point against the step, a panel per changed row, each point its confusion's entry", async () => {
    const spec = forgettingConfusionCurveSpec(given) as unknown as { data: { values: { strategy: string; step: number; move: string; value: number; seeds: number }[] } };
    const values = spec.data.values;
    const [full] = given.table;
    const last = full.knnCurve!.at(-1)!.confusion!;
    const top = confusionMoves(last).slice(0, 4).map((m) => `${m.from} → ${m.to}`);
    for (const move of top) expect(values.some((v) => v.strategy === "full" && v.move === move), move).toBe(true);
    for (const v of values.filter((x) => x.strategy === "full")) {
      const c = full.knnCurve!.find((p) => p.step === v.step)!.confusion!;
      const [from, to] = v.move.split(" → ");
      expect(v.value, `${v.move} step ${v.step}`).toBe(c.lines.find((l) => l.name === from)!.change[c.given.indexOf(to)].mean);
    }
    expect(new Set(values.map((v) => v.step)).size).toBe(config.knn.atSteps!.length);
    const svg = await renderSvg(forgettingConfusionCurveSpec(given), "test");
    for (const text of [">How soon lost queries are taken for another class<", ">Source class → class given<", ">Fine-tuning step<", ">full<"]) expect(svg).toContain(text);
    // Without the classes given at any point: nothing to draw, and the report draws none.
    const none = summarize(config, baselineWithAnswers, cellsWithAnswers, notes, queries);
    expect(none.table.every((row) => row.knnCurve!.every((p) => !p.confusion))).toBe(true);
  });

  it("draws a heatmap per changed row and names a row that gave the original's classes; a report without confusion removes the files an earlier one wrote", async () => {
    const dir = await mkdtemp(join(tmpdir(), "knn-confusion-"));
    try {
      await writeReport(dir, given);
      const svg = await readFile(join(dir, "forgetting-confusion.svg"), "utf8");
      expect(svg).toContain(">Where the forgotten queries went:<");
      expect(svg).toContain(">query by query; in grey, the class's own change<");
      expect(svg).toContain(">Class given by the source 20-NN<");
      for (const name of [...queries.classes, "full", EVERY_QUERY]) expect(svg, name).toContain(`>${name}<`);
      expect(svg).toMatch(/>[-\d.]+\*</); // a change beyond chance, starred
      expect(existsSync(join(dir, "forgetting-confusion.png"))).toBe(true);
      expect(existsSync(join(dir, "knn-confusion.csv"))).toBe(true);
      expect(existsSync(join(dir, "knn-answers-between.csv"))).toBe(true);
      expect(await readFile(join(dir, "forgetting-confusion-curve.svg"), "utf8")).toContain(">How soon lost queries are taken for another class<");
      const zero = { mean: 0, lo: 0, hi: 0, n: 2 };
      const frozen = { ...given, table: given.table.map((row) => (row.strategy.kind === "linear" ? { ...row, knnConfusion: { ...row.knnConfusion!, lines: row.knnConfusion!.lines.map((l) => ({ ...l, change: l.change.map(() => zero) })) } } : row)) };
      const named = await renderSvg(forgettingConfusionSpec(frozen), "test");
      expect(named).toContain(">not drawn, the original's class for every query:<");
      await writeReport(dir, summarize(config, baselineWithAnswers, cellsWithAnswers, notes, queries));
      for (const f of ["knn-confusion.csv", "knn-answers-between.csv", "forgetting-confusion.svg", "forgetting-confusion.png", "forgetting-confusion.vl.json", "forgetting-confusion-curve.svg", "forgetting-confusion-curve.png"]) expect(existsSync(join(dir, f)), f).toBe(false);
      expect(existsSync(join(dir, "knn-classes.csv"))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
