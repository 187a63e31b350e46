// study/figures/analysis-classes.ts: a heatmap per strategy of each block's change class by class, a star where the
// interval excludes 0, linear probing named rather than drawn; nothing to draw without the images' classes.
import { describe, expect, it } from "vitest";
import { classesSpec } from "../../../study/figures/analysis-classes.js";
import { summarizeAnalysis } from "../../../study/analysis-results.js";
import { renderSvg } from "../../../plot/render.js";
import { results } from "../fixture.js";
import { analysis } from "../analysis-fixture.js";

describe("classesSpec", () => {
  const a = analysis();
  const labels = { classes: ["a", "b", "c"], labels: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0] };
  const byClass = { ...a, labels, strategies: summarizeAnalysis(results(), a.cells, a.original, labels) };

  it("draws a panel per changed strategy, a cell per block and class with its change, starred beyond chance", async () => {
    const svg = await renderSvg(classesSpec(byClass), "analysis-classes");
    expect(svg).toContain(">At which depth each source class is lost<");
    expect(svg).toContain(">full<");
    expect(svg).toContain(">mean over 2 seeds; a star where the 95% interval<");
    expect(svg).toContain(">over seeds and images excludes 0<");
    for (const name of labels.classes) expect(svg).toContain(`>${name}<`);
    expect(svg).toContain(">not drawn, the original's answers throughout:<"); // then linear, on a line of its own
    const cells = byClass.strategies[0].knnByClass!.flat();
    for (const c of cells) expect(svg).toContain(`>${c.change.mean.toFixed(1)}${c.change.hi < 0 || c.change.lo > 0 ? "*" : ""}<`);
  });

  it("has nothing to draw without the images' classes, or with more than 20 of them", async () => {
    const svg = await renderSvg(classesSpec(a), "analysis-classes");
    expect(svg).toContain(">nothing to draw<");
    expect(svg).toContain(">no row has its images' classes<");
    const many = { classes: Array.from({ length: 21 }, (_, c) => `c${c}`), labels: labels.labels };
    const wide = await renderSvg(classesSpec({ ...a, labels: many, strategies: summarizeAnalysis(results(), a.cells, a.original, many) }), "analysis-classes");
    expect(wide).toContain(">21 classes, more than 20: not measured<");
  });
});
