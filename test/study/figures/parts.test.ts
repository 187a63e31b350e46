// study/figures/parts.ts: what every figure's accuracy axis shares, and the subtitle's notes on seeds.
import { describe, expect, it } from "vitest";
import { NOTE_CHARS, andList, pairedSeedsNote, percentChannel, seedsNote, wrapLines } from "../../../study/figures/parts.js";
import { type FigureSpec, renderSvg } from "../../../plot/render.js";

// The numbers the left axis labels, of a band drawn on an accuracy axis.
async function yTicks(band: { lo: number; hi: number }[]): Promise<number[]> {
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 300,
    height: 320,
    data: { values: band.map((b, x) => ({ x, ...b })) },
    mark: "area",
    encoding: { x: { field: "x", type: "quantitative" }, y: percentChannel("lo", "Accuracy (%)"), y2: { field: "hi" } },
  } as unknown as FigureSpec;
  const svg = await renderSvg(spec, "band");
  const axis = svg.slice(svg.indexOf('aria-label="Y-axis'));
  const labels = axis.slice(axis.indexOf("role-axis-label"), axis.indexOf("role-axis-title"));
  return [...labels.matchAll(/>(-?[\d.]+)<\/text>/g)].map((m) => Number(m[1]));
}

describe("percentChannel", () => {
  it("ticks no accuracy past 100 % or below 0 %, however close the data come", async () => {
    // The default study's forgetting band (two seeds, docs/figures/default-forgetting.png): padded and rounded out
    // to ticks, its axis once ran to 110.
    const top = await yTicks([{ lo: 34, hi: 98 }, { lo: 60, hi: 100 }]);
    expect(top.length).toBeGreaterThan(3);
    expect(Math.max(...top)).toBe(100);
    const bottom = await yTicks([{ lo: 0, hi: 62 }, { lo: 3, hi: 40 }]);
    expect(Math.min(...bottom)).toBe(0);
  });

  it("pads about the data rather than starting at 0", async () => {
    const ticks = await yTicks([{ lo: 81, hi: 84 }, { lo: 82, hi: 83 }]);
    expect(Math.min(...ticks)).toBeGreaterThanOrEqual(80);
    expect(Math.max(...ticks)).toBeLessThanOrEqual(85);
  });
});

describe("the notes on seeds", () => {
  const bars = (interval: string) => `error bars: ${interval}`;

  it("says a mark of one seed has no spread where only marks of several seeds have one (seedsNote)", () => {
    expect(seedsNote([{ label: "a", seeds: 2 }, { label: "b", seeds: 1 }])).toEqual(["mean over 2 seeds; error bars: ± 1 std over seeds", "one seed, so no error bars: b"]);
    expect(seedsNote([{ label: "a", seeds: 1 }])).toEqual(["one seed"]);
  });

  it("says over what a paired change's interval is, for a mark of one seed too (pairedSeedsNote)", () => {
    expect(pairedSeedsNote([{ label: "a", seeds: 10 }, { label: "b", seeds: 2 }], bars, ["queries", "banks"])).toEqual(["mean over 2 or 10 seeds; error bars: the 95%", "interval over seeds, queries and banks"]);
    expect(pairedSeedsNote([{ label: "a", seeds: 2 }, { label: "b", seeds: 1 }, { label: "c", seeds: 1 }], bars, ["queries"])).toEqual([
      "mean over 2 seeds; error bars: the 95% interval",
      "over seeds and queries",
      "one seed, over queries alone: b, c",
    ]);
    expect(pairedSeedsNote([{ label: "a", seeds: 1 }], (i) => `a star where ${i} excludes 0`, ["images"])).toEqual(["one seed, so of its training alone; a star where", "the 95% interval over images excludes 0"]);
  });

  it("wraps words into lines of at most NOTE_CHARS characters, a longer word alone", () => {
    const lines = wrapLines("the quick brown fox jumps over the lazy dog ".repeat(4).trim());
    expect(lines.every((l) => l.length <= NOTE_CHARS)).toBe(true);
    expect(lines.join(" ")).toBe("the quick brown fox jumps over the lazy dog ".repeat(4).trim());
    expect(lines.length).toBe(4);
    expect(wrapLines(`a ${"x".repeat(60)} b`)).toEqual(["a", "x".repeat(60), "b"]);
    expect([andList(["a"]), andList(["a", "b"]), andList(["a", "b", "c"])]).toEqual(["a", "a and b", "a, b and c"]);
  });
});
