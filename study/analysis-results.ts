// The per-block analysis of a run folder as values (study/analysis.ts computes them): every finished cell's
// comparison with the original backbone (eval/block-analysis.ts), and per strategy at its selected learning rate
// (the table's row) the mean and sample standard deviation over seeds of each measure per block, and so at each
// step of analysis.atSteps whose backbones the cells kept, and with analysis.resets each part's reset
// (study/analysis-resets.ts), of the best backbones and of the kept ones, with analysis.resetsBetweenSteps each kept
// one's parts put back to the kept step before, and with analysis.interpolate the best
// backbones between step 0 and themselves (study/analysis-interpolation.ts); analysisCsv is analysis.csv, one
// number per line, and analysisStepsCsv analysis-steps.csv, the same for the kept steps.
import type { DatasetIdentity } from "../data/dataset.js";
import type { WeightChange } from "../eval/weight-change.js";
import type { OutputChange, OutputSince, PartSince } from "../eval/output-change.js";
import type { PatchChange, PatchDescent, PatchSince } from "../eval/patch-directions.js";
import type { PartMove, PartMoves } from "../eval/part-moves.js";
import type { NoiseWalk, PartWalks } from "../eval/noise-walk.js";
import type { ImageSets } from "../eval/block-analysis.js";
import { strategyName } from "../peft/strategy.js";
import { type MeanInterval, type MeanStd, meanStdOf } from "../util/stats.js";
import { type Correct, type StudyResults, unpackCorrect, unpackPredicted } from "./results.js";
import { type KnnConfusion, confusionCsvFields, knnConfusion } from "./knn-confusion.js";
import { changeFromOriginal, pairBySeed, pairedChange } from "./comparisons.js";
import { type CellResets, type CellResetsSince, type RowResets, type RowResetsSince, resetRows, summarizeResets } from "./analysis-resets.js";
import { type CellInterpolation, type RowInterpolation, interpolationRows, summarizeInterpolation } from "./analysis-interpolation.js";
import { type ClassKnn, MAX_CLASSES, type QueryLabels, classCsvFields, intervalEnd, knnByClass } from "./knn-classes.js";

export const ANALYSIS_FORMAT = "peft-vit-webgpu/analysis@1";

// A layer-wise k-NN against one other bank, its answers packed.
export interface BankKnn {
  knn: number[]; // (depth)
  knnCorrect: Correct[]; // (depth)
}

// A backbone's per-block measures against the original's (eval/block-analysis.ts compareBackbones).
export interface BlockMeasures {
  cka: { cls: number[]; pooled: number[] }; // (depth) each
  knn: number[]; // (depth): layer-wise k-NN top-1, percent
  knnCorrect: Correct[]; // (depth): the queries it got right at each block
  attention: number[][]; // (depth) x (heads): Jensen-Shannon divergence of the CLS attention, bits
  weights: WeightChange;
  outputChange: OutputChange; // each part's own computation on the original's input to it, against the original's
  targetOutputChange?: OutputChange; // the same on the target-domain images (RunAnalysis.targetImages)
  // The patch projection's output change along the first principal direction of its patches and along the rest
  // (eval/patch-directions.ts), on either domain's images.
  patchChange?: ImageSets<PatchChange>;
  // Where it moved: gradient descent's next move on it, the training loss's gradient on the study's training images
  // split the same way, its size (a step of rate 1), its turn against the change so far and its batches' spread
  // about it (eval/patch-directions.ts).
  patchDescent?: ImageSets<PatchDescent>;
  // At a kept step whose file holds the optimiser's state: the step its memory alone would make next (a zero
  // gradient, rate 1, no weight decay) split the same way, its size and turn (eval/optimizer-memory.ts).
  patchMemory?: ImageSets<PatchSince>;
  // Of the parts whose weights the cell trained directly, in weight space (eval/part-moves.ts): gradient descent's
  // next move (the training loss's gradient as patchDescent takes it, with its batches' spread) and, at a kept step
  // with the optimiser's state, its memory (with its cosine with gradient descent's move): each part's size relative
  // to its original weights and its turn against its change so far.
  weightDescent?: PartMoves;
  weightMemory?: PartMoves;
}

// A row's patch projection's change over its seeds, along the first direction and the rest, on either domain's images.
export interface PatchChangeSummary {
  along: MeanStd;
  rest: MeanStd;
}

// And since the kept step before, with its turn.
export interface PatchSinceSummary {
  along: { change: MeanStd; turn: MeanStd };
  rest: { change: MeanStd; turn: MeanStd };
}

// And gradient descent's next move on it, with its batches' spread.
export interface PatchDescentSummary {
  along: { change: MeanStd; turn: MeanStd; spread: MeanStd };
  rest: { change: MeanStd; turn: MeanStd; spread: MeanStd };
}

