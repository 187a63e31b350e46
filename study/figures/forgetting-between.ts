// Forgetting between steps (results.ts sincePrevious): for each span of two neighbouring points of the forgetting
// curve (knn.atSteps), one point per strategy at its selected learning rate, its source k-NN accuracy at the later
// step less at the earlier, in points, each seed's answers paired query by query (and bank by bank) with its own
// there; error bars its 95% interval over the seeds, the queries and the banks; a dashed line at 0. Below the line,
// forgetting that went on in that span; above it, accuracy won back. The curve (forgetting.*) shows where a
// strategy is; this, whether it was still moving and which way, span by span, each with its own interval.
import { strategyName } from "../../peft/strategy.js";
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG, REFERENCE_DASH } from "../../plot/style.js";
import type { StudyResults } from "../results.js";
import { intervalEnds, listLines, pairedSeedsNote, strategyChannels, studyTitle } from "./parts.js";

const POINT_PX = 11; // each strategy's point along a span: a span takes one per row, and a gap

// Whether some row's curve has its change since the point before (its cells kept their answers).
export const hasBetweenFigure = (r: Pick<StudyResults, "table">): boolean => r.table.some((row) => row.knnCurve?.some((p) => p.sincePrevious));

export function forgettingBetweenSpec(r: StudyResults): FigureSpec {
  const rows = r.table.filter((row) => row.knnCurve?.some((p) => p.sincePrevious));
  const names = rows.map((row) => strategyName(row.strategy));
  const spanOf = (from: number, step: number) => `${from} → ${step}`;
  const points = rows.flatMap((row, i) =>
    row.knnCurve!.flatMap((p, j) => {
      const since = p.sincePrevious;
      if (!since) return [];
      const from = row.knnCurve![j - 1].step;
      return [{ strategy: names[i], lr: row.lr, seeds: row.seeds, span: spanOf(from, p.step), step: p.step, from, banks: since.banks, value: since.mean, ...intervalEnds(since) }];
    }),
  );
  // Every span in the order of its steps (the rows' curves share knn.atSteps).
  const spans = [...new Map([...points].sort((a, b) => a.step - b.step).map((p) => [p.span, p])).keys()];
  const banks = Math.max(...points.map((p) => p.banks));
  // A span of a curve point scored against knn.bank alone among spans over every bank (a point of an earlier build).
  const oneBank = points.filter((p) => p.banks < banks).map((p) => `${p.strategy} ${p.span}`);
  const x = { field: "span", type: "ordinal", title: "Fine-tuning steps (from → to)", sort: spans, scale: { domain: spans }, axis: { labelAngle: -30, labelLimit: 0 } } as const;
  const xOffset = { field: "strategy", sort: names, scale: { domain: names } } as const;
  // Two lines: vega centres an axis title on the plot by an estimate of its length (forgetting-classes.ts).
  const y = { field: "value", type: "quantitative", title: [`Source ${r.reportK}-NN top-1 change`, "from the step before (points)"], scale: { nice: false, padding: 8 } } as const;
  const { color, shape } = strategyChannels(r, names);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: studyTitle("Forgetting between steps", r.name),
      subtitle: [
        "each strategy at its selected learning rate: its",
        "source k-NN at a step less at the step before,",
        "each seed's answers paired query by query with",
        "its own there; below 0, forgetting went on",
        ...pairedSeedsNote(
          rows.map((row, i) => ({ label: names[i], seeds: row.seeds })),
          (interval) => `error bars: ${interval}`,
          banks > 1 ? ["queries", "banks"] : ["queries"],
        ),
        ...(oneBank.length > 0 ? listLines("against knn.bank alone", oneBank) : []),
      ],
    },
    width: Math.max(300, spans.length * (rows.length + 1) * POINT_PX),
    height: 300,
    config: FIGURE_CONFIG,
    layer: [
      { data: { values: [{}] }, mark: { type: "rule", color: "#333", strokeDash: REFERENCE_DASH }, encoding: { y: { datum: 0 } } },
      { data: { values: points }, mark: { type: "rule", strokeWidth: 1.5 }, encoding: { x, xOffset, y: { ...y, field: "lo" }, y2: { field: "hi" }, color } },
      {
        data: { values: points },
        mark: { type: "point", filled: true, size: 60, opacity: 1, stroke: "#222", strokeWidth: 0.6 },
        encoding: {
          x,
          xOffset,
          y,
          color,
          shape,
          tooltip: [{ field: "strategy" }, { field: "lr" }, { field: "seeds" }, { field: "span" }, { field: "value", format: ".2f" }, { field: "lo", format: ".2f" }, { field: "hi", format: ".2f" }, { field: "banks" }],
        },
      },
    ],
  } as FigureSpec;
}
