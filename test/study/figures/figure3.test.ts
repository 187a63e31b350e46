// study/figures/figure3.ts: Figure 3 from hand-made Block Expansion cells: which studies have it, every cell's
// point (not only the selected rates), one line per rate, error bars with several seeds, diverged rates left out.
import { describe, expect, it } from "vitest";
import { blockPoints, figure3Spec, hasFigure3 } from "../../../study/figures/figure3.js";
import { renderSvg } from "../../../plot/render.js";
import { configJson, parseStudyConfig } from "../../../study/config.js";
import type { CellOutcome } from "../../../study/results.js";
import { summarize } from "../../../study/results.js";
import { baseline, cells, config, diverged, notes } from "../fixture.js";

// Block Expansion with 1 and 2 blocks (the fixture's backbone has 4) at two rates, two seeds: cells built from the
// fixture's, transfer and k-NN set per (blocks, rate, seed).
const { headInit: _h, ...json } = JSON.parse(JSON.stringify(configJson(config)));
const blockConfig = parseStudyConfig({ ...json, strategies: ["block-p1", "block-p2", "linear"] });
const blockCells = [
  ["block-p1", 0.1, 80, 70], ["block-p1", 0.01, 75, 78], ["block-p2", 0.1, 85, 65], ["block-p2", 0.01, 82, 74],
].flatMap(([strategy, lr, transfer, knn]) =>
  [0, 1].map((seed) => ({ ...cells[0], id: `${strategy}_lr${lr}_s${seed}`, strategy: strategy as string, lr: lr as number, seed, transferAccuracy: (transfer as number) + seed, knn: { "10": { top1: 0, top5: 0 }, "20": { top1: (knn as number) - seed, top5: 99 } } })),
);
const linearCells = cells.filter((c) => c.strategy === "linear");
const results = (outcomes: CellOutcome[] = [...blockCells, ...linearCells]) => summarize(blockConfig, baseline, outcomes, notes);
const errorBars = (svg: string) => (svg.match(/aria-roledescription="errorbar"/g) ?? []).length;

describe("Figure 3", () => {
  it("is drawn for Block Expansion at two or more numbers of blocks and rates, from every cell", () => {
    expect(hasFigure3(results())).toBe(true);
    expect(blockPoints(results()).map((p) => [p.strategy, p.blocks, p.lr, p.seeds, p.transfer, p.knn])).toEqual([
      ["block-p1", 1, 0.1, 2, 80.5, 69.5], ["block-p1", 1, 0.01, 2, 75.5, 77.5], ["block-p2", 2, 0.1, 2, 85.5, 64.5], ["block-p2", 2, 0.01, 2, 82.5, 73.5],
    ]);
    const oneRate = blockCells.filter((c) => c.lr === 0.1);
    expect(hasFigure3(results([...oneRate, ...linearCells]))).toBe(false);
    expect(hasFigure3(results([...blockCells.filter((c) => c.strategy === "block-p1"), ...linearCells]))).toBe(false);
    expect(hasFigure3(summarize(config, baseline, cells, notes))).toBe(false); // no Block Expansion
    expect(() => figure3Spec(summarize(config, baseline, cells, notes))).toThrow("figure 3: expected Block Expansion at 2 or more numbers of blocks and rates in fashion-mnist-split, got none");
  });

  // A panel's title sits above everything of its panel: a legend above one plot, or a rotated y-axis title longer
  // than the plot, lifted it above its neighbour's.
  it("puts both panels' titles at one height", async () => {
    const svg = await renderSvg(figure3Spec(results()), "figure3");
    // Each title is a group translated to its place, its text inside: the y of the group whose text is `title`.
    const at = (title: string) => {
      const group = svg.split('role-title"><g transform="translate(').find((g) => g.includes(`>${title}</text>`));
      return Number(group?.split(")")[0].split(",")[1]);
    };
    const transfer = at("Transfer accuracy");
    expect(transfer).toBeLessThan(0);
    // A mark at a plot's edge may still reach a few pixels past it (a point's radius); the legend or an axis title
    // lifted a title by 20 to 30.
    expect(Math.abs(at("Source k-NN accuracy (forgetting)") - transfer)).toBeLessThanOrEqual(8);
  });

  it("leaves out a rate with a diverged seed, as the table's choice does, and names it", () => {
    const lost = diverged("block-p2", 0.01, 1, 3);
    const r = results([...blockCells.filter((c) => c.id !== lost.id), lost, ...linearCells]);
    expect(blockPoints(r).map((p) => `${p.strategy} ${p.lr}`)).toEqual(["block-p1 0.1", "block-p1 0.01", "block-p2 0.1"]);
    expect((figure3Spec(r).title as { subtitle: string[] }).subtitle).toContain("diverged, left out: block-p2 lr 0.01");
  });

  it("names a Block Expansion rate without a finished cell yet, and no other strategy's", () => {
    const r = results([...blockCells.filter((c) => !(c.strategy === "block-p2" && c.lr === 0.01)), ...linearCells.filter((c) => c.lr === 0.1)]);
    const subtitle = (figure3Spec(r).title as { subtitle: string[] }).subtitle;
    expect(subtitle).toContain("no finished cell yet: block-p2 lr 0.01");
    expect(subtitle.join(" ")).not.toContain("linear");
    expect((figure3Spec(results()).title as { subtitle: string[] }).subtitle.join(" ")).not.toContain("no finished cell");
  });

  it("has two panels with labelled axes, a line per rate, error bars with several seeds and the reference line", async () => {
    const svg = await renderSvg(figure3Spec(results()), "figure3");
    for (const text of [">Transfer accuracy (%)<", ">Source k-NN top-1 (%), 20-NN<", ">New blocks (p)<", ">Learning rate<", ">0.1<", ">0.01<", ">original backbone (80.00%)<", ">Transfer accuracy<", ">Source k-NN accuracy (forgetting)<"]) {
      expect(svg).toContain(text);
    }
    expect((svg.match(/aria-roledescription="line mark"/g) ?? []).length).toBe(2 * 2); // two rates, two panels
    expect(errorBars(svg)).toBe(2 * 4); // two panels, four points
    const one = await renderSvg(figure3Spec(results([...blockCells.filter((c) => c.seed === 0), ...linearCells])), "figure3");
    expect(errorBars(one)).toBe(0);
    expect(one).toContain(">one seed<");
    // One rate of one number of blocks with one seed left: named, as its points have no error bars.
    const mixed = await renderSvg(figure3Spec(results([...blockCells.filter((c) => c.id !== "block-p2_lr0.01_s1"), ...linearCells])), "figure3");
    expect(errorBars(mixed)).toBe(2 * 3);
    expect(mixed).toContain(">one seed, so no error bars: block-p2 lr 0.01<");
  });
});
