// study/figures/forgetting-between.ts: forgetting between neighbouring steps of the curve, drawn from the hand-made
// cells with answers (../fixture.ts): axes, legend, the spans in step order, each point and error bar the row's
// sincePrevious, the notes on one-seed rows and on spans against knn.bank alone, and the report's files.
import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { forgettingBetweenSpec, hasBetweenFigure } from "../../../study/figures/forgetting-between.js";
import { renderSvg } from "../../../plot/render.js";
import { summarize } from "../../../study/results.js";
import { writeReport } from "../../../study/report.js";
import { baseline, baselineWithAnswers, cells, cellsWithAnswers, config, notes } from "../fixture.js";

type Layer = { mark: { type: string }; data: { values: { strategy: string; span: string; value: number; lo: number | null; hi: number | null; seeds: number }[] } };
const layers = (spec: object) => (spec as { layer: Layer[] }).layer;

describe("the forgetting between steps", () => {
  const r = summarize(config, baselineWithAnswers, cellsWithAnswers, notes);

  it("has labelled axes, a legend of the strategies, the spans in step order and a dashed line at 0", async () => {
    const svg = await renderSvg(forgettingBetweenSpec(r), "between");
    for (const text of [
      ">Forgetting between steps: fashion-mnist-split<",
      ">Fine-tuning steps (from → to)<",
      ">Source 20-NN top-1 change<",
      ">from the step before (points)<",
      ">Strategy<",
      ">full<",
      ">linear<",
      ">mean over 2 seeds; error bars: the 95% interval<",
      ">over seeds and queries<",
    ]) {
      expect(svg).toContain(text);
    }
    const spans = ["0 → 1", "1 → 3", "3 → 10", "10 → 30", "30 → 60"];
    const at = spans.map((s) => svg.indexOf(`>${s}<`));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect((svg.match(/aria-roledescription="point"/g) ?? []).length).toBe(2 * spans.length);
    expect(svg).toMatch(/stroke-dasharray="6,4"/);
  });

  it("draws each row's change since the point before, with its interval", () => {
    const points = layers(forgettingBetweenSpec(r)).find((l) => l.mark.type === "point")!.data.values;
    const bars = layers(forgettingBetweenSpec(r)).find((l) => l.mark.type === "rule" && l.data.values.length > 1)!.data.values;
    expect(bars).toEqual(points);
    for (const row of r.table) {
      const mine = points.filter((p) => p.strategy === row.strategy.kind);
      const curve = row.knnCurve!;
      expect(mine.map((p) => [p.span, p.value, p.lo, p.hi])).toEqual(curve.slice(1).map((p, i) => [`${curve[i].step} → ${p.step}`, p.sincePrevious!.mean, p.sincePrevious!.lo, p.sincePrevious!.hi]));
    }
    // Full fine-tuning goes on forgetting: some span's interval lies wholly below 0.
    expect(points.some((p) => p.strategy === "full" && p.hi !== null && p.hi < 0)).toBe(true);
  });

  it("names a row of one seed, whose interval is over the queries alone, and spans against knn.bank alone", async () => {
    const mixed = summarize(config, baselineWithAnswers, cellsWithAnswers.filter((c) => c.id !== "linear_lr0.1_s1"), notes);
    const svg = await renderSvg(forgettingBetweenSpec(mixed), "between");
    expect(svg).toContain(">one seed, over queries alone: linear<");
    const one = summarize(config, baselineWithAnswers, cellsWithAnswers.filter((c) => c.seed === 0), notes);
    expect(await renderSvg(forgettingBetweenSpec(one), "between")).toContain(">one seed, so of its training alone; error bars:<");
    const banks = { ...r, table: r.table.map((row) => ({ ...row, knnCurve: row.knnCurve!.map((p) => (p.sincePrevious && p.step !== 10 ? { ...p, sincePrevious: { ...p.sincePrevious, banks: 2 } } : p)) })) };
    const svgBanks = await renderSvg(forgettingBetweenSpec(banks), "between");
    expect(svgBanks).toContain(">over seeds, queries and banks<");
    expect(svgBanks).toContain(">against knn.bank alone: full 3 → 10, linear 3 → 10<");
  });

  it("is drawn where the cells kept their answers, and removed where an earlier report drew it and the results have none", async () => {
    expect(hasBetweenFigure(r)).toBe(true);
    expect(hasBetweenFigure(summarize(config, baseline, cells, notes))).toBe(false);
    const dir = await mkdtemp(join(tmpdir(), "forgetting-between-"));
    try {
      await writeReport(dir, r);
      for (const f of ["forgetting-between-steps.svg", "forgetting-between-steps.png", "forgetting-between-steps.vl.json"]) expect(existsSync(join(dir, f)), f).toBe(true);
      await writeReport(dir, summarize(config, baseline, cells, notes));
      for (const f of ["forgetting-between-steps.svg", "forgetting-between-steps.png", "forgetting-between-steps.vl.json"]) expect(existsSync(join(dir, f)), f).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
