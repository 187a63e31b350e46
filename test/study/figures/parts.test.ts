// study/figures/parts.ts: what every figure's accuracy axis shares.
import { describe, expect, it } from "vitest";
import { percentChannel } from "../../../study/figures/parts.js";
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
