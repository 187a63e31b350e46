// Each part's weights along fine-tuning (analysis-results.ts StepSummary), a panel per strategy at its selected
// learning rate, a line per part (the embeddings, each original block, the final norm) against the step whose
// backbone the cells kept, each point a mean over seeds (error bars ± 1 std); a part the row did not train, or whose
// value is not a number, is not drawn:
//   - gradient descent's next move and the optimiser's memory in weight space (weightDescent, weightMemory;
//     eval/part-moves.ts): the move's cosine with the part's change so far. Below 0 the move takes the part back,
//     above it carries it on: which parts the training loss pulls back, and which the optimiser's memory carries;
//   - the memory's cosine with gradient descent's move (weightMemory's descentTurn): below 0 what the memory carries
//     the loss asks back;
//   - the noise walk (noiseWalk; study/noise-walks.ts): the walk's change over the part's observed change. At 1 the
//     batches' noise alone takes the part as far as it went; below, the mean gradient took it further; above,
//     something held it back.
import type { FigureSpec } from "../../plot/render.js";
import type { MeanStd } from "../../util/stats.js";
import type { RunAnalysis, StepSummary } from "../analysis-results.js";
import { stepPanelsSpec } from "./analysis-steps.js";
import { stepAxis } from "./forgetting-curve.js";
import { keptStepsLines, keptStepsSeeds, nothingToDrawSpec, seedsNote } from "./parts.js";

const PANEL_WIDTH = 220;
const COSINE = { field: "value", type: "quantitative", title: "Cosine with the part's change so far", scale: { domain: [-1, 1], nice: false } } as const;
const WITH_DESCENT = { ...COSINE, title: "Cosine with gradient descent's next move" } as const;
const SHARE = { field: "value", type: "quantitative", title: "Noise walk's change / observed change", scale: { zero: true, nice: false, padding: 8 } } as const;

interface PartFigure {
  text: string;
  what: string[]; // the subtitle's first lines
  taken?: string; // what is taken on the training images, where the subtitle names them: "the loss", "the spread"
  nothing: string[];
  y: typeof COSINE | typeof WITH_DESCENT | typeof SHARE;
  rule: number;
  at: (t: StepSummary) => MeanStd[] | undefined; // each part's, the embeddings first and the final norm last
}

const FIGURES = {
  weightDescent: {
    text: "Where the training loss pulls each part",
    what: ["the cosine of gradient descent's next move (minus the", "training loss's gradient) on each part's weights with", "the part's change so far, in weight space;", "+1: further the way it came, -1: back"],
    taken: "the loss",
    nothing: ["no row trained a part's weights directly with its gradient measured at a kept step (analysis.atSteps)"],
    y: COSINE,
    rule: 0,
    at: (t) => t.weightDescent && [t.weightDescent.embedding, ...t.weightDescent.blocks, t.weightDescent.norm].map((p) => p.turn),
  },
  weightMemory: {
    text: "Where the optimiser's memory carries each part",
    what: ["the cosine of the step the optimiser's state alone", "would make next (a zero gradient, no weight decay)", "on each part's weights with the part's change so far,", "in weight space; +1: further the way it came, -1: back"],
    nothing: ["no row's kept steps hold the optimiser's state of a part it trained directly (analysis.atSteps; plain SGD has none)"],
    y: COSINE,
    rule: 0,
    at: (t) => t.weightMemory && [t.weightMemory.embedding, ...t.weightMemory.blocks, t.weightMemory.norm].map((p) => p.turn),
  },
  memoryDescent: {
    text: "Whether the optimiser's memory goes the loss's way",
    what: ["the cosine of the step the optimiser's state alone", "would make next on each part's weights with gradient", "descent's next move on them (minus the training loss's", "gradient); -1: the memory carries what the loss asks back"],
    taken: "the loss",
    nothing: ["no row's kept steps hold both the optimiser's state and the training loss's gradient of a part it trained directly"],
    y: WITH_DESCENT,
    rule: 0,
    at: (t) => t.weightMemory?.embedding.descentTurn && [t.weightMemory.embedding, ...t.weightMemory.blocks, t.weightMemory.norm].map((p) => p.descentTurn!),
  },
  noiseWalk: {
    text: "How far the batches' noise alone would take each part",
    what: ["the change SGD's steps (the study's rates and momentum) make", "of the batches' noise alone, its spread measured at the kept", "steps and no mean gradient, over each part's observed weight", "change; 1: the noise alone takes the part as far as it went"],
    taken: "the spread",
    nothing: ["no row has the spread of gradient descent's next move at every kept step (analysis.atSteps, two full", "batches of training images at least) with SGD"],
    y: SHARE,
    rule: 1,
    at: (t) => t.noiseWalk && [t.noiseWalk.embedding, ...t.noiseWalk.blocks, t.noiseWalk.norm].map((p) => p.share),
  },
} satisfies Record<string, PartFigure>;

export function stepPartsSpec(a: RunAnalysis, key: keyof typeof FIGURES): FigureSpec {
  const f: PartFigure = FIGURES[key];
  const parts = ["embeddings", ...Array.from({ length: a.depth }, (_, i) => `block ${i}`), "final norm"];
  const points = a.strategies.flatMap((s) =>
    (s.atSteps ?? []).flatMap((t) => (f.at(t) ?? []).flatMap((v, i) => (Number.isFinite(v.mean) ? [{ strategy: s.strategy, part: parts[i], step: t.step, seeds: t.seeds, value: v.mean, lo: v.mean - v.std, hi: v.mean + v.std }] : []))),
  );
  const rows = a.strategies.filter((s) => points.some((p) => p.strategy === s.strategy));
  if (rows.length === 0) return nothingToDrawSpec(f.text, f.nothing);
  const steps = [...new Set(points.map((p) => p.step))].sort((x, y) => x - y);
  const train = a.trainImages && f.taken ? [`${f.taken} on ${a.trainImages.count} training images (${a.trainImages.name} ${a.trainImages.split})`] : [];
  return stepPanelsSpec({
    title: {
      text: f.text,
      subtitle: [
        ...f.what,
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
      y: f.y,
      color: { field: "part", type: "ordinal", title: "Part", scale: { scheme: "viridis", domain: parts }, sort: parts },
    },
    width: PANEL_WIDTH,
    rule: f.rule,
    errors: points.some((p) => p.seeds > 1) ? "datum.seeds > 1 && isValid(datum.lo)" : undefined,
    tooltip: [{ field: "strategy" }, { field: "part" }, { field: "step" }, { field: "value", format: ".3f" }],
  });
}
