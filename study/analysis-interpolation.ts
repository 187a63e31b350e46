// The per-block analysis's weight interpolation (analysis.interpolate): every trained tensor of a cell's best
// backbone moved back along the straight line to where fine-tuning started (eval/weight-interpolation.ts: at weight
// α, (1 - α) · start + α · fine-tuned, LoRA by its merged weight, the head kept), and the model scored as the study
// scores a cell, as the resets score theirs (study/analysis-resets.ts): its head's transfer accuracy on
// transfer.test and the source k-NN of knn.queries against knn.bank (and each other bank). Where the resets ask
// which part's change forgets, this asks how much of the change: whether part of the way back keeps the transfer and
// wins back the source domain, as WiSE-FT found for CLIP; α = 0 is the resets' "all". With the head "probe" the head
// moves too, from the linear probing cell's of the same seed, or an -lpft cell's own probe's (put in the model at
// step 0 by the caller), so that α = 0 is a linear probe whole: WiSE-FT's path from its zero-shot model, which the
// head trained on the original features stands for here. Each point against the fine-tuned model's own answers, paired image by image, as the
// resets are.
import type { VisionTransformer } from "../vit/model.js";
import { interpolationPoints, withEachInterpolation } from "../eval/weight-interpolation.js";
import { type MeanInterval, type MeanStd, meanStdOf } from "../util/stats.js";
import { type ResetData, type ResetScores, type ScorePair, pairedScores, scores } from "./analysis-resets.js";
import { commonBanks } from "./comparisons.js";
import type { InterpolationHead } from "./config.js";

export interface InterpolationScores extends ResetScores {
  alpha: number;
}

export interface CellInterpolation {
  tuned: ResetScores; // the fine-tuned model, as it is
  points: InterpolationScores[]; // at each weight of analysis.interpolate, in its order; none for linear probing
}

// A cell's model (its trainable tensors those with requiresGrad, LoRA not merged) scored as it is (or `tuned`, its
// scores as the caller has them already: the resets') and at each weight, `initial` the model where its fine-tuning
// started (with the head "probe", linear probing's head in it).
export async function cellInterpolation(model: VisionTransformer, initial: VisionTransformer, alphas: number[], data: ResetData, head: InterpolationHead = "tuned", tunedScores?: ResetScores): Promise<CellInterpolation> {
  const points = interpolationPoints(model.parameters().filter(([, t]) => t.requiresGrad).map(([name]) => name), alphas, head === "probe");
  const tuned = tunedScores ?? (await scores(model, data));
  return { tuned, points: await withEachInterpolation(model, initial, points, async (p) => ({ alpha: p.alpha, ...(await scores(model, data)) })) };
}

// A row's point over its seeds: each accuracy at that weight, and its change from the fine-tuned model's own.
export interface InterpolationSummary {
  alpha: number;
  seeds: number;
  transfer: MeanStd;
  knn: MeanStd;
  transferChange: MeanInterval; // points: negative, the transfer lost going back
  knnChange: MeanInterval; // points: positive, the source k-NN won back
}

export interface RowInterpolation {
  tuned: { transfer: MeanStd; knn: MeanStd };
  points: InterpolationSummary[];
  banks: number; // the banks the source k-NN changes are over
}

// The row's cells' points (those that have them) summarised weight by weight, in the first cell's order.
export function summarizeInterpolation(group: (CellInterpolation | undefined)[]): RowInterpolation | undefined {
  const cells = group.filter((c): c is CellInterpolation => c !== undefined);
  if (cells.length === 0) return undefined;
  const banks = commonBanks(cells.flatMap((c) => [c.tuned, ...c.points]).map((s) => s.otherBanks?.length));
  const points = cells[0].points.map(({ alpha }): InterpolationSummary => {
    const pairs: ScorePair[] = cells.flatMap((c) => c.points.filter((p) => p.alpha === alpha).map((p) => ({ a: p, reference: c.tuned })));
    return {
      alpha,
      seeds: pairs.length,
      transfer: meanStdOf(pairs.map(({ a }) => a.transfer)),
      knn: meanStdOf(pairs.map(({ a }) => a.knn)),
      transferChange: pairedScores("transferCorrect", pairs, banks),
      knnChange: pairedScores("knnCorrect", pairs, banks),
    };
  });
  return { tuned: { transfer: meanStdOf(cells.map((c) => c.tuned.transfer)), knn: meanStdOf(cells.map((c) => c.tuned.knn)) }, points, banks };
}

// analysis.csv's lines of a cell's points: measure interpolated_transfer or interpolated_knn_top1, block the weight
// α, part the other bank of a k-NN against one ("knn.otherBanks[i]"; empty: knn.bank).
export function interpolationRows(row: (measure: string, block: string, part: string, value: number) => void, r: CellInterpolation): void {
  for (const p of r.points) {
    row("interpolated_transfer", String(p.alpha), "", p.transfer);
    row("interpolated_knn_top1", String(p.alpha), "", p.knn);
    p.otherBanks?.forEach((b, i) => row("interpolated_knn_top1", String(p.alpha), `knn.otherBanks[${i}]`, b.knn));
  }
}
