// plot/render.ts: a Vega-Lite spec to SVG and PNG without a browser: the same spec gives the same bytes, in any
// order of figures; a spec that vega-lite or vega warns about is an error naming the figure; figureFiles gives each
// figure's three files in order, the PNGs rasterised while the next SVG is drawn.
import { describe, expect, it } from "vitest";
import sharp from "sharp";
import { type FigureSpec, figureFiles, renderPng, renderSvg } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";

// Clipped marks: their clip paths get ids that vega counts per process.
const bars = (n: number): FigureSpec => ({
  width: 120,
  height: 80,
  config: FIGURE_CONFIG,
  data: { values: Array.from({ length: n }, (_, i) => ({ x: `c${i}`, y: i + 1 })) },
  mark: { type: "bar", clip: true },
  encoding: { x: { field: "x", type: "nominal" }, y: { field: "y", type: "quantitative", title: "height (%)" } },
});

describe("renderSvg and renderPng", () => {
  it("render SVG text with the spec's titles, in the house font", async () => {
    const svg = await renderSvg(bars(3), "bars");
    expect(svg).toMatch(/^<svg [^>]*width="\d+" height="\d+"/);
    expect(svg).toContain(">height (%)<");
    expect(svg).toContain('font-family="DejaVu Sans, Arial, Helvetica, sans-serif"');
    expect(svg).toContain("clip-path=");
  });

  it("give the same bytes for the same spec, whatever was drawn before", async () => {
    const first = await renderSvg(bars(3), "bars");
    await renderSvg(bars(5), "other bars");
    const again = await renderSvg(bars(3), "bars");
    expect(again).toBe(first);
    expect((await renderPng(again)).equals(await renderPng(first))).toBe(true);
  });

  it("rasterise at twice the SVG's size by default, or at the scale asked", async () => {
    const svg = await renderSvg(bars(3), "bars");
    const [, width, height] = /width="(\d+)" height="(\d+)"/.exec(svg)!.map(Number);
    const two = await sharp(await renderPng(svg)).metadata();
    expect([two.format, two.width, two.height]).toEqual(["png", 2 * width, 2 * height]);
    const one = await sharp(await renderPng(svg, 1)).metadata();
    expect([one.width, one.height]).toEqual([width, height]);
  });

  it("refuse a spec that vega-lite or vega warns about, naming the figure", async () => {
    const badAggregate: FigureSpec = { data: { values: [{ a: 1 }] }, mark: "point", encoding: { x: { field: "a", type: "quantitative", aggregate: "foo" as "sum" } } };
    await expect(renderSvg(badAggregate, "bad")).rejects.toThrow('plot: bad: expected a spec that draws without warnings, got: Invalid aggregation operator "foo"');
    const zeroOnLog: FigureSpec = { data: { values: [{ a: 0 }] }, mark: "point", encoding: { x: { field: "a", type: "quantitative", scale: { type: "log" } } } };
    await expect(renderSvg(zeroOnLog, "log")).rejects.toThrow("plot: log: expected a spec that draws without warnings, got: Log scale domain includes zero");
  });

  it("figureFiles: each figure's spec, SVG and PNG in the figures' order, the bytes renderSvg and renderPng give", async () => {
    const files = await figureFiles([["three", bars(3)], ["five", bars(5)]]);
    expect(files.map(([name]) => name)).toEqual(["three.vl.json", "three.svg", "three.png", "five.vl.json", "five.svg", "five.png"]);
    for (const [k, [name, n]] of ([["three", 3], ["five", 5]] as const).entries()) {
      expect(JSON.parse(files[3 * k][1] as string)).toEqual(JSON.parse(JSON.stringify(bars(n))));
      const svg = await renderSvg(bars(n), name);
      expect(files[3 * k + 1][1]).toBe(svg);
      expect(Buffer.from(files[3 * k + 2][1] as Uint8Array).equals(await renderPng(svg))).toBe(true);
    }
  });

  it("figureFiles: a figure that cannot be drawn rejects naming it, with a PNG already started", async () => {
    const zeroOnLog: FigureSpec = { data: { values: [{ a: 0 }] }, mark: "point", encoding: { x: { field: "a", type: "quantitative", scale: { type: "log" } } } };
    await expect(figureFiles([["fine", bars(3)], ["log", zeroOnLog]])).rejects.toThrow("plot: log: expected a spec that draws without warnings");
  });
});