// A row's output change (eval/output-change.ts) over its seeds: the embeddings' and each block's mean and std.
export interface OutputChangeSummary {
  embedding: MeanStd;
  blocks: MeanStd[]; // (depth)
}

// A row's output change since the kept step before (`from`) and its turn, each part's mean and std over the seeds.
export interface OutputSinceSummary {
  from: number;
  embedding: { change: MeanStd; turn: MeanStd };
  blocks: { change: MeanStd; turn: MeanStd }[]; // (depth)
}

// A move of a row's backbones part by part (eval/part-moves.ts) over its seeds, with its batches' spread and its
// cosine with gradient descent's move where every seed's move has them.
export type PartMoveSummary = { change: MeanStd; turn: MeanStd; spread?: MeanStd; descentTurn?: MeanStd };
export interface PartMovesSummary {
  embedding: PartMoveSummary;
  blocks: PartMoveSummary[]; // (depth)
  norm: PartMoveSummary;
}

// The noise walks of a row's backbones at one step (study/noise-walks.ts) over its seeds, and `share`, the walk's
// change over the part's observed change (its relative weight change), seed by seed: how much of how far the part
// went the batches' noise alone would take it.
export type NoiseWalkSummary = { change: MeanStd; memory: MeanStd; turn: MeanStd; share: MeanStd };
export interface PartWalksSummary {
  embedding: NoiseWalkSummary;
  blocks: NoiseWalkSummary[]; // (depth)
  norm: NoiseWalkSummary;
}

// The backbone a cell kept at a step of analysis.atSteps, measured as its best checkpoint's (against every bank), with
// analysis.resets its resets too.
export interface StepAnalysis extends BlockMeasures {
  step: number;
  otherBanks?: BankKnn[]; // with knn.otherBanks, as a cell's
  resets?: CellResets;
  // At each kept step but the cell's first: each part's output change since the kept step before (`from`), and its
  // turn (eval/output-change.ts).
  outputSince?: OutputSince & { from: number };
  targetOutputSince?: OutputSince & { from: number }; // the same on the target-domain images
  patchSince?: ImageSets<PatchSince> & { from: number }; // the patch projection's since then, along and the rest
  // With analysis.resetsBetweenSteps, at each kept step but the cell's first: its parts put back to their values at
  // the kept step before (`from`) rather than where fine-tuning started.
  resetsToPrevious?: CellResetsSince;
  // Where SGD trained the cell and every kept step has the spread of gradient descent's next move: what the batches'
  // noise alone would have made of each part by this step (study/noise-walks.ts; derived from the spreads, made anew
  // with every analysis).
  noiseWalk?: PartWalks;
}

export interface CellAnalysis extends BlockMeasures {
  id: string;
  strategy: string;
  lr: number;
  seed: number;
  otherBanks?: BankKnn[]; // with knn.otherBanks: the layer-wise k-NN against each other bank, in the config's order
  grid: number[]; // (gridImages, tokens): the last block's CLS attention over the patches, mean over heads
  atSteps?: StepAnalysis[]; // with analysis.atSteps: the steps whose backbones the cell kept, ascending
  resets?: CellResets; // with analysis.resets: its scores with each part of its backbone reset (not linear probing)
  interpolation?: CellInterpolation; // with analysis.interpolate: its scores at each weight between step 0 and itself
}

// A block's layer-wise k-NN less the original's, in points, paired query by query: the mean over seeds and its crossed
// interval over seeds and images (study/comparisons.ts changeFromOriginal), whether a block lost more than training's
// randomness and the draw of the images explain; with knn.otherBanks, over the banks too (banks: how many), its mean
// over every bank.
export type KnnChange = MeanInterval & { banks: number };

// A row's measures at one step of analysis.atSteps, over the seeds whose cells kept it.
export interface StepSummary {
  step: number;
  seeds: number;
  ckaCls: MeanStd[]; // (depth)
  knn: MeanStd[];
  knnChange: KnnChange[]; // (depth): as StrategyAnalysis's, over the seeds that kept the step
  weights: MeanStd[];
  outputChange: OutputChangeSummary;
  targetOutputChange?: OutputChangeSummary; // on the target-domain images, where every seed's was measured
  patchChange?: ImageSets<PatchChangeSummary>; // where every seed's was measured
  patchDescent?: ImageSets<PatchDescentSummary>; // where every seed's was measured
  patchMemory?: ImageSets<PatchSinceSummary>; // the optimiser's memory on it, where every seed's was measured
  weightDescent?: PartMovesSummary; // where every seed's was measured
  weightMemory?: PartMovesSummary; // where every seed's was measured
  noiseWalk?: PartWalksSummary; // where every seed has one
  attention: MeanStd[];
  resets?: RowResets; // with analysis.resets: each part reset, over the seeds that kept the step
  knnByClass?: ClassKnn[][]; // as StrategyAnalysis's, over the seeds that kept the step
  knnConfusion?: KnnConfusion[]; // as StrategyAnalysis's, over the seeds that kept the step
  // (depth): each block's layer-wise k-NN at this step less at the kept step before, each seed's answers paired
  // query by query (and bank by bank) with its own there; absent at the first kept step (its change from step 0 is
  // knnChange), and where a seed kept this step and not the one before. Which blocks went on forgetting between the
  // two, or won back.
  knnSincePrevious?: KnnChange[];
  // Each part's output change since the kept step before and its turn, over the seeds that kept both; absent where
  // knnSincePrevious is.
  outputSince?: OutputSinceSummary;
  targetOutputSince?: OutputSinceSummary; // the same on the target-domain images
  patchSince?: ImageSets<PatchSinceSummary> & { from: number };
  // With analysis.resetsBetweenSteps: each part put back to its value at the kept step before (`from`), over the
  // seeds that kept both; absent where knnSincePrevious is. Which part's change between the two cost the source
  // domain, or won it back ("all": the whole backbone's, the study's k-NN at the later step less at the earlier).
  resetsToPrevious?: RowResetsSince;
}

