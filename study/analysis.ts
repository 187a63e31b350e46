// The per-block analysis of a run folder (`analyze`, and the study's `analysis` key at the end of a complete
// study): every finished cell's best backbone (or those of some strategies, or at the table's rates) against the
// original (eval/block-analysis.ts) on source-domain images (the k-NN queries, evenly spaced), with the layer-wise
// k-NN's bank the study's k-NN bank (optionally fewer images per class), and each part's output change on as many
// target-domain images too (transfer.test, evenly spaced). It writes, into the run folder or another:
//   analysis.json      everything (study/analysis-results.ts RunAnalysis)
//   analysis.csv       one number per line
//   analysis-classes.csv, analysis-classes.*   each row's layer-wise k-NN change class by class of the analysed
//                      images, block by block, and its heatmap
//   analysis-cka.*, analysis-knn.*, analysis-weights.*, analysis-drift.*   the figures (study/figures/analysis.ts)
//                      as .vl.json, .svg and .png
//   analysis-attention.svg, .png   the attention maps (study/figures/attention-grid.ts)
//   analysis-steps.csv, analysis-steps-cka.*, analysis-steps-knn.*, analysis-steps-output.*, analysis-steps-turn.*,
//                      analysis-steps-patch.*, analysis-steps-descent.*, analysis-steps-memory.*,
//                      analysis-steps-weight-descent.*, analysis-steps-weight-memory.*, analysis-steps-memory-descent.*,
//                      analysis-steps-noise-walk.*
//                      with analysis.atSteps: the same measures of the backbones the cells kept at those steps, and
//                      their figures; what the batches' noise alone would have made of each part by then
//   analysis-resets.*  with analysis.resets: the transfer and source k-NN of each best backbone with each part of
//                      it (or, "layers", of its blocks' layers) reset where fine-tuning started
//                      (study/analysis-resets.ts), and their figure
//   analysis-steps-resets.*   with both: the same of the backbones kept at analysis.atSteps (in
//                      analysis-steps.csv), and their figure
//   analysis-steps-resets-between.*   with analysis.atSteps and analysis.resetsBetweenSteps: each kept backbone's
//                      parts put back to their values at the kept step before (in analysis-steps.csv), and their figure
//   analysis-interpolation.*   with analysis.interpolate: the transfer and source k-NN of each best backbone
//                      moved back towards where fine-tuning started (study/analysis-interpolation.ts), and their
//                      figure
// all atomically. With `reuse`, an analysis.json of the same images, settings and cells is kept as it is: a rerun
// of a finished study does not pay for it again (a cell's result never changes once finished; --force removes
// these files with the rest). Where the table's rows have changed since (selectBy, knn.val), the cells' numbers are
// kept and the summary by row and the figures made anew.
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { isObject, readJsonFile } from "../util/json-file.js";
import { unpackBits } from "../util/bits.js";
import type { MeanInterval, MeanStd } from "../util/stats.js";
import { CONFIDENCE } from "./comparisons.js";
import { join, resolve } from "node:path";
import { Loader } from "../data/loader.js";
import { type DataSpec, type OpenedDatasets, openData, transformFor } from "../data/spec.js";
import type { Dataset } from "../data/dataset.js";
import { evenlySpaced } from "../data/subset.js";
import { Transform } from "../data/transforms.js";
import { TransformCache } from "../data/transform-cache.js";
import { runtime } from "../engine/runtime.js";
import { type CellResets, type ResetData, type RowResets, cellResets, resetBanks } from "./analysis-resets.js";
import { type CellInterpolation, type RowInterpolation, cellInterpolation } from "./analysis-interpolation.js";
import { type AnalysisData, type ImageSets, type LayerKnn, type OriginalAnalysis, analyzeOriginal, compareBackbones } from "../eval/block-analysis.js";
import { type BlockMap, blockMap } from "../eval/block-map.js";
import type { ResetGrain } from "../eval/block-reset.js";
import { loadFinetuned, loadInitial, readManifest, sha256File } from "../peft/save.js";
import { optimizerMemory } from "../eval/optimizer-memory.js";
import { parseStrategy, strategyName } from "../peft/strategy.js";
import { imageGridSvg } from "../plot/image-grid.js";
import { type FigureSpec, figureFileNames, figureFiles, renderPng } from "../plot/render.js";
import { loadVit } from "../vit/load.js";
import { readSafetensors } from "../vit/safetensors.js";
import type { VisionTransformer } from "../vit/model.js";
import { type PatchChange, type PatchMoments, patchMoments } from "../eval/patch-directions.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { withNoiseWalks } from "./noise-walks.js";
import { MAX_CLASSES } from "./knn-classes.js";
import { ANALYSIS_FORMAT, type AnalysisKey, type BankKnn, type CellAnalysis, type OutputChangeSummary, type NoiseWalkSummary, type PartMovesSummary, type PatchChangeSummary, type PatchDescentSummary, type PatchSinceSummary, type RunAnalysis, type StepAnalysis, type StepSummary, analysisBetweenCsv, analysisClassesCsv, analysisConfusionCsv, analysisCsv, analysisStepsCsv, summarizeAnalysis } from "./analysis-results.js";
import { headOf, startingHead, writeHead } from "./probe-head.js";
import { cellCheckpointPath, cellFolder, cellProbePath, cellResultPath, cellStepPath, cellsFolder } from "./cells.js";
import { DEFAULTS, type InterpolationHead, type StudyConfig, parseStudyConfig, ratesFor } from "./config.js";
import { attentionDriftSpec, ckaHeatmapSpec, layerKnnSpec, weightChangeSpec } from "./figures/analysis.js";
import { classesSpec } from "./figures/analysis-classes.js";
import { confusionSpec } from "./figures/analysis-confusion.js";
import { stepsBetweenSpec } from "./figures/analysis-steps-between.js";
import { stepsSpec } from "./figures/analysis-steps.js";
import { stepTurnSpec } from "./figures/analysis-steps-turn.js";
import { stepDescentSpec, stepMemorySpec, stepPatchSpec } from "./figures/analysis-steps-patch.js";
import { stepPartsSpec } from "./figures/analysis-steps-weights.js";
import { resetsSpec, stepResetsBetweenSpec, stepResetsSpec } from "./figures/analysis-resets.js";
import { interpolationSpec } from "./figures/analysis-interpolation.js";
import { attentionGrid } from "./figures/attention-grid.js";
import { readBackboneRecord, readBaseline, readCellOutcome } from "./result-files.js";
import { type CellOutcome, type CellResult, type Correct, type StudyResults, type TableRow, isDiverged, packCorrect, summarize } from "./results.js";
import { makeFolder } from "../util/make-folder.js";
import { studyLoader } from "./study-data.js";

export interface AnalyzeOptions {
  out?: string; // the folder for the files; default: the run folder
  images?: number; // default: the config's analysis.images, else DEFAULTS.analysis.images
  gridImages?: number;
  bankPerClass?: number;
  resets?: boolean | "layers"; // default: the config's analysis.resets
  resetsBetweenSteps?: boolean | "layers"; // default: the config's analysis.resetsBetweenSteps (needs atSteps)
  interpolate?: number[] | false; // default: the config's analysis.interpolate (false: none)
  interpolateHead?: InterpolationHead; // default: the config's analysis.interpolateHead, else "tuned"
  // Which finished cells: those of these strategies (names as the config's), and with tableRates those at their
  // strategy's rate in the table (its rows are what the summaries and figures show); default: the config's
  // analysis.strategies and analysis.tableRates, else every finished cell.
  strategies?: string[];
  tableRates?: boolean;
  backbone?: string; // the original backbone's file, where backbone.json's path no longer holds it
  reuse?: boolean; // keep an analysis.json of the same key
  // Keep the cells' numbers of an analysis.json of the same key in `out` and make its summary and files anew, where
  // they are up to date too (a build that draws a figure otherwise); measure where there is none such.
  redraw?: boolean;
  log?: (line: string) => void;
  opened?: OpenedDatasets; // the caller's open datasets (a study's), not read again
  transformed?: TransformCache; // the caller's transformed images, not made again
}

