// The per-block analysis's causal measure (analysis.resets): each part of a cell's best backbone put back where
// fine-tuning started, one at a time (eval/block-reset.ts: the embeddings, each block or each of its layers, a new
// block, the final norm; then all of them, and all but each one; the patch projection's change along its patches'
// first direction and the rest apart), and the model scored as the study scores it: its
// head's transfer accuracy on transfer.test, and the source k-NN of knn.queries against knn.bank (every image of
// both, as the table's). Each against the fine-tuned model's own answers, measured the same way on the same device:
// the source k-NN a part's reset wins back is what that part's change cost, the transfer it loses what the change
// bought. Paired image by image, the changes' intervals are over seeds and images, as a difference of two
// strategies (study/comparisons.ts); with knn.otherBanks the queries are classified against every other bank too,
// and the source k-NN's intervals count the banks.
import type { Loader } from "../data/loader.js";
import { evaluateCorrect } from "../eval/accuracy.js";
import type { BlockMap } from "../eval/block-map.js";
import { type ResetGrain, type ResetUnit, patchDirectionUnits, resetUnits, withEachReset } from "../eval/block-reset.js";
import type { VisionTransformer } from "../vit/model.js";
import { type MeanInterval, type MeanStd, meanStdOf } from "../util/stats.js";
import { commonBanks, pairBySeed, pairedChange } from "./comparisons.js";
import type { StudyConfig } from "./config.js";
import { type Correct, type KnnScores, packCorrect, unpackCorrect } from "./results.js";
import { type KnnStudyData, everyBankScores } from "./study-knn.js";
import type { StudyData } from "./study-data.js";