export interface StrategyAnalysis {
  strategy: string;
  lr: number;
  seeds: number;
  ckaCls: MeanStd[]; // (depth)
  ckaPooled: MeanStd[];
  knn: MeanStd[];
  knnChange: KnnChange[]; // (depth)
  // (depth) x (classes): knnChange class by class of the analysed images (study/knn-classes.ts), where the analysis
  // holds their classes (labels), at most MAX_CLASSES of them.
  knnByClass?: ClassKnn[][];
  // (depth): each block's confusion (study/knn-confusion.ts): the share of each class's images its layer-wise k-NN
  // gave each class, less the original's at that block, where the answers hold the classes given (at most
  // MAX_CLASSES classes). At which depth a lost image starts to be taken for another class.
  knnConfusion?: KnnConfusion[];
  weights: MeanStd[]; // each block's relative weight change
  embedding: MeanStd; // the embeddings' relative weight change
  outputChange: OutputChangeSummary; // each part's relative output change on the original's input to it
  targetOutputChange?: OutputChangeSummary; // the same on the target-domain images, where every seed's was measured
  patchChange?: ImageSets<PatchChangeSummary>; // the patch projection's along the patches' first direction and the rest
  patchDescent?: ImageSets<PatchDescentSummary>; // gradient descent's next move on it, where every seed's was measured
  weightDescent?: PartMovesSummary; // gradient descent's next move part by part, where every seed's was measured
  norm: MeanStd; // the final norm's
  attention: MeanStd[]; // each block's divergence, mean over heads
  added: number[]; // the original blocks a new block follows (Block Expansion)
  atSteps?: StepSummary[]; // with analysis.atSteps: each step some cell of the row kept
  resets?: RowResets; // with analysis.resets: each part reset, over the row's seeds
  interpolation?: RowInterpolation; // with analysis.interpolate: each weight, over the row's seeds
}

// What makes an analysis the same: a rerun of the study with these values reuses analysis.json.
export interface AnalysisKey {
  images: number;
  gridImages: number;
  bankPerClass?: number;
  otherBanks?: unknown[]; // knn.otherBanks' specs (bankPerClass applied), where the study has them
  atSteps?: number[]; // analysis.atSteps, where the study has them
  resets?: true | "layers"; // analysis.resets, where the study asks for them (true: whole blocks)
  resetsBetweenSteps?: true | "layers"; // analysis.resetsBetweenSteps, where the study asks for them (true: whole blocks)
  interpolate?: number[]; // analysis.interpolate, where the study asks for it
  interpolateHead?: "probe"; // analysis.interpolateHead, where it moves the head from linear probing's
  cells: string[];
}

export interface RunAnalysis {
  format: typeof ANALYSIS_FORMAT;
  key: AnalysisKey;
  backbone: string; // the original backbone's file
  depth: number;
  heads: number;
  images: DatasetIdentity; // the analysed source-domain images
  targetImages?: DatasetIdentity; // the target-domain images each part's output change is measured on too
  trainImages?: DatasetIdentity; // the training images the patch projection's gradient is taken on
  // The first principal direction of each image set's patches (eval/patch-directions.ts): its share of their second
  // moment, and the share of it flat in each channel.
  patchDirections?: ImageSets<{ share: number; flatness: number }>;
  bank: DatasetIdentity; // the layer-wise k-NN's bank
  otherBanks?: DatasetIdentity[]; // and its other draws (knn.otherBanks)
  k: number;
  temperature: number;
  gridTokens: number; // patches per attention map
  original: { knn: number[]; knnCorrect: Correct[]; otherBanks?: BankKnn[]; grid: number[] }; // as a cell's
  // The analysed images' classes, in their order (absent in analysis.json of builds before them, made anew).
  labels?: { classes: string[]; labels: number[] };
  cells: CellAnalysis[];
  strategies: StrategyAnalysis[]; // the study table's rows, in its order
  seconds: number;
}

