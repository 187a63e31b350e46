// study/report.ts: the output files from hand-made cell results (./fixture.ts): CSV, Table 1, the files written.
import { describe, expect, it } from "vitest";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { REPORT_FILES, formatCount, resultsCsv, spansCsv, tableMarkdown, writeReport } from "../../study/report.js";
import { baseline, baselineWithAnswers, cells, cellsOnBanks, cellsWithAnswers, config, configOnBanks, diverged, notes, results } from "./fixture.js";
import { summarize } from "../../study/results.js";

describe("report files", () => {
  const r = results();

  it("CSV: a header, the original backbone and one row per cell, all the same width", () => {
    const lines = resultsCsv(r).trim().split("\n").map((l) => l.split(","));
    expect(lines[0]).toEqual([
      "id", "strategy", "lr", "seed", "trainable_params", "paper_params", "transfer_acc", "final_transfer_acc", "best_step",
      "knn10_top1", "knn10_top5", "knn20_top1", "knn20_top5", "mean", "train_seconds", "images_per_second",
    ]);
    expect(lines.length).toBe(2 + cells.length);
    expect(lines.every((l) => l.length === lines[0].length)).toBe(true);
    expect(lines[1].slice(0, 2)).toEqual(["original", "original"]);
    expect(lines[2]).toContain("90.00");
  });

  it("Table 1: the original backbone, then one row per strategy with mean ± std over seeds", () => {
    const md = tableMarkdown(r);
    const rows = md.split("\n").filter((l) => l.startsWith("| "));
    expect(rows[0]).toBe("| Strategy | #Trainable params | Transfer acc. (%) | Source k-NN acc. (%) | Mean (%) | lr |");
    expect(rows[1]).toBe("| original backbone (not fine-tuned) | 0 | – | 80.00 | – | – |");
    expect(rows[2]).toBe("| full | 210.0K | 91.00 ± 1.41 | 41.00 ± 1.41 | 66.00 | 0.1 |");
    expect(rows[3]).toBe("| linear | 325 | 61.00 ± 1.41 | 80.00 ± 0.00 | 70.50 | 0.1 |");
    expect(md).toContain("20-NN top-1");
    expect(md).toContain("mean ± std over 2 seeds");
    expect(md).toContain("- Forgetting curve (forgetting.png, results.json): the same k-NN accuracy of each row's backbone after 0, 1, 3, 10, 30, 60 fine-tuning steps.");
    expect(md).not.toContain("diverged");
    expect(md).not.toContain("Not finished");
  });

  it("Forgetting: each row's change from the original backbone at its best checkpoint and after each step, where the answers were kept", () => {
    expect(tableMarkdown(r)).not.toContain("Forgetting:");
    const answered = summarize(config, baselineWithAnswers, cellsWithAnswers, notes);
    const md = tableMarkdown(answered);
    expect(md).toContain("Forgetting: each row's source k-NN accuracy less the original backbone's (80.00%), in points, paired query by query with the original's answers: mean [95% confidence interval]");
    const lines = md.split("\n");
    const header = lines.indexOf("| Strategy | Seeds | Best checkpoint | Step 1 | Step 3 | Step 10 | Step 30 | Step 60 |"); // step 0 is the original itself
    expect(header).toBeGreaterThan(0);
    const [full, linear] = answered.table;
    const shown = (d: { mean: number; lo: number; hi: number }) => [d.mean, d.lo, d.hi].map((x) => (Math.abs(x) < 0.005 ? "0.00" : `${x > 0 ? "+" : ""}${x.toFixed(2)}`));
    const [mean, lo, hi] = shown(full.knnChange!);
    expect(lines[header + 2].startsWith(`| full | 2 | ${mean} [${lo}, ${hi}] |`)).toBe(true);
    const [lMean, lLo, lHi] = shown(linear.knnChange!); // its seeds shift which queries are right, not how many
    expect(lines[header + 3].startsWith(`| linear | 2 | 0.00 [${lLo}, ${lHi}] |`)).toBe(true);
    expect(lMean).toBe("0.00");
    // The first step whose interval is below 0; linear probing's never is.
    const first = full.knnCurve!.find((p) => p.step > 0 && p.change!.hi < 0)!.step;
    expect(first).toBeGreaterThan(0);
    expect(linear.knnCurve!.every((p) => p.change!.hi >= 0)).toBe(true);
    expect(md).toContain(`can tell): full step ${first}, linear none.`);
    // Between steps: a column per step and the one before it.
    const between = lines.indexOf("| Strategy | Seeds | 0 → 1 | 1 → 3 | 3 → 10 | 10 → 30 | 30 → 60 |");
    expect(lines[between - 2]).toMatch(/^Between steps \(forgetting-between-steps\.\*\): each row's source k-NN accuracy at a step less at the step before, in points, each seed's answers paired query by query with its own there: mean \[95% confidence interval\] over the seeds and the k-NN queries\. An interval wholly below 0/);
    const [sMean, sLo, sHi] = shown(full.knnCurve!.find((p) => p.step === 10)!.sincePrevious!);
    expect(lines[between + 2].split(" | ")[4]).toBe(`${sMean} [${sLo}, ${sHi}]`); // 3 → 10
    // To the last step: from each earlier one, a span of its own.
    const toLast = lines.indexOf("| Strategy | Seeds | 0 → 60 | 1 → 60 | 3 → 60 | 10 → 60 | 30 → 60 |");
    expect(lines[toLast - 2]).toMatch(/^To the last step \(knn-spans\.csv holds every pair of steps\): each row's source k-NN accuracy at step 60 less at each earlier step, paired the same way: mean \[95% confidence interval\] over the seeds and the k-NN queries\. /);
    const [tMean, tLo, tHi] = shown(full.knnSpans!.find((s) => s.from === 3 && s.to === 60)!.change);
    expect(lines[toLast + 2].split(" | ")[4]).toBe(`${tMean} [${tLo}, ${tHi}]`);
    expect(lines[toLast + 2].split(" | ")[6]).toBe(lines[between + 2].split(" | ")[6]); // 30 → 60, the neighbours
    // knn-spans.csv: every pair, with the row's accuracy at both steps.
    const csv = spansCsv(answered).trim().split("\n");
    expect(csv[0]).toBe("strategy,lr,seeds,from,to,knn_top1_from,knn_top1_to,change,change_lo,change_hi,banks");
    expect(csv.length).toBe(1 + 2 * 15);
    const span = full.knnSpans!.find((s) => s.from === 3 && s.to === 60)!.change;
    const knnAt = (step: number) => full.knnCurve!.find((p) => p.step === step)!.knn.toFixed(2);
    expect(csv).toContain(`full,0.1,2,3,60,${knnAt(3)},${knnAt(60)},${span.mean.toFixed(2)},${span.lo.toFixed(2)},${span.hi.toFixed(2)},1`);
    expect(tableMarkdown(summarize(config, baseline, cellsWithAnswers, notes))).not.toContain("Between steps");
    // Spans over the banks and spans against knn.bank alone: the latter marked.
    const spanBanks = {
      ...answered,
      table: answered.table.map((row) => ({
        ...row,
        knnCurve: row.knnCurve!.map((p) => (p.sincePrevious && p.step !== 10 ? { ...p, sincePrevious: { ...p.sincePrevious, banks: 2 } } : p)),
        knnSpans: row.knnSpans!.map((s) => (s.from !== 10 && s.to !== 10 && s.from !== 3 ? { ...s, change: { ...s.change, banks: 2 } } : s)),
      })),
    };
    const spanMd = tableMarkdown(spanBanks).split("\n");
    expect(spanMd.find((l) => l.startsWith("Between steps ("))).toContain("over the seeds, the k-NN queries and the banks († against knn.bank alone,");
    const spanFull = spanMd[spanMd.indexOf("| Strategy | Seeds | 0 → 1 | 1 → 3 | 3 → 10 | 10 → 30 | 30 → 60 |") + 2];
    expect(spanFull.split("|").slice(3, -1).map((c) => c.trim().endsWith("†"))).toEqual([false, false, true, false, false]);
    const lastFull = spanMd[spanMd.indexOf("| Strategy | Seeds | 0 → 60 | 1 → 60 | 3 → 60 | 10 → 60 | 30 → 60 |") + 2];
    expect(lastFull.split("|").slice(3, -1).map((c) => c.trim().endsWith("†"))).toEqual([false, false, true, true, false]);
    // With knn.otherBanks, it says which banks.
    const banks = { ...answered, config: { ...config, knn: { ...config.knn, otherBanks: [config.knn.bank] } } };
    expect(tableMarkdown(banks)).toContain("Against knn.bank alone: the original backbone or the cells were not classified against every bank of knn.otherBanks.");
    // Every change over the banks: said once. Where the curve's points were not scored on them (a curve of an
    // earlier build), those marked.
    const everyBank = { ...banks, table: banks.table.map((row) => ({ ...row, knnChange: { ...row.knnChange!, banks: 2 }, knnCurve: row.knnCurve!.map((p) => ({ ...p, change: { ...p.change!, banks: 2 } })) })) };
    const allMd = tableMarkdown(everyBank);
    expect(allMd).toContain("together explain. Over the bank and its 1 other draw(s) (knn.otherBanks) as well (three-way crossed), the mean over every bank.\n");
    expect(allMd).not.toContain("†");
    const bestOnly = { ...banks, table: banks.table.map((row) => ({ ...row, knnChange: { ...row.knnChange!, banks: 2 } })) };
    const mixedMd = tableMarkdown(bestOnly);
    expect(mixedMd).toContain(
      "the mean over every bank; † against knn.bank alone, where the original or a cell (a curve of a build before its points kept those scores) was not classified against every bank.",
    );
    const fullLine = mixedMd.split("\n").find((l) => l.startsWith("| full | 2 |"))!;
    expect(fullLine.split("|").slice(3, -1).map((c) => c.trim().endsWith("†"))).toEqual([false, true, true, true, true, true]);
  });

  it("says whether the rule chooses the table's rates given the queries' k-NN against each bank in turn", () => {
    expect(tableMarkdown(summarize(configOnBanks, baseline, cellsOnBanks, notes))).toContain(
      "Given the queries' source k-NN against each bank in turn (knn.bank and its 1 other draw(s)) the rule chooses other rates with 1 of the 2: knn.otherBanks[0]: full 0.1 (the table's 0.01).",
    );
    const same = cellsOnBanks.map((c) => ({ ...c, otherBanks: [{ ...c.otherBanks![0], knn: c.knn }] }));
    expect(tableMarkdown(summarize(configOnBanks, baseline, same, notes))).toContain("(knn.bank and its 1 other draw(s)) the rule chooses the table's rates with every bank.");
    expect(tableMarkdown(r)).not.toContain("each bank in turn");
  });

  it("says how the cells were fine-tuned: batch, optimiser, and the products' precision where it is not f32", () => {
    expect(tableMarkdown(r)).toContain(`batch ${config.training.batchSize}, ${config.training.optimizer})`);
    expect(tableMarkdown(r)).not.toContain("precision");
    const int8 = summarize({ ...config, training: { ...config.training, precision: "int8" } }, baseline, cells, notes);
    expect(tableMarkdown(int8)).toContain(`batch ${config.training.batchSize}, ${config.training.optimizer}, precision int8 (products as 3 int8 slices))`);
    const int8x2 = summarize({ ...config, training: { ...config.training, precision: "int8x2" } }, baseline, cells, notes);
    expect(tableMarkdown(int8x2)).toContain(`${config.training.optimizer}, precision int8x2 (products as 2 int8 slices))`);
    const f16 = summarize({ ...config, training: { ...config.training, precision: "f16" } }, baseline, cells, notes);
    expect(tableMarkdown(f16)).toContain(`${config.training.optimizer}, mixed precision (f16 products))`);
  });

  it("Table 1 of a study collected before every cell finished: from the finished cells, naming the missing", () => {
    const partial = summarize(config, baseline, cells.slice(0, 5), notes);
    expect(partial.missing).toEqual(["linear_lr0.1_s1", "linear_lr0.01_s0", "linear_lr0.01_s1"]);
    const md = tableMarkdown(partial);
    expect(md.split("\n").filter((l) => l.startsWith("| linear"))).toEqual(["| linear | 325 | 60.00 | 80.00 | 70.00 | 0.1 |"]);
    expect(md).toContain("- Not finished when this report was written, so left out: linear_lr0.1_s1, linear_lr0.01_s0, linear_lr0.01_s1.");
  });

  it("Table 1: names diverged rates in a strategy's row, and a strategy whose every rate diverged as such", () => {
    const lost = [diverged("full", 0.1, 1, 7), diverged("linear", 0.1, 0, 3), diverged("linear", 0.01, 1, 5)];
    const kept = cells.filter((c) => !lost.some((d) => d.id === c.id));
    const md = tableMarkdown(summarize(config, baseline, [...kept, ...lost], notes));
    const rows = md.split("\n").filter((l) => l.startsWith("| "));
    expect(rows.slice(2)).toEqual([
      "| full | 210.0K | 86.00 ± 1.41 | 71.00 ± 1.41 | 78.50 | 0.01 (0.1 diverged) |",
      "| linear | – | every rate diverged | – | – | 0.1, 0.01 |",
    ]);
    expect(md).toContain(
      "- Diverged, so left out of the choice of learning rate (a non-finite loss or parameter; a rerun with --retry-diverged trains them again): " +
        "full lr 0.1 seed 1 at step 7 (loss NaN); linear lr 0.1 seed 0 at step 3 (loss NaN); linear lr 0.01 seed 1 at step 5 (loss NaN).",
    );
  });

  it("writes every file, each figure as its Vega-Lite spec, SVG and PNG at 2x; the curve only with knn.atSteps, the trade-off with several rates", async () => {
    const dir = await mkdtemp(join(tmpdir(), "report-test-"));
    try {
      const files = await writeReport(dir, r);
      const figures = ["figure2", "forgetting", "tradeoff"].flatMap((f) => [`${f}.vl.json`, `${f}.svg`, `${f}.png`]);
      expect(files.map((f) => f.slice(dir.length + 1))).toEqual(["results.json", "results.csv", "table.md", ...figures]);
      expect(REPORT_FILES).toEqual(expect.arrayContaining(files.map((f) => f.slice(dir.length + 1))));
      // No Block Expansion here, and no forgetting by class (its results were not given the queries' classes).
      expect(REPORT_FILES.filter((f) => !files.some((p) => p.endsWith(`/${f}`)))).toEqual(["knn-classes.csv", "knn-classes-between.csv", "knn-confusion.csv", "knn-answers-between.csv", "knn-spans.csv", "figure3.vl.json", "figure3.svg", "figure3.png", "forgetting-classes.vl.json", "forgetting-classes.svg", "forgetting-classes.png", "forgetting-classes-curve.vl.json", "forgetting-classes-curve.svg", "forgetting-classes-curve.png", "forgetting-confusion.vl.json", "forgetting-confusion.svg", "forgetting-confusion.png", "forgetting-confusion-curve.vl.json", "forgetting-confusion-curve.svg", "forgetting-confusion-curve.png", "forgetting-between-steps.vl.json", "forgetting-between-steps.svg", "forgetting-between-steps.png"]);
      const json = JSON.parse(await readFile(join(dir, "results.json"), "utf8"));
      expect(Object.keys(json)).toEqual(["name", "reportK", "temperature", "selectBy", "selectedOn", "notes", "baseline", "table", "comparisons", "rates", "cells", "diverged", "missing", "config"]);
      for (const f of ["figure2", "forgetting", "tradeoff"]) {
        const svg = await readFile(join(dir, `${f}.svg`), "utf8");
        const [, width, height] = /^<svg [^>]*width="(\d+)" height="(\d+)"/.exec(svg)!;
        const meta = await sharp(join(dir, `${f}.png`)).metadata();
        expect([meta.format, meta.width, meta.height], f).toEqual(["png", 2 * Number(width), 2 * Number(height)]);
        expect(JSON.parse(await readFile(join(dir, `${f}.vl.json`), "utf8")).$schema, f).toContain("vega-lite");
      }
      const plain = join(dir, "plain");
      const without = await writeReport(plain, { ...r, config: { ...r.config, knn: { ...r.config.knn, atSteps: undefined } } });
      expect(without.map((f) => f.slice(plain.length + 1))).toEqual(["results.json", "results.csv", "table.md", "figure2.vl.json", "figure2.svg", "figure2.png", "tradeoff.vl.json", "tradeoff.svg", "tradeoff.png"]);
      const oneRate = join(dir, "one-rate");
      const chosen = { ...r, cells: r.cells.filter((c) => c.lr === 0.1), config: { ...r.config, learningRates: [0.1] } };
      expect((await writeReport(oneRate, chosen)).map((f) => f.slice(oneRate.length + 1))).not.toContain("tradeoff.svg");
      const empty = join(dir, "empty"); // every strategy diverged: no figure
      expect((await writeReport(empty, { ...r, table: [] })).map((f) => f.slice(empty.length + 1))).toEqual(["results.json", "results.csv", "table.md"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it("a report rewritten where a figure no longer applies removes that figure's earlier files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "report-test-"));
    try {
      await writeReport(dir, r); // both rates: the trade-off across them is drawn
      // Since then the config dropped the rate 0.01 (its finished cells are kept aside, not reported): no trade-off.
      await writeReport(dir, summarize({ ...config, learningRates: [0.1] }, baseline, cells.filter((c) => c.lr === 0.1), notes));
      expect((await readdir(dir)).filter((f) => f.startsWith("tradeoff"))).toEqual([]);
      await writeReport(dir, { ...r, table: [] }); // every strategy diverged: no figure at all
      expect((await readdir(dir)).sort()).toEqual(["results.csv", "results.json", "table.md"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("formatCount", () => {
  it("writes parameter counts compactly", () => {
    expect([formatCount(325), formatCount(9999), formatCount(210_000), formatCount(85_800_000)]).toEqual(["325", "9999", "210.0K", "85.80M"]);
  });
});
