// Pre-training curves: the source k-NN accuracy of the backbone against the pre-training step, a line per run, from
// `pretrain` run folders (the engine's) and the JSON curves of scripts/dino-torch-reference.py (PyTorch's), so that
// runs of one recipe (another crop method, another seed, the reference implementation) read off one figure. The
// step axis is linear: a schedule's warm-up, its peak and its decay each take the room their steps take.
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";
import { percentChannel } from "./parts.js";

export interface PretrainCurve {
  run: string; // the legend's label
  points: { step: number; knn: number }[];
}

export function pretrainCurvesSpec(curves: PretrainCurve[]): FigureSpec {
  const values = curves.flatMap((c) => c.points.map((p) => ({ run: c.run, step: p.step, knn: p.knn })));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Pre-training: source k-NN accuracy",
      subtitle: ["the backbone's weighted k-NN top-1 on held-out source images, as each run scored it"],
    },
    width: 460,
    height: 300,
    config: FIGURE_CONFIG,
    data: { values },
    mark: { type: "line", strokeWidth: 2, point: { filled: true, size: 40, stroke: "#222", strokeWidth: 0.5 } },
    encoding: {
      // Thousands as "3k", as the forgetting curve writes them.
      x: {
        field: "step",
        type: "quantitative",
        title: "Pre-training step",
        axis: { tickCount: 8, labelExpr: "datum.value >= 1000 ? format(datum.value / 1000, '~g') + 'k' : format(datum.value, 'd')" },
      },
      y: percentChannel("knn", "Source k-NN top-1 (%)"),
      color: { field: "run", type: "nominal", title: "Run", sort: curves.map((c) => c.run) },
      shape: { field: "run", type: "nominal", title: "Run", sort: curves.map((c) => c.run) },
      tooltip: [{ field: "run" }, { field: "step" }, { field: "knn", format: ".1f" }],
    },
  };
}