// A backbone under its head, scored as the study scores a cell's best checkpoint.
export interface ResetScores {
  transfer: number; // percent, on transfer.test
  transferCorrect: Correct;
  knn: number; // source k-NN top-1 at knn.reportK, percent
  knnCorrect: Correct;
  otherBanks?: { knn: number; knnCorrect: Correct }[]; // with knn.otherBanks: the queries against each other bank
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

// A kept backbone's parts put back to their values at an earlier kept step, `from` (analysis.resetsBetweenSteps):
// "all" is that step's backbone under this step's head.
export type CellResetsSince = CellResets & { from: number };

// What the scores read: the transfer test images (in the runner's batches) and the study's k-NN data, its other
// banks too where it has them.
export interface ResetData {
  config: StudyConfig;
  test: Loader;
  knn: KnnStudyData & Pick<StudyData, "otherBanks">;
  size: number;
  // The first principal direction of the analysed images' patches (eval/patch-directions.ts): with it, the patch
  // projection's change along it and the rest are put back apart too (eval/block-reset.ts patchDirectionUnits).
  patchDirection?: Float64Array;
}

// The model as it stands, scored so (the weight interpolation's points are scored the same way).
export async function scores(model: VisionTransformer, data: ResetData): Promise<ResetScores> {
  const tested = await evaluateCorrect(model, data.test);
  const top1 = (s: KnnScores) => s[String(data.config.knn.reportK)].top1;
  const [bank, ...others] = await everyBankScores(model, data.config, data.knn, data.size);
  return {
    transfer: tested.accuracy,
    transferCorrect: packCorrect(tested.correct),
    knn: top1(bank.scores),
    knnCorrect: bank.correct,
    ...(others.length > 0 && { otherBanks: others.map((b) => ({ knn: top1(b.scores), knnCorrect: b.correct })) }),
  };
}

// A cell's model (its trainable tensors those with requiresGrad, LoRA not merged) scored as it is (or `scored`, its
// scores already taken) and with each unit reset to `initial`, the model where its fine-tuning started (or another
// of its steps: analysis.resetsBetweenSteps), its blocks whole or by layers. Linear probing trains no part to reset.
export async function cellResets(model: VisionTransformer, initial: VisionTransformer, map: BlockMap, data: ResetData, grain: ResetGrain = "blocks", scored?: ResetScores): Promise<CellResets> {
  const parts = resetUnits(model.parameters().filter(([, t]) => t.requiresGrad).map(([name]) => name), map, grain);
  const units = [...parts, ...(data.patchDirection ? patchDirectionUnits(parts) : [])];
  const tuned = scored ?? (await scores(model, data));
  const where = (u: ResetUnit) => ({ unit: u.name, ...(u.block !== undefined && { block: u.block }), ...(u.added && { added: u.added }), ...(u.layer && { layer: u.layer }) });
  return { tuned, units: await withEachReset(model, initial, units, async (u) => ({ ...where(u), ...(await scores(model, data)) }), data.patchDirection) };
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
  banks: number; // the banks the source k-NN changes are over: knn.bank and, where every cell has them, the others
}

// A row's kept backbones at one step with their parts put back to the kept step before, `from`.
export type RowResetsSince = RowResets & { from: number };

type Answers = "transferCorrect" | "knnCorrect";
export type ScorePair = { a: ResetScores; reference: ResetScores };

// The change of `which` answers from each pair's reference to its `a`, paired image by image (the source k-NN's
// against each of `banks` banks): its mean and interval over the pairs (seeds), the banks and the images.
export function pairedScores(which: Answers, pairs: ScorePair[], banks: number): MeanInterval {
  // A score's answers per bank: the transfer's one, the source k-NN's against each bank counted.
  const answers = (s: ResetScores) => (which === "transferCorrect" ? [s.transferCorrect] : [s.knnCorrect, ...(s.otherBanks ?? []).slice(0, banks - 1).map((b) => b.knnCorrect)]).map(unpackCorrect);
  return pairedChange(pairBySeed(pairs.map(({ a }) => answers(a)), pairs.map(({ reference }) => answers(reference))));
}

// The row's cells' resets (those that have them) summarised unit by unit, in the first cell's order of units; the
// source k-NN changes over every bank where every cell was scored against the same number of other banks.
export function summarizeResets(group: (CellResets | undefined)[]): RowResets | undefined {
  const cells = group.filter((c): c is CellResets => c !== undefined);
  if (cells.length === 0) return undefined;
  const banks = commonBanks(cells.flatMap((c) => [c.tuned, ...c.units]).map((s) => s.otherBanks?.length));
  const paired = (which: Answers, pairs: ScorePair[]) => pairedScores(which, pairs, banks);
  const units = cells[0].units.map((first): ResetSummary => {
    const pairs = cells.flatMap((c) => c.units.filter((u) => u.unit === first.unit).map((u) => ({ a: u, reference: c.tuned })));
    // "all" against "all but" this part, in the cells that have both.
    const unit = (c: CellResets, name: string) => c.units.find((u) => u.unit === name);
    const alone = cells.flatMap((c) => {
      const [all, allBut] = [unit(c, "all"), unit(c, `all but ${first.unit}`)];
      return all && allBut ? [{ a: all, reference: allBut }] : [];
    });
    return {
      unit: first.unit,
      ...(first.block !== undefined && { block: first.block }),
      ...(first.added && { added: first.added }),
      ...(first.layer && { layer: first.layer }),
      seeds: pairs.length,
      transfer: meanStdOf(pairs.map(({ a }) => a.transfer)),
      knn: meanStdOf(pairs.map(({ a }) => a.knn)),
      transferChange: paired("transferCorrect", pairs),
      knnChange: paired("knnCorrect", pairs),
      ...(alone.length > 0 && { alone: { transferChange: paired("transferCorrect", alone), knnChange: paired("knnCorrect", alone) } }),
    };
  });
  return { tuned: { transfer: meanStdOf(cells.map((c) => c.tuned.transfer)), knn: meanStdOf(cells.map((c) => c.tuned.knn)) }, units, banks };
}

// The most banks the rows' source k-NN resets are over (1: knn.bank alone).
export const resetBanks = (rows: { resets?: RowResets }[]): number => Math.max(1, ...rows.map((s) => s.resets?.banks ?? 1));

// analysis.csv's lines of a cell's resets: measure reset_transfer or reset_knn_top1 (`measure`_transfer and
// _knn_top1), block the unit ("none": the fine-tuned model as it is), part the other bank of a k-NN against one
// ("knn.otherBanks[i]"; empty: knn.bank).
export function resetRows(row: (measure: string, block: string, part: string, value: number) => void, r: CellResets, measure = "reset"): void {
  for (const s of [{ unit: "none", ...r.tuned }, ...r.units]) {
    row(`${measure}_transfer`, s.unit, "", s.transfer);
    row(`${measure}_knn_top1`, s.unit, "", s.knn);
    s.otherBanks?.forEach((b, i) => row(`${measure}_knn_top1`, s.unit, `knn.otherBanks[${i}]`, b.knn));
  }
}
