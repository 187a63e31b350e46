import { describe, expect, it } from "vitest";
import { type PairedCell, changeFromOriginal, pairedComparisons } from "../../study/comparisons.js";
import { crossedMeanInterval, crossedMeanInterval3, meanInterval } from "../../util/stats.js";
import { packBits, unpackBits } from "../../util/bits.js";
import { type CellResult, summarize } from "../../study/results.js";
import { parseStrategy, strategyName } from "../../peft/strategy.js";
import { tableMarkdown } from "../../study/report.js";
import { QUERIES, baseline, baselineWithAnswers, cells, cellsWithAnswers, config, diverged, notes, results } from "./fixture.js";

const T3 = 4.30265273; // Student's t, 97.5 % quantile, 2 degrees of freedom

function paired(strategy: string, lr: number, seed: number, transfer: number, knn: number): PairedCell {
  return { strategy, lr, seed, transfer, knn };
}

describe("study/comparisons", () => {
  it("pairs every two rows once, in the table's order, over the seeds both finished, at each row's own rate", () => {
    const rows = [{ strategy: "full", lr: 0.01 }, { strategy: "lora-r4", lr: 0.1 }, { strategy: "block-p1", lr: 0.03 }];
    const data = [
      ...[0, 1, 2].map((s) => paired("full", 0.01, s, 90 + s, 70 - 2 * s)),
      paired("full", 0.1, 3, 0, 0), // another rate: not the row's
      ...[2, 0, 1].map((s) => paired("lora-r4", 0.1, s, 92 - s, 80 + s)),
      ...[1, 2].map((s) => paired("block-p1", 0.03, s, 91, 81)), // seed 0 missing (diverged or unfinished)
    ];
    const c = pairedComparisons(rows, data);
    expect(c.map((x) => `${x.a} - ${x.b}: ${x.seeds}`)).toEqual(["full - lora-r4: 0,1,2", "full - block-p1: 1,2", "lora-r4 - block-p1: 1,2"]);
    // full - lora: transfer differences -2, 0, 2 (mean 0, std 2); k-NN -10, -13, -16 (mean -13, std 3).
    const [fl, fb, lb] = c;
    expect(fl.transfer.mean).toBe(0);
    expect(fl.transfer.hi).toBeCloseTo((T3 * 2) / Math.sqrt(3), 7);
    expect(fl.transfer.lo).toBeCloseTo((-T3 * 2) / Math.sqrt(3), 7);
    expect(fl.knn.mean).toBe(-13);
    expect(fl.knn.hi - fl.knn.lo).toBeCloseTo((2 * T3 * 3) / Math.sqrt(3), 7);
    // full - block over seeds 1 and 2: transfer 0, 1; k-NN -13, -15.
    expect([fb.transfer.mean, fb.knn.mean, fb.knn.n]).toEqual([0.5, -14, 2]);
    // lora - block over seeds 1 and 2: transfer 0, -1; k-NN 0, 1.
    expect([lb.transfer.mean, lb.knn.mean]).toEqual([-0.5, 0.5]);
  });

  // Right (1) or wrong (0) on four test images and four queries, per seed: the differences are paired image by image.
  const answers = (transfer: number[], knn: number[]) => ({ transfer: Uint8Array.from(transfer), knn: Uint8Array.from(knn) });
  const percent = (xs: number[]) => (100 * xs.reduce((a, b) => a + b)) / xs.length;
  const withAnswers = (strategy: string, seed: number, transfer: number[], knn: number[]): PairedCell => ({ ...paired(strategy, 1, seed, percent(transfer), percent(knn)), correct: answers(transfer, knn) });

  it("with every cell's answers per image, the interval is the crossed one over seeds and images", () => {
    const rows = [{ strategy: "full", lr: 1 }, { strategy: "linear", lr: 1 }];
    const full = [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1]];
    const linear = [[1, 0, 0, 0], [1, 0, 0, 1], [1, 0, 0, 0]];
    const data = [0, 1, 2].flatMap((s) => [withAnswers("full", s, full[s], linear[s]), withAnswers("linear", s, linear[s], full[s])]);
    const [c] = pairedComparisons(rows, data);
    const d = full.map((row, s) => Float64Array.from(row, (v, i) => 100 * (v - linear[s][i])));
    expect(c.images).toBe(true);
    expect(c.transfer).toEqual(crossedMeanInterval(d, 0.95));
    expect(c.knn).toEqual(crossedMeanInterval(d.map((row) => row.map((v) => -v)), 0.95));
    // The mean is the seeds' mean difference of accuracies, as over the seeds alone: (50 + 25 + 75) / 3 points.
    expect(c.transfer.mean).toBeCloseTo(50, 10);
    // Images 1 and 2 favour full in every seed: the crossed interval is wider than the seeds' alone.
    const seedsAlone = pairedComparisons(rows, data.map(({ correct: _c, ...rest }) => rest))[0];
    expect(seedsAlone.images).toBe(false);
    expect(seedsAlone.transfer.mean).toBeCloseTo(c.transfer.mean, 10);
    expect(c.transfer.hi - c.transfer.lo).toBeGreaterThan(seedsAlone.transfer.hi - seedsAlone.transfer.lo);
    // One cell without its answers: the seeds alone, for the whole pair.
    const [mixed] = pairedComparisons(rows, [...data.slice(0, 5), { ...data[5], correct: undefined }]);
    expect(mixed.images).toBe(false);
    expect(mixed.transfer).toEqual(seedsAlone.transfer);
  });

  it("with every cell's queries against other banks, the k-NN interval is the three-way one over seeds, banks and queries", () => {
    const rows = [{ strategy: "full", lr: 1 }, { strategy: "linear", lr: 1 }];
    // Per seed, the queries right against the bank and against two other banks.
    const full = [[[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0]], [[1, 1, 1, 0], [0, 1, 1, 0], [1, 1, 0, 1]]];
    const linear = [[[1, 0, 0, 0], [1, 0, 0, 1], [0, 0, 1, 0]], [[1, 0, 0, 1], [0, 0, 1, 0], [1, 1, 0, 0]]];
    const cell = (strategy: string, seed: number, banks: number[][]): PairedCell => ({
      ...withAnswers(strategy, seed, [1, 0, 1, 0], banks[0]),
      correct: { ...answers([1, 0, 1, 0], banks[0]), otherBanks: banks.slice(1).map((b) => Uint8Array.from(b)) },
    });
    const data = [0, 1].flatMap((s) => [cell("full", s, full[s]), cell("linear", s, linear[s])]);
    const [c] = pairedComparisons(rows, data);
    expect(c.banks).toBe(3);
    expect(c.knn).toEqual(crossedMeanInterval3(full.map((banks, s) => banks.map((b, j) => Float64Array.from(b, (v, i) => 100 * (v - linear[s][j][i]))))));
    expect(c.knn.hi - c.knn.lo).toBeGreaterThan(0);
    // The transfer interval is the two-way one, as without the banks.
    expect(c.transfer).toEqual(pairedComparisons(rows, data.map((x) => ({ ...x, correct: answers([1, 0, 1, 0], [...x.correct!.knn]) })))[0].transfer);
    // One cell against fewer banks: the bank alone for the pair, over seeds and queries.
    const [fewer] = pairedComparisons(rows, [...data.slice(0, 3), { ...data[3], correct: { ...data[3].correct!, otherBanks: data[3].correct!.otherBanks!.slice(1) } }]);
    expect(fewer.banks).toBe(1);
    expect(fewer.knn).toEqual(crossedMeanInterval(full.map((banks, s) => Float64Array.from(banks[0], (v, i) => 100 * (v - linear[s][0][i])))));
  });

  it("one seed in common gives the difference without an interval; none gives no difference", () => {
    const rows = [{ strategy: "full", lr: 1 }, { strategy: "linear", lr: 1 }];
    const [one] = pairedComparisons(rows, [paired("full", 1, 0, 90, 70), paired("linear", 1, 0, 80, 80), paired("linear", 1, 1, 81, 80)]);
    expect([one.seeds, one.transfer.mean, one.transfer.lo, one.knn.mean, one.knn.hi]).toEqual([[0], 10, NaN, -10, NaN]);
    const [none] = pairedComparisons(rows, [paired("full", 1, 0, 90, 70), paired("linear", 1, 1, 81, 80)]);
    expect(none.seeds).toEqual([]);
    expect(none.transfer.n).toBe(0);
  });

  it("summarize compares the table's rows at their chosen rates, and table.md shows them", () => {
    const r = results(); // full at 0.1 (transfer 90, 92; k-NN 40, 42) against linear at 0.1 (60, 62; 80, 80)
    expect(r.comparisons).toHaveLength(1);
    const [c] = r.comparisons;
    expect([c.a, c.b, c.seeds, c.transfer.mean, c.transfer.lo, c.transfer.hi, c.knn.mean]).toEqual(["full", "linear", [0, 1], 30, 30, 30, -39]);
    const md = tableMarkdown(r);
    expect(md).toContain("A - B in points, paired by seed: mean [95% confidence interval, Student's t]");
    expect(md).toContain("| A - B | Seeds | Transfer acc. | Source k-NN acc. |");
    expect(md).toContain("| full - linear | 2 | +30.00 [+30.00, +30.00] | -39.00 [-51.71, -26.29] |"); // -39 ± 12.706 * sqrt(2) / sqrt(2)
  });

  it("table.md says how many of its intervals would exclude 0 by chance alone", () => {
    // Three rows (top-2 given linear's cells), three pairs sharing both seeds, two intervals each.
    const three = { ...config, strategies: [...config.strategies, parseStrategy("top-2")] };
    const md = tableMarkdown(summarize(three, baseline, [...cells, ...cells.filter((c) => c.strategy === "linear").map((c) => ({ ...c, id: c.id.replace("linear", "top-2"), strategy: "top-2" }))], notes));
    expect(md.split("\n").filter((l) => /^\| [^|]+ - [^|]+ \| 2 \|/.test(l))).toHaveLength(3);
    expect(md).toContain("Each interval is 95% on its own: of these 6, about 0.3 would exclude 0 by chance where no two strategies differed.");
    // And of the three strategies' other rates against their rows', one each.
    expect(md).toContain("Each interval is 95% on its own: of these 6, about 0.3 would exclude 0 by chance where no two rates differed.");
  });

  it("table.md has no differences where no two rows share two seeds", () => {
    const oneSeed = summarize({ ...config, seeds: [0] }, baseline, cells.filter((c) => c.seed === 0), notes);
    expect(oneSeed.comparisons[0].seeds).toEqual([0]);
    expect(tableMarkdown(oneSeed)).not.toContain("paired by seed");
    expect(oneSeed.rates.map((c) => c.seeds)).toEqual([[0], [0]]);
    const oneRow = summarize({ ...config, strategies: config.strategies.slice(0, 1), learningRates: [0.1] }, baseline, cells.filter((c) => c.strategy === "full" && c.lr === 0.1), notes);
    expect([oneRow.comparisons, oneRow.rates]).toEqual([[], []]);
    expect(tableMarkdown(oneRow)).not.toContain("paired by seed");
    // One strategy at two rates: its rates against each other, without the rows' table.
    const twoRates = tableMarkdown(summarize({ ...config, strategies: config.strategies.slice(0, 1) }, baseline, cells.filter((c) => c.strategy === "full"), notes));
    expect(twoRates).not.toContain("Differences between the rows");
    expect(twoRates).toContain("the other rate's cells - the row's in points, paired by seed: mean [95% confidence interval, Student's t] over the seeds both finished.");
  });

  it("table.md says whether its intervals count the draw of the images, and marks the rows whose intervals do not", () => {
    // The fixture's cells (full and linear, seeds 0 and 1) with answers on four images that give their accuracies.
    const bits = (percent: number, count: number) => packBits(Array.from({ length: count }, (_, i) => (i < (percent / 100) * count ? 1 : 0)));
    const answered = (c: (typeof cells)[number]) => ({ ...c, transferAccuracy: 50, knn: { ...c.knn, "20": { top1: 75, top5: 100 } }, correct: { transfer: { count: 4, bits: bits(50, 4) }, knn: { count: 4, bits: bits(75, 4) } } });
    const md = tableMarkdown(summarize(config, baseline, cells.map(answered), notes));
    expect(md).toContain("A - B in points, paired by seed and by image: mean [95% confidence interval] over the seeds both finished and the transfer test images (k-NN queries), both taken as samples");
    expect(md).not.toContain("†");
    // A third row whose cells came from a build before the answers: its two pairs over the seeds alone, marked.
    const three = { ...config, strategies: [...config.strategies, parseStrategy("top-2")] };
    const old = cells.filter((c) => c.strategy === "linear").map((c) => ({ ...c, id: c.id.replace("linear", "top-2"), strategy: "top-2" }));
    const mixed = tableMarkdown(summarize(three, baseline, [...cells.map(answered), ...old], notes));
    expect(mixed).toContain("Rows marked † have cells that do not record which images they got right: their intervals are over the seeds alone (Student's t) and speak of these images.");
    expect(mixed.split("\n").filter((l) => l.includes("| 2 † |")).map((l) => l.split(" | 2")[0])).toEqual(["| full - top-2", "| linear - top-2", "| top-2 | 0.01 - 0.1"]);
    expect(tableMarkdown(results())).toContain("(Its cells, from a build before per-image results, do not record which images they got right; cells trained anew do, and their intervals count the draw of the images too.)");
  });

  it("compares each row's strategy at its other rates with the row's, leaving out rates that diverged, and table.md shows them", () => {
    // By transfer accuracy full's row is 0.1 (91 against 86), linear's 0.1 (61 against 51).
    const r = results();
    expect(r.rates.map((c) => [c.strategy, c.lr, c.rowLr, c.seeds, c.transfer.mean, c.knn.mean])).toEqual([
      ["full", 0.01, 0.1, [0, 1], -5, 30],
      ["linear", 0.01, 0.1, [0, 1], -10, 0],
    ]);
    const md = tableMarkdown(r);
    expect(md).toContain("Each strategy at its other learning rates against its row's rate (its best transfer accuracy), the other rate's cells - the row's in points, paired as above.");
    expect(md).toContain("| Strategy | lr - row's lr | Seeds | Transfer acc. | Source k-NN acc. |");
    // full: 85 - 90 and 87 - 92 of transfer, 70 - 40 and 72 - 42 of k-NN: no spread.
    expect(md).toContain("| full | 0.01 - 0.1 | 2 | -5.00 [-5.00, -5.00] | +30.00 [+30.00, +30.00] |");
    // Chosen by the mean, full's row is 0.01, and 0.1 is the other rate.
    const byMean = summarize({ ...config, selectBy: "mean" }, baseline, cells, notes);
    expect(byMean.rates[0]).toMatchObject({ strategy: "full", lr: 0.1, rowLr: 0.01 });
    expect(tableMarkdown(byMean)).toContain("(its best mean of transfer accuracy and source k-NN)");
    // A rate with a diverged seed is not a candidate, so not compared.
    const lost = summarize(config, baseline, [...cells.filter((c) => c.id !== "full_lr0.01_s1"), diverged("full", 0.01, 1, 5)], notes);
    expect(lost.rates.map((c) => c.strategy)).toEqual(["linear"]);
  });

  it("selectBy knee: of the rates whose transfer the paired interval does not tell from the best's, the one with the most source k-NN", () => {
    // full at 0.1 transfers 91 (90, 92), at 0.01 86 (85, 87): told apart, so the knee is the best, 0.1. Moved to
    // 89.5 and 92.5 at 0.01 (differences -0.5 and +0.5 over the seeds), 0.01 is not told apart and keeps 71 of source k-NN.
    const knee = { ...config, selectBy: "knee" as const };
    expect(summarize(knee, baseline, cells, notes).table.map((row) => row.lr)).toEqual([0.1, 0.1]);
    const near = cells.map((c) => (c.strategy === "full" && c.lr === 0.01 ? { ...c, transferAccuracy: c.seed === 0 ? 89.5 : 92.5 } : c));
    const r = summarize(knee, baseline, near, notes);
    expect(r.table.map((row) => [strategyName(row.strategy), row.lr])).toEqual([["full", 0.01], ["linear", 0.1]]);
    expect(tableMarkdown(r)).toContain("each row shows its knee: of the rates whose transfer accuracy the paired 95% interval does not tell from the best one's, the one with the most source k-NN");
    expect(tableMarkdown(r)).toContain("against its row's rate (its knee)");
    // One seed gives no interval: the best transfer accuracy's rate.
    const one = summarize({ ...knee, seeds: [0] }, baseline, near.filter((c) => c.seed === 0), notes);
    expect(one.table.map((row) => row.lr)).toEqual([0.1, 0.1]);
    // With transfer.val the val accuracies choose, over the seeds alone: 0.01's val equals 0.1's, so it is the knee.
    const val = cells.map((c) => ({ ...c, valAccuracy: c.strategy === "full" ? 90 + c.seed : 70, finalValAccuracy: 60 }));
    const onVal = summarize({ ...knee, transfer: { ...config.transfer, val: { fraction: 0.1 } } }, baseline, val, notes);
    expect(onVal.table.map((row) => row.lr)).toEqual([0.01, 0.1]);
    expect(tableMarkdown(onVal)).toContain("against its row's rate (its knee on transfer.val)");
    // With knn.val its source side is chosen on those images too, and the caption says so; selectBy "transfer" reads
    // no k-NN, so there it says nothing of knn.val.
    const knnVal = { ...onVal, config: { ...onVal.config, knn: { ...onVal.config.knn, val: onVal.config.knn.queries } } };
    expect(tableMarkdown(knnVal)).toContain("against its row's rate (its knee on transfer.val and knn.val)");
    expect(tableMarkdown({ ...knnVal, selectBy: "transfer" })).toContain("against its row's rate (its best transfer accuracy on transfer.val)");
  });

  it("selectBy knee on transfer.val pairs by val image where the cells kept their val answers", () => {
    // full's val accuracy at 0.01 is 0.5 points under 0.1's in both seeds: over the seeds alone an interval of no
    // width, so told apart and the knee is 0.1. The answers say it is 10 images 0.1 got right and 9 others 0.01
    // did, of 200: paired by image as well, not told apart, and the knee is 0.01 (71 of source k-NN against 41).
    const answers = (from: number, right: number) => packBits(Array.from({ length: 200 }, (_, i) => (i >= from && i < from + right ? 1 : 0)));
    const four = { count: 4, bits: packBits([1, 0, 1, 0]) };
    const withVal = (c: CellResult, keep: boolean): CellResult => {
      const high = c.strategy !== "full" || c.lr === 0.1;
      return {
        ...c,
        valAccuracy: high ? 90 : 89.5,
        finalValAccuracy: 80,
        correct: { transfer: four, knn: four, ...(keep && { val: { count: 200, bits: high ? answers(0, 180) : answers(10, 179) } }) },
      };
    };
    const knee = { ...config, selectBy: "knee" as const, transfer: { ...config.transfer, val: { fraction: 0.1 } } };
    expect(summarize(knee, baseline, cells.map((c) => withVal(c, false)), notes).table.map((row) => row.lr)).toEqual([0.1, 0.1]);
    expect(summarize(knee, baseline, cells.map((c) => withVal(c, true)), notes).table.map((row) => row.lr)).toEqual([0.01, 0.1]);
  });

  it("with knn.val, its k-NN accuracy chooses in the queries' stead, for the knee and the mean; unscored cells are named", () => {
    // full at 0.01 is near 0.1 in transfer (as above) and keeps more source k-NN on the queries (71 against 41); on
    // knn.val's images 0.1 keeps more (75 against 60): the knee is 0.1. linear's rates tie on both, the first wins.
    const near = cells.map((c) => (c.strategy === "full" && c.lr === 0.01 ? { ...c, transferAccuracy: c.seed === 0 ? 89.5 : 92.5 } : c));
    const valKnn = (c: CellResult) => ({ "10": { top1: 0, top5: 0 }, "20": { top1: c.strategy === "linear" ? 80 : c.lr === 0.1 ? 75 + c.seed : 60 + c.seed, top5: 99 } });
    const scored = near.map((c) => ({ ...c, valKnn: valKnn(c) }));
    const onVal = (selectBy: "knee" | "mean") => ({ ...config, selectBy, knn: { ...config.knn, val: { ...config.knn.queries, skipPerClass: 200 } } });
    const knee = summarize(onVal("knee"), baseline, scored, notes);
    expect(knee.table.map((row) => row.lr)).toEqual([0.1, 0.1]);
    expect(summarize({ ...onVal("knee"), knn: config.knn }, baseline, scored, notes).table.map((row) => row.lr)).toEqual([0.01, 0.1]);
    expect(knee.table.map((row) => [row.valKnn, row.valKnnStd])).toEqual([[75.5, Math.SQRT1_2], [80, 0]]);
    expect(knee.table[0].knn).toBe(41); // the queries' accuracy is still what the row reports
    // The mean: full at 0.1 (91 + 75.5) / 2 = 83.25 against 0.01's (91 + 60.5) / 2 = 75.75.
    expect(summarize(onVal("mean"), baseline, scored, notes).table.map((row) => row.lr)).toEqual([0.1, 0.1]);
    const md = tableMarkdown(knee);
    expect(md).toContain("the one with the most source k-NN on knn.val (with one seed");
    expect(md).toContain("The rates were chosen on knn.val (");
    const unscored = scored.map((c) => (c.id === "linear_lr0.01_s1" ? { ...c, valKnn: undefined } : c));
    expect(() => summarize(onVal("knee"), baseline, unscored, notes)).toThrow(
      'summary: selectBy "knee" chooses the learning rates on knn.val, but 1 finished cell(s) have no scores on its images (cells/<id>/knn-val.json of this knn.val): linear_lr0.01_s1; experiment --collect scores them from their best checkpoints',
    );
    // Chosen by transfer accuracy, knn.val is only reported: unscored cells leave their row without it.
    const byTransfer = summarize({ ...onVal("knee"), selectBy: "transfer" }, baseline, unscored, notes);
    expect(byTransfer.table.map((row) => row.valKnn)).toEqual([75.5, 80]);
    expect(tableMarkdown(byTransfer)).toContain("is scored too (results.csv), and chose nothing.");
  });

  it("table.md gives a difference that rounds to 0 no sign", () => {
    const r = results();
    const near = { mean: -0.004, lo: -0.3, hi: 0.001, n: 2 };
    const md = tableMarkdown({ ...r, comparisons: [{ ...r.comparisons[0], transfer: near, knn: { mean: 0.0049, lo: 0, hi: 1, n: 2 } }] });
    expect(md).toContain("| full - linear | 2 | 0.00 [-0.30, 0.00] | 0.00 [0.00, +1.00] |");
  });
});