// The attention probabilities of every block of both models, (B, H, T, T) each, are on the device at once: a batch
// keeps each within 64 MiB (one storage binding on every adapter; ViT-B/16 at 224 px: 36 images, 1.5 GB in all).
const ATTENTION_BYTES = 64 * 2 ** 20;

const FIGURES = ["analysis-cka", "analysis-knn", "analysis-weights", "analysis-drift", "analysis-classes", "analysis-confusion"];
const STEP_FIGURES = ["analysis-steps-cka", "analysis-steps-knn", "analysis-steps-output", "analysis-steps-turn", "analysis-steps-patch", "analysis-steps-descent", "analysis-steps-memory", "analysis-steps-weight-descent", "analysis-steps-weight-memory", "analysis-steps-memory-descent", "analysis-steps-noise-walk", "analysis-steps-between"];
const RESET_FIGURE = "analysis-resets";
const STEP_RESET_FIGURE = "analysis-steps-resets";
const STEP_RESET_BETWEEN_FIGURE = "analysis-steps-resets-between";
const INTERPOLATION_FIGURE = "analysis-interpolation";
const figureNames = (names: string[]) => names.flatMap(figureFileNames);
// The files an analysis of `key` writes: with analysis.atSteps, analysis.resets and analysis.interpolate, their own too.
export const analysisFileNames = (key: Pick<AnalysisKey, "atSteps" | "resets" | "resetsBetweenSteps" | "interpolate">): string[] => [
  "analysis.json",
  "analysis.csv",
  "analysis-classes.csv",
  "analysis-confusion.csv",
  ...figureNames(FIGURES),
  "analysis-attention.svg",
  "analysis-attention.png",
  ...(key.atSteps ? ["analysis-steps.csv", "analysis-steps-between.csv", ...figureNames(STEP_FIGURES)] : []),
  ...(key.resets ? figureNames([RESET_FIGURE]) : []),
  ...(key.resets && key.atSteps ? figureNames([STEP_RESET_FIGURE]) : []),
  ...(key.resetsBetweenSteps ? figureNames([STEP_RESET_BETWEEN_FIGURE]) : []),
  ...(key.interpolate ? figureNames([INTERPOLATION_FIGURE]) : []),
];
// Every file an analysis may write (what the study's --force removes).
export const ANALYSIS_FILES = analysisFileNames({ atSteps: [1], resets: true, resetsBetweenSteps: true, interpolate: [1] });

// The parts a resets key puts back (true: whole blocks).
const grainOf = (x: boolean | "layers"): ResetGrain => (x === "layers" ? "layers" : "blocks");

const readJson = async <T>(path: string): Promise<T> => (await readJsonFile(path, "analyze")) as T;

// JSON writes NaN (the CKA of a block whose features are constant, a collapsed model's) as null. An analysis.json read
// back holds it as NaN again: as null, the summary's arithmetic took it for 0 and the CSV's formatting threw.
function nullsAsNaN(v: unknown): unknown {
  if (v === null) return NaN;
  if (Array.isArray(v)) return v.map(nullsAsNaN);
  return isObject(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, nullsAsNaN(x)])) : v;
}

// What an analysis.json lacks of the original's and every cell's layer-wise answers, query by query, at every block,
// and of the class each block gave each image, where its images have at most MAX_CLASSES classes (or it does not say
// how many); undefined where it lacks nothing. Those of builds before them lack them, and are made anew: each block's
// change from the original and its confusion need them.
function lacksAnswers(a: RunAnalysis): string | undefined {
  const given = (a.labels?.classes.length ?? 0) <= MAX_CLASSES;
  const answers = (x: Record<string, unknown>) => typeof x.bits === "string" && typeof x.count === "number" && unpackBits(x.bits, x.count)?.length === a.images?.count;
  const banks = a.key.otherBanks?.length ?? 0;
  const every = (test: (x: Record<string, unknown>) => boolean) => {
    const sound = (v: unknown) => Array.isArray(v) && v.length === a.depth && v.every((x) => isObject(x) && test(x));
    const soundBanks = (v: unknown) => banks === 0 || (Array.isArray(v) && v.length === banks && v.every((b) => isObject(b) && sound(b.knnCorrect)));
    return isObject(a.original) && sound(a.original.knnCorrect) && soundBanks(a.original.otherBanks) && a.cells.every((c) => sound(c.knnCorrect) && soundBanks(c.otherBanks));
  };
  if (!every(answers)) return "the layer-wise answers, image by image";
  if (given && !every((x) => typeof x.predicted === "string")) return "the class each block gave each image";
  const parts = (x: unknown, test: (part: unknown) => boolean) => isObject(x) && test(x.embedding) && Array.isArray(x.blocks) && x.blocks.length === a.depth && x.blocks.every(test);
  const change = (x: unknown) => parts(x, (p) => typeof p === "number");
  const since = (x: unknown, from: number) => isObject(x) && x.from === from && parts(x, isObject);
  const changed = (field: "outputChange" | "targetOutputChange") => a.cells.every((c) => [c, ...(c.atSteps ?? [])].every((m) => change(m[field])));
  const sinceBefore = (field: "outputSince" | "targetOutputSince") => a.cells.every((c) => (c.atSteps ?? []).slice(1).every((m, j) => since(m[field], c.atSteps![j].step)));
  if (!changed("outputChange")) return "each part's output change";
  if (!sinceBefore("outputSince")) return "each part's output change since the kept step before";
  if (!isObject(a.targetImages) || !changed("targetOutputChange") || !sinceBefore("targetOutputSince")) return "each part's output change on the target-domain images";
  // The patch projection's change along its patches' first direction and the rest, put back apart where it is put back.
  const apart = (r: unknown) => !isObject(r) || !Array.isArray(r.units) || !r.units.some((u) => isObject(u) && u.unit === "patch_embed") || r.units.some((u) => isObject(u) && u.unit === "patch_embed along the first direction");
  if (!a.cells.every((c) => [c, ...(c.atSteps ?? [])].every((m) => apart(m.resets) && apart((m as StepAnalysis).resetsToPrevious)))) return "the patch projection's change along its patches' first direction and the rest put back apart";
  const sets = (x: unknown, test: (v: unknown) => boolean) => isObject(x) && test(x.source) && test(x.target);
  const patch = (x: unknown) => sets(x, (v) => isObject(v) && typeof v.along === "number" && typeof v.rest === "number");
  const split = (x: unknown, part: (p: unknown) => boolean = isObject) => sets(x, (v) => isObject(v) && part(v.along) && part(v.rest));
  const patchSince = (x: unknown, from: number) => isObject(x) && x.from === from && split(x);
  if (!isObject(a.patchDirections) || !a.cells.every((c) => [c, ...(c.atSteps ?? [])].every((m) => patch(m.patchChange)) && (c.atSteps ?? []).slice(1).every((m, j) => patchSince(m.patchSince, c.atSteps![j].step)))) {
    return "the patch projection's output change along its patches' first direction";
  }
  // Gradient descent's next move, where the patch projection moved.
  const moved = (x: ImageSets<PatchChange> | undefined) => x !== undefined && x.source.along + x.source.rest > 0;
  if (!isObject(a.trainImages) || !a.cells.every((c) => [c, ...(c.atSteps ?? [])].every((m) => !moved(m.patchChange) || split(m.patchDescent, (p) => isObject(p) && typeof p.spread === "number")))) {
    return "gradient descent's next move on the patch projection";
  }
  // And on each part in weight space with its batches' spread, where it was measured on the patch projection (a part
  // the cell trained) or on some other part. (Before the spread, the patch projection's was taken about every image's
  // gradient and over the batches' count: measured anew with it.)
  const movesWith = (x: unknown, key: string) => {
    const has = (p: unknown) => isObject(p) && typeof p[key] === "number";
    return parts(x, has) && isObject(x) && has(x.norm);
  };
  if (!a.cells.every((c) => [c, ...(c.atSteps ?? [])].every((m) => (m.patchDescent === undefined && m.weightDescent === undefined) || movesWith(m.weightDescent, "spread")))) return "gradient descent's next move on each part's weights and its batches' spread";
  if (!a.cells.every((c) => (c.atSteps ?? []).every((m) => m.weightDescent === undefined || m.weightMemory === undefined || movesWith(m.weightMemory, "descentTurn")))) return "the optimiser's memory's cosine with gradient descent's next move";
  return undefined;
}