// The table's rows (each strategy at its selected learning rate), averaged over their seeds' analyses, and each
// block's layer-wise k-NN against the original's answers (`original`, as RunAnalysis holds them), at the best
// checkpoints and at each kept step: over every bank where the original and each of the row's backbones there were
// classified against the other banks; with the analysed images' classes (`labels`), at most MAX_CLASSES of them,
// class by class too.
export function summarizeAnalysis(r: StudyResults, cells: CellAnalysis[], original: Pick<RunAnalysis["original"], "knnCorrect" | "otherBanks">, images?: QueryLabels): StrategyAnalysis[] {
  const labels = images && images.classes.length <= MAX_CLASSES ? images : undefined;
  const out: StrategyAnalysis[] = [];
  for (const row of r.table) {
    const name = strategyName(row.strategy);
    const group = cells.filter((c) => c.strategy === name && c.lr === row.lr);
    if (group.length === 0) continue;
    const steps = [...new Set(group.flatMap((c) => c.atSteps?.map((a) => a.step) ?? []))].sort((a, b) => a - b);
    const atSteps = steps.map((step): StepSummary => {
      const kept = group.flatMap((c) => c.atSteps?.filter((a) => a.step === step) ?? []);
      const per = (value: (m: StepAnalysis, i: number) => number) => kept[0].knn.map((_, i) => meanStdOf(kept.map((m) => value(m, i))));
      const resets = summarizeResets(kept.map((m) => m.resets));
      return {
        step,
        seeds: kept.length,
        ckaCls: per((m, i) => m.cka.cls[i]),
        knn: per((m, i) => m.knn[i]),
        knnChange: knnChanges(kept, original),
        weights: per((m, i) => m.weights.blocks[i]),
        outputChange: outputChangeOf(kept),
        ...targetOutputChangeOf(kept),
        ...patchChangeOf(kept),
        ...patchDescentOf(kept),
        ...patchMemoryOf(kept),
        ...partMovesOf(kept, "weightDescent"),
        ...partMovesOf(kept, "weightMemory"),
        ...noiseWalksOf(kept),
        attention: per((m, i) => m.attention[i].reduce((a, b) => a + b, 0) / m.attention[i].length),
        ...(resets && { resets }),
        ...(labels && { knnByClass: knnChangesByClass(kept, original, labels) }),
        ...confusionsOf(kept, original, labels),
      };
    });
    atSteps.forEach((t, j) => {
      const at = (c: CellAnalysis, step: number) => c.atSteps?.find((a) => a.step === step);
      const both = j > 0 ? group.filter((c) => at(c, t.step) && at(c, steps[j - 1])) : [];
      if (both.length === 0 || both.length !== t.seeds) return;
      t.knnSincePrevious = knnSince(both.map((c) => at(c, t.step)!), both.map((c) => at(c, steps[j - 1])!));
      const sinceOf = (outputs: ((OutputSince & { from: number }) | undefined)[]) => (outputs.every((o) => o?.from === steps[j - 1]) ? outputSinceOf(steps[j - 1], outputs as OutputSince[]) : undefined);
      const [source, target] = [sinceOf(both.map((c) => at(c, t.step)!.outputSince)), sinceOf(both.map((c) => at(c, t.step)!.targetOutputSince))];
      if (source) t.outputSince = source;
      if (target) t.targetOutputSince = target;
      const patches = both.map((c) => at(c, t.step)!.patchSince);
      if (patches.every((p) => p?.from === steps[j - 1])) t.patchSince = { from: steps[j - 1], ...patchSinceOf(patches as ImageSets<PatchSince>[]) };
      const since = both.map((c) => at(c, t.step)!.resetsToPrevious);
      const resets = since.every((r) => r?.from === steps[j - 1]) && summarizeResets(since);
      if (resets) t.resetsToPrevious = { from: steps[j - 1], ...resets };
    });
    const per = (value: (c: CellAnalysis, i: number) => number) =>
      group[0].knn.map((_, i) => meanStdOf(group.map((c) => value(c, i))));
    const resets = summarizeResets(group.map((c) => c.resets));
    const interpolation = summarizeInterpolation(group.map((c) => c.interpolation));
    out.push({
      strategy: name,
      lr: row.lr,
      seeds: group.length,
      ckaCls: per((c, i) => c.cka.cls[i]),
      ckaPooled: per((c, i) => c.cka.pooled[i]),
      knn: per((c, i) => c.knn[i]),
      knnChange: knnChanges(group, original),
      ...(labels && { knnByClass: knnChangesByClass(group, original, labels) }),
      ...confusionsOf(group, original, labels),
      weights: per((c, i) => c.weights.blocks[i]),
      embedding: meanStdOf(group.map((c) => c.weights.embedding)),
      outputChange: outputChangeOf(group),
      ...targetOutputChangeOf(group),
      ...patchChangeOf(group),
      ...patchDescentOf(group),
      ...partMovesOf(group, "weightDescent"),
      norm: meanStdOf(group.map((c) => c.weights.norm)),
      attention: per((c, i) => c.attention[i].reduce((a, b) => a + b, 0) / c.attention[i].length),
      added: group[0].weights.added,
      ...(atSteps.length > 0 && { atSteps }),
      ...(resets && { resets }),
      ...(interpolation && { interpolation }),
    });
  }
  return out;
}

