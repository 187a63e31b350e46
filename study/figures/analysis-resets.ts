// The per-block analysis's resets (analysis.resets, study/analysis-resets.ts): for each strategy at its selected
// learning rate (a panel each, in the table's order, the strategies that train some part of the backbone), each part
// of the best backbone reset where fine-tuning started, one at a time: two bars, the source k-NN that reset wins back
// and the transfer accuracy it changes, in points against the fine-tuned model's own, error bars their 95% intervals
// over seeds and images. Where a part's change cost the source domain, and what it bought. stepResetsSpec: the
// same resets of the backbones kept at analysis.atSteps, the source k-NN each part's reset wins back against the
// step: how soon each part's change costs what it does. stepResetsBetweenSpec: each kept backbone's parts put back
// to the kept step before (analysis.resetsBetweenSteps), a heatmap of what each part's change between the two did.
import type { FigureLayer, FigureSpec } from "../../plot/render.js";
import { REFERENCE_DASH } from "../../plot/style.js";
import { BLOCK_LAYERS } from "../../eval/weight-change.js";
import type { RunAnalysis } from "../analysis-results.js";
import { resetBanks } from "../analysis-resets.js";
import { CONFIDENCE } from "../comparisons.js";
import { stepPanelsSpec } from "./analysis-steps.js";
import { stepAxis } from "./forgetting-curve.js";
import { panelsSpec } from "./panels.js";
import { DASH_LEGEND, intervalEnds, keptStepsLines, nothingToDrawSpec, pairedSeedsNote, seedsNote } from "./parts.js";
import { changeHeatmapSpec } from "./change-heatmap.js";
import type { MeanInterval } from "../../util/stats.js";

const KNN = "source k-NN";
const TRANSFER = "transfer";
// The most parts a panel lays along its x axis, 36 px each (the default study's full fine-tuning by blocks: 8 parts,
// all and 8 "all but", 17); more go down the y axis, 24 px each (by layers: 57; ViT-B/16's by blocks: 33).
const MAX_ACROSS = 20;

export function resetsSpec(a: RunAnalysis): FigureSpec {
  const rows = a.strategies.filter((s) => s.resets && s.resets.units.length > 0);
  const points = rows.flatMap((s) =>
    s.resets!.units.flatMap((u) =>
      ([[KNN, u.knnChange], [TRANSFER, u.transferChange]] as const).map(([measure, d]) => ({ strategy: s.strategy, unit: u.unit, measure, seeds: u.seeds, value: d.mean, ...intervalEnds(d) })),
    ),
  );
  // The parts in the model's order, each panel its own: along the x axis, or where a panel has more than fit there
  // (a study's resets by layers), down the y axis.
  const across = Math.max(...rows.map((s) => s.resets!.units.length)) <= MAX_ACROSS;
  const [partAxis, valueAxis, offset] = across ? (["x", "y", "xOffset"] as const) : (["y", "x", "yOffset"] as const);
  const partOf = (units: string[]) => ({ field: "unit", type: "nominal", title: "Part reset", sort: units, axis: across ? { labelAngle: -40, labelLimit: 0 } : { labelLimit: 0 } }) as const;
  const value = { field: "value", type: "quantitative", title: "Change from fine-tuned (points)", scale: { nice: false, padding: 8 } } as const;
  const color = { field: "measure", type: "nominal", title: "Accuracy", scale: { domain: [KNN, TRANSFER], range: ["#4c78a8", "#f58518"] } } as const;
  const measure = { field: "measure", sort: [KNN, TRANSFER] } as const;
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
        [`${CONFIDENCE * 100}% interval of the change, paired`, ...(resetBanks(rows) > 1 ? ["image by image, over seeds, banks", "(source k-NN) and images"] : ["image by image, over seeds and images"])],
      ),
    ],
  };
  // A panel per strategy, each with the parts it trained and data of its own.
  const panels = rows.map((s) => {
    const values = points.filter((p) => p.strategy === s.strategy);
    const part = partOf(s.resets!.units.map((u) => u.unit));
    const length = (across ? 36 : 24) * s.resets!.units.length;
    return {
      title: s.strategy,
      ...(across ? { width: Math.max(120, length) } : { height: length }),
      layers: [
        { data: { values }, mark: { type: "bar" }, encoding: { [partAxis]: part, [offset]: measure, [valueAxis]: value, color, tooltip: [{ field: "unit" }, { field: "measure" }, { field: "value", format: ".2f" }, { field: "lo", format: ".2f" }, { field: "hi", format: ".2f" }] } },
        // A bar without an interval (one seed and one image) draws none: its lo and hi are null.
        { data: { values }, mark: { type: "rule", color: "#222", strokeWidth: 1.2 }, encoding: { [partAxis]: part, [offset]: measure, [valueAxis]: { ...value, field: "lo" }, [`${valueAxis}2`]: { field: "hi" } } },
        { data: { values: [{}] }, mark: { type: "rule", color: "#333", strokeDash: REFERENCE_DASH }, encoding: { [valueAxis]: { datum: 0 } } },
      ] as FigureLayer[],
    };
  });
  return panelsSpec(title, panels, valueAxis);
}