// Each row's layer-wise k-NN less the original's, block by block, for the log: mean [interval] (the mean alone for
// one seed).
function changeLines(a: RunAnalysis): string[] {
  const shown = (d: MeanInterval) => (Number.isFinite(d.lo) ? `${d.mean.toFixed(1)} [${d.lo.toFixed(1)}, ${d.hi.toFixed(1)}]` : d.mean.toFixed(1));
  return [
    `analysis: each block's layer-wise ${a.k}-NN less the original's, in points: mean [${CONFIDENCE * 100}% interval over seeds${a.otherBanks ? `, the bank and its ${a.otherBanks.length} other draw(s)` : ""} and images], block 0 first`,
    ...a.strategies.map((s) => `  ${s.strategy}: ${s.knnChange.map(shown).join(" / ")}`),
    ...outputLines(a, "source"),
    ...(a.targetImages && a.strategies.some((s) => s.targetOutputChange) ? outputLines(a, "target") : []),
    ...patchLines(a),
    ...weightMoveLines(a),
    ...noiseWalkLines(a),
    ...(a.strategies.some((s) => s.atSteps?.some((t) => t.knnSincePrevious))
      ? [
          `analysis: each block's layer-wise ${a.k}-NN at a kept step less at the kept step before, in points, each seed paired with itself: mean [${CONFIDENCE * 100}% interval], block 0 first`,
          ...a.strategies.flatMap((s) => (s.atSteps ?? []).flatMap((t, j) => (t.knnSincePrevious ? [`  ${s.strategy} ${s.atSteps![j - 1].step} -> ${t.step}: ${t.knnSincePrevious.map(shown).join(" / ")}`] : []))),
        ]
      : []),
    ...(a.key.resets
      ? [
          `analysis: each part reset where fine-tuning started: the source ${a.k}-NN it wins back and the transfer it changes, in points: mean [${CONFIDENCE * 100}% interval over seeds${resetBanks(a.strategies) > 1 ? ", the banks (the source k-NN's)" : ""} and images]; (alone: the same of its change alone, every other part reset)`,
          ...a.strategies.flatMap((s) => [resetLine(s.strategy, s.resets), ...(s.atSteps ?? []).map((t) => resetLine(`${s.strategy} at step ${t.step}`, t.resets))].filter((l) => l !== undefined)),
        ]
      : []),
    ...(a.key.resetsBetweenSteps
      ? [
          `analysis: each part of a kept backbone put back to its value at the kept step before: the source ${a.k}-NN it wins back and the transfer it changes, in points (negative: what the part's change between the two won): mean [${CONFIDENCE * 100}% interval over seeds${resetBanks(a.strategies.flatMap((s) => s.atSteps ?? []).map((t) => ({ resets: t.resetsToPrevious }))) > 1 ? ", the banks (the source k-NN's)" : ""} and images]; (alone: the same of its change alone, every other part put back)`,
          ...a.strategies.flatMap((s) => (s.atSteps ?? []).map((t) => t.resetsToPrevious && resetLine(`${s.strategy} ${t.resetsToPrevious.from} -> ${t.step}`, t.resetsToPrevious)).filter((l) => l !== undefined)),
        ]
      : []),
    ...(a.key.interpolate
      ? [
          `analysis: each best backbone moved back to (1 - a) start + a fine-tuned${a.key.interpolateHead === "probe" ? ", its head from linear probing's" : ""}: the source ${a.k}-NN and transfer at each weight a, in %, and their change from the fine-tuned model's, in points: mean [${CONFIDENCE * 100}% interval over seeds${a.strategies.some((s) => (s.interpolation?.banks ?? 1) > 1) ? ", the banks (the source k-NN's)" : ""} and images]`,
          ...a.strategies.map((s) => interpolationLine(s.strategy, s.interpolation)).filter((l) => l !== undefined),
        ]
      : []),
  ];
}

// What analysis.json keeps of an image set's patches: their first direction's share and flatness.
const directionOf = (m: PatchMoments) => ({ share: m.share, flatness: m.flatness });

// Each row's output change and, at the kept steps, its change since the kept step before and its turn, on the analysed
// source-domain images or on the target-domain ones.
function outputLines(a: RunAnalysis, on: "source" | "target"): string[] {
  const target = on === "target";
  const images = target ? ` on ${a.targetImages!.count} target-domain images (${a.targetImages!.name} ${a.targetImages!.split})` : "";
  const change = (x: { outputChange: OutputChangeSummary; targetOutputChange?: OutputChangeSummary }) => (target ? x.targetOutputChange : x.outputChange);
  const since = (t: StepSummary) => (target ? t.targetOutputSince : t.outputSince);
  const lines = [
    `analysis: each part's own output change${images}, run on the original's input to it, relative to the original part's output there (a block's: its contribution), mean ± std over seeds: the embeddings, then block 0 on`,
    ...a.strategies.flatMap((s) => [change(s), ...(s.atSteps ?? []).map(change)].flatMap((o, j) => (o ? [outputLine(j === 0 ? s.strategy : `${s.strategy} at step ${s.atSteps![j - 1].step}`, o)] : []))),
  ];
  if (!a.strategies.some((s) => s.atSteps?.some(since))) return lines;
  return [
    ...lines,
    `analysis: each part's output change${images} since the kept step before (relative as above) and its turn, the cosine with its change up to then (-1: back the way it came), mean over seeds: the embeddings, then block 0 on`,
    ...a.strategies.flatMap((s) =>
      (s.atSteps ?? []).flatMap((t) => {
        const o = since(t);
        return o ? [`  ${s.strategy} ${o.from} -> ${t.step}: ${[o.embedding, ...o.blocks].map(moveOf).join(" / ")}`] : [];
      }),
    ),
  ];
}

// The patch projection's output change along its patches' first direction and the rest, of the rows whose patch
// projection moved, and at the kept steps since the kept step before, with its turn.
function patchLines(a: RunAnalysis): string[] {
  const moved = a.strategies.filter((s) => s.patchChange && s.patchChange.source.along.mean + s.patchChange.source.rest.mean > 0);
  if (!a.patchDirections || moved.length === 0) return [];
  const d = a.patchDirections;
  const described = (set: "source" | "target") => `${set}: ${(100 * d[set]!.share).toFixed(0)}% of their second moment, ${(100 * d[set]!.flatness).toFixed(0)}% of it flat in each channel`;
  const each = <T>(x: ImageSets<T>, shown: (v: T) => string) => [x.source, ...(x.target ? [x.target] : [])].map(shown).join("; ");
  const sets = (x: ImageSets<PatchChangeSummary>) => each(x, (c) => `${c.along.mean.toFixed(3)} ± ${c.along.std.toFixed(3)} / ${c.rest.mean.toFixed(3)} ± ${c.rest.std.toFixed(3)}`);
  const since = (x: ImageSets<PatchSinceSummary | PatchDescentSummary>) => each(x, (c) => `${moveOf(c.along)} / ${moveOf(c.rest)}`);
  const lines = [
    `analysis: the patch projection's output change along the first principal direction of the patches it reads (${described("source")}${d.target ? `; ${described("target")}` : ""}) / along every other, relative to its output there, mean ± std over seeds: on the source-domain images${d.target ? "; on the target-domain ones" : ""}`,
    ...moved.flatMap((s) => [`  ${s.strategy}: ${sets(s.patchChange!)}`, ...(s.atSteps ?? []).flatMap((t) => (t.patchChange ? [`  ${s.strategy} at step ${t.step}: ${sets(t.patchChange)}`] : []))]),
  ];
  const spans = moved.flatMap((s) => (s.atSteps ?? []).flatMap((t) => (t.patchSince ? [`  ${s.strategy} ${t.patchSince.from} -> ${t.step}: ${since(t.patchSince)}`] : [])));
  if (spans.length > 0) lines.push("analysis: the same since the kept step before and its turn, the cosine with its change up to then (-1: back the way it came), mean over seeds: along / every other", ...spans);
  const descents = moved.flatMap((s) => [{ label: s.strategy, d: s.patchDescent }, ...(s.atSteps ?? []).map((t) => ({ label: `${s.strategy} at step ${t.step}`, d: t.patchDescent }))]);
  const t = a.trainImages;
  if (t && descents.some((x) => x.d)) {
    lines.push(
      `analysis: gradient descent's next move on the patch projection, minus the training loss's gradient on ${t.count} training images (${t.name} ${t.split}): the output change a step of rate 1 would make (relative as above), its turn, the cosine with its change so far (+1: further the way it came, -1: back), and its batches' spread about it, mean over seeds: along / every other`,
      ...descents.flatMap((x) => (x.d ? [`  ${x.label}: ${since(x.d)}`] : [])),
    );
  }
  const memories = moved.flatMap((s) => (s.atSteps ?? []).flatMap((t) => (t.patchMemory ? [`  ${s.strategy} at step ${t.step}: ${since(t.patchMemory)}`] : [])));
  if (memories.length > 0) lines.push("analysis: the optimiser's memory on the patch projection, the step its state alone would make next (a zero gradient, rate 1, no weight decay): the output change it would make (relative as above) and its turn, mean over seeds: along / every other", ...memories);
  return lines;
}

