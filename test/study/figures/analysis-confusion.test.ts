// study/figures/analysis-confusion.ts: the per-block confusion drawn from the hand-made analysis (../analysis-fixture.ts)
// given the classes each block gave (analysis-fixture.ts withClassesGiven): a panel per changed strategy, a line
// per move that grew most at the last block, a cell per block with the confusion's change; linear probing named, not
// drawn; nothing to draw without the classes given.
import { describe, expect, it } from "vitest";
import { confusionSpec } from "../../../study/figures/analysis-confusion.js";
import { renderSvg } from "../../../plot/render.js";
import { CLASS_LABELS as labels, analysis, withClassesGiven } from "../analysis-fixture.js";

describe("confusionSpec", () => {
  const a = withClassesGiven(analysis());

  it("draws a panel per changed strategy, a line per move that grew most at the last block, a cell per block with its change", async () => {
    const [full, linear] = a.strategies;
    expect(full.knnConfusion).toHaveLength(a.depth);
    expect(linear.knnConfusion!.every((c) => c.lines.every((l) => l.change.every((x) => x.mean === 0)))).toBe(true);
    const spec = confusionSpec(a) as unknown as { data: { values: { strategy: string; block: number; move: string; change: number }[] } };
    const values = spec.data.values;
    expect(new Set(values.map((v) => v.strategy))).toEqual(new Set(["full"]));
    const last = full.knnConfusion!.at(-1)!;
    const moves = last.lines.flatMap((l) => l.change.map((c, j) => ({ move: `${l.name} → ${last.given[j]}`, grew: c.mean, off: l.name !== last.given[j] }))).filter((m) => m.off && m.grew > 0);
    expect(new Set(values.map((v) => v.move))).toEqual(new Set(moves.sort((x, y) => y.grew - x.grew).slice(0, 4).map((m) => m.move)));
    for (const v of values) {
      const [from, to] = v.move.split(" → ");
      const c = full.knnConfusion![v.block];
      expect(v.change, `${v.move} block ${v.block}`).toBe(c.lines.find((l) => l.name === from)!.change[c.given.indexOf(to)].mean);
    }
    const svg = await renderSvg(confusionSpec(a), "analysis-confusion");
    for (const text of [">At which depth lost images are taken for another class<", ">Block (0 = first)<", ">Source class → class given<", ">full<", ">not drawn, the original's class throughout: linear<"]) expect(svg).toContain(text);
    expect(svg).toContain(">mean over 2 seeds; a star where the 95% interval<");
  });

  it("has nothing to draw without the classes given, or with more than 20 classes", async () => {
    const bare = await renderSvg(confusionSpec(analysis()), "analysis-confusion");
    expect(bare).toContain(">nothing to draw<");
    expect(bare).toContain(">no row has the classes its blocks gave (an analysis<");
    const many = { ...analysis(), labels: { classes: Array.from({ length: 21 }, (_, c) => `c${c}`), labels: labels.labels } };
    expect(await renderSvg(confusionSpec(many), "analysis-confusion")).toContain(">21 classes, more than 20: the classes<");
  });
});
