// The patch projection along fine-tuning (analysis-results.ts StepSummary's patchChange, patchDescent, patchMemory;
// eval/patch-directions.ts): a panel per strategy at its selected learning rate whose patch projection moved, against
// the step whose backbone the cells kept, split along the first principal direction of the patches (where they lie
// most: on Fashion-MNIST's, a patch's mean intensity) and along every other, mean over seeds (error bars ± 1 std):
// solid on the analysed source-domain images, dashed on the target-domain ones. stepPatchSpec draws its output change
// on their patches (step 0: the original): whether a part of its change comes and goes while the rest grows.
// stepDescentSpec draws gradient descent's next move on it (the training loss's gradient) against its change so far,
// their cosine: where the loss pulls each part back (below 0) and where on (above); stepMemorySpec the same of the
// step the optimiser's memory alone would make (patchMemory): where it carries each part on.
import type { FigureSpec } from "../../plot/render.js";
import type { MeanStd } from "../../util/stats.js";
import type { PatchSinceSummary, RunAnalysis, StepSummary, StrategyAnalysis } from "../analysis-results.js";
import type { ImageSets } from "../../eval/block-analysis.js";
import { stepPanelsSpec } from "./analysis-steps.js";
import { stepAxis } from "./forgetting-curve.js";
import { IMAGE_SETS, imageSetDash, imageSetLine, keptStepsLines, keptStepsSeeds, nothingToDrawSpec, seedsNote } from "./parts.js";

const PANEL_WIDTH = 220;
const DIRECTIONS = { along: "along the first direction", rest: "along every other" } as const;

type Split = { along: MeanStd; rest: MeanStd };

// What a figure draws of each kept step, and how.
interface PatchMeasure {
  text: string;
  what: string[]; // the subtitle's first lines
  at: (t: StepSummary) => ImageSets<Split> | undefined;
  origin: boolean; // a point at step 0, the original's 0
  y: object;
  zero: boolean; // a rule at 0
  loss: boolean; // the subtitle names the training images the loss is taken on
  nothing: string;
}

const CHANGE: PatchMeasure = {
  text: "Where the patch projection's change lies",
  what: ["the patch projection's output change on every", "patch, relative to its output there, along the", "first principal direction of the patches (their", "uncentred second moment's) and along every other"],
  at: (t) => t.patchChange,
  origin: true,
  y: { field: "value", type: "quantitative", title: "Relative output change (ratio of norms)", scale: { zero: true, nice: false, padding: 8 } },
  zero: false,
  loss: false,
  nothing: "no row's patch projection moved at a kept step (analysis.atSteps)",
};

const turnOf = (x: ImageSets<PatchSinceSummary> | undefined): ImageSets<Split> | undefined => {
  const split = (s: PatchSinceSummary) => ({ along: s.along.turn, rest: s.rest.turn });
  return x && { source: split(x.source), ...(x.target && { target: split(x.target) }) };
};

const DESCENT: PatchMeasure = {
  text: "Where the training loss pulls the patch projection",
  what: ["the cosine of gradient descent's next move on the", "patch projection (minus the training loss's gradient)", "with its change so far, along the first principal", "direction of the patches and along every other;", "+1: further the way it came, -1: back"],
  at: (t) => turnOf(t.patchDescent),
  origin: false,
  y: { field: "value", type: "quantitative", title: "Cosine with the change so far", scale: { domain: [-1, 1], nice: false } },
  zero: true,
  loss: true,
  nothing: "no row's patch projection has its gradient measured at a kept step (analysis.atSteps)",
};

const MEMORY: PatchMeasure = {
  text: "Where the optimiser's memory carries the patch projection",
  what: ["the cosine of the step the optimiser's state alone", "would make next (a zero gradient, no weight decay)", "with the patch projection's change so far, along", "the first principal direction of the patches and", "along every other; +1: further the way it came, -1: back"],
  at: (t) => turnOf(t.patchMemory),
  origin: false,
  y: DESCENT.y,
  zero: true,
  loss: false,
  nothing: "no row's kept steps hold the optimiser's state of a patch projection that moved (analysis.atSteps; plain SGD has none)",
};

