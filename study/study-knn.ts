// The source k-NN of a study's backbone, as the runner scores it: against knn.bank (the baseline, a cell's best
// checkpoint, knn.val's images), a point of the forgetting curve (against every bank of knn.otherBanks too, in one
// pass over the queries), the queries against the other banks alone, and against every bank (the analysis's
// resets). Each gives the accuracies at every k and the queries right at reportK, packed, with the classes given.
import { portableIdentity } from "../data/dataset.js";
import type { VisionTransformer } from "../vit/model.js";
import { type DatasetKnnOptions, type KnnData, NonFiniteFeaturesError, banksKnn } from "../eval/dataset-knn.js";
import type { KnnResult } from "../eval/knn.js";
import { DivergedError } from "../train/train.js";
import type { StudyConfig } from "./config.js";
import { type Correct, type KnnScores, packCorrect } from "./results.js";
import type { TimedPoint } from "./knn-curve.js";
import type { StudyData } from "./study-data.js";
import { MAX_CLASSES } from "./knn-classes.js";

// What the source k-NN of a backbone reads of the study's data.
export type KnnStudyData = Pick<StudyData, "bank" | "queries" | "transformed">;

// DINO's k-NN accuracy of a backbone on the study's source bank and queries (or knn.val's images: `queries`;
// eval/dataset-knn.ts). A fine-tuned backbone (`at`: the cell's step and rate) whose features are not all finite has
// diverged, though its loss and weights stayed finite: the cell is recorded so.
export async function knnScores(
  model: VisionTransformer,
  config: StudyConfig,
  data: KnnStudyData,
  size: number,
  at?: { step: number; lr: number },
  queries = { dataset: data.queries, spec: config.knn.queries },
): Promise<{ scores: KnnScores; correct: Correct; seconds: number }> {
  const { scored, seconds } = await onePass(model, config, data, size, [{ dataset: data.bank, spec: config.knn.bank }], at, queries);
  return { ...scored[0], seconds };
}

// The forgetting curve's point at `at.step`: the queries against knn.bank and, with knn.otherBanks, against each
// other bank too, in one pass over the queries (study/knn-curve.ts).
export async function curvePoint(model: VisionTransformer, config: StudyConfig, data: StudyData, size: number, at: { step: number; lr: number }): Promise<TimedPoint> {
  const every = everyBank(config, data);
  const others = every.slice(1);
  const { scored, seconds } = await onePass(model, config, data, size, every, at);
  const [first, ...rest] = scored;
  const banks = rest.map(({ scores, correct }, i) => ({ spec: others[i].spec, data: portableIdentity(others[i].dataset.identity), knn: scores, correct }));
  return { step: at.step, knn: first.scores, correct: first.correct, seconds, ...(data.otherBanks && { banks }) };
}

// A backbone's queries against knn.bank and, with knn.otherBanks, each other bank, in one pass over the queries: the
// scores of each, knn.bank's first.
export async function everyBankScores(model: VisionTransformer, config: StudyConfig, data: KnnStudyData & Pick<StudyData, "otherBanks">, size: number): Promise<{ scores: KnnScores; correct: Correct }[]> {
  return (await onePass(model, config, data, size, everyBank(config, data))).scored;
}

// A finished cell's backbone's queries against the other banks at indices `which` of knn.otherBanks, in one pass
// over the queries; each bank's seconds are the pass's share.
export async function otherBankScores(model: VisionTransformer, config: StudyConfig, data: StudyData, size: number, which: number[]): Promise<{ scores: KnnScores; correct: Correct; seconds: number }[]> {
  const { scored, seconds } = await onePass(model, config, data, size, which.map((i) => otherBank(config, data, i)));
  return scored.map((s) => ({ ...s, seconds: seconds / which.length }));
}

// The queries (knn.queries unless given) against each of `banks`, their features taken once (eval/dataset-knn.ts
// banksKnn): each bank's scores, and the pass's wall time. Non-finite features at a step of training (`at`) are the
// cell's divergence there.
async function onePass(model: VisionTransformer, config: StudyConfig, data: KnnStudyData, size: number, banks: KnnData[], at?: { step: number; lr: number }, queries: KnnData = { dataset: data.queries, spec: config.knn.queries }) {
  const started = performance.now();
  const results = await banksKnn(model, banks, queries, knnOptions(config, data, size)).catch((e: unknown) => {
    if (!(e instanceof NonFiniteFeaturesError) || !at) throw e;
    throw new DivergedError(`the source k-NN of step ${at.step}: ${e.message} (lr ${at.lr.toExponential(2)})`, at.step, NaN, at.lr, false);
  });
  return { scored: results.map((r) => scoresOf(r, config, queries.dataset.classes.length)), seconds: (performance.now() - started) / 1000 };
}

const otherBank = (config: StudyConfig, data: Pick<StudyData, "otherBanks">, i: number): KnnData => ({ dataset: data.otherBanks![i], spec: config.knn.otherBanks![i] });

// knn.bank, then each bank of knn.otherBanks.
const everyBank = (config: StudyConfig, data: Pick<StudyData, "bank" | "otherBanks">): KnnData[] => [
  { dataset: data.bank, spec: config.knn.bank },
  ...(data.otherBanks ?? []).map((_, i) => otherBank(config, data, i)),
];

const knnOptions = (config: StudyConfig, data: KnnStudyData, size: number): DatasetKnnOptions => ({
  ks: config.knn.ks,
  temperature: config.knn.temperature,
  batchSize: config.knn.batchSize,
  size,
  cache: data.transformed,
});

// The accuracies at every k, and the queries right at reportK, with the class each was given where the queries
// have at most MAX_CLASSES classes (of `classes`).
function scoresOf(results: KnnResult[], config: StudyConfig, classes: number): { scores: KnnScores; correct: Correct } {
  const scores: KnnScores = Object.fromEntries(results.map((r) => [String(r.k), { top1: r.top1, top5: r.top5 }]));
  const reported = results.find((r) => r.k === config.knn.reportK)!;
  return { scores, correct: packCorrect(reported.correct, classes <= MAX_CLASSES ? reported.predictions : undefined) };
}
