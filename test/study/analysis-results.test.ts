// study/analysis-results.ts: per strategy at its table learning rate, each measure's mean and standard deviation
// over seeds per block, and so at each step of analysis.atSteps the row's cells kept; analysis.csv and
// analysis-steps.csv with one number per line.
import { describe, expect, it } from "vitest";
import { analysisBetweenCsv, analysisClassesCsv, analysisConfusionCsv, analysisCsv, analysisStepsCsv, summarizeAnalysis } from "../../study/analysis-results.js";
import { knnConfusion } from "../../study/knn-confusion.js";
import { pairedChange } from "../../study/comparisons.js";
import { intervalEnd } from "../../study/knn-classes.js";
import { type Correct, unpackPredicted } from "../../study/results.js";
import { results } from "./fixture.js";
import { CLASS_LABELS, ORIGINAL_ANSWERS, analysis, withClassesGiven } from "./analysis-fixture.js";
import { crossedMeanInterval } from "../../util/stats.js";
import { unpackBits } from "../../util/bits.js";

describe("summarizeAnalysis", () => {
  it("averages each table row's seeds per block", () => {
    const [full, linear] = analysis().strategies;
    expect([full.strategy, full.lr, full.seeds]).toEqual(["full", 0.1, 2]);
    expect(full.ckaCls[0].mean).toBeCloseTo(0.55, 12);
    expect(full.ckaCls[0].std).toBeCloseTo(Math.SQRT1_2 * 0.1, 12);
    expect(full.knn.map((k) => k.mean)).toEqual([59, 60]);
    expect(full.weights[1].mean).toBeCloseTo(0.35, 12);
    expect(full.attention.map((a) => a.mean)).toEqual([0.2, 0.30000000000000004]);
    expect(full.embedding).toEqual({ mean: 0.9, std: 0 });
    // Each part's output change: seeds 0 and 1 at 0.4 and 0.5 at block 0.
    expect(full.outputChange.embedding).toEqual({ mean: 1.5, std: 0 });
    expect(full.outputChange.blocks[0].mean).toBeCloseTo(0.45, 12);
    expect(full.outputChange.blocks[0].std).toBeCloseTo(Math.SQRT1_2 * 0.1, 12);
    expect(linear.outputChange).toEqual({ embedding: { mean: 0, std: 0 }, blocks: [{ mean: 0, std: 0 }, { mean: 0, std: 0 }] });
    // And on the target-domain images: seeds 0 and 1 at 0.5 and 0.6 at block 1.
    expect(full.targetOutputChange!.embedding).toEqual({ mean: 1.2, std: 0 });
    expect(full.targetOutputChange!.blocks[1].mean).toBeCloseTo(0.55, 12);
    expect(full.targetOutputChange!.blocks[1].std).toBeCloseTo(Math.SQRT1_2 * 0.1, 12);
    // The patch projection's, along its patches' first direction and the rest, on either domain's images.
    expect(full.patchChange!.source.along).toEqual({ mean: 1, std: 0 });
    expect(full.patchChange!.source.rest.mean).toBeCloseTo(0.55, 12);
    expect(full.patchChange!.target!.rest).toEqual({ mean: 0.4, std: 0 });
    expect(linear.patchChange!.source.along).toEqual({ mean: 0, std: 0 });
    expect(linear.ckaCls).toEqual([{ mean: 1, std: 0 }, { mean: 1, std: 0 }]);
    expect(linear.weights).toEqual([{ mean: 0, std: 0 }, { mean: 0, std: 0 }]);
  });

  it("gives each block's layer-wise k-NN less the original's, paired query by query, with the crossed interval over seeds and images", () => {
    const a = analysis();
    const [full, linear] = a.strategies;
    const unpack = (x: { bits: string; count: number }) => unpackBits(x.bits, x.count)!;
    const group = a.cells.filter((c) => c.strategy === "full");
    for (const block of [0, 1]) {
      const table = group.map((c) => Float64Array.from(unpack(c.knnCorrect[block]), (x, q) => 100 * (x - unpack(ORIGINAL_ANSWERS[block])[q])));
      expect(full.knnChange[block]).toEqual({ ...crossedMeanInterval(table), banks: 1 });
    }
    // full: 6 and 6 right at block 0 (60 and 58 %, rounded) against the original's 7; 6 against 8 at block 1.
    expect(full.knnChange.map((d) => d.mean)).toEqual([-10, -20]);
    expect(linear.knnChange).toEqual([0, 1].map(() => ({ mean: 0, lo: 0, hi: 0, n: 2, banks: 1 })));
  });
});

