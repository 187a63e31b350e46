// study/figures/analysis-steps-between.ts: the per-block change between kept steps drawn from the hand-made analysis
// (../analysis-fixture.ts, kept at steps 3, 10 and 30): a panel per changed strategy, a line per span, a cell per
// block with its change since the kept step before; linear probing named, not drawn; nothing to draw without two
// kept steps.
import { describe, expect, it } from "vitest";
import { stepsBetweenSpec } from "../../../study/figures/analysis-steps-between.js";
import { renderSvg } from "../../../plot/render.js";
import { analysis } from "../analysis-fixture.js";

describe("stepsBetweenSpec", () => {
  const a = analysis([0, 1], [3, 10, 30]);

  it("draws a panel per changed strategy, a line per span of kept steps, each cell its block's change since the step before", async () => {
    const values = (stepsBetweenSpec(a) as unknown as { data: { values: { strategy: string; block: number; span: string; change: number }[] } }).data.values;
    const [full] = a.strategies;
    expect(new Set(values.map((v) => v.strategy))).toEqual(new Set(["full"]));
    expect([...new Set(values.map((v) => v.span))]).toEqual(["3 → 10", "10 → 30"]);
    for (const v of values) {
      const t = full.atSteps!.find((s) => `→ ${s.step}` === v.span.slice(v.span.indexOf("→")))!;
      expect(v.change, `${v.span} block ${v.block}`).toBe(t.knnSincePrevious![v.block].mean);
    }
    expect(values).toHaveLength(2 * a.depth);
    const svg = await renderSvg(stepsBetweenSpec(a), "analysis-steps-between");
    for (const text of [">Which blocks go on forgetting between kept steps<", ">Block (0 = first)<", ">Fine-tuning steps (from → to)<", ">full<", ">not drawn, the same answers throughout: linear<", ">mean over 2 seeds; a star where the 95% interval<"]) {
      expect(svg).toContain(text);
    }
  });

  it("has nothing to draw where no row kept two steps with every seed", async () => {
    const one = await renderSvg(stepsBetweenSpec(analysis([0, 1], [30])), "analysis-steps-between");
    expect(one).toContain(">nothing to draw<");
    expect(one).toContain(">no row kept two steps with every seed (analysis.atSteps)<");
  });
});
