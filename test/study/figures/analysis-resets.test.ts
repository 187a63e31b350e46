// study/figures/analysis-resets.ts, drawn from a hand-made analysis with resets (../analysis-fixture.ts): a panel per
// strategy that trained some part (linear probing none), two bars per part (source k-NN won back, transfer changed),
// error bars with two seeds, none with one; along fine-tuning (analysis.atSteps), a line per part against the step,
// by layers a colour per block and a dash per layer.
import { describe, expect, it } from "vitest";
import { renderSvg } from "../../../plot/render.js";
import { resetsSpec, stepResetsSpec } from "../../../study/figures/analysis-resets.js";
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

describe("the resets figure along fine-tuning", () => {
  const points = (svg: string) => (svg.match(/aria-roledescription="point"/g) ?? []).length;
  const errorBars = (svg: string) => (svg.match(/aria-roledescription="errorbar"/g) ?? []).length;

  it("draws a line per part and all, through step 0 and the kept steps, the source k-NN each reset wins back", async () => {
    const svg = await renderSvg(stepResetsSpec(analysis([0, 1], [10, 30], true)), "analysis-steps-resets");
    for (const text of [">How soon each part's change costs the source domain<", ">full<", ">Part reset<", ">block 0<", ">block 1<", ">all<", ">Source 20-NN won back (points)<", ">Fine-tuning step<", ">the backbones kept at steps 10, 30<", ">(analysis.atSteps)<"]) expect(svg).toContain(text);
    expect(svg).not.toContain(">linear<");
    // 3 lines x 3 steps (0, 10, 30); an interval at each kept step.
    expect(points(svg)).toBe(9);
    expect(errorBars(svg)).toBe(6);
  });

  it("by layers, colours each block's lines alike and dashes each layer, the legend saying which", async () => {
    const svg = await renderSvg(stepResetsSpec(analysis([0, 1], [10, 30], "layers")), "analysis-steps-resets");
    for (const text of [">Part reset<", ">block 0<", ">block 1<", ">all<", ">Layer<", ">attn.qkv<", ">mlp.fc1<", ">whole<"]) expect(svg).toContain(text);
    expect(svg).not.toContain(">block 0 attn.qkv<"); // in the tooltip only
    // 4 lines x 3 steps; block 0's two layers one colour, two dashes (legend and lines).
    expect(points(svg)).toBe(12);
    expect(svg).toContain('stroke-dasharray="8,3"');
    expect(svg).toContain('stroke-dasharray="4,2"');
    const colours = (unit: string) => new Set([...svg.matchAll(new RegExp(`aria-label="[^"]*unit: ${unit}[^"]*"[^>]*stroke="(#[0-9a-f]+)"`, "g"))].map((m) => m[1]));
    expect(colours("block 0 attn.qkv").size).toBe(1);
    expect(colours("block 0 attn.qkv")).toEqual(colours("block 0 mlp.fc1"));
    expect(colours("block 0 attn.qkv")).not.toEqual(colours("block 1 attn.qkv"));
  });

  it("says so where no kept backbone had a part to reset", async () => {
    const a = analysis([0, 1], [10, 30], true);
    for (const s of a.strategies) for (const t of s.atSteps ?? []) t.resets = undefined;
    const svg = await renderSvg(stepResetsSpec(a), "analysis-steps-resets");
    expect(svg).toContain(">nothing to draw<");
    expect(svg).toContain(">no cell of the table's rows kept a backbone at analysis.atSteps<");
  });
});