describe("summarizeAnalysis by class", () => {
  it("gives each block's change class by class of the analysed images, whose images' mean is the block's; analysis-classes.csv", () => {
    const a = analysis();
    const labels = { classes: ["a", "b", "c"], labels: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0] };
    const rows = summarizeAnalysis(results(), a.cells, a.original, labels);
    for (const row of rows) {
      row.knnByClass!.forEach((classes, block) => {
        expect(classes.map((c) => [c.name, c.queries])).toEqual([["a", 4], ["b", 3], ["c", 3]]);
        expect(classes.reduce((s, c) => s + c.queries * c.change.mean, 0) / 10, `${row.strategy} block ${block}`).toBeCloseTo(row.knnChange[block].mean, 10);
      });
    }
    // Linear probing: the original's answers, class by class too.
    expect(rows[1].knnByClass!.flat().every((c) => c.change.mean === 0 && c.knn === c.original)).toBe(true);
    expect(summarizeAnalysis(results(), a.cells, a.original)[0].knnByClass).toBeUndefined();
    // More than 20 classes (ImageNet's thousand among a thousand images): not measured class by class.
    const many = { classes: Array.from({ length: 21 }, (_, c) => `c${c}`), labels: labels.labels };
    expect(summarizeAnalysis(results(), a.cells, a.original, many).every((row) => row.knnByClass === undefined)).toBe(true);
    const csv = analysisClassesCsv({ ...a, strategies: rows }).trim().split("\n");
    expect(csv[0]).toBe("strategy,lr,seeds,step,block,class,queries,original_knn_top1,knn_top1,change,change_lo,change_hi,banks");
    expect(csv.length).toBe(1 + 2 * 2 * 3);
    const c = rows[0].knnByClass![1][2];
    expect(csv[6]).toBe(`full,0.1,2,best,1,c,3,${c.original.toFixed(2)},${c.knn.toFixed(2)},${c.change.mean.toFixed(2)},${c.change.lo.toFixed(2)},${c.change.hi.toFixed(2)},1`);
  });

  it("and at each kept step, over the seeds that kept it: analysis-classes.csv's lines after the best checkpoints'", () => {
    const a = analysis([0, 1], [10, 30]);
    const labels = { classes: ["a", "b"], labels: [0, 1, 0, 1, 0, 1, 0, 1, 0, 1] };
    const rows = summarizeAnalysis(results(), a.cells, a.original, labels);
    for (const row of rows) {
      for (const t of row.atSteps!) {
        t.knnByClass!.forEach((classes, block) => {
          expect(classes.reduce((s, c) => s + c.queries * c.change.mean, 0) / 10, `${row.strategy} step ${t.step} block ${block}`).toBeCloseTo(t.knnChange[block].mean, 10);
        });
      }
      expect(row.atSteps!.at(-1)!.knnByClass).toEqual(row.knnByClass); // the last step is the cells' own
    }
    const csv = analysisClassesCsv({ ...a, strategies: rows }).trim().split("\n");
    expect(csv.length).toBe(1 + 2 * 3 * 2 * 2); // rows, best and two steps, blocks, classes
    const d = rows[0].atSteps![0].knnByClass![0][1];
    expect(csv[6]).toBe(`full,0.1,2,10,0,b,5,${d.original.toFixed(2)},${d.knn.toFixed(2)},${d.change.mean.toFixed(2)},${d.change.lo.toFixed(2)},${d.change.hi.toFixed(2)},1`);
  });

  it("gives each block's confusion where the answers hold the classes given, at the best checkpoints and each kept step; analysis-confusion.csv", () => {
    const a = withClassesGiven(analysis([0, 1], [10, 30]));
    const [full] = a.strategies;
    for (const t of [full, ...full.atSteps!]) {
      const kept = t === full ? a.cells.filter((c) => c.strategy === "full") : a.cells.filter((c) => c.strategy === "full").map((c) => c.atSteps!.find((m) => m.step === (t as { step: number }).step)!);
      t.knnConfusion!.forEach((c, block) => {
        const given = (x: { knnCorrect: Correct[] }) => [unpackPredicted(x.knnCorrect[block])!];
        expect(c).toEqual(knnConfusion(kept.map(given), given(a.original), CLASS_LABELS));
      });
    }
    expect(full.atSteps!.at(-1)!.knnConfusion).toEqual(full.knnConfusion); // the last step is the cells' own
    // Without the classes given (an analysis of a build before them), none; the rest as before.
    const bare = analysis([0, 1], [10, 30]);
    const rows = summarizeAnalysis(results(), bare.cells, bare.original, CLASS_LABELS);
    expect(rows.every((row) => row.knnConfusion === undefined && row.knnByClass && row.atSteps!.every((t) => t.knnConfusion === undefined))).toBe(true);
    const csv = analysisConfusionCsv(a).trim().split("\n");
    expect(csv.length).toBe(1 + 2 * 3 * 2 * (3 + 1) * 3); // rows, best and two steps, blocks, lines (and every query), classes given
    const line = full.atSteps![0].knnConfusion![1].lines[2];
    const x = line.change[0];
    expect(csv).toContain(`full,0.1,2,10,1,c,a,${line.queries},${line.original[0].toFixed(2)},${line.knn[0].toFixed(2)},${x.mean.toFixed(2)},${intervalEnd(x.lo)},${intervalEnd(x.hi)},1`);
  });
});

