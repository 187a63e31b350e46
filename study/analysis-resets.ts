// The per-block analysis's causal measure (analysis.resets): each part of a cell's best backbone put back where
// fine-tuning started, one at a time (eval/block-reset.ts: the embeddings, each block, a new block, the final norm;
// then all of them, and all but each one), and the model scored as the study scores it: its head's transfer accuracy on transfer.test,
// and the source k-NN of knn.queries against knn.bank (every image of both, as the table's). Each against the
// fine-tuned model's own answers, measured the same way on the same device: the source k-NN a part's reset wins
// back is what that part's change cost, the transfer it loses what the change bought. Paired image by image, the
// changes' intervals are over seeds and images, as a difference of two strategies (study/comparisons.ts).
import type { Loader } from "../data/loader.js";
import { evaluateCorrect } from "../eval/accuracy.js";
import type { BlockMap } from "../eval/block-map.js";
import { type ResetGrain, type ResetUnit, resetUnits, withEachReset } from "../eval/block-reset.js";
import type { VisionTransformer } from "../vit/model.js";
import { type MeanInterval, type MeanStd, meanStdOf } from "../util/stats.js";
import { pairedChange } from "./comparisons.js";
import type { StudyConfig } from "./config.js";
import { type Correct, packCorrect, unpackCorrect } from "./results.js";
import { type KnnStudyData, knnScores } from "./study-knn.js";

// A backbone under its head, scored as the study scores a cell's best checkpoint.
export interface ResetScores {
  transfer: number; // percent, on transfer.test
  transferCorrect: Correct;
  knn: number; // source k-NN top-1 at knn.reportK, percent
  knnCorrect: Correct;
}

export interface UnitScores extends ResetScores {
  unit: string; // ResetUnit's name
  block?: number;
  added?: true;
  layer?: string;
}

export interface CellResets {
  tuned: ResetScores; // the fine-tuned model, nothing reset
  units: UnitScores[]; // eval/block-reset.ts resetUnits' order: the parts, "all", "all but" each part
}

// What the scores read: the transfer test images (in the runner's batches) and the study's k-NN data.
export interface ResetData {
  config: StudyConfig;
  test: Loader;
  knn: KnnStudyData;
  size: number;
}

async function scores(model: VisionTransformer, data: ResetData): Promise<ResetScores> {
  const tested = await evaluateCorrect(model, data.test);
  const { scores: knn, correct } = await knnScores(model, data.config, data.knn, data.size);
  return { transfer: tested.accuracy, transferCorrect: packCorrect(tested.correct), knn: knn[String(data.config.knn.reportK)].top1, knnCorrect: correct };
}

// A cell's model (its trainable tensors those with requiresGrad, LoRA not merged) scored as it is and with each
// unit reset to `initial`, the model where its fine-tuning started, its blocks whole or by layers. Linear probing
// trains no part to reset.
export async function cellResets(model: VisionTransformer, initial: VisionTransformer, map: BlockMap, data: ResetData, grain: ResetGrain = "blocks"): Promise<CellResets> {
  const units = resetUnits(model.parameters().filter(([, t]) => t.requiresGrad).map(([name]) => name), map, grain);
  const tuned = await scores(model, data);
  const where = (u: ResetUnit) => ({ unit: u.name, ...(u.block !== undefined && { block: u.block }), ...(u.added && { added: u.added }), ...(u.layer && { layer: u.layer }) });
  return { tuned, units: await withEachReset(model, initial, units, async (u) => ({ ...where(u), ...(await scores(model, data)) })) };
}

// A row's unit over its seeds: each accuracy with the unit reset, and its change from the fine-tuned model's own.
export interface ResetSummary {
  unit: string;
  block?: number;
  added?: true;
  layer?: string;
  seeds: number;
  transfer: MeanStd;
  knn: MeanStd;
  transferChange: MeanInterval; // points: negative, the transfer the unit's change bought
  knnChange: MeanInterval; // points: positive, the source k-NN the unit's change cost
  // A part with an "all but" unit: its change alone, every other part where fine-tuning started ("all" against
  // "all but" the part, paired as the changes are), in the same signs.
  alone?: { transferChange: MeanInterval; knnChange: MeanInterval };
}

export interface RowResets {
  tuned: { transfer: MeanStd; knn: MeanStd };
  units: ResetSummary[];
}

// The row's cells' resets (those that have them) summarised unit by unit, in the first cell's order of units.
export function summarizeResets(group: (CellResets | undefined)[]): RowResets | undefined {
  const cells = group.filter((c): c is CellResets => c !== undefined);
  if (cells.length === 0) return undefined;
  const units = cells[0].units.map((first): ResetSummary => {
    const pairs = cells.flatMap((c) => c.units.filter((u) => u.unit === first.unit).map((u) => ({ u, tuned: c.tuned })));
    const change = (answers: "transferCorrect" | "knnCorrect") => pairedChange(pairs.map(({ u, tuned }) => [unpackCorrect(u[answers]), unpackCorrect(tuned[answers])]));
    // "all" against "all but" this part, in the cells that have both.
    const unit = (c: CellResets, name: string) => c.units.find((u) => u.unit === name);
    const alone = cells.flatMap((c) => {
      const [all, allBut] = [unit(c, "all"), unit(c, `all but ${first.unit}`)];
      return all && allBut ? [{ all, allBut }] : [];
    });
    const aloneChange = (answers: "transferCorrect" | "knnCorrect") => pairedChange(alone.map(({ all, allBut }) => [unpackCorrect(all[answers]), unpackCorrect(allBut[answers])]));
    return {
      unit: first.unit,
      ...(first.block !== undefined && { block: first.block }),
      ...(first.added && { added: first.added }),
      ...(first.layer && { layer: first.layer }),
      seeds: pairs.length,
      transfer: meanStdOf(pairs.map(({ u }) => u.transfer)),
      knn: meanStdOf(pairs.map(({ u }) => u.knn)),
      transferChange: change("transferCorrect"),
      knnChange: change("knnCorrect"),
      ...(alone.length > 0 && { alone: { transferChange: aloneChange("transferCorrect"), knnChange: aloneChange("knnCorrect") } }),
    };
  });
  return { tuned: { transfer: meanStdOf(cells.map((c) => c.tuned.transfer)), knn: meanStdOf(cells.map((c) => c.tuned.knn)) }, units };
}

// analysis.csv's lines of a cell's resets: measure reset_transfer or reset_knn_top1, block the unit ("none": the
// fine-tuned model as it is).
export function resetRows(row: (measure: string, block: string, part: string, value: number) => void, r: CellResets): void {
  for (const s of [{ unit: "none", ...r.tuned }, ...r.units]) {
    row("reset_transfer", s.unit, "", s.transfer);
    row("reset_knn_top1", s.unit, "", s.knn);
  }
}
