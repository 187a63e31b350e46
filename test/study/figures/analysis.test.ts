// study/figures/analysis.ts and attention-grid.ts, drawn from a hand-made analysis (../analysis-fixture.ts): the CKA
// heatmap's two panels and values, the layer-wise k-NN curves with the original as a dashed line and error bars only
// with several seeds, the weight-change heatmap with Block Expansion's new block marked, the attention drift
// heatmap, each heatmap's std in small print, the note on seeds, and the attention grid.
import { describe, expect, it } from "vitest";
import { renderSvg } from "../../../plot/render.js";
import { attentionDriftSpec, ckaHeatmapSpec, layerKnnSpec, weightChangeSpec } from "../../../study/figures/analysis.js";
import { attentionGrid } from "../../../study/figures/attention-grid.js";
import { results } from "../fixture.js";
import { analysis } from "../analysis-fixture.js";
import { summarizeAnalysis } from "../../../study/analysis-results.js";

const errorBars = (svg: string) => (svg.match(/aria-roledescription="errorbar"/g) ?? []).length;

describe("the analysis figures", () => {
  it("CKA heatmap: strategies x blocks, CLS and pooled panels, each value written", async () => {
    const svg = await renderSvg(ckaHeatmapSpec(analysis()), "analysis-cka");
    for (const text of [">CLS token<", ">all tokens, mean-pooled<", ">Block (0 = first)<", ">Strategy<", ">full<", ">linear<", ">0.550<", ">1.000<", ">0.900<"]) expect(svg).toContain(text);
    // Linear probing's four cells (2 blocks, 2 panels) read 1.000.
    expect((svg.match(/>1\.000</g) ?? []).length).toBe(4);
  });

  it("heatmaps: with several seeds, each cell's std in small print under its mean; with one seed, none", async () => {
    // full's CLS CKA at block 0: 0.6 and 0.5 over the seeds, mean 0.55, std 0.0707; its block 1 weight change 0.3
    // and 0.4.
    const cka = await renderSvg(ckaHeatmapSpec(analysis()), "analysis-cka");
    expect(cka).toContain(">±0.071<");
    expect(cka).toContain(">±0.000<"); // linear probing: the same over seeds, a spread measured as 0
    expect(cka).toContain(">mean over 2 seeds; small print: ± 1 std over seeds<");
    const weights = await renderSvg(weightChangeSpec(analysis()), "analysis-weights");
    expect(weights).toContain(">±0.071<");
    for (const one of [await renderSvg(ckaHeatmapSpec(analysis([0])), "analysis-cka"), await renderSvg(weightChangeSpec(analysis([0])), "analysis-weights")]) {
      expect(one).not.toContain(">±");
      expect(one).toContain(">one seed<");
    }
  });

  it("names a strategy of one seed among strategies of several, in every analysis figure", async () => {
    const a = analysis();
    const linear = a.cells.filter((c) => c.strategy === "linear" && c.seed === 0);
    a.strategies = summarizeAnalysis(results(), [...a.cells.filter((c) => c.strategy === "full"), ...linear], a.original);
    const knn = await renderSvg(layerKnnSpec(a, results()), "analysis-knn");
    expect(errorBars(knn)).toBe(2); // full's two blocks
    expect(knn).toContain(">one seed, so no error bars: linear<");
    const cka = await renderSvg(ckaHeatmapSpec(a), "analysis-cka");
    expect(cka).toContain(">one seed, so no small print: linear<");
    expect((cka.match(/>±\d/g) ?? []).length).toBe(2 * 2); // full's two blocks in two panels; none for linear
    expect(await renderSvg(weightChangeSpec(a), "analysis-weights")).toContain(">one seed, so no small print: linear<");
  });

  it("names each row's learning rate in every analysis figure where the run tried a strategy at several", async () => {
    const one = analysis();
    const specs = (a: ReturnType<typeof analysis>) => [ckaHeatmapSpec(a), layerKnnSpec(a, results()), weightChangeSpec(a), attentionDriftSpec(a)];
    const subtitle = (spec: unknown) => ((spec as { title: { subtitle: string[] } }).title.subtitle).join(" ");
    for (const spec of specs(one)) expect(subtitle(spec)).not.toContain("learning rate");
    // full also at 0.01: the figures show the table's rows, each at its rate, and say which.
    const several = analysis();
    several.cells.push(...several.cells.filter((c) => c.strategy === "full").map((c) => ({ ...c, id: c.id.replace("lr0.1", "lr0.01"), lr: 0.01 })));
    for (const spec of specs(several)) expect(subtitle(spec)).toContain("each strategy at the table's learning rate: full 0.1, linear 0.1");
    expect(await renderSvg(ckaHeatmapSpec(several), "analysis-cka")).toContain(">each strategy at the table's learning rate:");
  });

  it("CKA heatmap: a CKA that is no number (a collapsed block: 0 / 0) is a blank cell, said so", async () => {
    const a = analysis();
    a.strategies[0].ckaCls[0] = { mean: NaN, std: NaN };
    const svg = await renderSvg(ckaHeatmapSpec(a), "analysis-cka");
    expect(svg).toContain("blank: not a number");
    expect(svg).not.toContain("NaN");
    expect((svg.match(/>1\.000</g) ?? []).length).toBe(4);
    expect(await renderSvg(ckaHeatmapSpec(analysis()), "analysis-cka")).not.toContain("blank: not a number");
  });

  it("layer-wise k-NN: a line per strategy, the original dashed, error bars (the change's interval) only with several seeds", async () => {
    const a = analysis();
    const spec = layerKnnSpec(a, results());
    const svg = await renderSvg(spec, "analysis-knn");
    for (const text of [">Source k-NN top-1 (%), 20-NN<", ">original backbone<", ">full<", "error bars:<", ">95% interval of the change from the<", ">original, over seeds and images<"]) expect(svg).toContain(text);
    // The bars are the change's interval placed about the point (the fixture's answers round its accuracies, so not
    // the original's accuracy + the change), not the seeds' spread about the mean.
    const bars = ((spec as unknown as { layer: unknown[] }).layer as { mark: { type: string }; data: { values: { strategy: string; block: number; knnLo: number; knnHi: number }[] } }[]).find((l) => l.mark.type === "errorbar")!.data.values;
    const full = a.strategies.find((s) => s.strategy === "full")!;
    expect(bars.filter((b) => b.strategy === "full").map((b) => [b.knnLo, b.knnHi])).toEqual(full.knnChange.map((c, i) => [full.knn[i].mean + c.lo - c.mean, full.knn[i].mean + c.hi - c.mean]));
    expect(svg).toContain('stroke-dasharray="6,4"');
    expect(errorBars(svg)).toBe(4);
    const one = await renderSvg(layerKnnSpec(analysis([0]), results()), "analysis-knn");
    expect(errorBars(one)).toBe(0);
    expect(one).toContain(">one seed<");
  });

  it("weight-change heatmap: embedding, blocks, a new block marked new, the final norm", async () => {
    const a = analysis();
    a.strategies[1].added = [0];
    const svg = await renderSvg(weightChangeSpec(a), "analysis-weights");
    for (const text of [">embedding<", ">new (after 0)<", ">final norm<", ">new<", ">0.900<", ">0.350<", ">Relative change<"]) expect(svg).toContain(text);
  });

  it("attention drift heatmap: strategies x blocks, the divergence in bits, mean over heads", async () => {
    // full: heads 0.1 and 0.3 at block 0, 0.2 and 0.4 at block 1; linear: 0.
    const svg = await renderSvg(attentionDriftSpec(analysis()), "analysis-drift");
    for (const text of [">Where the attention moved<", ">Block (0 = first)<", ">Strategy<", ">JS (bits)<", ">full<", ">linear<", ">0.200<", ">0.300<", ">0.000<", ">±0.000<"]) expect(svg).toContain(text);
    expect((svg.match(/>0\.000</g) ?? []).length).toBe(2);
  });

  it("attention grid: the image, the original and each strategy per row, one colour scale per row", () => {
    const a = analysis();
    const images = Float32Array.from({ length: 3 * 4 * 4 }, (_, i) => i % 16);
    const g = attentionGrid(a, images, [1, 3, 4, 4]);
    expect(g.columns).toEqual(["image", "original", "full", "linear"]);
    expect(g.rows).toEqual(["image 1"]);
    // One seed's maps (the first), said so.
    expect(g.subtitle).toContain("fashion-mnist test images; seed 0");
    const [image, original, full] = g.tiles[0];
    expect([image.width, original.width]).toEqual([4, 2]);
    // The image stretched to 0..255; full's largest weight (0.6) is the row's top: its brightest patch is viridis's
    // end, the original's 0.4 is not.
    expect([image.rgb[0], image.rgb[15 * 3]]).toEqual([0, 255]);
    expect(Array.from(full.rgb.subarray(9, 12))).toEqual([253, 231, 37]);
    expect(Array.from(original.rgb.subarray(9, 12))).not.toEqual([253, 231, 37]);
    a.gridTokens = 3;
    expect(() => attentionGrid(a, images, [1, 3, 4, 4])).toThrow("attention grid: expected a square grid of patches, got 3");
  });
});
