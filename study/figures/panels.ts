// Figures of several panels side by side (Vega-Lite hconcat), each panel a layered plot with its own title: Figure 2
// across datasets and Figure 4 across backbones (study/figures/figure2.ts's layers per panel), Figure 3's two
// accuracies. Each panel has its own x axis (the datasets' accuracies lie far apart); the y axis is shared where the
// panels show the same quantity (the source k-NN accuracy). Colour and shape are shared, so one legend names the
// strategies (or rates); the reference line's legend stays with its panel, whose backbone it names.
import type { FigureLayer, FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";

// Tall enough for the longest y-axis title of a panel ("Source k-NN top-1 (%), 20-NN", rotated): a title longer
// than the plot reaches above it and lifts that panel's title above its neighbour's.
const PANEL_HEIGHT = 280;

export interface FigurePanel {
  title: string;
  layers: FigureLayer[];
}

export function panelsSpec(title: { text: string; subtitle: string[] }, panels: FigurePanel[], o: { sharedY: boolean }): FigureSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    config: FIGURE_CONFIG,
    hconcat: panels.map((p) => ({ title: { text: p.title, fontSize: 13, fontWeight: "normal" }, width: 240, height: PANEL_HEIGHT, layer: p.layers })),
    resolve: { scale: { x: "independent", y: o.sharedY ? "shared" : "independent", color: "shared", shape: "shared", strokeDash: "independent" } },
  } as FigureSpec;
}
