// The noise walk (eval/noise-walk.ts) of each part a cell trained directly, at each of its kept steps: what the
// batches' noise alone would have made of the part, from the spread of gradient descent's next move measured at every
// kept step (StepAnalysis weightDescent), the study's schedule at the cell's rate (times the part's layer-wise factor
// with -lrdD, peft/layer-decay.ts) and SGD's momentum, against the part's observed change and memory. Derived, not
// measured: made anew from the kept steps' spreads whenever an analysis is written. None for AdamW, whose steps
// rescale the gradient coordinate by coordinate, nor for a cell whose kept steps lack the spread.
import { type PartWalks, noiseWalk } from "../eval/noise-walk.js";
import { layerRateScales } from "../peft/layer-decay.js";
import { parseStrategy } from "../peft/strategy.js";
import type { CellAnalysis, StepAnalysis } from "./analysis-results.js";
import type { StudyTraining } from "./config.js";

// Each cell with its kept steps' noise walks (`depth`: the original's blocks), or without them where it has none.
export function withNoiseWalks(cells: CellAnalysis[], training: StudyTraining, depth: number): CellAnalysis[] {
  return cells.map((c) => {
    if (!c.atSteps) return c;
    const walks = cellWalks(c, c.atSteps, training, depth);
    return { ...c, atSteps: c.atSteps.map(({ noiseWalk: _, ...m }, j) => (walks ? { ...m, noiseWalk: walks[j] } : m)) };
  });
}

function cellWalks(c: CellAnalysis, kept: StepAnalysis[], training: StudyTraining, depth: number): PartWalks[] | undefined {
  if (training.optimizer !== "sgd" || kept.length === 0 || !kept.every((m) => m.weightDescent && [m.weightDescent.embedding, ...m.weightDescent.blocks, m.weightDescent.norm].every((p) => typeof p.spread === "number"))) return undefined;
  const beyond = kept.find((m) => m.step > training.steps);
  if (beyond) throw new Error(`noise walk: cell ${c.id} kept step ${beyond.step}, beyond the config's training.steps (${training.steps})`);
  const decay = parseStrategy(c.strategy).layerDecay;
  // A part's rate: the embeddings', each block's and the final norm's layer-wise factor of the cell's rate.
  const names = ["cls_token", ...Array.from({ length: depth }, (_, i) => `blocks.${i}.norm1.weight`), "norm.weight"];
  const factors = decay === undefined ? names.map(() => 1) : layerRateScales(names, depth, decay);
  const steps = kept.map((m) => m.step);
  const walk = (k: number, spreadOf: (m: StepAnalysis) => number) =>
    noiseWalk({ base: c.lr * factors[k], warmup: training.warmupSteps, total: training.steps, ...(training.schedule && { after: training.schedule }) }, training.momentum, kept.map((m) => [m.step, spreadOf(m)]), steps);
  const embedding = walk(0, (m) => m.weightDescent!.embedding.spread!);
  const blocks = Array.from({ length: depth }, (_, i) => walk(i + 1, (m) => m.weightDescent!.blocks[i].spread!));
  const norm = walk(depth + 1, (m) => m.weightDescent!.norm.spread!);
  return steps.map((_, j) => ({ embedding: embedding[j], blocks: blocks.map((b) => b[j]), norm: norm[j] }));
}