describe("changeFromOriginal", () => {
  const original = Uint8Array.from([1, 1, 0, 0]);
  it("is each seed's answers less the original's, in points, with the crossed interval over seeds and queries", () => {
    const seeds = [Uint8Array.from([1, 0, 0, 0]), Uint8Array.from([0, 1, 0, 1])];
    const change = changeFromOriginal(seeds.map((a) => [a]), [original]);
    expect(change.mean).toBe(-12.5); // seed 0 lost a query (-25 points), seed 1 one and gained one (0)
    expect(change).toEqual(crossedMeanInterval([[0, -100, 0, 0], [-100, 0, 0, 100]]));
  });

  it("against several banks, bank by bank against the original's answers there, over seeds, banks and queries", () => {
    const other = Uint8Array.from([0, 1, 1, 0]);
    const seeds = [[Uint8Array.from([1, 0, 0, 0]), Uint8Array.from([0, 1, 0, 0])], [Uint8Array.from([0, 1, 0, 1]), Uint8Array.from([0, 1, 1, 1])]];
    const change = changeFromOriginal(seeds, [original, other]);
    expect(change).toEqual(crossedMeanInterval3([[[0, -100, 0, 0], [0, 0, -100, 0]], [[-100, 0, 0, 100], [0, 0, 0, 100]]]));
    expect(change.mean).toBe(-6.25); // -25, -25, 0 and +25 over the seeds and banks
  });

  it("is 0 without spread where every seed answers as the original; with one seed, over its queries alone", () => {
    expect(changeFromOriginal([[original], [original]], [original])).toEqual({ mean: 0, lo: 0, hi: 0, n: 2 });
    const one = changeFromOriginal([[Uint8Array.from([0, 1, 0, 0])]], [original]);
    expect(one).toEqual({ ...meanInterval([-100, 0, 0, 0]), n: 1 });
    // With banks too: over the banks and the queries, crossed.
    const banks = changeFromOriginal([[Uint8Array.from([0, 1, 0, 0]), Uint8Array.from([1, 1, 1, 0])]], [original, original]);
    expect(banks).toEqual({ ...crossedMeanInterval([[-100, 0, 0, 0], [0, 0, 100, 0]]), n: 1 });
  });
});

