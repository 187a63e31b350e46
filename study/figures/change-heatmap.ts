// A heatmap of changes from the original backbone, a panel per strategy: each cell's colour its change in points
// (red lost, blue gained, on one scale centred on 0 for every panel), its text the change with a star where its 95%
// interval excludes 0. A cell marked `aside` is grey and out of the scale, its text kept: a change another figure
// shows, which would otherwise set the scale for the rest. The per-block analysis by class (analysis-classes.ts) and the rows' confusion
// (forgetting-confusion.ts) draw with it.
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";
import type { MeanInterval } from "../../util/stats.js";
import { intervalEnds } from "./parts.js";

export interface HeatmapAxis {
  field: string; // the data field, named in the tooltip ("block", "class")
  title: string;
  domain: (string | number)[]; // in drawing order
  px: number; // each cell's size along the axis
  labelAngle?: number; // of the x axis's labels: names wider than a cell slant (default level)
}

export interface HeatmapCell {
  strategy: string;
  x: string | number;
  y: string | number;
  change: MeanInterval;
  aside?: boolean;
}

export function changeHeatmapSpec(o: { title: string | string[]; subtitle: string[]; strategies: string[]; x: HeatmapAxis; y: HeatmapAxis; cells: HeatmapCell[] }): FigureSpec {
  const values = o.cells.map((c) => {
    const beyond = c.change.hi < 0 || c.change.lo > 0;
    return { strategy: c.strategy, [o.x.field]: c.x, [o.y.field]: c.y, change: c.change.mean, ...intervalEnds(c.change), label: `${c.change.mean.toFixed(1)}${beyond ? "*" : ""}`, aside: c.aside === true };
  });
  const reach = Math.max(1, ...values.filter((v) => !v.aside).map((v) => Math.abs(v.change)));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: o.title, subtitle: o.subtitle },
    config: FIGURE_CONFIG,
    data: { values },
    facet: { column: { field: "strategy", type: "nominal", title: null, sort: o.strategies, header: { labelFontSize: 13 } } },
    spec: {
      width: Math.max(120, o.x.px * o.x.domain.length),
      height: o.y.px * o.y.domain.length,
      encoding: {
        x: { field: o.x.field, type: "ordinal", title: o.x.title, sort: o.x.domain, scale: { domain: o.x.domain }, axis: { labelAngle: o.x.labelAngle ?? 0, labelLimit: 0 } },
        y: { field: o.y.field, type: "ordinal", title: o.y.title, sort: o.y.domain, scale: { domain: o.y.domain }, axis: { labelLimit: 0 } },
      },
      layer: [
        {
          mark: { type: "rect" },
          encoding: {
            color: { condition: { test: "datum.aside", value: "#e4e4e4" }, field: "change", type: "quantitative", title: "Change (points)", scale: { scheme: "redblue", domain: [-reach, reach], clamp: true } },
            tooltip: [{ field: "strategy" }, { field: o.x.field }, { field: o.y.field }, { field: "change", format: ".2f" }, { field: "lo", format: ".2f" }, { field: "hi", format: ".2f" }],
          },
        },
        { mark: { type: "text", fontSize: 11 }, encoding: { text: { field: "label", type: "nominal" }, color: { condition: { test: `!datum.aside && abs(datum.change) > ${reach * 0.6}`, value: "white" }, value: "black" } } },
      ],
    },
    resolve: { scale: { color: "shared" } },
  } as FigureSpec;
}