type KnnAnswers = { knnCorrect: Correct[]; otherBanks?: BankKnn[] };

// A per-part measure of a row's backbones (a seed each, the embeddings' and each block's) summarised part by part.
function overParts<P, S>(measured: { embedding: P; blocks: P[] }[], over: (seeds: P[]) => S): { embedding: S; blocks: S[] } {
  return { embedding: over(measured.map((m) => m.embedding)), blocks: measured[0].blocks.map((_, i) => over(measured.map((m) => m.blocks[i]))) };
}

// And where each has the final norm too (weight space's parts).
function overWeightParts<P, S>(measured: { embedding: P; blocks: P[]; norm: P }[], over: (seeds: P[]) => S): { embedding: S; blocks: S[]; norm: S } {
  return { ...overParts(measured, over), norm: over(measured.map((m) => m.norm)) };
}

// Weight space's parts of a measure as CSV rows name them: "embedding", each block's index, "norm".
const weightPartRows = <P>(m: { embedding: P; blocks: P[]; norm: P }): [number | string, P][] => [["embedding", m.embedding], ...m.blocks.map((p, i): [number, P] => [i, p]), ["norm", m.norm]];

// A part's change since the kept step before and its turn over the row's seeds.
const sinceOver = (seeds: PartSince[]) => ({ change: meanStdOf(seeds.map((p) => p.change)), turn: meanStdOf(seeds.map((p) => p.turn)) });

// The output change since `from` of a row's backbones at one step over them.
function outputSinceOf(from: number, measured: OutputSince[]): OutputSinceSummary {
  return { from, ...overParts(measured, sinceOver) };
}

// The output change of a row's backbones over them.
const outputChangeOf = (measured: { outputChange: OutputChange }[]): OutputChangeSummary => overParts(measured.map((m) => m.outputChange), meanStdOf);

// The same on the target-domain images, where every one of them was measured there.
function targetOutputChangeOf(measured: BlockMeasures[]): { targetOutputChange?: OutputChangeSummary } {
  const on = measured.map((m) => m.targetOutputChange);
  return on.every((o) => o !== undefined) ? { targetOutputChange: outputChangeOf(on.map((o) => ({ outputChange: o! }))) } : {};
}

// A per-image-set measure of a row's backbones summarised set by set: the target's where every one has it.
function overSets<P, S>(measured: ImageSets<P>[], over: (seeds: P[]) => S): ImageSets<S> {
  const target = measured.map((m) => m.target);
  return { source: over(measured.map((m) => m.source)), ...(target.every((t) => t !== undefined) && { target: over(target as P[]) }) };
}

// The patch projection's change of a row's backbones over them, where every one was measured.
function patchChangeOf(measured: BlockMeasures[]): { patchChange?: ImageSets<PatchChangeSummary> } {
  const changes = measured.map((m) => m.patchChange);
  if (!changes.every((c) => c !== undefined)) return {};
  return { patchChange: overSets(changes as ImageSets<PatchChange>[], (seeds) => ({ along: meanStdOf(seeds.map((c) => c.along)), rest: meanStdOf(seeds.map((c) => c.rest)) })) };
}

// Gradient descent's next move on it, where every one was measured.
function patchDescentOf(measured: BlockMeasures[]): { patchDescent?: ImageSets<PatchDescentSummary> } {
  const descents = measured.map((m) => m.patchDescent);
  if (!descents.every((d) => d !== undefined)) return {};
  const over = (seeds: PatchDescent["along"][]) => ({ ...sinceOver(seeds), spread: meanStdOf(seeds.map((p) => p.spread)) });
  return { patchDescent: overSets(descents as ImageSets<PatchDescent>[], (seeds) => ({ along: over(seeds.map((s) => s.along)), rest: over(seeds.map((s) => s.rest)) })) };
}

// The optimiser's memory on it, where every one was measured.
function patchMemoryOf(measured: BlockMeasures[]): { patchMemory?: ImageSets<PatchSinceSummary> } {
  const memories = measured.map((m) => m.patchMemory);
  return memories.every((m) => m !== undefined) ? { patchMemory: patchSinceOf(memories as ImageSets<PatchSince>[]) } : {};
}