describe("summarizeAnalysis at the kept steps", () => {
  it("averages each step's backbones over the seeds that kept it, the last step's as the cells' own measures", () => {
    const a = analysis([0, 1], [10, 30]);
    const [full, linear] = a.strategies;
    expect(full.atSteps!.map((t) => [t.step, t.seeds])).toEqual([[10, 2], [30, 2]]);
    const [early, last] = full.atSteps!;
    expect(last.ckaCls).toEqual(full.ckaCls);
    expect(last.knn).toEqual(full.knn);
    expect(last.weights).toEqual(full.weights);
    expect(last.attention).toEqual(full.attention);
    expect(last.knnChange).toEqual(full.knnChange);
    // A third of the way: a third of block 0's CKA distance (0.45 on average).
    expect(early.ckaCls[0].mean).toBeCloseTo(1 - 0.45 / 3, 12);
    expect(linear.atSteps!.every((t) => t.ckaCls.every((m) => m.mean === 1))).toBe(true);
    expect(analysis().strategies.every((s) => s.atSteps === undefined)).toBe(true);
  });

  it("gives each part's output change since the kept step before and its turn, on either domain's images, from the second kept step", () => {
    const [full, linear] = analysis([0, 1], [10, 30]).strategies;
    const [first, second] = full.atSteps!;
    expect(first.outputChange.embedding.mean).toBeCloseTo(0.5, 12);
    expect(first.targetOutputChange!.embedding.mean).toBeCloseTo(0.4, 12);
    expect([first.outputSince, first.targetOutputSince]).toEqual([undefined, undefined]);
    expect([second.outputSince!.from, second.targetOutputSince!.from]).toEqual([10, 10]);
    expect([second.outputSince!.embedding.turn, second.targetOutputSince!.embedding.turn]).toEqual([{ mean: -0.5, std: 0 }, { mean: 0.8, std: 0 }]);
    expect(second.targetOutputSince!.blocks[1].change.mean).toBeCloseTo((20 / 30) * 0.55, 12);
    // Linear probing's parts never moved: no turn.
    expect(linear.atSteps![1].targetOutputSince!.embedding.turn.mean).toBeNaN();
    // The patch projection's: along its patches' first direction back the way it came, the rest on.
    expect(first.patchSince).toBeUndefined();
    expect(second.patchSince!.from).toBe(10);
    expect([second.patchSince!.source.along.turn, second.patchSince!.target!.rest.turn]).toEqual([{ mean: -0.7, std: 0 }, { mean: 0.3, std: 0 }]);
    expect(second.patchSince!.source.rest.change.mean).toBeCloseTo((20 / 30) * 0.55, 12);
    expect(first.patchChange!.target!.along.mean).toBeCloseTo(0.3, 12);
    // Gradient descent's next move on it at every kept step, where it moved.
    for (const t of [first, second]) expect([t.patchDescent!.source.along.turn, t.patchDescent!.target!.rest.change, t.patchDescent!.source.along.spread]).toEqual([{ mean: -0.4, std: 0 }, { mean: 1, std: 0 }, { mean: 3, std: 0 }]);
    expect(linear.atSteps!.map((t) => t.patchDescent)).toEqual([undefined, undefined]);
  });

  it("counts at each step the seeds that kept it; a row none of whose cells kept a step has none", () => {
    const a = analysis([0, 1], [10, 30]);
    const [s0, s1] = a.cells.filter((c) => c.strategy === "full");
    s1.atSteps = s1.atSteps!.filter((t) => t.step === 30); // seed 1 kept step 30 alone
    for (const c of a.cells.filter((c) => c.strategy === "linear")) c.atSteps = [];
    const [full, linear] = summarizeAnalysis(results(), a.cells, a.original);
    expect(full.atSteps!.map((t) => [t.step, t.seeds])).toEqual([[10, 1], [30, 2]]);
    expect(full.atSteps![0].ckaCls.map((m) => m.mean)).toEqual(s0.atSteps![0].cka.cls);
    expect(linear.atSteps).toBeUndefined();
    // Seed 1 kept step 30 and not 10: no change since step 10 over some of the seeds.
    expect(full.atSteps!.every((t) => t.knnSincePrevious === undefined && t.outputSince === undefined && t.targetOutputSince === undefined)).toBe(true);
  });

  it("gives each block's change since the kept step before, each seed paired with itself; the spans add up to the last step's change; analysis-steps-between.csv", () => {
    const a = analysis([0, 1], [3, 10, 30]);
    const bits = (x: Correct) => unpackBits(x.bits, x.count)!;
    for (const row of a.strategies) {
      const group = a.cells.filter((c) => c.strategy === row.strategy);
      const [first, ...rest] = row.atSteps!;
      expect(first.knnSincePrevious).toBeUndefined();
      rest.forEach((t, j) => {
        const before = row.atSteps![j].step;
        const at = (c: (typeof group)[number], step: number) => c.atSteps!.find((m) => m.step === step)!;
        t.knnSincePrevious!.forEach((c, block) => {
          expect(c, `${row.strategy} ${before} -> ${t.step} block ${block}`).toEqual({ ...pairedChange(group.map((cell) => [[bits(at(cell, t.step).knnCorrect[block]), bits(at(cell, before).knnCorrect[block])]])), banks: 1 });
        });
      });
      for (let block = 0; block < a.depth; block++) {
        const sum = first.knnChange[block].mean + rest.reduce((x, t) => x + t.knnSincePrevious![block].mean, 0);
        expect(sum, `${row.strategy} block ${block}`).toBeCloseTo(row.atSteps!.at(-1)!.knnChange[block].mean, 10);
      }
    }
    const csv = analysisBetweenCsv(a).trim().split("\n");
    expect(csv[0]).toBe("strategy,lr,seeds,from,to,block,change,change_lo,change_hi,banks");
    expect(csv.length).toBe(1 + 2 * 2 * 2); // rows, spans, blocks
    const c = a.strategies[0].atSteps![2].knnSincePrevious![1];
    expect(csv[4]).toBe(`full,0.1,2,10,30,1,${c.mean.toFixed(2)},${intervalEnd(c.lo)},${intervalEnd(c.hi)},1`);
  });
});