const STEP_PANEL_WIDTH = 220;
// A part reset whole (the embeddings, a block, the final norm, all), and the dash of each of a block's layers (none of
// them the reference line's).
const WHOLE = "whole";
const LAYER_DASHES: Record<string, number[]> = { [WHOLE]: [1, 0], norm1: [1, 2], "attn.qkv": [8, 3], "attn.proj": [8, 3, 2, 3], norm2: [2, 5], "mlp.fc1": [4, 2], "mlp.fc2": [12, 3, 2, 3, 2, 3] };
const STEP_RESETS_TITLE = "How soon each part's change costs the source domain";

// A panel per strategy whose kept backbones had parts to reset, a line per part (and all of them; not "all but X",
// which the best backbones' figure has), the source k-NN its reset wins back at each kept step, in points against
// that step's own model. Step 0 is where fine-tuning started: every reset changes nothing there. By layers
// (analysis.resets "layers"), a block's layers share its colour, each layer its own dash: 29 lines for full
// fine-tuning on 4 blocks, which one colour per line would repeat past ten.
export function stepResetsSpec(a: RunAnalysis): FigureSpec {
  const rows = a.strategies.filter((s) => s.atSteps?.some((t) => t.resets && t.resets.units.length > 0));
  if (rows.length === 0) return nothingToDrawSpec(STEP_RESETS_TITLE, ["no cell of the table's rows kept a backbone at analysis.atSteps", "with a part of it trained (linear probing trains none)"]);
  const alone = (unit: string) => !unit.startsWith("all but ");
  const points = rows.flatMap((s) =>
    s.atSteps!.flatMap((t) =>
      (t.resets?.units ?? []).filter((u) => alone(u.unit)).flatMap((u) => {
        const d = u.knnChange;
        const part = u.layer ? u.unit.slice(0, -u.layer.length - 1) : u.unit;
        const at = { strategy: s.strategy, unit: u.unit, part, layer: u.layer ?? WHOLE, step: t.step, seeds: u.seeds, value: d.mean, ...intervalEnds(d) };
        return t === s.atSteps![0] ? [{ ...at, step: 0, seeds: 0, value: 0, lo: null, hi: null }, at] : [at];
      }),
    ),
  );
  // The parts in the model's order ("all" after them), the union of every panel's; by layers, their blocks.
  const parts = [...new Set(points.map((p) => p.part))];
  const ordered = [...parts.filter((u) => u !== "all"), ...parts.filter((u) => u === "all")];
  const layers = [...new Set(points.map((p) => p.layer))];
  const byLayers = layers.some((l) => l !== WHOLE);
  const steps = [0, ...new Set(rows.flatMap((s) => s.atSteps!.map((t) => t.step)))].sort((x, y) => x - y);
  const x = stepAxis(steps, "Fine-tuning step", STEP_PANEL_WIDTH);
  const y = { field: "value", type: "quantitative", title: `Source ${a.k}-NN won back (points)`, scale: { nice: false, padding: 8 } } as const;
  // "all" in black, the parts in a categorical scheme: the colours repeat past ten parts (ViT-B/16's blocks), told
  // apart by the tooltip.
  const palette = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"];
  const color = { field: "part", type: "nominal", title: "Part reset", scale: { domain: ordered, range: ordered.map((u, i) => (u === "all" ? "#222" : palette[i % palette.length])) }, sort: ordered } as const;
  const layerOrder = [WHOLE, ...BLOCK_LAYERS].filter((l) => layers.includes(l));
  const dash = byLayers ? ({ field: "layer", type: "nominal", title: "Layer", scale: { domain: layerOrder, range: layerOrder.map((l) => LAYER_DASHES[l]) }, sort: layerOrder, legend: DASH_LEGEND } as const) : undefined;
  const seeds = seedsNote(
    rows.map((s) => ({ label: s.strategy, seeds: Math.max(...s.atSteps!.flatMap((t) => (t.resets?.units ?? []).map((u) => u.seeds))) })),
    "error bars",
    [`${CONFIDENCE * 100}% interval of the change, paired`, `image by image, over seeds${resetBanks(rows.flatMap((s) => s.atSteps!)) > 1 ? ", banks" : ""} and images`],
  );
  return stepPanelsSpec({
    title: {
      text: STEP_RESETS_TITLE,
      subtitle: [
        "each part of the backbone kept at each step reset",
        "to its value where fine-tuning started, one at a",
        "time (all: every part at once): the source k-NN",
        "it wins back, less that step's model's own",
        ...keptStepsLines(steps.slice(1)),
        "each strategy at the table's learning rate",
        "steps on a symmetric log scale",
        ...seeds,
      ],
    },
    points,
    strategies: rows.map((s) => s.strategy),
    channels: { x, y, color, ...(dash && { dash }) },
    width: STEP_PANEL_WIDTH,
    rule: 0,
    errors: points.some((p) => p.lo !== null) ? "isValid(datum.lo)" : undefined,
    tooltip: [{ field: "strategy" }, { field: "unit" }, { field: "step" }, { field: "value", format: ".2f" }, { field: "lo", format: ".2f" }, { field: "hi", format: ".2f" }],
  });
}