// Gradient descent's next move and the optimiser's memory in weight space, part by part: the rows (and kept steps)
// where every seed's was measured.
function weightMoveLines(a: RunAnalysis): string[] {
  const shown = (m: PartMovesSummary) => [m.embedding, ...m.blocks, m.norm].map(moveOf).join(" / ");
  const lines = (key: "weightDescent" | "weightMemory", head: string) => {
    const rows = a.strategies.flatMap((s) => [...(key === "weightDescent" && s.weightDescent ? [`  ${s.strategy}: ${shown(s.weightDescent)}`] : []), ...(s.atSteps ?? []).flatMap((t) => (t[key] ? [`  ${s.strategy} at step ${t.step}: ${shown(t[key])}`] : []))]);
    return rows.length > 0 ? [head, ...rows] : [];
  };
  const parts = "the embeddings / each block / the final norm";
  return [
    ...lines("weightDescent", `analysis: gradient descent's next move on the weights each row trained directly, minus the training loss's gradient, part by part: its size relative to the part's original weights (a step of rate 1), its turn, the cosine with the part's change so far (+1: further the way it came, -1: back), and its batches' spread about it, mean over seeds: ${parts}`),
    ...lines("weightMemory", `analysis: the optimiser's memory on them, the step its state alone would make next (a zero gradient, rate 1, no weight decay), the same way, and its cosine with gradient descent's next move: ${parts}`),
  ];
}

// What the batches' noise alone would have made of each part by each kept step: the rows where every seed has a walk.
function noiseWalkLines(a: RunAnalysis): string[] {
  const shown = (w: NoiseWalkSummary) => `${w.change.mean.toFixed(3)} (memory ${w.memory.mean.toFixed(3)}, turn ${w.turn.mean.toFixed(2)})`;
  const rows = a.strategies.flatMap((s) => (s.atSteps ?? []).flatMap((t) => (t.noiseWalk ? [`  ${s.strategy} at step ${t.step}: ${[t.noiseWalk.embedding, ...t.noiseWalk.blocks, t.noiseWalk.norm].map(shown).join(" / ")}`] : [])));
  const head = "analysis: what the batches' noise alone would have made of the weights each row trained directly (SGD's steps at the study's rates and momentum with the spread of gradient descent's next move at the kept steps, no mean gradient), part by part: the walk's relative change, its memory's size and turn, mean over seeds: the embeddings / each block / the final norm";
  return rows.length > 0 ? [head, ...rows] : [];
}

// A part's move and its turn, mean over seeds, for the log (and, gradient descent's, its batches' spread; the
// optimiser's memory's in weight space, its cosine with gradient descent's move).
const moveOf = (p: { change: MeanStd; turn: MeanStd; spread?: MeanStd; descentTurn?: MeanStd }): string =>
  `${p.change.mean.toFixed(3)} (turn ${p.turn.mean.toFixed(2)}${p.spread ? `, spread ${p.spread.mean.toFixed(3)}` : ""}${p.descentTurn ? `, with descent ${p.descentTurn.mean.toFixed(2)}` : ""})`;

const outputLine = (label: string, o: OutputChangeSummary): string => `  ${label}: ${[o.embedding, ...o.blocks].map((m) => `${m.mean.toFixed(3)} ± ${m.std.toFixed(3)}`).join(" / ")}`;

const interpolationLine = (label: string, r: RowInterpolation | undefined): string | undefined =>
  r?.points.length ? `  ${label}: ${r.points.map((p) => `a ${p.alpha} ${p.knn.mean.toFixed(1)} (${signed(p.knnChange)}) / ${p.transfer.mean.toFixed(1)} (${signed(p.transferChange)})`).join("; ")}` : undefined;

const resetLine = (label: string, r: RowResets | undefined): string | undefined =>
  r?.units.length ? `  ${label}: ${r.units.map((u) => `${u.unit} ${signed(u.knnChange)} / ${signed(u.transferChange)}${u.alone ? ` (alone ${signed(u.alone.knnChange)} / ${signed(u.alone.transferChange)})` : ""}`).join("; ")}` : undefined;

function signed(d: MeanInterval): string {
  const f = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;
  return Number.isFinite(d.lo) ? `${f(d.mean)} [${f(d.lo)}, ${f(d.hi)}]` : f(d.mean);
}

// A layer-wise k-NN's answers packed, block by block, with the classes given where `given` (at most MAX_CLASSES).
const packedAnswers = (l: LayerKnn, given: boolean): Correct[] => l.knnCorrect.map((c, i) => packCorrect(c, given ? l.knnGiven[i] : undefined));

// The layer-wise k-NN against each other bank, its answers packed, where there are some.
const packedBanks = (banks: LayerKnn[] | undefined, given: boolean): { otherBanks?: BankKnn[] } => (banks ? { otherBanks: banks.map((b) => ({ knn: b.knn, knnCorrect: packedAnswers(b, given) })) } : {});

// Whether an earlier analysis.json holds every cell of `key` with its per-block numbers: a damaged file (a cell or a
// measure missing) is made again rather than kept as up to date.
function holdsCells(a: RunAnalysis, key: AnalysisKey): boolean {
  const numbers = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "number" || x === null);
  return (
    Array.isArray(a.cells) &&
    JSON.stringify(a.cells.map((c) => c?.id)) === JSON.stringify(key.cells) &&
    a.cells.every(
      (c) =>
        numbers(c.cka?.cls) &&
        numbers(c.cka?.pooled) &&
        numbers(c.knn) &&
        Array.isArray(c.attention) &&
        numbers(c.grid) &&
        (key.atSteps === undefined || Array.isArray(c.atSteps)) &&
        (key.resets === undefined || [c, ...(c.atSteps ?? [])].every((m) => isObject(m.resets) && Array.isArray(m.resets.units))) &&
        // The kept steps' measures, and the resets of every backbone, against every other bank (builds before them were not).
        (key.otherBanks === undefined || (c.atSteps ?? []).every((m) => m.otherBanks?.length === key.otherBanks!.length)) &&
        (key.resets === undefined || key.otherBanks === undefined || [c, ...(c.atSteps ?? [])].every((m) => m.resets?.tuned?.otherBanks?.length === key.otherBanks!.length)) &&
        // Each kept step after the cell's first put back to the one before, against every bank.
        (key.resetsBetweenSteps === undefined ||
          (c.atSteps ?? []).slice(1).every((m, j) => isObject(m.resetsToPrevious) && m.resetsToPrevious.from === c.atSteps![j].step && Array.isArray(m.resetsToPrevious.units) && m.resetsToPrevious.tuned?.otherBanks?.length === key.otherBanks?.length)) &&
        (key.interpolate === undefined || (isObject(c.interpolation) && Array.isArray(c.interpolation.points))),
    )
  );
}