export const stepPatchSpec = (a: RunAnalysis): FigureSpec => patchSpec(a, CHANGE);
export const stepDescentSpec = (a: RunAnalysis): FigureSpec => patchSpec(a, DESCENT);
export const stepMemorySpec = (a: RunAnalysis): FigureSpec => patchSpec(a, MEMORY);

function patchSpec(a: RunAnalysis, m: PatchMeasure): FigureSpec {
  const drawn = (s: StrategyAnalysis) => (s.atSteps ?? []).some((t) => t.patchChange && t.patchChange.source.along.mean + t.patchChange.source.rest.mean > 0 && m.at(t));
  const rows = a.strategies.filter(drawn);
  if (rows.length === 0 || !a.patchDirections) return nothingToDrawSpec(m.text, [m.nothing]);
  const pointsOf = (strategy: string, step: number, seeds: number, split: ImageSets<Split> | undefined) =>
    IMAGE_SETS.flatMap((images) => {
      const c = split?.[images];
      return c ? (Object.keys(DIRECTIONS) as (keyof typeof DIRECTIONS)[]).map((d) => ({ strategy, step, seeds, images, direction: DIRECTIONS[d], value: c[d].mean, lo: c[d].mean - c[d].std, hi: c[d].mean + c[d].std })) : [];
    });
  const zero = { along: { mean: 0, std: 0 }, rest: { mean: 0, std: 0 } };
  const origin = (strategy: string) => (m.origin ? pointsOf(strategy, 0, 0, { source: zero, target: zero }) : []);
  const points = rows.flatMap((s) => [...origin(s.strategy), ...s.atSteps!.flatMap((t) => pointsOf(s.strategy, t.step, t.seeds, m.at(t)))]);
  const steps = [...(m.origin ? [0] : []), ...new Set(rows.flatMap((s) => s.atSteps!.filter((t) => m.at(t)).map((t) => t.step)))].sort((x, y) => x - y);
  const sets = IMAGE_SETS.filter((images) => a.patchDirections![images] && points.some((p) => p.images === images && p.step > 0));
  const directions = Object.values(DIRECTIONS);
  const described = (images: "source" | "target") => {
    const d = a.patchDirections![images]!;
    const set = images === "source" ? a.images : a.targetImages;
    return [`${imageSetLine(images)} ${set ? `${set.count} ` : ""}${images}-domain images${set ? ` (${set.name} ${set.split})` : ""};`, `  their first direction: ${(100 * d.share).toFixed(0)}% of the moment, ${(100 * d.flatness).toFixed(0)}% flat`];
  };
  const train = a.trainImages && m.loss ? [`the loss on ${a.trainImages.count} training images (${a.trainImages.name} ${a.trainImages.split})`] : [];
  return stepPanelsSpec({
    title: {
      text: m.text,
      subtitle: [
        ...m.what,
        ...train,
        ...sets.flatMap(described),
        ...keptStepsLines(steps.filter((s) => s > 0)),
        `each strategy at the table's learning rate${m.origin ? "; step 0: the original" : ""}`,
        "steps on a symmetric log scale",
        ...seedsNote(keptStepsSeeds(rows)),
      ],
    },
    points,
    strategies: rows.map((s) => s.strategy),
    channels: {
      x: stepAxis(steps, "Fine-tuning step", PANEL_WIDTH),
      y: m.y as { field: string },
      color: { field: "direction", type: "nominal", title: "Patch direction", scale: { domain: directions, range: ["#d95f02", "#1b9e77"] }, sort: directions },
      dash: imageSetDash(sets),
    },
    width: PANEL_WIDTH,
    ...(m.zero && { rule: 0 }),
    errors: points.some((p) => p.seeds > 1) ? "datum.seeds > 1" : undefined,
    tooltip: [{ field: "strategy" }, { field: "direction" }, { field: "images" }, { field: "step" }, { field: "value", format: ".3f" }],
  });
}
