// study/figures/analysis-resets.ts, drawn from a hand-made analysis with resets (../analysis-fixture.ts): a panel per
// strategy that trained some part (linear probing none), two bars per part (source k-NN won back, transfer changed),
// error bars with two seeds, none with one.
import { describe, expect, it } from "vitest";
import { renderSvg } from "../../../plot/render.js";
import { resetsSpec } from "../../../study/figures/analysis-resets.js";
import { analysis } from "../analysis-fixture.js";

const bars = (svg: string) => (svg.match(/aria-roledescription="bar"/g) ?? []).length;
const rules = (svg: string) => (svg.match(/aria-roledescription="rule mark"/g) ?? []).length;

describe("the resets figure", () => {
  it("draws each part's two changes for the strategies that trained some, with their intervals over two seeds", async () => {
    const svg = await renderSvg(resetsSpec(analysis([0, 1], undefined, true)), "analysis-resets");
    for (const text of [">What each part's change cost and bought<", ">full<", ">block 0<", ">block 1<", ">all<", ">Part reset<", ">Change from fine-tuned (points)<", ">source k-NN<", ">transfer<", ">image by image, over seeds and images<"]) expect(svg).toContain(text);
    expect(svg).not.toContain(">linear<");
    // 3 parts x 2 accuracies, an interval each; the dashed line at 0.
    expect(bars(svg)).toBe(6);
    expect(rules(svg)).toBe(6);
    expect(svg.match(/stroke-dasharray="6,4"/g)).toHaveLength(1);
  });

  it("says one seed, and draws the intervals over its images alone", async () => {
    const svg = await renderSvg(resetsSpec(analysis([0], undefined, true)), "analysis-resets");
    expect(svg).toContain(">one seed<");
    expect([bars(svg), rules(svg)]).toEqual([6, 6]);
  });
});
