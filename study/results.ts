// A study's results as values: each cell's result (result.json), the original backbone's k-NN accuracy, and the
// table (one row per strategy at its chosen learning rate, mean and standard deviation over seeds), which
// summarize() makes from the finished cells; resultsJson is the results.json form.
import type { DatasetIdentity } from "../data/dataset.js";
import { type StudyConfig, configJson, ratesFor } from "./config.js";
import { type Strategy, strategyName } from "../peft/strategy.js";
import { meanStd } from "../util/stats.js";

export type KnnScores = Record<string, { top1: number; top5: number }>; // by k, percent

export interface BaselineResult {
  knn: KnnScores;
  seconds: number;
}

export interface CellResult {
  id: string;
  strategy: string; // its name (strategyName): result.json is a file format
  lr: number;
  seed: number;
  trainableParams: number; // elements of the tensors actually trained (head included)
  paperParams: number; // as the paper's Table 1 counts them (peft/count.ts)
  totalParams: number; // the fine-tuned model's parameters (added blocks and adapters included)
  transferAccuracy: number; // best transfer test accuracy during fine-tuning, percent
  finalTransferAccuracy: number; // at the last step
  bestStep: number;
  finalLoss: number;
  knn: KnnScores; // of the best checkpoint's backbone on the source domain
  trainSeconds: number;
  imagesPerSecond: number;
  knnSeconds: number;
}

// One strategy at its chosen learning rate, averaged over seeds.
export interface TableRow {
  strategy: Strategy;
  lr: number;
  seeds: number;
  trainableParams: number;
  transfer: number; // mean over seeds, percent
  transferStd: number; // sample standard deviation over seeds (0 for one seed)
  knn: number; // source k-NN top-1 at reportK, mean over seeds
  knnStd: number;
  mean: number; // (transfer + knn) / 2
}

export interface StudyNotes {
  backbone: string;
  data: Record<string, DatasetIdentity>;
  imageSize: number;
}

export interface StudyResults {
  name: string;
  reportK: number;
  temperature: number;
  selectBy: "transfer" | "mean";
  notes: StudyNotes;
  baseline: BaselineResult;
  table: TableRow[]; // config order of strategies; only strategies with finished cells
  cells: CellResult[];
  config: StudyConfig;
}

// For each strategy, the learning rate with the best seed-averaged transfer accuracy (selectBy "transfer", what a
// practitioner can select without source data) or the best mean of transfer and source k-NN accuracy ("mean").
export function summarize(config: StudyConfig, baseline: BaselineResult, cells: CellResult[], notes: StudyNotes): StudyResults {
  const k = String(config.knn.reportK);
  const table: TableRow[] = [];
  for (const strategy of config.strategies) {
    const name = strategyName(strategy);
    let best: TableRow | undefined;
    for (const lr of ratesFor(config, strategy)) {
      const group = cells.filter((c) => c.strategy === name && c.lr === lr);
      if (group.length === 0) continue;
      const [transfer, transferStd] = meanStd(group.map((c) => c.transferAccuracy));
      const [knn, knnStd] = meanStd(group.map((c) => c.knn[k].top1));
      const row = { strategy, lr, seeds: group.length, trainableParams: group[0].trainableParams, transfer, transferStd, knn, knnStd, mean: (transfer + knn) / 2 };
      const score = (r: TableRow) => (config.selectBy === "transfer" ? r.transfer : r.mean);
      if (!best || score(row) > score(best)) best = row;
    }
    if (best) table.push(best);
  }
  return { name: config.name, reportK: config.knn.reportK, temperature: config.knn.temperature, selectBy: config.selectBy, notes, baseline, table, cells, config };
}

// results.json: everything, with strategies by name.
export function resultsJson(r: StudyResults): Record<string, unknown> {
  return { ...r, table: r.table.map((row) => ({ ...row, strategy: strategyName(row.strategy) })), config: configJson(r.config) };
}