// Whether an earlier analysis.json measured every backbone the cells keep at analysis.atSteps now, and no other: a
// cell trained again since (its folder deleted, as the log advises where one lacked them) may keep more.
function holdsKeptSteps(a: RunAnalysis, dir: string): boolean {
  const steps = a.key.atSteps ?? [];
  return a.cells.every((c) => JSON.stringify(c.atSteps?.map((t) => t.step) ?? []) === JSON.stringify(steps.filter((s) => existsSync(cellStepPath(dir, c.id, s)))));
}

// A checkpoint's own record of what trained it: another cell's file in this folder would be analysed under this
// cell's name.
async function checkMadeAs(path: string, c: CellResult): Promise<void> {
  const m = await readManifest(path);
  const made = { strategy: m.strategy, lr: m.hyperParameters.lr, seed: m.seed };
  if (made.strategy !== c.strategy || made.lr !== c.lr || made.seed !== c.seed) {
    throw new Error(`analyze: ${path} was trained as ${made.strategy}, lr ${made.lr}, seed ${made.seed}, not as cell ${c.id} (${c.strategy}, lr ${c.lr}, seed ${c.seed}); put the cell's own checkpoint back, or delete its folder to train it again`);
  }
}

function positive(value: number | undefined, what: string): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= 1)) throw new Error(`analyze: expected ${what} to be an integer >= 1, got ${value}`);
}

// The result.json of every cell of the config in cells/, in the config's order (strategy, learning rate, seed);
// cells of a config's earlier form stay out, as they stay out of the study's results.
async function cellOutcomes(dir: string, config: StudyConfig): Promise<CellOutcome[]> {
  const root = cellsFolder(dir);
  const ids = existsSync(root) ? await readdir(root) : [];
  const outcomes: CellOutcome[] = [];
  for (const id of ids) {
    if (existsSync(cellResultPath(dir, id))) outcomes.push(await readCellOutcome(dir, id, config, "analyze"));
  }
  const names = config.strategies.map(strategyName);
  const rank = (c: CellOutcome) => {
    const s = names.indexOf(c.strategy);
    return s < 0 ? [-1] : [s, ratesFor(config, config.strategies[s]).indexOf(c.lr), config.seeds.indexOf(c.seed)];
  };
  const order = (c: CellOutcome) => rank(c).reduce((acc, r) => acc * 1000 + r, 0);
  return outcomes.filter((c) => !rank(c).includes(-1)).sort((a, b) => order(a) - order(b));
}

// The analysis's table and figures beside analysis.json, as (file name, contents): the CSV, and where a strategy
// finished, the CKA heatmap, the layer-wise k-NN, the weight change and the attention drift (each as Vega-Lite spec,
// SVG and PNG) and the attention grid (SVG and PNG).
async function analysisFiles(analysis: RunAnalysis, results: StudyResults, reference: OriginalAnalysis): Promise<[string, string | Uint8Array][]> {
  const files: [string, string | Uint8Array][] = [["analysis.csv", analysisCsv(analysis)], ["analysis-classes.csv", analysisClassesCsv(analysis)], ["analysis-confusion.csv", analysisConfusionCsv(analysis)]];
  if (analysis.key.atSteps) files.push(["analysis-steps.csv", analysisStepsCsv(analysis)], ["analysis-steps-between.csv", analysisBetweenCsv(analysis)]);
  if (analysis.strategies.length === 0) return files;
  const specs: [string, FigureSpec][] = [
    ["analysis-cka", ckaHeatmapSpec(analysis)],
    ["analysis-knn", layerKnnSpec(analysis, results)],
    ["analysis-weights", weightChangeSpec(analysis)],
    ["analysis-drift", attentionDriftSpec(analysis)],
    ["analysis-classes", classesSpec(analysis)],
    ["analysis-confusion", confusionSpec(analysis)],
    ...(analysis.key.atSteps ? ([["analysis-steps-cka", stepsSpec(analysis, "cka")], ["analysis-steps-knn", stepsSpec(analysis, "knn")], ["analysis-steps-output", stepsSpec(analysis, "output")], ["analysis-steps-turn", stepTurnSpec(analysis)], ["analysis-steps-patch", stepPatchSpec(analysis)], ["analysis-steps-descent", stepDescentSpec(analysis)], ["analysis-steps-memory", stepMemorySpec(analysis)], ["analysis-steps-weight-descent", stepPartsSpec(analysis, "weightDescent")], ["analysis-steps-weight-memory", stepPartsSpec(analysis, "weightMemory")], ["analysis-steps-memory-descent", stepPartsSpec(analysis, "memoryDescent")], ["analysis-steps-noise-walk", stepPartsSpec(analysis, "noiseWalk")], ["analysis-steps-between", stepsBetweenSpec(analysis)]] as [string, FigureSpec][]) : []),
    ...(analysis.key.resets ? ([[RESET_FIGURE, resetsSpec(analysis)]] as [string, FigureSpec][]) : []),
    ...(analysis.key.resets && analysis.key.atSteps ? ([[STEP_RESET_FIGURE, stepResetsSpec(analysis)]] as [string, FigureSpec][]) : []),
    ...(analysis.key.resetsBetweenSteps ? ([[STEP_RESET_BETWEEN_FIGURE, stepResetsBetweenSpec(analysis)]] as [string, FigureSpec][]) : []),
    ...(analysis.key.interpolate ? ([[INTERPOLATION_FIGURE, interpolationSpec(analysis, results)]] as [string, FigureSpec][]) : []),
  ];
  files.push(...(await figureFiles(specs)));
  const grid = await imageGridSvg(attentionGrid(analysis, reference.images, reference.imageShape));
  files.push(["analysis-attention.svg", grid], ["analysis-attention.png", await renderPng(grid, 1)]);
  return files;
}

// What the resets and the interpolation read (study/analysis-resets.ts): transfer.test in the runner's batches, and
// knn.bank, knn.queries and knn.otherBanks whole (`opened`: those the analysis opened already, the banks where they
// are whole).
async function resetDataOf(
  config: StudyConfig,
  size: number,
  open: (what: string, spec: DataSpec) => Promise<Dataset>,
  opened: { bank?: Dataset; queries: Dataset; otherBanks?: Dataset[] },
  cache: TransformCache | undefined,
): Promise<ResetData> {
  const transformed = cache ?? new TransformCache(runtime().settings.imageCacheBytes);
  const test = studyLoader(config, await open("transfer.test", config.transfer.test), config.transfer.test, size, transformed);
  const bank = opened.bank ?? (await open("knn.bank", config.knn.bank));
  const otherBanks = config.knn.otherBanks && (opened.otherBanks ?? (await Promise.all(config.knn.otherBanks.map((b, i) => open(`knn.otherBanks[${i}]`, b)))));
  return { config, test, knn: { bank, queries: opened.queries, ...(otherBanks && { otherBanks }), transformed }, size };
}

