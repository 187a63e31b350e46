// The figures' look, a Vega-Lite config that each spec carries, so that the spec alone draws the same figure: a
// font that librsvg finds here (DejaVu Sans; a browser without it falls back to its sans-serif), sizes that stay
// legible when a figure is shrunk into a paper's column, open axes (no frame), a white background (viewers show a
// transparent PNG on black or on checks), legend symbols as opaque as the marks, and the dash of a reference line.
import type { Config } from "vega-lite";

const FONT = "DejaVu Sans, Arial, Helvetica, sans-serif";

export const FIGURE_CONFIG: Config = {
  font: FONT,
  background: "white",
  padding: 12,
  view: { stroke: null },
  title: { fontSize: 15, subtitleFontSize: 12, subtitleColor: "#444", anchor: "start", offset: 12 },
  axis: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: "normal", gridColor: "#e5e5e5", tickColor: "#333", domainColor: "#333" },
  legend: { labelFontSize: 12, labelLimit: 0, titleFontSize: 13, titleFontWeight: "normal", symbolSize: 90, symbolOpacity: 1, symbolStrokeColor: "#222", symbolStrokeWidth: 0.8 },
  range: { category: { scheme: "tableau10" } },
};

// A reference line's dash: 6 px drawn, 4 px gap.
export const REFERENCE_DASH = [6, 4];