describe("summarizeAnalysis with resets", () => {
  it("gives each part's accuracies over the seeds, and their change from each seed's own fine-tuned answers", () => {
    const a = analysis([0, 1], undefined, true);
    const [full, linear] = a.strategies;
    expect(full.resets!.tuned).toEqual({ transfer: { mean: 90, std: 0 }, knn: { mean: 50, std: 0 } });
    expect(full.resets!.units.map((u) => [u.unit, u.block, u.seeds, u.knn.mean, u.transfer.mean])).toEqual([["block 0", 0, 2, 60, 90], ["block 1", 1, 2, 70, 80], ["all", undefined, 2, 80, 60]]);
    // Each seed against its own answers (seed 1's shifted by one image): the crossed interval over seeds and images.
    const unpack = (x: { bits: string; count: number }) => unpackBits(x.bits, x.count)!;
    const cells = a.cells.filter((c) => c.strategy === "full");
    const diffs = cells.map((c) => Float64Array.from(unpack(c.resets!.units[1].knnCorrect), (right, q) => 100 * (right - unpack(c.resets!.tuned.knnCorrect)[q])));
    const block1 = full.resets!.units[1];
    expect(block1.knnChange).toEqual(crossedMeanInterval(diffs));
    expect([block1.knnChange.mean, block1.transferChange.mean]).toEqual([20, -10]);
    expect(block1.knnChange.lo).toBeLessThan(20);
    expect(linear.resets).toEqual({ tuned: { transfer: { mean: 90, std: 0 }, knn: { mean: 50, std: 0 } }, units: [], banks: 1 });
    expect(analysis().strategies[0].resets).toBeUndefined();
  });
});

