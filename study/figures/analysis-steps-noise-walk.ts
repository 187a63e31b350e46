// How far the batches' noise alone would have taken each part along fine-tuning (analysis-results.ts StepSummary's
// noiseWalk; study/noise-walks.ts): a panel per strategy at its selected learning rate whose kept steps have one, a
// line per part (the embeddings, each original block, the final norm) against the kept step, each point the walk's
// change over the part's observed change, mean over seeds (error bars ± 1 std). At 1 the noise alone takes the part as
// far as it went; below, the mean gradient took it further; above, something held it back.
import type { FigureSpec } from "../../plot/render.js";
import type { RunAnalysis } from "../analysis-results.js";
import { stepPanelsSpec } from "./analysis-steps.js";
import { stepAxis } from "./forgetting-curve.js";
import { keptStepsLines, keptStepsSeeds, nothingToDrawSpec, seedsNote } from "./parts.js";

const PANEL_WIDTH = 220;
const TEXT = "How far the batches' noise alone would take each part";
const Y = { field: "value", type: "quantitative", title: "Noise walk's change / observed change", scale: { zero: true, nice: false, padding: 8 } } as const;

export function stepNoiseWalkSpec(a: RunAnalysis): FigureSpec {
  const parts = ["embeddings", ...Array.from({ length: a.depth }, (_, i) => `block ${i}`), "final norm"];
  // A part the row did not train has no share (0 / 0), nor has any part where no two batches were full: not drawn.
  const points = a.strategies.flatMap((s) =>
    (s.atSteps ?? []).flatMap((t) => {
      const walk = t.noiseWalk;
      if (!walk) return [];
      return [walk.embedding, ...walk.blocks, walk.norm].flatMap(({ share }, i) => (Number.isFinite(share.mean) ? [{ strategy: s.strategy, part: parts[i], step: t.step, seeds: t.seeds, value: share.mean, lo: share.mean - share.std, hi: share.mean + share.std }] : []));
    }),
  );
  const rows = a.strategies.filter((s) => points.some((p) => p.strategy === s.strategy));
  if (rows.length === 0) return nothingToDrawSpec(TEXT, ["no row has the spread of gradient descent's next move at every kept step (analysis.atSteps, two full", "batches of training images at least) with SGD"]);
  const steps = [...new Set(points.map((p) => p.step))].sort((x, y) => x - y);
  return stepPanelsSpec({
    title: {
      text: TEXT,
      subtitle: [
        "the change SGD's steps (the study's rates and momentum) make",
        "of the batches' noise alone, its spread measured at the kept",
        "steps and no mean gradient, over each part's observed weight",
        "change; 1: the noise alone takes the part as far as it went",
        ...(a.trainImages ? [`the spread on ${a.trainImages.count} training images (${a.trainImages.name} ${a.trainImages.split})`] : []),
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
    rule: 1,
    errors: points.some((p) => p.seeds > 1) ? "datum.seeds > 1 && isValid(datum.lo)" : undefined,
    tooltip: [{ field: "strategy" }, { field: "part" }, { field: "step" }, { field: "value", format: ".3f" }],
  });
}
