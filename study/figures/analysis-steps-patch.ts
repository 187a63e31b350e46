// The patch projection along fine-tuning (analysis-results.ts StepSummary's patchChange; eval/patch-directions.ts): a
// panel per strategy at its selected learning rate whose patch projection moved, its output change on the patches of
// the images against the step whose backbone the cells kept (step 0: the original), split into the change along the
// first principal direction of the patches (where they lie most: on Fashion-MNIST's, a patch's mean
// intensity) and along every other, mean over seeds (error bars ± 1 std): solid on the analysed source-domain images,
// dashed on the target-domain ones. Whether a part of its change comes and goes while the rest grows.
import type { FigureSpec } from "../../plot/render.js";
import type { PatchChangeSummary, RunAnalysis, StrategyAnalysis } from "../analysis-results.js";
import type { ImageSets } from "../../eval/block-analysis.js";
import { stepPanelsSpec } from "./analysis-steps.js";
import { stepAxis } from "./forgetting-curve.js";
import { IMAGE_SETS, imageSetDash, imageSetLine, keptStepsLines, nothingToDrawSpec, seedsNote } from "./parts.js";

const TEXT = "Where the patch projection's change lies";
const PANEL_WIDTH = 220;
const DIRECTIONS = { along: "along the first direction", rest: "along every other" } as const;

export function stepPatchSpec(a: RunAnalysis): FigureSpec {
  const moved = (s: StrategyAnalysis) => (s.atSteps ?? []).some((t) => t.patchChange && t.patchChange.source.along.mean + t.patchChange.source.rest.mean > 0);
  const rows = a.strategies.filter(moved);
  if (rows.length === 0 || !a.patchDirections) return nothingToDrawSpec(TEXT, ["no row's patch projection moved at a kept step (analysis.atSteps)"]);
  const pointsOf = (strategy: string, step: number, seeds: number, change: ImageSets<PatchChangeSummary> | undefined) =>
    IMAGE_SETS.flatMap((images) => {
      const c = change?.[images];
      return c ? (Object.keys(DIRECTIONS) as (keyof typeof DIRECTIONS)[]).map((d) => ({ strategy, step, seeds, images, direction: DIRECTIONS[d], value: c[d].mean, lo: c[d].mean - c[d].std, hi: c[d].mean + c[d].std })) : [];
    });
  const zero = { along: { mean: 0, std: 0 }, rest: { mean: 0, std: 0 } };
  const points = rows.flatMap((s) => [...pointsOf(s.strategy, 0, 0, { source: zero, target: zero }), ...s.atSteps!.flatMap((t) => pointsOf(s.strategy, t.step, t.seeds, t.patchChange))]);
  const steps = [0, ...new Set(rows.flatMap((s) => s.atSteps!.map((t) => t.step)))].sort((x, y) => x - y);
  const drawn = IMAGE_SETS.filter((images) => a.patchDirections![images] && points.some((p) => p.images === images && p.step > 0));
  const directions = Object.values(DIRECTIONS);
  const described = (images: "source" | "target") => {
    const d = a.patchDirections![images]!;
    const set = images === "source" ? a.images : a.targetImages;
    return [`${imageSetLine(images)} ${set ? `${set.count} ` : ""}${images}-domain images${set ? ` (${set.name} ${set.split})` : ""};`, `  their first direction: ${(100 * d.share).toFixed(0)}% of the moment, ${(100 * d.flatness).toFixed(0)}% flat`];
  };
  const y = { field: "value", type: "quantitative", title: "Relative output change (ratio of norms)", scale: { zero: true, nice: false, padding: 8 } } as const;
  return stepPanelsSpec({
    title: {
      text: TEXT,
      subtitle: [
        "the patch projection's output change on every",
        "patch, relative to its output there, along the",
        "first principal direction of the patches (their",
        "uncentred second moment's) and along every other",
        ...drawn.flatMap(described),
        ...keptStepsLines(steps.slice(1)),
        "each strategy at the table's learning rate; step 0: the original",
        "steps on a symmetric log scale",
        ...seedsNote(rows.map((s) => ({ label: s.strategy, seeds: Math.max(...s.atSteps!.map((t) => t.seeds)) }))),
      ],
    },
    points,
    strategies: rows.map((s) => s.strategy),
    channels: {
      x: stepAxis(steps, "Fine-tuning step", PANEL_WIDTH),
      y,
      color: { field: "direction", type: "nominal", title: "Patch direction", scale: { domain: directions, range: ["#d95f02", "#1b9e77"] }, sort: directions },
      dash: imageSetDash(drawn),
    },
    width: PANEL_WIDTH,
    zero: false,
    errors: points.some((p) => p.seeds > 1) ? "datum.seeds > 1" : undefined,
    tooltip: [{ field: "strategy" }, { field: "direction" }, { field: "images" }, { field: "step" }, { field: "value", format: ".3f" }],
  });
}