describe("one seed with answers per image", () => {
  it("gives each difference and each row's forgetting an interval over the images alone, and says so", () => {
    const one = summarize({ ...config, seeds: [0] }, baselineWithAnswers, cellsWithAnswers.filter((c) => c.seed === 0), notes);
    const [c] = one.comparisons;
    const bits = (x: { bits: string; count: number }) => unpackBits(x.bits, x.count)!;
    const [full, linear] = ["full", "linear"].map((s) => one.cells.find((x) => x.strategy === s && x.lr === 0.1)!);
    const points = (score: "transfer" | "knn") => Array.from(bits(full.correct![score]), (v, i) => 100 * (v - bits(linear.correct![score])[i]));
    expect(c.seeds).toEqual([0]);
    expect(c.transfer).toEqual({ ...meanInterval(points("transfer")), n: 1 });
    expect(c.knn).toEqual({ ...meanInterval(points("knn")), n: 1 });
    expect(c.knn.hi).toBeLessThan(0); // 16 of 40 queries right against 32
    const md = tableMarkdown(one);
    expect(md).toContain("Differences between the rows, A - B in points, paired image by image: mean [95% confidence interval] over the transfer test images (k-NN queries) alone. One seed: the interval counts the draw of the images, not training's randomness");
    expect(md).toContain(`| full - linear | 1 | ${c.transfer.mean > 0 ? "+" : ""}${c.transfer.mean.toFixed(2)} [`);
    expect(md).toContain(`over the k-NN queries alone (one seed: the interval counts the draw of the queries, not training's randomness`);
    expect(one.table[0].knnChange!.n).toBe(1);
    expect(Number.isFinite(one.table[0].knnChange!.lo)).toBe(true);
    expect(QUERIES).toBe(bits(full.correct!.knn).length);
    // Without answers, one seed has none: no comparisons at all.
    expect(tableMarkdown(summarize({ ...config, seeds: [0] }, baseline, cells.filter((x) => x.seed === 0), notes))).not.toContain("Differences between the rows");
  });
});