// A cell's resets (study/analysis-resets.ts) and its points between step 0 and itself (analysis-interpolation.ts),
// those asked for, against `initial`, its model where fine-tuning started, disposed after; with `probeHead` (its
// tensors by name), the points' head moves from that head, written into `initial` after the resets (which never reset the head):
// an -lpft cell's own probe's, scaled as linearProbe.headNorm scaled it for the fine-tuning (`headNorm`; "drawn": to
// the norm of `initial`'s head, the one the cell drew).
async function editsOf(
  model: VisionTransformer,
  initial: VisionTransformer,
  map: BlockMap,
  data: ResetData,
  asked: { grain?: ResetGrain; alphas?: number[]; probeHead?: { heads: Map<string, Float32Array>; headNorm?: number | "drawn"; where: string } },
): Promise<{ resets?: CellResets; interpolation?: CellInterpolation }> {
  try {
    const resets = asked.grain && (await cellResets(model, initial, map, data, asked.grain));
    if (asked.probeHead) {
      const { heads: probe, headNorm, where } = asked.probeHead;
      const drawn = headNorm === "drawn" ? await headOf(initial.parameters()) : new Map<string, Float32Array>();
      writeHead(initial.parameters(), startingHead(probe, headNorm, drawn, where));
    }
    // The model as it is was scored by the resets already, where they ran.
    const interpolation = asked.alphas && (await cellInterpolation(model, initial, asked.alphas, data, asked.probeHead ? "probe" : "tuned", resets?.tuned));
    return { ...(resets && { resets }), ...(interpolation && { interpolation }) };
  } finally {
    initial.dispose();
  }
}

// With the head "probe": for each seed of the chosen cells (but -lpft cells, whose head moves from their own probe's),
// linear probing's finished cell of that seed at the table's rate, whose head the interpolation moves from.
function probeCellsOf(all: CellResult[], table: TableRow[], chosen: CellResult[], configPath: string): Map<number, CellResult> {
  const cells = new Map<number, CellResult>();
  if (chosen.length === 0) return cells;
  const row = table.find((r) => r.strategy.kind === "linear");
  if (!row) throw new Error(`analyze: the head "probe" moves each cell's head from linear probing's, and ${configPath} has no finished linear probing cell`);
  for (const seed of new Set(chosen.map((c) => c.seed))) {
    const cell = all.find((c) => c.strategy === strategyName(row.strategy) && c.lr === row.lr && c.seed === seed);
    if (!cell) throw new Error(`analyze: the head "probe" moves each cell's head from linear probing's, and seed ${seed} has no finished ${strategyName(row.strategy)} cell at lr ${row.lr} (the table's rate)`);
    cells.set(seed, cell);
  }
  return cells;
}

// The finished cells an analysis compares: those of `strategies` (names as the config's; all where absent), and with
// the table's rows those at their strategy's rate there.
function chosenCells(finished: CellResult[], config: StudyConfig, configPath: string, strategies: string[] | undefined, rows: TableRow[] | undefined): CellResult[] {
  const names = config.strategies.map(strategyName);
  const unknown = strategies?.filter((s) => !names.includes(s));
  if (unknown && unknown.length > 0) throw new Error(`analyze: expected strategies of ${configPath} (${names.join(", ")}), got ${unknown.map((s) => `"${s}"`).join(", ")}`);
  const chosen = finished.filter((c) => (!strategies || strategies.includes(c.strategy)) && (!rows || rows.some((r) => strategyName(r.strategy) === c.strategy && r.lr === c.lr)));
  if (chosen.length === 0) {
    const which = [strategies && `of ${strategies.join(", ")}`, rows && "at its strategy's rate in the table"].filter(Boolean).join(" ");
    throw new Error(`analyze: no finished cell ${which} in ${configPath}'s run folder`);
  }
  return chosen;
}

