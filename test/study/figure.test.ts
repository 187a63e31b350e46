// study/figure.ts: Figure 2's SVG from hand-made cell results (./fixture.ts).
import { describe, expect, it } from "vitest";
import { figureSvg } from "../../study/figure.js";
import { results } from "./fixture.js";

describe("Figure 2", () => {
  const r = results();

  it("Figure 2: labelled points, axes, legend and the reference line", () => {
    const svg = figureSvg(r);
    expect(svg.startsWith("<svg")).toBe(true);
    expect((svg.match(/<circle /g) ?? []).length).toBe(2 + 2); // two points, two legend markers
    for (const text of [">full<", ">linear<", "Transfer accuracy (%)", "Source k-NN accuracy (%), 20-NN", "original backbone", "k-NN: 80.00%", "stroke-dasharray"]) {
      expect(svg).toContain(text);
    }
  });
});
