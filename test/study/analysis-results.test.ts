// study/analysis-results.ts: per strategy at its table learning rate, each measure's mean and standard deviation
// over seeds per block; analysis.csv with one number per line.
import { describe, expect, it } from "vitest";
import { analysisCsv } from "../../study/analysis-results.js";
import { ORIGINAL_ANSWERS, analysis } from "./analysis-fixture.js";
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

describe("analysisCsv", () => {
  it("writes one number per line: the original's k-NN, then per cell and block every measure", () => {
    const lines = analysisCsv(analysis()).trim().split("\n");
    expect(lines[0]).toBe("cell,strategy,lr,seed,measure,block,part,value");
    expect(lines[1]).toBe("original,original,,,knn_top1,0,,70.0000");
    // Per cell: per block CKA x2, k-NN, the block's and 6 layers' weight change, 2 heads; embedding and norm.
    expect(lines).toHaveLength(1 + 2 + 4 * (2 * (2 + 1 + 7 + 2) + 2));
    expect(lines).toContain("full_lr0.1_s1,full,0.1,1,cka_cls,0,,0.500000");
    expect(lines).toContain("full_lr0.1_s0,full,0.1,0,attention_js,1,head1,0.400000");
    expect(lines).toContain("full_lr0.1_s0,full,0.1,0,weight_change,1,attn.qkv,0.250000");
    expect(lines).toContain("linear_lr0.1_s1,linear,0.1,1,weight_change,embedding,all,0.00000");
  });
});
