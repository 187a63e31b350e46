// Figures of several panels side by side (Vega-Lite hconcat), each panel a layered plot with its own title: Figure 2
// across datasets and Figure 4 across backbones (study/figures/figure2.ts's layers per panel), Figure 3's two
// accuracies. Each panel has its own x axis (the datasets' accuracies lie far apart); the y axis is shared where the
// panels show the same quantity (the source k-NN accuracy). Colour and shape are shared, so one legend names the
// strategies (or rates); the reference line's legend stays with its panel, whose title names the backbone.
import type { FigureLayer, FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";

// Tall enough for the longest y-axis title of a panel ("Source k-NN top-1 (%), 20-NN", rotated): a title longer
// than the plot reaches above it and lifts that panel's title above its neighbour's.
const PANEL_HEIGHT = 280;

const PANEL_WIDTH = 240;
// A panel title's line at most this long (13 px text, ~7 px a character): a longer line widens its panel's bounds
// past the plot, and the panels stand apart by the difference.
const TITLE_LINE = 36;

// A panel's title in lines of at most `max` characters, broken after its commas ("ViT (patch 7, width 64, depth 4),
// backbone 6def1581, fashion-mnist"): a part longer than `max` keeps a line of its own.
export function titleLines(text: string, max = TITLE_LINE): string[] {
  const lines: string[] = [];
  for (const part of text.split(/(?<=,) (?![^(]*\))/)) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + part.length <= max) lines[last] += ` ${part}`;
    else lines.push(part);
  }
  return lines;
}

export interface FigurePanel {
  title: string;
  layers: FigureLayer[];
  width?: number; // px; default PANEL_WIDTH
  height?: number; // px; default PANEL_HEIGHT
}

// `shared`: the axis the panels share, where they show the same quantity on it; the other is each panel's own.
export function panelsSpec(title: { text: string | string[]; subtitle: string[] }, panels: FigurePanel[], shared?: "x" | "y"): FigureSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    config: FIGURE_CONFIG,
    hconcat: panels.map((p) => ({ title: { text: titleLines(p.title), fontSize: 13, fontWeight: "normal" }, width: p.width ?? PANEL_WIDTH, height: p.height ?? PANEL_HEIGHT, layer: p.layers })),
    resolve: { scale: { x: shared === "x" ? "shared" : "independent", y: shared === "y" ? "shared" : "independent", color: "shared", shape: "shared", strokeDash: "independent" } },
  } as FigureSpec;
}
