// The per-block analysis along fine-tuning (analysis.atSteps): for each strategy at its selected learning rate (a
// panel each, in the table's order), each original block's measure against the step whose backbone the cells
// kept, one line per block, step 0 the original itself. "cka": the linear CKA of the block's CLS output with the
// original's (error bars ± 1 std over seeds); "knn": the layer-wise k-NN's change from the original's, in points
// (error bars its 95% interval over seeds, the banks where there are several, and images, as analysis-knn's);
// "output": each part's own output change (eval/output-change.ts), the embeddings' too, on the original's input to
// it (error bars ± 1 std over seeds). Where along the depth, and how soon, a backbone drifts.
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG, REFERENCE_DASH } from "../../plot/style.js";
import type { RunAnalysis, StepSummary } from "../analysis-results.js";
import type { MeanStd } from "../../util/stats.js";
import { stepAxis } from "./forgetting-curve.js";
import { changeIntervalNote, keptStepsLines, keptStepsSeeds, nothingToDrawSpec, seedsNote } from "./parts.js";

const PANEL_WIDTH = 200;

const TEXTS = { cka: "How soon each block's representation drifts", knn: "How soon each block loses source knowledge", output: "How far each part's own computation moves" };
const EMBEDDINGS = "embeddings" as const;

export function stepsSpec(a: RunAnalysis, measure: "cka" | "knn" | "output"): FigureSpec {
  const rows = a.strategies.filter((s) => s.atSteps && s.atSteps.length > 0);
  const text = TEXTS[measure];
  if (rows.length === 0) return nothingToDrawSpec(text, ["no cell of the table's rows kept a backbone at analysis.atSteps"]);
  const blocks: (number | typeof EMBEDDINGS)[] = [...(measure === "output" ? [EMBEDDINGS] : []), ...Array.from({ length: a.depth }, (_, i) => i)];
  const spread = (m: MeanStd) => [m.mean, m.mean - m.std, m.mean + m.std];
  const valueAt = (t: StepSummary, block: number | typeof EMBEDDINGS) =>
    block === EMBEDDINGS ? spread(t.outputChange.embedding) : measure === "cka" ? spread(t.ckaCls[block]) : measure === "output" ? spread(t.outputChange.blocks[block]) : [t.knnChange[block].mean, t.knnChange[block].lo, t.knnChange[block].hi];
  // The output change's lines are parts, named; the others' blocks, numbered.
  const label = (block: number | typeof EMBEDDINGS) => (measure === "output" && block !== EMBEDDINGS ? `block ${block}` : block);
  // Step 0 is the original: CKA 1 and no change, measured by nothing.
  const points = rows.flatMap((s) =>
    blocks.flatMap((block) => [
      { strategy: s.strategy, block: label(block), step: 0, seeds: 0, value: measure === "cka" ? 1 : 0, lo: null, hi: null },
      ...s.atSteps!.map((t) => {
        const [value, lo, hi] = valueAt(t, block);
        return { strategy: s.strategy, block: label(block), step: t.step, seeds: t.seeds, value: Number.isNaN(value) ? null : value, lo, hi };
      }),
    ]),
  );
  const steps = [0, ...new Set(rows.flatMap((s) => s.atSteps!.map((t) => t.step)))].sort((x, y) => x - y);
  const x = stepAxis(steps, "Fine-tuning step", PANEL_WIDTH); // on every panel: the scale is named once, in the subtitle
  const y = {
    field: "value",
    type: "quantitative",
    title: { cka: "Linear CKA with the original, CLS token", knn: `Layer-wise ${a.k}-NN change (points)`, output: "Relative output change (ratio of norms)" }[measure],
    scale: { zero: measure !== "cka", nice: false, padding: 8 },
  } as const;
  const parts = blocks.map(label);
  const color = { field: "block", type: "ordinal", title: measure === "output" ? "Part" : "Block (0 = first)", scale: { scheme: "viridis", domain: parts }, sort: parts } as const;
  const seeds = seedsNote(
    keptStepsSeeds(rows),
    "error bars",
    measure === "knn" ? (rows.some((s) => s.atSteps!.some((t) => t.knnChange.some((c) => c.banks > 1))) ? changeIntervalNote("banks", "images") : changeIntervalNote("images")) : undefined,
  );
  return stepPanelsSpec({
    title: {
      text,
      subtitle: [
        ...{
          cka: ["linear CKA of each block's CLS output with the original's"],
          knn: ["k-NN of each block's CLS token less the original's"],
          output: ["each part run on the original's input to it: its", "output less the original part's there, relative", "to the original's (a block's: to its contribution)"],
        }[measure],
        ...keptStepsLines(steps.slice(1)),
        `${a.images.count} source-domain images (${a.images.name} ${a.images.split})`,
        "each strategy at the table's learning rate; step 0: the original",
        "steps on a symmetric log scale",
        ...seeds,
      ],
    },
    points,
    strategies: rows.map((s) => s.strategy),
    channels: { x, y, color },
    width: PANEL_WIDTH,
    ...(measure === "knn" && { rule: 0 }),
    errors: points.some((p) => p.seeds > 1) ? "datum.seeds > 1 && isValid(datum.lo)" : undefined,
    tooltip: [{ field: "strategy" }, { field: "block" }, { field: "step" }, { field: "value", format: ".3f" }],
  });
}

// A panel per strategy (`strategies`, the table's order) of lines against the fine-tuning step, a line per `color`:
// `points` (strategy, step, value, lo, hi); error bars from lo to hi where the Vega expression `errors` holds (the
// caller leaves it out where no point has one: a layer without data draws with a warning); a dashed line at `rule`
// where given (0: where the measure changes sign; 1: where a ratio is whole).
export function stepPanelsSpec(o: {
  title: { text: string; subtitle: string[] };
  points: object[];
  strategies: string[];
  channels: { x: object; y: object & { field: string }; color: object; dash?: object }; // dash: a line's stroke dash
  width: number;
  rule?: number;
  errors?: string;
  tooltip: object[];
}): FigureSpec {
  const { x, y, color } = o.channels;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: o.title,
    config: FIGURE_CONFIG,
    data: { values: o.points },
    facet: { column: { field: "strategy", type: "nominal", title: null, sort: o.strategies, header: { labelFontSize: 13 } } },
    spec: {
      width: o.width,
      height: 220,
      layer: [
        ...(o.rule !== undefined ? [{ mark: { type: "rule", color: "#333", strokeDash: REFERENCE_DASH }, encoding: { y: { datum: o.rule } } }] : []),
        ...(o.errors
          ? [{ transform: [{ filter: o.errors }], mark: { type: "errorbar", ticks: true, thickness: 1.2 }, encoding: { x, y: { ...y, field: "lo" }, y2: { field: "hi" }, color } }]
          : []),
        { mark: { type: "line", strokeWidth: 2, point: { filled: true, size: 40 } }, encoding: { x, y, color, ...(o.channels.dash && { strokeDash: o.channels.dash }), tooltip: o.tooltip } },
      ],
    },
  } as FigureSpec;
}
