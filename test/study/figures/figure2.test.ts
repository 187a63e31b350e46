// study/figures/figure2.ts: Figure 2 drawn from hand-made cell results (../fixture.ts): axes, legend, one mark per
// strategy, error bars only with several seeds, the reference line.
import { describe, expect, it } from "vitest";
import { figure2Spec } from "../../../study/figures/figure2.js";
import { renderSvg } from "../../../plot/render.js";
import { summarize } from "../../../study/results.js";
import { baseline, cells, config, notes, results } from "../fixture.js";

const errorBars = (svg: string) => (svg.match(/aria-roledescription="errorbar"/g) ?? []).length;

describe("Figure 2", () => {
  it("has labelled axes, a legend of the strategies, one mark each and the original backbone's line", async () => {
    const svg = await renderSvg(figure2Spec(results()), "figure2");
    expect(svg.startsWith("<svg")).toBe(true);
    for (const text of [
      ">Forgetting vs. transfer: fashion-mnist-split<",
      ">Transfer accuracy (%), linear head on the new domain<",
      ">Source k-NN top-1 (%), 20-NN<",
      ">Strategy<",
      ">full<",
      ">linear<",
      ">original backbone (80.00%)<",
    ]) {
      expect(svg).toContain(text);
    }
    expect((svg.match(/aria-roledescription="point"/g) ?? []).length).toBe(2);
    expect(svg).toMatch(/aria-label="[^"]*: 80; line: original backbone \(80\.00%\)"[^>]*stroke-dasharray="6,4"/);
  });

  it("draws error bars of one std on both axes when seeds > 1, and none with one seed", async () => {
    const two = await renderSvg(figure2Spec(results()), "figure2");
    expect(errorBars(two)).toBe(2 * 2); // two strategies, two axes
    expect(two).toContain("error bars: ± 1 std over seeds");
    // full at lr 0.1: transfer 91 ± sqrt(2), k-NN 41 ± sqrt(2).
    expect(two).toMatch(/Strategy: full; transferHi: 92\.414\d*; transferLo: 89\.585\d*/);
    // A bar ends within 0-100 %: linear at lr 0.1 with 99 and 100 % transfer, 99.5 ± 0.71, ends at 100.
    const top = cells.map((c) => (c.strategy === "linear" && c.lr === 0.1 ? { ...c, transferAccuracy: 99 + c.seed } : c));
    expect(await renderSvg(figure2Spec(summarize(config, baseline, top, notes)), "figure2")).toMatch(/Strategy: linear; transferHi: 100; transferLo: 98\.792\d*/);
    const one = await renderSvg(figure2Spec(summarize(config, baseline, cells.filter((c) => c.seed === 0), notes)), "figure2");
    expect(errorBars(one)).toBe(0);
    expect(one).not.toContain("error bars");
    expect(one).toContain(">one seed<");
  });

  it("names a strategy of one seed among strategies of several: its missing error bars are no spread of 0", async () => {
    const mixed = await renderSvg(figure2Spec(summarize(config, baseline, cells.filter((c) => c.id !== "linear_lr0.1_s1"), notes)), "figure2");
    expect(errorBars(mixed)).toBe(2); // full only
    expect(mixed).toContain(">mean over 2 seeds; error bars: ± 1 std over seeds<");
    expect(mixed).toContain(">one seed, so no error bars: linear<");
    expect(await renderSvg(figure2Spec(results()), "figure2")).not.toContain("one seed");
  });

  it("colours and shapes a strategy as the forgetting curve does: by its place in the table", () => {
    const spec = figure2Spec(results()) as { layer: { encoding?: { color?: { scale: { domain: string[] } } } }[] };
    const domains = spec.layer.map((l) => l.encoding?.color?.scale.domain).filter((d) => d);
    expect(domains.length).toBe(3);
    for (const d of domains) expect(d).toEqual(["full", "linear"]);
  });
});
