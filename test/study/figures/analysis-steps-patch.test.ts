// study/figures/analysis-steps-patch.ts, drawn from the hand-made analysis (../analysis-fixture.ts, kept at steps 10
// and 30): a panel per strategy whose patch projection moved, a line per direction (the patches' first, every
// other) and domain from step 0 (the original, 0) through the kept steps, each point the mean over the seeds, the
// target's dashed; nothing to draw where no row's patch projection moved. And gradient descent's next move on it:
// its cosine with the change so far, at the kept steps alone, with a rule at 0.
import { describe, expect, it } from "vitest";
import { stepDescentSpec, stepPatchSpec } from "../../../study/figures/analysis-steps-patch.js";
import { renderSvg } from "../../../plot/render.js";
import { analysis } from "../analysis-fixture.js";

type Point = { strategy: string; step: number; seeds: number; images: string; direction: string; value: number; lo: number; hi: number };

describe("stepPatchSpec", () => {
  const a = analysis([0, 1], [10, 30]);

  it("draws the patch projection's change along the first direction and every other, on either domain's images, against the step", async () => {
    const values = (stepPatchSpec(a) as unknown as { data: { values: Point[] } }).data.values;
    const [full] = a.strategies;
    expect(new Set(values.map((v) => v.strategy))).toEqual(new Set(["full"]));
    // 3 steps (0, 10, 30) x 2 domains x 2 directions.
    expect(values).toHaveLength(3 * 2 * 2);
    expect(values.filter((v) => v.step === 0).every((v) => v.value === 0)).toBe(true);
    for (const v of values.filter((p) => p.step > 0)) {
      const c = full.atSteps!.find((t) => t.step === v.step)!.patchChange![v.images as "source" | "target"]!;
      const d = v.direction === "along the first direction" ? c.along : c.rest;
      expect([v.value, v.lo, v.hi], `${v.step} ${v.images} ${v.direction}`).toEqual([d.mean, d.mean - d.std, d.mean + d.std]);
    }
    const svg = await renderSvg(stepPatchSpec(a), "analysis-steps-patch");
    for (const text of [">Where the patch projection's change lies<", ">Fine-tuning step<", ">Relative output change (ratio of norms)<", ">along the first direction<", ">along every other<", ">Images<", ">their first direction: 60% of the moment, 99% flat<", ">mean over 2 seeds; error bars: ± 1 std over seeds<"]) {
      expect(svg).toContain(text);
    }
    expect(svg).not.toContain(">linear<");
  });

  it("has nothing to draw where no row's patch projection moved", async () => {
    const still = { ...a, strategies: a.strategies.filter((s) => s.strategy === "linear") };
    const svg = await renderSvg(stepPatchSpec(still), "analysis-steps-patch");
    expect(svg).toContain(">nothing to draw<");
    expect(svg).toContain(">no row's patch projection moved at a kept step (analysis.atSteps)<");
  });

  it("draws the cosine of gradient descent's next move with the change so far, along each direction, at the kept steps", async () => {
    const values = (stepDescentSpec(a) as unknown as { data: { values: Point[] } }).data.values;
    // 2 steps (10, 30) x 2 domains x 2 directions: the fixture's -0.4 along the first direction, +0.6 along the rest.
    expect(values).toHaveLength(2 * 2 * 2);
    for (const v of values) expect([v.strategy, v.value, v.lo, v.hi], `${v.step} ${v.images} ${v.direction}`).toEqual(["full", ...Array(3).fill(v.direction === "along the first direction" ? -0.4 : 0.6)]);
    const svg = await renderSvg(stepDescentSpec(a), "analysis-steps-descent");
    for (const text of [">Where the training loss pulls the patch projection<", ">Cosine with the change so far<", ">+1: further the way it came, -1: back<", ">along every other<", ">their first direction: 60% of the moment, 99% flat<"]) {
      expect(svg).toContain(text);
    }
    const still = { ...a, strategies: a.strategies.map((s) => ({ ...s, atSteps: s.atSteps?.map(({ patchDescent: _, ...t }) => t) })) };
    expect(await renderSvg(stepDescentSpec(still), "analysis-steps-descent")).toContain(">no row's patch projection has its gradient measured at a kept step (analysis.atSteps)<");
  });
});
