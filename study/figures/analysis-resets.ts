// The per-block analysis's resets (analysis.resets, study/analysis-resets.ts): for each strategy at its selected
// learning rate (a panel each, in the table's order, the strategies that train some part of the backbone), each part
// of the best backbone reset where fine-tuning started, one at a time: two bars, the source k-NN that reset wins back
// and the transfer accuracy it changes, in points against the fine-tuned model's own, error bars their 95% intervals
// over seeds and images. Where a part's change cost the source domain, and what it bought.
import type { FigureLayer, FigureSpec } from "../../plot/render.js";
import { REFERENCE_DASH } from "../../plot/style.js";
import type { RunAnalysis } from "../analysis-results.js";
import { CONFIDENCE } from "../comparisons.js";
import { panelsSpec } from "./panels.js";
import { seedsNote } from "./parts.js";

const KNN = "source k-NN";
const TRANSFER = "transfer";

export function resetsSpec(a: RunAnalysis): FigureSpec {
  const rows = a.strategies.filter((s) => s.resets && s.resets.units.length > 0);
  const points = rows.flatMap((s) =>
    s.resets!.units.flatMap((u) =>
      ([[KNN, u.knnChange], [TRANSFER, u.transferChange]] as const).map(([measure, d]) => ({ strategy: s.strategy, unit: u.unit, measure, seeds: u.seeds, value: d.mean, lo: Number.isFinite(d.lo) ? d.lo : null, hi: Number.isFinite(d.hi) ? d.hi : null })),
    ),
  );
  // The parts in the model's order, each panel drawing its own.
  const units = [...new Set(rows.flatMap((s) => s.resets!.units.map((u) => u.unit)))];
  const x = { field: "unit", type: "nominal", title: "Part reset", sort: units, axis: { labelAngle: -40, labelLimit: 0 } } as const;
  const y = { field: "value", type: "quantitative", title: "Change from fine-tuned (points)", scale: { nice: false, padding: 8 } } as const;
  const color = { field: "measure", type: "nominal", title: "Accuracy", scale: { domain: [KNN, TRANSFER], range: ["#4c78a8", "#f58518"] } } as const;
  const xOffset = { field: "measure", sort: [KNN, TRANSFER] } as const;
  const title = {
    text: "What each part's change cost and bought",
    subtitle: [
      "each part of the best backbone reset to its value",
      "where fine-tuning started, one at a time; all: every",
      "part; all but X: every part but X (X's change alone)",
      `bars: ${a.k}-NN of the source queries and the head's`,
      "transfer accuracy, less the fine-tuned model's own",
      "each strategy at the table's learning rate",
      ...seedsNote(
        rows.map((s) => ({ label: s.strategy, seeds: Math.max(...s.resets!.units.map((u) => u.seeds)) })),
        "error bars",
        [`${CONFIDENCE * 100}% interval of the change, paired`, "image by image, over seeds and images"],
      ),
    ],
  };
  // A panel per strategy, each with the parts it trained and data of its own.
  const panels = rows.map((s) => {
    const values = points.filter((p) => p.strategy === s.strategy);
    return {
      title: s.strategy,
      width: Math.max(120, 36 * s.resets!.units.length),
      layers: [
        { data: { values }, mark: { type: "bar" }, encoding: { x, xOffset, y, color, tooltip: [{ field: "unit" }, { field: "measure" }, { field: "value", format: ".2f" }, { field: "lo", format: ".2f" }, { field: "hi", format: ".2f" }] } },
        // A bar without an interval (one seed and one image) draws none: its lo and hi are null.
        { data: { values }, mark: { type: "rule", color: "#222", strokeWidth: 1.2 }, encoding: { x, xOffset, y: { ...y, field: "lo" }, y2: { field: "hi" } } },
        { data: { values: [{}] }, mark: { type: "rule", color: "#333", strokeDash: REFERENCE_DASH }, encoding: { y: { datum: 0 } } },
      ] as FigureLayer[],
    };
  });
  return panelsSpec(title, panels, { sharedY: true });
}
