// Hand-made cell results of a two-strategy, two-rate, two-seed study, for the results, report and figure tests.
// The default study is only a template: the values the tests below check are pinned here (60 training steps
// evaluated every 20, k-NN at steps 0, 1, 3, 10, 30, 60), so resizing configs/default.json leaves them alone. Each
// cell's forgetting curve runs from the original backbone's 80 % down to its final k-NN accuracy, log-linear in
// the step.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_STUDY, type StudyConfig, configJson, parseStudyConfig } from "../../study/config.js";
import { type CellOutcome, type CellResult, type DivergedCell, type KnnScores, type StudyResults, summarize } from "../../study/results.js";
import { packBits } from "../../util/bits.js";

export const config = parseStudyConfig({
  ...DEFAULT_STUDY,
  strategies: ["full", "linear"],
  learningRates: [0.1, 0.01],
  seeds: [0, 1],
  training: { ...DEFAULT_STUDY.training, steps: 60, evalEvery: 20, warmupSteps: 6 },
  knn: { ...DEFAULT_STUDY.knn, atSteps: [0, 1, 3, 10, 30, 60] },
});

const scores = (top1: number, top5: number): KnnScores => ({ "10": { top1: top1 + 1, top5: top5 + 1 }, "20": { top1, top5 } });
const steps = config.knn.atSteps!;

function cell(strategy: string, lr: number, seed: number, transfer: number, knn: number): CellResult {
  return {
    id: `${strategy}_lr${lr}_s${seed}`,
    strategy,
    lr,
    seed,
    trainableParams: strategy === "full" ? 210_000 : 325,
    paperParams: strategy === "full" ? 210_000 : 325,
    totalParams: 210_000,
    transferAccuracy: transfer,
    finalTransferAccuracy: transfer - 1,
    bestStep: 40,
    finalLoss: 0.5,
    knn: scores(knn, 98),
    knnCurve: steps.map((step) => ({ step, knn: scores(80 - ((80 - knn) * Math.log1p(step)) / Math.log1p(steps.at(-1)!), 98) })),
    trainSeconds: 10,
    imagesPerSecond: 100,
    knnSeconds: 2,
  };
}

export const cells = [
  cell("full", 0.1, 0, 90, 40),
  cell("full", 0.1, 1, 92, 42), // mean transfer 91, knn 41: best transfer
  cell("full", 0.01, 0, 85, 70),
  cell("full", 0.01, 1, 87, 72), // mean transfer 86, knn 71: best mean (78.5 vs 66)
  cell("linear", 0.1, 0, 60, 80),
  cell("linear", 0.1, 1, 62, 80),
  cell("linear", 0.01, 0, 50, 80),
  cell("linear", 0.01, 1, 52, 80),
];
export const baseline = { knn: { "10": { top1: 81, top5: 99 }, "20": { top1: 80, top5: 99 } }, seconds: 1 };
export const notes = { backbone: "test backbone", data: {}, imageSize: 28 };

// The study's results with each strategy's learning rate picked by transfer accuracy.
export const results = (): StudyResults => summarize(config, baseline, cells, notes);

// The cells and the original backbone with their answers to QUERIES k-NN queries (the bits of a run of right ones,
// each seed's after step 0 shifted by the seed, so that the seeds disagree query by query): the forgetting's changes
// from the original (results.ts knnChange) are computed from these, whatever the accuracies above say.
export const QUERIES = 40;
export const answers = (right: number, shift = 0): number[] => Array.from({ length: QUERIES }, (_, q) => ((q + shift) % QUERIES < right ? 1 : 0));
const answered = (a: number[]) => ({ count: QUERIES, bits: packBits(a) });
const rightOf = (percent: number) => Math.round((percent * QUERIES) / 100);
export const originalAnswers = answers(rightOf(80));
export const baselineWithAnswers = { ...baseline, correct: answered(originalAnswers) };
export const cellsWithAnswers: CellResult[] = cells.map((c) => ({
  ...c,
  correct: { transfer: answered(answers(rightOf(c.transferAccuracy))), knn: answered(answers(rightOf(c.knn["20"].top1), c.seed)) },
  knnCurve: c.knnCurve!.map((p) => ({ ...p, correct: answered(p.step === 0 ? originalAnswers : answers(rightOf(p.knn["20"].top1), c.seed)) })),
}));

// A cell whose loss became NaN at `step`, as the runner records it in place of the cell of `cells` it replaces.
export function diverged(strategy: string, lr: number, seed: number, step: number): DivergedCell {
  const message = `train: the loss became NaN at step ${step} (lr ${lr.toExponential(2)}); stopped, no checkpoint had been written yet`;
  return { id: `${strategy}_lr${lr}_s${seed}`, strategy, lr, seed, diverged: { step, loss: "NaN", message } };
}

// The cells scored against one other bank too (knn.otherBanks), where full fine-tuning at 0.1 keeps 90 % and at 0.01
// 40 %: the mean rule, which takes 0.01 against the bank, would take 0.1 against it.
export const configOnBanks: StudyConfig = { ...config, selectBy: "mean", knn: { ...config.knn, otherBanks: [config.knn.bank] } };
export const cellsOnBanks: CellResult[] = cells.map((c) => ({
  ...c,
  otherBanks: [{ knn: scores(c.strategy === "full" ? (c.lr === 0.1 ? 90 : 40) : c.knn["20"].top1, 99), correct: { count: 1, bits: packBits([1]) } }],
}));

// A cell right on `transfer` of the QUERIES test images and `knn` of the queries (the seed's own run of them), its
// accuracies those of its answers.
export const answeredCell = (c: CellResult, transfer: number, knn: number): CellResult => ({
  ...c,
  transferAccuracy: (100 * transfer) / QUERIES,
  knn: { ...c.knn, "20": { ...c.knn["20"], top1: (100 * knn) / QUERIES } },
  correct: { transfer: { count: QUERIES, bits: packBits(answers(transfer)) }, knn: { count: QUERIES, bits: packBits(answers(knn, c.seed)) } },
});

// A run folder of `study` holding these cells' results, as a run that has not written results.json yet.
export async function writeRunFolder(dir: string, study: StudyConfig, results: CellOutcome[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify(configJson(study)));
  await writeFile(join(dir, "baseline.json"), JSON.stringify(baseline));
  for (const c of results) {
    await mkdir(join(dir, "cells", c.id), { recursive: true });
    await writeFile(join(dir, "cells", c.id, "result.json"), JSON.stringify(c));
  }
  return dir;
}
