// Gradient descent's next move and the optimiser's memory on the weights along fine-tuning, part by part in weight
// space (analysis-results.ts StepSummary's weightDescent and weightMemory; eval/part-moves.ts): a panel per strategy
// at its selected learning rate that trained some part's weights directly, a line per part (the embeddings, each
// original block, the final norm) against the step whose backbone the cells kept, each point the move's cosine with
// the part's change so far, mean over seeds (error bars ± 1 std). Below 0 the move takes the part back, above it
// carries it on: which parts the training loss pulls back, and which the optimiser's memory carries.
import type { FigureSpec } from "../../plot/render.js";
import type { PartMovesSummary, RunAnalysis, StepSummary } from "../analysis-results.js";
import { stepPanelsSpec } from "./analysis-steps.js";
import { stepAxis } from "./forgetting-curve.js";
import { keptStepsLines, keptStepsSeeds, nothingToDrawSpec, seedsNote } from "./parts.js";

const PANEL_WIDTH = 220;
const Y = { field: "value", type: "quantitative", title: "Cosine with the part's change so far", scale: { domain: [-1, 1], nice: false } } as const;

const MOVES = {
  weightDescent: {
    text: "Where the training loss pulls each part",
    what: ["the cosine of gradient descent's next move (minus the", "training loss's gradient) on each part's weights with", "the part's change so far, in weight space;", "+1: further the way it came, -1: back"],
    loss: true,
    nothing: "no row trained a part's weights directly with its gradient measured at a kept step (analysis.atSteps)",
  },
  weightMemory: {
    text: "Where the optimiser's memory carries each part",
    what: ["the cosine of the step the optimiser's state alone", "would make next (a zero gradient, no weight decay)", "on each part's weights with the part's change so far,", "in weight space; +1: further the way it came, -1: back"],
    loss: false,
    nothing: "no row's kept steps hold the optimiser's state of a part it trained directly (analysis.atSteps; plain SGD has none)",
  },
} as const;

export function stepWeightMovesSpec(a: RunAnalysis, key: keyof typeof MOVES): FigureSpec {
  const m = MOVES[key];
  const at = (t: StepSummary): PartMovesSummary | undefined => t[key];
  const rows = a.strategies.filter((s) => (s.atSteps ?? []).some((t) => at(t)));
  if (rows.length === 0) return nothingToDrawSpec(m.text, [m.nothing]);
  const parts = ["embeddings", ...Array.from({ length: a.depth }, (_, i) => `block ${i}`), "final norm"];
  const points = rows.flatMap((s) =>
    s.atSteps!.flatMap((t) => {
      const moves = at(t);
      if (!moves) return [];
      return [moves.embedding, ...moves.blocks, moves.norm].map(({ turn }, i) => ({ strategy: s.strategy, part: parts[i], step: t.step, seeds: t.seeds, value: Number.isNaN(turn.mean) ? null : turn.mean, lo: turn.mean - turn.std, hi: turn.mean + turn.std }));
    }),
  );
  const steps = [...new Set(points.map((p) => p.step))].sort((x, y) => x - y);
  const train = a.trainImages && m.loss ? [`the loss on ${a.trainImages.count} training images (${a.trainImages.name} ${a.trainImages.split})`] : [];
  return stepPanelsSpec({
    title: {
      text: m.text,
      subtitle: [
        ...m.what,
        ...train,
        ...keptStepsLines(steps),
        "each strategy at the table's learning rate; a part it did not train is not drawn",
        "steps on a symmetric log scale",
        ...seedsNote(keptStepsSeeds(rows)),
      ],
    },
    points,
    strategies: rows.map((s) => s.strategy),
    channels: {
      x: stepAxis(steps, "Fine-tuning step", PANEL_WIDTH),
      y: Y,
      color: { field: "part", type: "ordinal", title: "Part", scale: { scheme: "viridis", domain: parts }, sort: parts },
    },
    width: PANEL_WIDTH,
    rule: 0,
    errors: points.some((p) => p.seeds > 1) ? "datum.seeds > 1 && isValid(datum.lo)" : undefined,
    tooltip: [{ field: "strategy" }, { field: "part" }, { field: "step" }, { field: "value", format: ".3f" }],
  });
}
