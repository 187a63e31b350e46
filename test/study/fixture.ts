// Hand-made cell results of a two-strategy, two-rate, two-seed study, for the results, report and figure tests.
import { DEFAULT_STUDY, parseStudyConfig } from "../../study/config.js";
import { type CellResult, type StudyResults, summarize } from "../../study/results.js";

export const config = parseStudyConfig({ ...DEFAULT_STUDY, strategies: ["full", "linear"], learningRates: [0.1, 0.01], seeds: [0, 1] });

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
    knn: { "10": { top1: knn + 1, top5: 99 }, "20": { top1: knn, top5: 98 } },
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
