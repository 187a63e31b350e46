// The turn of each part's output between kept steps (analysis-results.ts StepSummary's outputSince and
// targetOutputSince; eval/output-change.ts): a panel per strategy at its selected learning rate, a line per part (the
// embeddings, then each original block) across the spans of two kept steps of analysis.atSteps, each point the cosine
// between the part's output change over the span and its change up to the span's start, mean over seeds (error bars
// ± 1 std): solid on the analysed source-domain images, dashed on the target-domain ones. -1: the part turns back in
// what it computes; +1: it goes on the way it went; and whether it does so on both domains' images or on one.
import type { FigureSpec } from "../../plot/render.js";
import type { OutputSinceSummary, RunAnalysis, StrategyAnalysis } from "../analysis-results.js";
import { stepPanelsSpec } from "./analysis-steps.js";
import { IMAGE_SETS, imageSetDash, imageSetLine, listLines, nothingToDrawSpec, seedsNote } from "./parts.js";

const TEXT = "Which parts turn back in what they compute";
const PANEL_WIDTH = 200;
// The two domains' points of a span side by side, not on top of each other's error bars.
const OFFSET = { source: -0.08, target: 0.08 };
const partsOf = (o: OutputSinceSummary) => [o.embedding, ...o.blocks];

export function stepTurnSpec(a: RunAnalysis): FigureSpec {
  const spansOf = (s: StrategyAnalysis) =>
    (s.atSteps ?? []).flatMap((t, j) => {
      const on = { source: t.outputSince, target: t.targetOutputSince };
      return t.outputSince || t.targetOutputSince ? [{ span: `${s.atSteps![j - 1].step} → ${t.step}`, step: t.step, seeds: t.seeds, on }] : [];
    });
  const measured = a.strategies.filter((s) => spansOf(s).length > 0);
  // A row none of whose parts had moved by a span's start (linear probing) has no turn: named, not drawn.
  const turns = (s: StrategyAnalysis) => spansOf(s).some((t) => IMAGE_SETS.some((images) => t.on[images] && partsOf(t.on[images]).some((p) => Number.isFinite(p.turn.mean))));
  const rows = measured.filter(turns);
  const still = measured.filter((s) => !turns(s)).map((s) => s.strategy);
  if (rows.length === 0) return nothingToDrawSpec(TEXT, still.length > 0 ? listLines("no part moved before a span", still) : ["no row kept two steps with every seed (analysis.atSteps)"]);
  const spans = [...new Map(rows.flatMap(spansOf).sort((x, y) => x.step - y.step).map((t) => [t.span, t])).keys()];
  const parts = ["embeddings", ...Array.from({ length: a.depth }, (_, i) => `block ${i}`)];
  const points = rows.flatMap((s) =>
    spansOf(s).flatMap((t) =>
      IMAGE_SETS.flatMap((images) => {
        const o = t.on[images];
        return o
          ? partsOf(o).map(({ turn }, i) => ({ strategy: s.strategy, part: parts[i], images, span: t.span, x: spans.indexOf(t.span) + OFFSET[images], seeds: t.seeds, value: Number.isNaN(turn.mean) ? null : turn.mean, lo: turn.mean - turn.std, hi: turn.mean + turn.std }))
          : [];
      }),
    ),
  );
  const drawn = IMAGE_SETS.filter((images) => points.some((p) => p.images === images));
  const x = {
    field: "x",
    type: "quantitative",
    title: "Fine-tuning steps (from → to)",
    scale: { domain: [-0.5, spans.length - 0.5], nice: false, zero: false },
    axis: { values: spans.map((_, i) => i), labelExpr: `${JSON.stringify(spans)}[datum.value]`, labelOverlap: false, labelAngle: -35, grid: false },
  };
  const y = { field: "value", type: "quantitative", title: "Turn (cosine with the change up to then)", scale: { domain: [-1, 1], nice: false } } as const;
  const color = { field: "part", type: "ordinal", title: "Part", scale: { scheme: "viridis", domain: parts }, sort: parts } as const;
  // Two short lines each: vega sizes text by an estimate, and a long line widens the figure.
  const named = (images: "source" | "target") => {
    const d = images === "source" ? a.images : a.targetImages;
    const line = `${imageSetLine(images)} ${d ? `${d.count} ` : ""}${images}-domain images`;
    return d ? [line, `(${d.name} ${d.split})`] : [line];
  };
  return stepPanelsSpec({
    title: {
      text: TEXT,
      subtitle: [
        "each part run on the original's input to it: the",
        "cosine between its output change over a span of",
        "kept steps and its change up to the span's start",
        "(-1: back the way it came; +1: on the same way)",
        ...drawn.flatMap(named),
        "each strategy at the table's learning rate",
        ...seedsNote(rows.map((s) => ({ label: s.strategy, seeds: Math.max(...spansOf(s).map((t) => t.seeds)) }))),
        ...(still.length > 0 ? listLines("not drawn, no part moved before a span", still) : []),
      ],
    },
    points,
    strategies: rows.map((s) => s.strategy),
    channels: { x, y, color, dash: imageSetDash(drawn) },
    width: PANEL_WIDTH,
    rule: 0,
    errors: points.some((p) => p.seeds > 1) ? "datum.seeds > 1 && isValid(datum.value)" : undefined,
    tooltip: [{ field: "strategy" }, { field: "part" }, { field: "images" }, { field: "span" }, { field: "value", format: ".2f" }],
  });
}
