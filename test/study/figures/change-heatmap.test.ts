// study/figures/change-heatmap.ts: a panel per strategy in the order given, a star where the interval excludes 0, and
// cells set aside kept out of the colour scale, which the rest then span.
import { describe, expect, it } from "vitest";
import { changeHeatmapSpec } from "../../../study/figures/change-heatmap.js";
import { renderSvg } from "../../../plot/render.js";

const change = (mean: number, lo: number, hi: number) => ({ mean, lo, hi, n: 2 });

describe("changeHeatmapSpec", () => {
  const cells = [
    { strategy: "b", x: "p", y: "u", change: change(-20, -30, -10), aside: true },
    { strategy: "b", x: "q", y: "u", change: change(4, 1, 7) },
    { strategy: "a", x: "p", y: "u", change: change(-2, -5, 1) },
    { strategy: "a", x: "q", y: "u", change: change(0.5, NaN, NaN) },
  ];
  const spec = changeHeatmapSpec({ title: "T", subtitle: ["s"], strategies: ["a", "b"], x: { field: "given", title: "X", domain: ["p", "q"], px: 40, labelAngle: -40 }, y: { field: "class", title: "Y", domain: ["u"], px: 20 }, cells });
  const json = spec as unknown as { data: { values: Record<string, unknown>[] }; facet: { column: { sort: string[] } }; spec: { width: number; layer: { encoding: { color: { scale?: { domain: number[] } } } }[] } };

  it("labels each cell with its change, starred beyond chance, and spans the colour scale with the cells not set aside", () => {
    expect(json.data.values.map((v) => [v.strategy, v.given, v.class, v.label, v.aside])).toEqual([
      ["b", "p", "u", "-20.0*", true],
      ["b", "q", "u", "4.0*", false],
      ["a", "p", "u", "-2.0", false],
      ["a", "q", "u", "0.5", false],
    ]);
    expect(json.data.values[3].lo).toBeNull(); // no interval: JSON has no NaN
    expect(json.spec.layer[0].encoding.color.scale!.domain).toEqual([-4, 4]);
    expect(json.facet.column.sort).toEqual(["a", "b"]);
    expect(json.spec.width).toBe(120); // at least 120 px a panel
  });

  it("renders", async () => {
    const svg = await renderSvg(spec, "test");
    for (const text of [">-20.0*<", ">4.0*<", ">-2.0<", ">X<", ">Y<"]) expect(svg, text).toContain(text);
  });
});