export async function analyzeRun(runDir: string, opts: AnalyzeOptions = {}): Promise<{ analysis: RunAnalysis; files: string[]; reused: boolean }> {
  const started = performance.now();
  const log = opts.log ?? (() => undefined);
  const dir = resolve(runDir);
  const out = resolve(opts.out ?? dir);
  positive(opts.images, "images");
  positive(opts.gridImages, "gridImages");
  positive(opts.bankPerClass, "bankPerClass");
  const configPath = join(dir, "config.json");
  if (!existsSync(configPath)) throw new Error(`analyze: ${dir} is not a run folder: expected ${configPath}, found none`);
  const config = parseStudyConfig(await readJson(configPath), configPath);
  const spec = { ...DEFAULTS.analysis, ...config.analysis };
  const between = opts.resetsBetweenSteps ?? spec.resetsBetweenSteps ?? false;
  if (between && !spec.atSteps) throw new Error(`analyze: putting each kept backbone's parts back to the kept step before (resetsBetweenSteps) needs kept steps, and ${configPath} has no analysis.atSteps`);
  const betweenGrain = grainOf(between);
  const images = opts.images ?? spec.images;
  const gridImages = Math.min(opts.gridImages ?? spec.gridImages, images);
  if (gridImages < (opts.gridImages ?? spec.gridImages)) {
    const asked = opts.gridImages !== undefined ? `--grid-images ${opts.gridImages}` : `analysis.gridImages ${spec.gridImages} (${configPath})`;
    log(`analysis: ${asked} is more than the ${images} image(s) analysed: the attention grid shows all ${images}`);
  }
  const bankPerClass = opts.bankPerClass ?? spec.bankPerClass;

  // The finished cells chosen and their checkpoints (the kept steps' too), all checked before any work.
  const outcomes = await cellOutcomes(dir, config);
  const all = outcomes.filter((c): c is CellResult => !isDiverged(c));
  if (all.length === 0) throw new Error(`analyze: ${dir} has no finished cells (a cells/<id>/result.json of a cell that did not diverge)`);
  const baselinePath = join(dir, "baseline.json");
  if (!existsSync(baselinePath)) throw new Error(`analyze: expected ${baselinePath}, found none`);
  const baseline = await readBaseline(baselinePath, config, "analyze");
  const summary = (imageSize: number, backbone: string) => summarize(config, baseline, outcomes, { backbone, data: {}, imageSize });
  // The table's rows alone (no image size or backbone read), made once for the choices that need them.
  let table: TableRow[] | undefined;
  const tableRows = () => (table ??= summary(0, "").table);
  const rows = (opts.tableRates ?? spec.tableRates) ? tableRows() : undefined;
  const finished = chosenCells(all, config, configPath, opts.strategies ?? spec.strategies, rows);
  const interpolate = opts.interpolate === false ? undefined : (opts.interpolate ?? spec.interpolate);
  const interpolateHead = opts.interpolateHead ?? spec.interpolateHead ?? "tuned";
  if (opts.interpolateHead && !interpolate) throw new Error(`analyze: the head "${opts.interpolateHead}" is the interpolation's, and there are no weights to interpolate at (--interpolate, or analysis.interpolate in ${configPath})`);
  const probedFirst = (c: CellResult) => parseStrategy(c.strategy).probeFirst === true;
  const probeCells = interpolate && interpolateHead === "probe" ? probeCellsOf(all, tableRows(), finished.filter((c) => !probedFirst(c)), configPath) : undefined;
  for (const c of finished) {
    const best = cellCheckpointPath(dir, c.id);
    if (!existsSync(best)) throw new Error(`analyze: cell ${c.id} is finished but its checkpoint ${best} is missing`);
    await checkMadeAs(best, c);
    for (const step of spec.atSteps ?? []) if (existsSync(cellStepPath(dir, c.id, step))) await checkMadeAs(cellStepPath(dir, c.id, step), c);
  }
  for (const c of probeCells?.values() ?? []) {
    if (!existsSync(cellCheckpointPath(dir, c.id))) throw new Error(`analyze: the head "probe" moves each cell's head from linear probing's, and cell ${c.id}'s checkpoint ${cellCheckpointPath(dir, c.id)} is missing`);
    await checkMadeAs(cellCheckpointPath(dir, c.id), c);
  }
  for (const c of probeCells ? finished.filter(probedFirst) : []) {
    if (!existsSync(cellProbePath(dir, c.id))) throw new Error(`analyze: the head "probe" moves cell ${c.id}'s head from its own linear probe's, and ${cellProbePath(dir, c.id)} is missing; delete ${cellFolder(dir, c.id)} to train the cell again`);
  }
  const backboneJson = join(dir, "backbone.json");
  let backbone = opts.backbone && resolve(opts.backbone);
  if (!backbone) {
    const recorded = await readBackboneRecord(dir, "analyze");
    if (!recorded) throw new Error(`analyze: expected ${backboneJson} (where the original backbone is), found none`);
    backbone = recorded.path;
  }
  if (!existsSync(backbone)) throw new Error(`analyze: the original backbone ${backbone}${opts.backbone ? "" : ` (named by ${backboneJson})`} does not exist; --backbone FILE names where it is now`);

  const fewerPerClass = <T extends object>(bank: T) => (bankPerClass === undefined ? bank : { ...bank, perClass: bankPerClass });
  const otherSpecs = config.knn.otherBanks?.map(fewerPerClass);
  const atSteps = spec.atSteps;
  const resets = opts.resets ?? spec.resets ?? false;
  const grain = grainOf(resets);
  const key: AnalysisKey = {
    images,
    gridImages,
    ...(bankPerClass !== undefined ? { bankPerClass } : {}),
    ...(otherSpecs && { otherBanks: otherSpecs }),
    ...(atSteps && { atSteps }),
    ...(resets && { resets }),
    ...(between && { resetsBetweenSteps: between }),
    ...(interpolate && { interpolate }),
    ...(probeCells && { interpolateHead: "probe" as const }),
    cells: finished.map((c) => c.id),
  };
  const jsonPath = join(out, "analysis.json");
  // An earlier analysis of the same cells keeps their numbers; where the table's rows have changed since (another
  // selectBy, knn.val), or some of its files are missing, its summary and files are made anew from them, without
  // comparing the cells again (`why` says which).
  let kept: (Pick<RunAnalysis, "cells" | "seconds"> & { why: string }) | undefined;
  if ((opts.reuse || opts.redraw) && existsSync(jsonPath)) {
    const before = (await readJson(jsonPath).then(nullsAsNaN, () => undefined)) as RunAnalysis | undefined;
    const earlier = before?.format === ANALYSIS_FORMAT && JSON.stringify(before.key) === JSON.stringify(key) && holdsCells(before, key) ? before : undefined;
    const lacks = earlier && lacksAnswers(earlier);
    if (lacks) log(`analysis: ${jsonPath} lacks ${lacks} (a build before them): its cells are measured anew`);
    if (earlier && !lacks && holdsKeptSteps(earlier, dir)) {
      earlier.cells = withNoiseWalks(earlier.cells, config.training, earlier.depth);
      const expected = analysisFileNames(key);
      const files = expected.map((f) => join(out, f)).filter((f) => existsSync(f));
      const sameRows = JSON.stringify(summarizeAnalysis(summary(0, backbone!), earlier.cells, earlier.original, earlier.labels)) === JSON.stringify(earlier.strategies);
      if (files.length === expected.length && sameRows && earlier.labels && !opts.redraw) {
        log(`analysis: ${jsonPath} is up to date (${key.cells.length} cells, ${images} images)`);
        return { analysis: earlier, files, reused: true };
      }
      kept = { ...earlier, why: !earlier.labels ? "its images' classes missing (a build before them)" : files.length === expected.length && sameRows ? "asked to draw anew" : sameRows ? `${expected.length - files.length} of its files missing` : "its summary is not the one made of its cells now (the table's rows, or the summary's form, have changed)" };
    }
  }

  const heads = config.backbone.pretrain?.model.heads ?? config.backbone.heads;
  const loadOptions = { heads, key: config.backbone.key };
  const original = (await loadVit(backbone, loadOptions)).model;
  try {
    const size = config.imageSize ?? original.config.imageSize;
    const seed = config.seeds[0];
    const open = async (what: string, spec: typeof config.knn.bank) => {
      try {
        return await openData(spec, seed, opts.opened);
      } catch (e) {
        throw new Error(`analyze: ${what}: ${(e as Error).message}`);
      }
    };
    const allQueries = await open("knn.queries", config.knn.queries);
    const queries = evenlySpaced(allQueries, images);
    const bankSpec = fewerPerClass(config.knn.bank);
    const bank = await open("knn.bank", bankSpec);
    const otherBanks = otherSpecs && (await Promise.all(otherSpecs.map((b, i) => open(`knn.otherBanks[${i}]`, b))));
    const target = evenlySpaced(await open("transfer.test", config.transfer.test), images);
    const train = evenlySpaced(await open("transfer.train", config.transfer.train), images);
    const tokens = 1 + (size / original.config.patchSize) ** 2;
    const batchSize = Math.max(1, Math.min(config.knn.batchSize, Math.floor(ATTENTION_BYTES / (original.config.heads * tokens * tokens * 4))));
    const loader = (ds: typeof bank, s: typeof bankSpec) => new Loader(ds, new Transform(transformFor(s, size)), { batchSize, cache: opts.transformed });
    const data: AnalysisData = {
      queries: loader(queries, config.knn.queries),
      bank: loader(bank, bankSpec),
      ...(otherBanks && { otherBanks: otherBanks.map((b, i) => loader(b, otherSpecs![i])) }),
      k: config.knn.reportK,
      temperature: config.knn.temperature,
      classes: Math.max(bank.classes.length, queries.classes.length),
      gridImages,
      target: loader(target, config.transfer.test),
      // As the cells train: in batches of the training batch size, each one's gradient being a step's.
      train: {
        loader: new Loader(train, new Transform(transformFor(config.transfer.train, size)), { batchSize: config.training.batchSize, cache: opts.transformed }),
        microBatch: config.training.microBatch ?? config.training.batchSize,
      },
    };
    // The patches each image set shows the patch projection: their second moments, once for every backbone.
    const patches = { source: await patchMoments(data.queries, original.config.patchSize), target: await patchMoments(data.target!, original.config.patchSize) };
    data.patches = patches;
    // The resets and the interpolation are scored as the study scores a cell: every image of transfer.test,
    // knn.queries and knn.bank. None where the cells' numbers are kept.
    const whole = bankPerClass === undefined ? { bank, otherBanks } : {};
    const resetData = (resets || between || interpolate) && !kept ? { ...(await resetDataOf(config, size, open, { ...whole, queries: allQueries }, opts.transformed)), patchDirection: patches.source.direction } : undefined;
    // The class each block gave each image, where the images have at most MAX_CLASSES classes (a byte each).
    const given = queries.classes.length <= MAX_CLASSES;
    const fewer = queries.length < images ? ` (all knn.queries holds, of the ${images} asked for)` : "";
    const reference = await analyzeOriginal(original, data);
    const cells: CellAnalysis[] = [];
    if (kept) {
      log(`analysis: ${kept.why}; the numbers of its ${kept.cells.length} cell(s) kept, its summary and files made anew`);
      cells.push(...kept.cells);
    } else log(`analysis: ${finished.length} cell(s) against the original backbone, ${queries.length} source images${fewer}, a k-NN bank of ${bank.length}${otherBanks ? ` and ${otherBanks.length} other draw(s) of it` : ""}`);
    const baseSha256 = kept ? undefined : await sha256File(backbone); // once, not per cell's checkpoint
    // A kept step's backbone is measured as the best checkpoint's, against every bank, its resets too (not the
    // interpolation).
    const bestEdits = { ...(resets && { grain }), ...(interpolate && { alphas: interpolate }) };
    const stepEdits = { ...(resets && { grain }) };
    // The head a cell's interpolation moves from with the head "probe": an -lpft cell's own probe's, as its
    // fine-tuning started from it (scaled to linearProbe.headNorm where given), else linear probing's of its seed
    // (read once a seed).
    const headsOf = async (path: string) => new Map([...(await readSafetensors(path)).tensors].filter(([n]) => n.startsWith("head.")).map(([n, t]) => [n, t.data] as const));
    const probeHeads = new Map<number, Map<string, Float32Array>>();
    const probeHeadOf = async (c: CellResult) => {
      if (!probeCells) return undefined;
      if (probedFirst(c)) return { heads: await headsOf(cellProbePath(dir, c.id)), headNorm: config.linearProbe?.headNorm, where: cellProbePath(dir, c.id) };
      const linear = probeCells.get(c.seed)!;
      if (!probeHeads.has(c.seed)) probeHeads.set(c.seed, await headsOf(cellCheckpointPath(dir, linear.id)));
      return { heads: probeHeads.get(c.seed)!, where: cellCheckpointPath(dir, linear.id) };
    };
    const last = original.blocks.length - 1;
    for (const [i, c] of (kept ? [] : finished).entries()) {
      const cellStarted = performance.now();
      const map = blockMap(parseStrategy(c.strategy), original.blocks.length);
      // The resets and the interpolation first: the comparison merges LoRA into the weights, and they write LoRA's
      // own tensors. `previous`: the cell's kept step before, whose backbone each part's output is compared with too
      // and, with analysis.resetsBetweenSteps, the parts are put back to.
      // `step`: a kept step's, whose file holds the optimiser's state.
      const compare = async (path: string, edits: Parameters<typeof editsOf>[4], previous?: { step: number; path: string }, step?: number) => {
        const { model, manifest, tensors } = await loadFinetuned(backbone, path, { ...loadOptions, baseSha256 });
        const memory = step === undefined ? undefined : optimizerMemory(model, tensors, manifest.hyperParameters, step, path);
        let before: VisionTransformer | undefined;
        try {
          before = previous && (await loadFinetuned(backbone, previous.path, { ...loadOptions, baseSha256 })).model;
          const edited = resetData && (edits.grain || edits.alphas) ? await editsOf(model, await loadInitial(backbone, manifest, loadOptions), map, resetData, edits) : {};
          // The model as it is was scored by its resets already, where they ran by the same parts.
          const scored = betweenGrain === grain ? edited.resets?.tuned : undefined;
          const since = between && before && { from: previous!.step, ...(await cellResets(model, before, map, resetData!, betweenGrain, scored)) };
          const { outputSince, targetOutputSince, patchSince, ...compared } = await compareBackbones(original, model, map, data, before, memory);
          const from = <T>(o: T) => ({ from: previous!.step, ...o });
          return { ...compared, ...edited, ...(since && { resetsToPrevious: since }), ...(outputSince && { outputSince: from(outputSince) }), ...(targetOutputSince && { targetOutputSince: from(targetOutputSince) }), ...(patchSince && { patchSince: from(patchSince) }) };
        } finally {
          model.dispose();
          before?.dispose();
        }
      };
      const probeHead = interpolate && (await probeHeadOf(c));
      const r = await compare(cellCheckpointPath(dir, c.id), { ...bestEdits, ...(probeHead && { probeHead }) });
      const measures = (m: typeof r) => ({ cka: m.cka, knn: m.knn, knnCorrect: packedAnswers(m, given), attention: m.attention, weights: m.weights, outputChange: m.outputChange, ...(m.targetOutputChange && { targetOutputChange: m.targetOutputChange }), ...(m.patchChange && { patchChange: m.patchChange }), ...(m.patchDescent && { patchDescent: m.patchDescent }), ...(m.patchMemory && { patchMemory: m.patchMemory }), ...(m.weightDescent && { weightDescent: m.weightDescent }), ...(m.weightMemory && { weightMemory: m.weightMemory }) });
      const cell: CellAnalysis = { id: c.id, strategy: c.strategy, lr: c.lr, seed: c.seed, ...measures(r), ...packedBanks(r.otherBanks, given), grid: Array.from(r.grid.maps), ...(r.resets && { resets: r.resets }), ...(r.interpolation && { interpolation: r.interpolation }) };
      if (atSteps) {
        cell.atSteps = [];
        const keptSteps = atSteps.filter((s) => existsSync(cellStepPath(dir, c.id, s)));
        for (const [j, step] of keptSteps.entries()) {
          const previous = j > 0 ? { step: keptSteps[j - 1], path: cellStepPath(dir, c.id, keptSteps[j - 1]) } : undefined;
          const m = await compare(cellStepPath(dir, c.id, step), stepEdits, previous, step);
          cell.atSteps.push({ step, ...measures(m), ...(m.outputSince && { outputSince: m.outputSince }), ...(m.targetOutputSince && { targetOutputSince: m.targetOutputSince }), ...(m.patchSince && { patchSince: m.patchSince }), ...packedBanks(m.otherBanks, given), ...(m.resets && { resets: m.resets }), ...(m.resetsToPrevious && { resetsToPrevious: m.resetsToPrevious }) });
        }
        const missing = atSteps.filter((s) => !cell.atSteps!.some((a) => a.step === s));
        if (missing.length > 0) log(`analysis: cell ${c.id} kept no backbone at step ${missing.join(", ")} of analysis.atSteps (trained before they were asked for): delete ${cellFolder(dir, c.id)} to train it again with them`);
      }
      cells.push(cell);
      const steps = cell.atSteps?.length ? `; at step ${cell.atSteps.map((a) => a.step).join(", ")}: ${cell.atSteps.map((a) => a.cka.cls[last].toFixed(3)).join(", ")}` : "";
      // Every part reset: "all", or a strategy's one part.
      const all = r.resets?.units.find((u) => u.unit === "all") ?? (r.resets?.units.length === 1 ? r.resets.units[0] : undefined);
      const reset = all ? `; ${all.unit} reset: source k-NN ${r.resets!.tuned.knn.toFixed(1)} -> ${all.knn.toFixed(1)}%, transfer ${r.resets!.tuned.transfer.toFixed(1)} -> ${all.transfer.toFixed(1)}%` : "";
      const points = r.interpolation?.points ?? [];
      const moved = points.length > 0 ? `; at weight ${points.map((p) => p.alpha).join(", ")}: source k-NN ${points.map((p) => p.knn.toFixed(1)).join(", ")}%, transfer ${points.map((p) => p.transfer.toFixed(1)).join(", ")}%` : "";
      log(`  ${i + 1}/${finished.length} ${c.id}: last block CKA ${r.cka.cls[last].toFixed(3)} (CLS)${steps}, layer-wise k-NN ${r.knn[last].toFixed(1)}%${reset}${moved}, ${((performance.now() - cellStarted) / 1000).toFixed(1)} s`);
    }
    const walked = withNoiseWalks(cells, config.training, original.blocks.length);
    const results = summary(size, backbone!);
    const originalAnswers = { knnCorrect: packedAnswers(reference, given), ...packedBanks(reference.otherBanks, given) };
    const labels = { classes: queries.classes, labels: Array.from(queries.labels) };
    const analysis: RunAnalysis = {
      format: ANALYSIS_FORMAT,
      key,
      backbone,
      depth: original.blocks.length,
      heads: original.config.heads,
      images: queries.identity,
      targetImages: target.identity,
      trainImages: train.identity,
      patchDirections: { source: directionOf(patches.source), target: directionOf(patches.target) },
      bank: bank.identity,
      ...(otherBanks && { otherBanks: otherBanks.map((b) => b.identity) }),
      k: data.k,
      temperature: data.temperature,
      gridTokens: reference.grid.tokens,
      original: { knn: reference.knn, ...originalAnswers, grid: Array.from(reference.grid.maps) },
      labels,
      cells: walked,
      strategies: summarizeAnalysis(results, walked, originalAnswers, labels),
      seconds: (kept?.seconds ?? 0) + (performance.now() - started) / 1000, // the cells' comparisons included
    };
    const files = await analysisFiles(analysis, results, reference);
    const paths: string[] = [];
    await makeFolder(out);
    // analysis.json last: a rerun reuses the table and figures beside an analysis.json of the same cells, so a run
    // killed before it has written them all must leave the earlier analysis.json (or none), never this one.
    for (const [name, content] of files) {
      await writeFileAtomic(join(out, name), content);
      paths.push(join(out, name));
    }
    await writeJsonAtomic(jsonPath, analysis);
    paths.push(jsonPath);
    for (const line of changeLines(analysis)) log(line);
    log(`analysis: wrote ${paths.length} files in ${out} (${analysis.seconds.toFixed(1)} s)`);
    return { analysis, files: paths, reused: false };
  } finally {
    original.dispose();
  }
}