// A move part by part over a row's backbones, where every one was measured.
function partMovesOf<K extends "weightDescent" | "weightMemory">(measured: BlockMeasures[], key: K): { [k in K]?: PartMovesSummary } {
  const moves = measured.map((m) => m[key]);
  if (!moves.every((m) => m !== undefined)) return {};
  const parts = moves as PartMoves[];
  const over = (seeds: PartMove[]): PartMoveSummary => ({
    ...sinceOver(seeds),
    ...(seeds.every((p) => p.spread !== undefined) && { spread: meanStdOf(seeds.map((p) => p.spread!)) }),
    ...(seeds.every((p) => p.descentTurn !== undefined) && { descentTurn: meanStdOf(seeds.map((p) => p.descentTurn!)) }),
  });
  return { [key]: overWeightParts(parts, over) } as { [k in K]?: PartMovesSummary };
}

// The noise walks, where every seed has one.
function noiseWalksOf(kept: StepAnalysis[]): { noiseWalk?: PartWalksSummary } {
  const walks = kept.map((m) => m.noiseWalk);
  if (!walks.every((w) => w !== undefined)) return {};
  // Each seed's walk of a part with the part's observed change.
  const over = (seeds: [NoiseWalk, number][]): NoiseWalkSummary => ({
    change: meanStdOf(seeds.map(([w]) => w.change)),
    memory: meanStdOf(seeds.map(([w]) => w.memory)),
    turn: meanStdOf(seeds.map(([w]) => w.turn)),
    share: meanStdOf(seeds.map(([w, d]) => w.change / d)),
  });
  const paired = kept.map((m, k) => ({ embedding: [walks[k]!.embedding, m.weights.embedding] as [NoiseWalk, number], blocks: walks[k]!.blocks.map((w, i): [NoiseWalk, number] => [w, m.weights.blocks[i]]), norm: [walks[k]!.norm, m.weights.norm] as [NoiseWalk, number] }));
  return { noiseWalk: overWeightParts(paired, over) };
}

// Its change since the kept step before and its turn.
function patchSinceOf(measured: ImageSets<PatchSince>[]): ImageSets<PatchSinceSummary> {
  return overSets(measured, (seeds) => ({ along: sinceOver(seeds.map((s) => s.along)), rest: sinceOver(seeds.map((s) => s.rest)) }));
}

// Block i's layer-wise answers of `measured` (a row's backbones, a seed each), `cells[seed][bank]`, and of
// `original`, `original[bank]`, what `read` takes of each (the right answers, or the classes given): against every
// bank where the original and each of them were classified against the other banks, else against knn.bank alone.
function blockAnswers<T>(measured: KnnAnswers[], original: KnnAnswers, i: number, read: (x: Correct) => T): { cells: T[][]; original: T[] } {
  const banks = original.otherBanks !== undefined && measured.every((m) => m.otherBanks?.length === original.otherBanks!.length);
  const answers = (x: KnnAnswers) => [x.knnCorrect[i], ...(banks ? x.otherBanks! : []).map((b) => b.knnCorrect[i])].map(read);
  return { cells: measured.map(answers), original: answers(original) };
}

// Each block's confusion of `measured` against `original` (as blockAnswers pairs them), where every answer set there
// holds the classes given and the images' classes are known (`labels`).
function confusionsOf(measured: KnnAnswers[], original: KnnAnswers, labels: QueryLabels | undefined): { knnConfusion?: KnnConfusion[] } {
  if (!labels) return {};
  const blocks = original.knnCorrect.map((_, i) => blockAnswers(measured, original, i, unpackPredicted));
  const whole = (a: (typeof blocks)[number]) => [a.original, ...a.cells].flat().every((x) => x !== undefined);
  return blocks.every(whole) ? { knnConfusion: blocks.map((a) => knnConfusion(a.cells as Uint8Array[][], a.original as Uint8Array[], labels)) } : {};
}

// Each block's layer-wise k-NN change from `original`'s over `measured`, paired as blockAnswers pairs them.
function knnChanges(measured: KnnAnswers[], original: KnnAnswers): KnnChange[] {
  return original.knnCorrect.map((_, i) => {
    const a = blockAnswers(measured, original, i, unpackCorrect);
    return { ...changeFromOriginal(a.cells, a.original), banks: a.original.length };
  });
}

// Each block's layer-wise k-NN of `now` (a row's backbones at one step, a seed each) less that of `before` (the same
// seeds' at an earlier step), each seed paired query by query with its own answers there: against every bank where
// each of them was classified against the other banks, else against knn.bank alone.
function knnSince(now: KnnAnswers[], before: KnnAnswers[]): KnnChange[] {
  const banks = [...now, ...before].every((m) => m.otherBanks !== undefined && m.otherBanks.length === now[0].otherBanks?.length);
  return now[0].knnCorrect.map((_, i) => {
    const answers = (x: KnnAnswers) => [x.knnCorrect[i], ...(banks ? x.otherBanks! : []).map((b) => b.knnCorrect[i])].map(unpackCorrect);
    const pairs = pairBySeed(now.map(answers), before.map(answers));
    return { ...pairedChange(pairs), banks: pairs[0].length };
  });
}

