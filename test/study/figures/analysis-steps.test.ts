// study/figures/analysis-steps.ts, drawn from a hand-made analysis whose cells kept steps 10 and 30
// (../analysis-fixture.ts): a panel per strategy, a line per block from step 0 (the original) to the last kept step,
// error bars only with several seeds (± 1 std for CKA and the output change, the change's interval for the k-NN), the
// output change's embeddings as a line of their own, a CKA that is no
// number left out, the steps named in the subtitle, and a figure that says so where no cell kept a step.
import { describe, expect, it } from "vitest";
import { renderSvg } from "../../../plot/render.js";
import { stepsSpec } from "../../../study/figures/analysis-steps.js";
import { analysis } from "../analysis-fixture.js";
import { summarizeAnalysis } from "../../../study/analysis-results.js";
import { results } from "../fixture.js";

const errorBars = (svg: string) => (svg.match(/aria-roledescription="errorbar"/g) ?? []).length;
const points = (svg: string) => (svg.match(/aria-roledescription="point"/g) ?? []).length;

describe("the analysis figures along fine-tuning", () => {
  it("CKA: a panel per strategy, a line per block through step 0 and the kept steps, ± 1 std bars over two seeds", async () => {
    const svg = await renderSvg(stepsSpec(analysis([0, 1], [10, 30]), "cka"), "analysis-steps-cka");
    for (const text of [">full<", ">linear<", ">Block (0 = first)<", ">Linear CKA with the original, CLS token<", ">Fine-tuning step<", ">steps on a symmetric log scale<", ">the backbones kept at steps 10, 30<", ">(analysis.atSteps)<", ">mean over 2 seeds; error bars: ± 1 std over seeds<"]) expect(svg).toContain(text);
    // 2 strategies x 2 blocks x 3 steps (0, 10, 30); bars at the kept steps.
    expect(points(svg)).toBe(12);
    expect(errorBars(svg)).toBe(8);
  });

  it("k-NN: the change from the original with its interval over seeds and images, a reference line at 0; one seed: no bars", async () => {
    const two = await renderSvg(stepsSpec(analysis([0, 1], [10, 30]), "knn"), "analysis-steps-knn");
    expect(two).toContain(">Layer-wise 20-NN change (points)<");
    expect(two).toContain(">original, over seeds and images<");
    expect(errorBars(two)).toBe(8);
    const one = await renderSvg(stepsSpec(analysis([0], [10, 30]), "knn"), "analysis-steps-knn");
    expect(errorBars(one)).toBe(0);
    expect(one).toContain(">one seed<");
  });

  it("output change: a line per part, the embeddings first, from 0 at step 0, ± 1 std bars over two seeds", async () => {
    const svg = await renderSvg(stepsSpec(analysis([0, 1], [10, 30]), "output"), "analysis-steps-output");
    for (const text of [">How far each part's own computation moves<", ">Part<", ">embeddings<", ">block 1<", ">Relative output change (ratio of norms)<", ">each part run on the original's input to it: its<"]) expect(svg).toContain(text);
    // 2 strategies x 3 parts x 3 steps; bars at the kept steps.
    expect(points(svg)).toBe(18);
    expect(errorBars(svg)).toBe(12);
  });

  it("leaves out a CKA that is no number, and a strategy none of whose cells kept a step", async () => {
    const a = analysis([0, 1], [10, 30]);
    for (const c of a.cells) if (c.strategy === "full") c.atSteps![0].cka.cls[1] = NaN;
    for (const c of a.cells) if (c.strategy === "linear") c.atSteps = [];
    const svg = await renderSvg(stepsSpec({ ...a, strategies: summarizeAnalysis(results(), a.cells, a.original) }, "cka"), "analysis-steps-cka");
    expect(svg).toContain(">full<");
    expect(svg).not.toContain(">linear<");
    expect(points(svg)).toBe(2 * 3 - 1);
  });

  it("says so where no cell kept a step (a study that asked for them after its cells trained)", async () => {
    const a = analysis([0, 1], [10, 30]);
    for (const c of a.cells) c.atSteps = [];
    const svg = await renderSvg(stepsSpec({ ...a, strategies: summarizeAnalysis(results(), a.cells, a.original) }, "knn"), "analysis-steps-knn");
    expect(svg).toContain(">How soon each block loses source knowledge<");
    expect(svg).toContain(">nothing to draw<");
  });
});
