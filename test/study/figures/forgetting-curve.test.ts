// study/figures/forgetting-curve.ts: the forgetting curve drawn from hand-made cell results (../fixture.ts): axes,
// legend, the measured steps on a symmetric-log axis, a band only with several seeds, the reference line.
import { describe, expect, it } from "vitest";
import { forgettingCurveSpec, labelledSteps } from "../../../study/figures/forgetting-curve.js";
import { renderSvg } from "../../../plot/render.js";
import { summarize } from "../../../study/results.js";
import { QUERIES, answers, baseline, baselineWithAnswers, cells, cellsWithAnswers, config, notes, results } from "../fixture.js";
import { packBits } from "../../../util/bits.js";

// The x position of each tick label of the bottom axis, by its text.
function xTicks(svg: string): Map<string, number> {
  const axis = svg.slice(svg.indexOf('aria-label="X-axis'));
  const labels = axis.slice(axis.indexOf("role-axis-label"), axis.indexOf("role-axis-title"));
  return new Map([...labels.matchAll(/translate\(([\d.]+),[\d.]+\)"[^>]*>(\d+)<\/text>/g)].map((m) => [m[2], Number(m[1])]));
}

// The same results with the curve's steps renamed (as many steps as the fixture's six).
function atSteps(r: ReturnType<typeof results>, steps: number[]): ReturnType<typeof results> {
  const table = r.table.map((row) => ({ ...row, knnCurve: row.knnCurve!.map((p, i) => ({ ...p, step: steps[i] })) }));
  return { ...r, table, config: { ...r.config, knn: { ...r.config.knn, atSteps: steps } } };
}

describe("the forgetting curve", () => {
  it("has labelled axes, a legend of the strategies, a line each and the original backbone's line", async () => {
    const svg = await renderSvg(forgettingCurveSpec(results()), "forgetting");
    for (const text of [
      ">Forgetting during fine-tuning: fashion-mnist-split<",
      ">Fine-tuning step (symmetric log scale)<",
      ">Source k-NN top-1 (%), 20-NN<",
      ">Strategy<",
      ">full<",
      ">linear<",
      ">original backbone (80.00%)<",
    ]) {
      expect(svg).toContain(text);
    }
    expect((svg.match(/aria-roledescription="line mark"/g) ?? []).length).toBe(2);
    expect((svg.match(/aria-roledescription="point"/g) ?? []).length).toBe(2 * 6);
    expect(svg).toMatch(/aria-label="[^"]*: 80; line: original backbone \(80\.00%\)"[^>]*stroke-dasharray="6,4"/);
  });

  it("ticks the measured steps on a log(1 + step) axis, step 0 at its origin", async () => {
    const ticks = xTicks(await renderSvg(forgettingCurveSpec(results()), "forgetting"));
    expect([...ticks.keys()]).toEqual(["0", "1", "3", "10", "30", "60"]);
    const width = ticks.get("60")! - ticks.get("0")!;
    for (const [step, x] of ticks) expect(x - ticks.get("0")!).toBeCloseTo((width * Math.log1p(Number(step))) / Math.log1p(60), 0);
  });

  it("labels the last step always, and a step whose label has no room not at all (its tick stays)", async () => {
    // 1000 and 1500 lie 24 px apart on the 440 px axis: 1500 is where the curves end, so 1000 gives way.
    expect(labelledSteps([0, 10, 100, 300, 1000, 1500])).toEqual([0, 10, 100, 300, 1500]);
    expect(labelledSteps([0, 1, 2, 3, 5, 10, 20, 30, 100, 300])).toEqual([0, 1, 2, 3, 5, 10, 20, 30, 100, 300]);
    expect(labelledSteps([0, 1, 2, 3, 4, 5], 60)).toEqual([0, 1, 3, 5]);
    expect(labelledSteps([0, 1, 2, 3, 4, 5], 20)).toEqual([0, 5]);
    const svg = await renderSvg(forgettingCurveSpec(atSteps(results(), [0, 10, 100, 300, 1000, 1500])), "forgetting");
    expect([...xTicks(svg).keys()]).toEqual(["0", "10", "100", "300", "1500"]);
    // Every measured step keeps its tick: the x axis's first group of ticks.
    expect(svg.slice(svg.indexOf('aria-label="X-axis')).split("role-axis-tick")[1].split("</g>")[0].match(/<line/g)).toHaveLength(6);
  });

  it("draws a band of one std over seeds when seeds > 1, and none with one seed", async () => {
    const two = await renderSvg(forgettingCurveSpec(results()), "forgetting");
    expect((two.match(/aria-roledescription="area mark"/g) ?? []).length).toBe(2);
    expect(two).toContain("band: ± 1 std over seeds");
    const one = await renderSvg(forgettingCurveSpec(summarize(config, baseline, cells.filter((c) => c.seed === 0), notes)), "forgetting");
    expect(one).not.toContain('aria-roledescription="area mark"');
    expect(one).not.toContain("band:");
    const mixed = await renderSvg(forgettingCurveSpec(summarize(config, baseline, cells.filter((c) => c.id !== "linear_lr0.1_s1"), notes)), "forgetting");
    expect((mixed.match(/aria-roledescription="area mark"/g) ?? []).length).toBe(1);
    expect(mixed).toContain(">one seed, so no band: linear<");
  });

  it("draws the band as the 95% interval of the change from the original where the cells kept their answers", async () => {
    const r = summarize(config, baselineWithAnswers, cellsWithAnswers, notes);
    const spec = forgettingCurveSpec(r);
    const svg = await renderSvg(spec, "forgetting");
    for (const text of ["band:<", ">95% interval of the change from the<", ">original, over seeds and queries<"]) expect(svg).toContain(text);
    const band = ((spec as unknown as { layer: { mark: { type: string }; data: { values: { strategy: string; step: number; knnLo: number; knnHi: number }[] } }[] }).layer).find((l) => l.mark.type === "area")!.data.values;
    const full = r.table[0];
    // About the line: the fixture's answers round its accuracies (40 queries), so the line is not 80 + the mean.
    // Two seeds' intervals (one degree of freedom) run past 100 %: an accuracy's interval ends there.
    const end = (x: number) => Math.min(100, Math.max(0, x));
    const about = (row: typeof full) => row.knnCurve!.map((p) => [end(p.knn + p.change!.lo - p.change!.mean), end(p.knn + p.change!.hi - p.change!.mean)]);
    const linear = r.table[1];
    expect(linear.knnCurve!.some((p) => p.knn + p.change!.hi - p.change!.mean > 100)).toBe(true);
    expect(band.filter((b) => b.strategy === "linear").map((b) => [b.knnLo, b.knnHi])).toEqual(about(linear));
    expect(band.some((b) => b.knnHi === 100)).toBe(true);
    expect(band.filter((b) => b.strategy === "full").map((b) => [b.knnLo, b.knnHi])).toEqual(about(full));
    // With knn.otherBanks scored at every point, over the banks too (their mean change, so still about the line).
    const bank = { knn: baseline.knn, correct: { count: QUERIES, bits: packBits(answers(30)) } };
    const withBanks = summarize(
      { ...config, knn: { ...config.knn, otherBanks: [config.knn.bank] } },
      { ...baselineWithAnswers, otherBanks: [bank] },
      cellsWithAnswers.map((c) => ({ ...c, knnCurve: c.knnCurve!.map((p) => ({ ...p, otherBanks: [{ knn: p.knn, correct: { count: QUERIES, bits: packBits(answers(20, c.seed)) } }] })) })),
      notes,
    );
    const spec3 = forgettingCurveSpec(withBanks);
    const band3 = ((spec3 as unknown as { layer: { mark: { type: string }; data: { values: { strategy: string; knnLo: number; knnHi: number }[] } }[] }).layer).find((l) => l.mark.type === "area")!.data.values;
    expect(withBanks.table[0].knnCurve!.every((p) => p.change!.banks === 2)).toBe(true);
    expect(band3.filter((b) => b.strategy === "full").map((b) => [b.knnLo, b.knnHi])).toEqual(about(withBanks.table[0]));
    expect(await renderSvg(spec3, "forgetting")).toContain(">original, over seeds, banks and queries<");
    // A cell without answers: one std over seeds, as before.
    const without = summarize(config, baselineWithAnswers, [{ ...cellsWithAnswers[0], knnCurve: cells[0].knnCurve }, ...cellsWithAnswers.slice(1)], notes);
    expect(await renderSvg(forgettingCurveSpec(without), "forgetting")).toContain("band: ± 1 std over seeds");
  });

  it("needs knn.atSteps", () => {
    const r = results();
    expect(() => forgettingCurveSpec({ ...r, config: { ...r.config, knn: { ...r.config.knn, atSteps: undefined } } })).toThrow(
      "forgetting curve: expected knn.atSteps in the study's config, got none",
    );
  });
});