// knnChanges class by class of the analysed images (`labels`), block by block.
function knnChangesByClass(measured: KnnAnswers[], original: KnnAnswers, labels: QueryLabels): ClassKnn[][] {
  return original.knnCorrect.map((_, i) => {
    const a = blockAnswers(measured, original, i, unpackCorrect);
    return knnByClass(a.cells, a.original, labels);
  });
}

// analysis.csv: one number per line. measure: cka_cls, cka_pooled, knn_top1, weight_change, attention_js, with
// analysis.resets reset_transfer and reset_knn_top1, and with analysis.interpolate interpolated_transfer and
// interpolated_knn_top1; block: an original block (0-based), embedding / norm for weight_change, the part reset for
// a reset's score ("none": nothing), the weight α for an interpolated one; part: the layer of a weight change
// ("all" for the whole block), the head of an attention divergence, the other bank of a k-NN against one
// ("knn.otherBanks[i]"; empty: knn.bank). The original backbone's k-NN rows have the cell "original".
export function analysisCsv(a: RunAnalysis): string {
  const lines = ["cell,strategy,lr,seed,measure,block,part,value"];
  const original = { id: "original", strategy: "original", lr: "", seed: "" };
  const row = csvRow(lines, []);
  for (let i = 0; i < a.depth; i++) knnRows(row(original), a.original, i);
  for (const c of a.cells) {
    measureRows(row(c), c, a.depth);
    if (c.resets) resetRows(row(c), c.resets);
    if (c.interpolation) interpolationRows(row(c), c.interpolation);
  }
  return lines.join("\n") + "\n";
}

// analysis-steps.csv: analysis.csv's lines for the backbones the cells kept at analysis.atSteps, with their step;
// at each kept step but a cell's first output_change_since_previous and output_turn (each part's output change since
// the kept step before, and its cosine with the change up to then); with analysis.resetsBetweenSteps also
// reset_to_previous_transfer and reset_to_previous_knn_top1, the scores with each part put back to its value at the
// cell's kept step before.
export function analysisStepsCsv(a: RunAnalysis): string {
  const lines = ["cell,strategy,lr,seed,step,measure,block,part,value"];
  for (const c of a.cells) {
    for (const m of c.atSteps ?? []) {
      const row = csvRow(lines, [m.step])(c);
      measureRows(row, m, a.depth);
      if (m.resets) resetRows(row, m.resets);
      if (m.resetsToPrevious) resetRows(row, m.resetsToPrevious, "reset_to_previous");
      for (const [since, part] of [[m.outputSince, ""], [m.targetOutputSince, TARGET_PART]] as const) {
        for (const [block, p] of since ? ([["embedding", since.embedding], ...since.blocks.map((b, i) => [i, b] as const)] as const) : []) {
          row("output_change_since_previous", block, part, p.change);
          row("output_turn", block, part, p.turn);
        }
      }
      for (const [set, since] of m.patchSince ? imageSets(m.patchSince) : []) {
        for (const direction of PATCH_DIRECTIONS) {
          row("patch_change_since_previous", direction, set, since[direction].change);
          row("patch_turn", direction, set, since[direction].turn);
        }
      }
      for (const [part, w] of m.noiseWalk ? weightPartRows(m.noiseWalk) : []) {
        row("noise_walk_change", part, "", w.change);
        row("noise_walk_memory", part, "", w.memory);
        row("noise_walk_memory_turn", part, "", w.turn);
      }
    }
  }
  return lines.join("\n") + "\n";
}

// analysis-classes.csv: for each row with its answers by class, a line per block and class of the analysed images at
// its best checkpoints (step "best") and at each step of analysis.atSteps its cells kept (seeds: those that kept it),
// the class's fields as knn-classes.csv's.
export function analysisClassesCsv(a: RunAnalysis): string {
  const lines = ["strategy,lr,seeds,step,block,class,queries,original_knn_top1,knn_top1,change,change_lo,change_hi,banks"];
  for (const s of a.strategies) {
    for (const { step, seeds, knnByClass } of [{ step: "best", seeds: s.seeds, knnByClass: s.knnByClass }, ...(s.atSteps ?? [])]) {
      knnByClass?.forEach((classes, block) => classes.forEach((c) => lines.push([s.strategy, s.lr, seeds, step, block, ...classCsvFields(c)].join(","))));
    }
  }
  return lines.join("\n") + "\n";
}

// analysis-steps-between.csv: for each row, a line per kept step after the first and block, its layer-wise k-NN
// change since the kept step before (StepSummary's knnSincePrevious).
export function analysisBetweenCsv(a: RunAnalysis): string {
  const lines = ["strategy,lr,seeds,from,to,block,change,change_lo,change_hi,banks"];
  for (const s of a.strategies) {
    (s.atSteps ?? []).forEach((t, j) => {
      t.knnSincePrevious?.forEach((c, block) => lines.push([s.strategy, s.lr, t.seeds, s.atSteps![j - 1].step, t.step, block, c.mean.toFixed(2), intervalEnd(c.lo), intervalEnd(c.hi), c.banks].join(",")));
    });
  }
  return lines.join("\n") + "\n";
}