const BETWEEN_TITLE = "Which part's change between kept steps cost or won back the source domain";

// A heatmap per strategy whose kept backbones were put back step by step (analysis.resetsBetweenSteps): a column per
// part (and all of them; not "all but X") and a line per span of two kept steps, each cell the source k-NN at the
// later step less with that part put back to its value at the earlier, in points: what the part's change between
// the two did, the other parts' changes kept (red: cost, blue: won back), a star where its 95% interval excludes 0.
// "all" is the whole backbone's change, the study's k-NN step against step.
export function stepResetsBetweenSpec(a: RunAnalysis): FigureSpec {
  const spansOf = (s: RunAnalysis["strategies"][number]) => (s.atSteps ?? []).flatMap((t) => (t.resetsToPrevious && t.resetsToPrevious.units.length > 0 ? [{ span: `${t.resetsToPrevious.from} → ${t.step}`, step: t.step, resets: t.resetsToPrevious }] : []));
  const rows = a.strategies.filter((s) => spansOf(s).length > 0);
  if (rows.length === 0) return nothingToDrawSpec(BETWEEN_TITLE, ["no row kept two steps with every seed and a part of", "its backbone trained (analysis.atSteps; linear probing trains none)"]);
  const alone = (unit: string) => !unit.startsWith("all but ");
  const negated = (d: MeanInterval): MeanInterval => ({ ...d, mean: -d.mean, lo: -d.hi, hi: -d.lo });
  const cells = rows.flatMap((s) => spansOf(s).flatMap((t) => t.resets.units.filter((u) => alone(u.unit)).map((u) => ({ strategy: s.strategy, x: u.unit, y: t.span, change: negated(u.knnChange) }))));
  const parts = [...new Set(cells.map((c) => c.x))];
  const ordered = [...parts.filter((u) => u !== "all"), ...parts.filter((u) => u === "all")];
  const spans = [...new Map(rows.flatMap(spansOf).sort((x, y) => x.step - y.step).map((t) => [t.span, t])).keys()];
  const banks = resetBanks(rows.flatMap((s) => spansOf(s)));
  return changeHeatmapSpec({
    title: BETWEEN_TITLE,
    subtitle: [
      "each part of the backbone kept at a step put back",
      "to its value at the kept step before: the source",
      `${a.k}-NN at the later step less with the part put`,
      "back, in points (what the part's change between the",
      "two did, the others' kept; all: every part at once)",
      "each strategy at the table's learning rate",
      ...pairedSeedsNote(
        rows.map((s) => ({ label: s.strategy, seeds: Math.min(...spansOf(s).map((t) => Math.max(...t.resets.units.map((u) => u.seeds)))) })),
        (interval) => `a star where ${interval} excludes 0`,
        banks > 1 ? ["banks", "images"] : ["images"],
      ),
    ],
    strategies: rows.map((s) => s.strategy),
    x: { field: "part", title: "Part put back", domain: ordered, px: 40, labelAngle: -40 },
    y: { field: "span", title: "Fine-tuning steps (from → to)", domain: spans, px: 24 },
    cells,
  });
}
