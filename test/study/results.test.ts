// study/results.ts: learning-rate selection and seed averaging, from hand-made cell results (./fixture.ts).
import { describe, expect, it } from "vitest";
import { strategyName } from "../../peft/strategy.js";
import { summarize } from "../../study/results.js";
import { baseline, cells, config, notes } from "./fixture.js";

describe("summarize", () => {
  it("picks each strategy's learning rate by seed-averaged transfer accuracy", () => {
    const r = summarize(config, baseline, cells, notes);
    expect(r.table.map((row) => [strategyName(row.strategy), row.lr])).toEqual([["full", 0.1], ["linear", 0.1]]);
    const full = r.table[0];
    expect(full.transfer).toBe(91);
    expect(full.transferStd).toBeCloseTo(Math.SQRT2, 12); // sample std of 90 and 92
    expect(full.knn).toBe(41);
    expect(full.mean).toBe(66);
    expect(full.seeds).toBe(2);
  });

  it("or by the mean of transfer and source k-NN accuracy", () => {
    const r = summarize({ ...config, selectBy: "mean" }, baseline, cells, notes);
    expect(r.table.map((row) => [strategyName(row.strategy), row.lr])).toEqual([["full", 0.01], ["linear", 0.1]]);
  });

  it("leaves out strategies without finished cells", () => {
    expect(summarize(config, baseline, cells.slice(0, 4), notes).table.map((row) => strategyName(row.strategy))).toEqual(["full"]);
  });
});