// analysis-confusion.csv: for each row with its confusion, a line per block, class of the analysed images (then
// "(every query)") and class given, at its best checkpoints (step "best") and at each step of analysis.atSteps its
// cells kept (seeds: those that kept it), the fields as knn-confusion.csv's.
export function analysisConfusionCsv(a: RunAnalysis): string {
  const lines = ["strategy,lr,seeds,step,block,class,given,queries,original_share,share,change,change_lo,change_hi,banks"];
  for (const s of a.strategies) {
    for (const { step, seeds, knnConfusion } of [{ step: "best", seeds: s.seeds, knnConfusion: s.knnConfusion }, ...(s.atSteps ?? [])]) {
      knnConfusion?.forEach((c, block) => confusionCsvFields(c).forEach((fields) => lines.push([s.strategy, s.lr, seeds, step, block, ...fields].join(","))));
    }
  }
  return lines.join("\n") + "\n";
}

// The part column of an output change on the target-domain images (empty: on the analysed source-domain ones).
const TARGET_PART = "transfer.test";

type CsvCell = { id: string; strategy: string; lr: number | string; seed: number | string };
type RowOf = (measure: string, block: number | string, part: string, value: number) => void;

// A writer of one CSV line per number into `lines`: the cell's columns, then `extra`'s, then the number's.
function csvRow(lines: string[], extra: (number | string)[]): (c: CsvCell) => RowOf {
  return (c) => (measure, block, part, value) => lines.push([c.id, c.strategy, c.lr, c.seed, ...extra, measure, block, part, value.toPrecision(6)].join(","));
}

function knnRows(row: RowOf, x: { knn: number[]; otherBanks?: BankKnn[] }, i: number): void {
  row("knn_top1", i, "", x.knn[i]);
  x.otherBanks?.forEach((b, j) => row("knn_top1", i, `knn.otherBanks[${j}]`, b.knn[i]));
}

function measureRows(row: RowOf, m: BlockMeasures & { otherBanks?: BankKnn[] }, depth: number): void {
  for (let i = 0; i < depth; i++) {
    row("cka_cls", i, "", m.cka.cls[i]);
    row("cka_pooled", i, "", m.cka.pooled[i]);
    knnRows(row, m, i);
    row("weight_change", i, "all", m.weights.blocks[i]);
    for (const [layer, v] of Object.entries(m.weights.layers[i])) row("weight_change", i, layer, v);
    m.attention[i].forEach((v, h) => row("attention_js", i, `head${h}`, v));
  }
  row("weight_change", "embedding", "all", m.weights.embedding);
  row("weight_change", "norm", "all", m.weights.norm);
  for (const [change, part] of [[m.outputChange, ""], [m.targetOutputChange, TARGET_PART]] as const) {
    change?.blocks.forEach((v, i) => row("output_change", i, part, v));
    if (change) row("output_change", "embedding", part, change.embedding);
  }
  for (const [set, change] of m.patchChange ? imageSets(m.patchChange) : []) for (const direction of PATCH_DIRECTIONS) row("patch_change", direction, set, change[direction]);
  for (const [set, descent] of m.patchDescent ? imageSets(m.patchDescent) : []) {
    for (const direction of PATCH_DIRECTIONS) {
      row("patch_descent", direction, set, descent[direction].change);
      row("patch_descent_turn", direction, set, descent[direction].turn);
      row("patch_descent_spread", direction, set, descent[direction].spread);
    }
  }
  for (const [measure, moves] of [["weight_descent", m.weightDescent], ["weight_memory", m.weightMemory]] as const) {
    if (!moves) continue;
    for (const [part, p] of weightPartRows(moves)) {
      row(measure, part, "", p.change);
      row(`${measure}_turn`, part, "", p.turn);
      if (p.spread !== undefined) row(`${measure}_spread`, part, "", p.spread);
      if (p.descentTurn !== undefined) row(`${measure}_descent_turn`, part, "", p.descentTurn);
    }
  }
  for (const [set, memory] of m.patchMemory ? imageSets(m.patchMemory) : []) {
    for (const direction of PATCH_DIRECTIONS) {
      row("patch_memory", direction, set, memory[direction].change);
      row("patch_memory_turn", direction, set, memory[direction].turn);
    }
  }
}

const PATCH_DIRECTIONS = ["along", "rest"] as const;

// An image-set measure's values with their CSV part (empty: the analysed source-domain images).
const imageSets = <T>(x: ImageSets<T>): [string, T][] => [["", x.source], ...(x.target ? [[TARGET_PART, x.target] as [string, T]] : [])];
