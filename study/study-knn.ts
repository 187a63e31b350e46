// The source k-NN of a study's backbone, as the runner scores it: against knn.bank (the baseline, a cell's best
// checkpoint, knn.val's images), a point of the forgetting curve (against every bank of knn.otherBanks too, in one
// pass over the queries), and the queries against the other banks alone. Each gives the accuracies at every k and
// the queries right at reportK, packed.
import { portableIdentity } from "../data/dataset.js";
import type { VisionTransformer } from "../vit/model.js";
import { type DatasetKnnOptions, NonFiniteFeaturesError, banksKnn, datasetKnn } from "../eval/dataset-knn.js";
import type { KnnResult } from "../eval/knn.js";
import { DivergedError } from "../train/train.js";
import { packBits } from "../util/bits.js";
import type { StudyConfig } from "./config.js";
import type { Correct, KnnScores } from "./results.js";
import type { TimedPoint } from "./knn-curve.js";
import type { StudyData } from "./study-data.js";

// DINO's k-NN accuracy of a backbone on the study's source bank and queries (or knn.val's images: `queries`;
// eval/dataset-knn.ts). A fine-tuned backbone (`at`: the cell's step and rate) whose features are not all finite has
// diverged, though its loss and weights stayed finite: the cell is recorded so.
export async function knnScores(
  model: VisionTransformer,
  config: StudyConfig,
  data: StudyData,
  size: number,
  at?: { step: number; lr: number },
  queries = { dataset: data.queries, spec: config.knn.queries },
): Promise<{ scores: KnnScores; correct: Correct; seconds: number }> {
  const started = performance.now();
  const results = await datasetKnn(model, { dataset: data.bank, spec: config.knn.bank }, queries, knnOptions(config, data, size)).catch(divergedAt(at));
  return { ...scoresOf(results, config), seconds: (performance.now() - started) / 1000 };
}

// Features a fine-tuning step left non-finite: the cell diverged there.
const divergedAt = (at: { step: number; lr: number } | undefined) => (e: unknown) => {
  if (!(e instanceof NonFiniteFeaturesError) || !at) throw e;
  throw new DivergedError(`the source k-NN of step ${at.step}: ${e.message} (lr ${at.lr.toExponential(2)})`, at.step, NaN, at.lr, false);
};

// The forgetting curve's point at `at.step`: the queries against knn.bank and, with knn.otherBanks, against each
// other bank too, in one pass over the queries (study/knn-curve.ts).
export async function curvePoint(model: VisionTransformer, config: StudyConfig, data: StudyData, size: number, at: { step: number; lr: number }): Promise<TimedPoint> {
  if (!data.otherBanks) {
    const { scores, correct, seconds } = await knnScores(model, config, data, size, at);
    return { step: at.step, knn: scores, correct, seconds };
  }
  const started = performance.now();
  const others = data.otherBanks.map((dataset, i) => ({ dataset, spec: config.knn.otherBanks![i] }));
  const banks = [{ dataset: data.bank, spec: config.knn.bank }, ...others];
  const [first, ...rest] = (await banksKnn(model, banks, { dataset: data.queries, spec: config.knn.queries }, knnOptions(config, data, size)).catch(divergedAt(at))).map((r) => scoresOf(r, config));
  const seconds = (performance.now() - started) / 1000;
  const entries = rest.map(({ scores, correct }, i) => ({ spec: others[i].spec, data: portableIdentity(others[i].dataset.identity), knn: scores, correct }));
  return { step: at.step, knn: first.scores, correct: first.correct, seconds, banks: entries };
}

// A finished cell's backbone's queries against the other banks at indices `which` of knn.otherBanks, in one pass
// over the queries; each bank's seconds are the pass's share.
export async function otherBankScores(model: VisionTransformer, config: StudyConfig, data: StudyData, size: number, which: number[]): Promise<{ scores: KnnScores; correct: Correct; seconds: number }[]> {
  const started = performance.now();
  const banks = which.map((i) => ({ dataset: data.otherBanks![i], spec: config.knn.otherBanks![i] }));
  const results = await banksKnn(model, banks, { dataset: data.queries, spec: config.knn.queries }, knnOptions(config, data, size));
  const seconds = (performance.now() - started) / 1000 / which.length;
  return results.map((r) => ({ ...scoresOf(r, config), seconds }));
}

const knnOptions = (config: StudyConfig, data: StudyData, size: number): DatasetKnnOptions => ({
  ks: config.knn.ks,
  temperature: config.knn.temperature,
  batchSize: config.knn.batchSize,
  size,
  cache: data.transformed,
});

// The accuracies at every k, and the queries right at reportK.
function scoresOf(results: KnnResult[], config: StudyConfig): { scores: KnnScores; correct: Correct } {
  const scores: KnnScores = Object.fromEntries(results.map((r) => [String(r.k), { top1: r.top1, top5: r.top5 }]));
  const reported = results.find((r) => r.k === config.knn.reportK)!.correct;
  return { scores, correct: { count: reported.length, bits: packBits(reported) } };
}