describe("analysisStepsCsv", () => {
  it("writes analysis.csv's lines for each kept backbone, its step after the cell", () => {
    const a = analysis([0, 1], [10, 30]);
    const lines = analysisStepsCsv(a).trim().split("\n");
    expect(lines[0]).toBe("cell,strategy,lr,seed,step,measure,block,part,value");
    // As analysis.csv's (below), and at step 30 each part's output change since step 10 and its turn, on either
    // domain's images.
    expect(lines).toHaveLength(1 + 2 * 4 * (2 * (2 + 1 + 7 + 2 + 1) + 2 + 1 + 3 + 4) + 4 * (3 * 2 * 2 + 2 * 2 * 2) + 2 * 2 * 12);
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,10,patch_descent_turn,along,,-0.400000");
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,30,patch_descent,rest,transfer.test,1.00000");
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,30,patch_descent_spread,along,,3.00000");
    const cell = a.cells[1];
    expect(lines).toContain(`full_lr0.1_s1,full,0.1,1,10,cka_cls,0,,${cell.atSteps![0].cka.cls[0].toPrecision(6)}`);
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,30,cka_cls,0,,0.500000");
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,30,output_turn,embedding,,-0.500000");
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,30,output_turn,embedding,transfer.test,0.800000");
    expect(lines).toContain(`full_lr0.1_s1,full,0.1,1,30,output_change_since_previous,1,transfer.test,${((20 / 30) * 0.6).toPrecision(6)}`);
    expect(lines).toContain("linear_lr0.1_s0,linear,0.1,0,30,output_turn,0,transfer.test,NaN");
    expect(lines.filter((l) => l.includes(",10,output_turn,") || l.includes(",10,patch_turn,"))).toEqual([]);
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,30,patch_turn,along,,-0.700000");
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,30,patch_turn,rest,transfer.test,0.300000");
    expect(lines).toContain(`full_lr0.1_s1,full,0.1,1,30,patch_change_since_previous,rest,,${((20 / 30) * 0.6).toPrecision(6)}`);
    expect(lines).toContain(`full_lr0.1_s1,full,0.1,1,10,patch_change,along,transfer.test,${((10 / 30) * 0.9).toPrecision(6)}`);
    expect(analysisStepsCsv(analysis())).toBe("cell,strategy,lr,seed,step,measure,block,part,value\n");
  });
});

describe("analysisCsv", () => {
  it("writes one number per line: the original's k-NN, then per cell and block every measure", () => {
    const lines = analysisCsv(analysis()).trim().split("\n");
    expect(lines[0]).toBe("cell,strategy,lr,seed,measure,block,part,value");
    expect(lines[1]).toBe("original,original,,,knn_top1,0,,70.0000");
    // Per cell: per block CKA x2, k-NN, the block's and 6 layers' weight change, 2 heads, output change; embedding
    // and norm; the embeddings' output change; the output change on the target-domain images, the embeddings' and
    // each block's; the patch projection's along its patches' first direction and the rest, on either domain's.
    expect(lines).toHaveLength(1 + 2 + 4 * (2 * (2 + 1 + 7 + 2 + 1) + 2 + 1 + 3 + 4));
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,patch_change,rest,,0.600000");
    expect(lines).toContain("full_lr0.1_s0,full,0.1,0,patch_change,along,transfer.test,0.900000");
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,output_change,1,transfer.test,0.600000");
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,output_change,embedding,transfer.test,1.20000");
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,cka_cls,0,,0.500000");
    expect(lines).toContain("full_lr0.1_s0,full,0.1,0,attention_js,1,head1,0.400000");
    expect(lines).toContain("full_lr0.1_s0,full,0.1,0,weight_change,1,attn.qkv,0.250000");
    expect(lines).toContain("linear_lr0.1_s1,linear,0.1,1,weight_change,embedding,all,0.00000");
  });
});
