// A study's results as values: each cell's result (result.json: finished, or diverged), the original backbone's k-NN
// accuracy, the table (one row per strategy at its chosen learning rate, mean and standard deviation over seeds) and
// the differences between its rows paired by seed, which summarize() makes from the finished cells; resultsJson is
// the results.json form.
import type { DatasetIdentity } from "../data/dataset.js";
import { type SelectBy, type StudyConfig, configJson, ratesFor } from "./config.js";
import { type Strategy, strategyName } from "../peft/strategy.js";
import { cellsOf } from "./cells.js";
import { type MeanInterval, meanStd } from "../util/stats.js";
import { NAMED_CONFIGS } from "../vit/config.js";
import { type Selection, selectionOf } from "./validation.js";
import { type Comparison, type PairedCell, type RateComparison, changeFromOriginal, pairBySeed, pairedChange, pairedComparisons, pairedDifference, rateComparisons } from "./comparisons.js";
import { packBits, packBytes, unpackBits, unpackBytes } from "../util/bits.js";
import { type ClassKnn, type ClassSince, type QueryLabels, classesSince, knnByClass } from "./knn-classes.js";
import { type AnswersSince, type KnnConfusion, answersSince, knnConfusion } from "./knn-confusion.js";

export type KnnScores = Record<string, { top1: number; top5: number }>; // by k, percent

// Which of `count` images a score got right, one bit each in the loader's order (util/bits.ts packBits), and for
// k-NN queries of at most MAX_CLASSES classes the class each was given (`predicted`, a byte each: util/bits.ts
// packBytes), of which each row's confusion is made (study/knn-confusion.ts). `predicted` is absent for more
// classes (ImageNet's 50,000 queries would add 67 KB to every answer set) and in the files of builds before it.
export interface Correct {
  count: number;
  bits: string;
  predicted?: string;
}

// 0/1 per image, packed, with the classes given where there are `predicted`; and back (of text result-files.ts
// checked when it read it).
export const packCorrect = (correct: Uint8Array, predicted?: ArrayLike<number>): Correct => ({ count: correct.length, bits: packBits(correct), ...(predicted && { predicted: packBytes(predicted) }) });
export const unpackCorrect = (x: Correct): Uint8Array => unpackBits(x.bits, x.count)!;
export const unpackPredicted = (x: Correct): Uint8Array | undefined => (x.predicted === undefined ? undefined : unpackBytes(x.predicted, x.count));

// The source k-NN accuracy of a cell's backbone as it was after `step` fine-tuning steps (knn.atSteps).
export interface CurvePoint {
  step: number;
  knn: KnnScores;
  // The queries it got right at reportK, which pair the point with the original backbone's answers (TableRow's
  // knnCurve change). Absent in result.json of builds before them, where knn-curve.json supplies them (result-files.ts).
  correct?: Correct;
  // With knn.otherBanks: the queries against each other bank at this step, in the config's order, where the cell's
  // knn-curve.json holds them all for the banks its best checkpoint was scored against (study/result-files.ts).
  otherBanks?: { knn: KnnScores; correct: Correct }[];
}

export interface BaselineResult {
  knn: KnnScores;
  seconds: number;
  // The queries the original backbone got right at reportK: what each row's forgetting is paired with, query by query
  // (TableRow's knnChange). Absent in baseline.json of builds before them until `experiment` adds them.
  correct?: Correct;
  // With knn.otherBanks: the original's queries against each other bank, in the config's order (the run folder's
  // knn-banks.json, study/knn-banks.ts), where they were scored for every bank.
  otherBanks?: { knn: KnnScores; correct: Correct }[];
  // The identities of the data it was measured on (its root left out), which later calls on the folder check; absent
  // in baseline.json of builds before them.
  data?: Record<string, Omit<DatasetIdentity, "root">>;
}

export interface CellResult {
  id: string;
  strategy: string; // its name (strategyName): result.json is a file format
  lr: number;
  seed: number;
  trainableParams: number; // elements of the tensors actually trained (head included)
  paperParams: number; // as the paper's Table 1 counts them (peft/count.ts)
  totalParams: number; // the fine-tuned model's parameters (added blocks and adapters included)
  transferAccuracy: number; // transfer test accuracy of the best checkpoint (best on test, or on transfer.val), percent
  finalTransferAccuracy: number; // at the last step
  valAccuracy?: number; // with transfer.val: the best checkpoint's accuracy on val, which chose it
  finalValAccuracy?: number; // with transfer.val: at the last step
  bestStep: number;
  finalLoss: number;
  knn: KnnScores; // of the best checkpoint's backbone on the source domain
  knnCurve?: CurvePoint[]; // one per step of knn.atSteps; absent without them
  valKnn?: KnnScores; // with knn.val: the best checkpoint's on its images (knn-val.json, study/knn-val.ts)
  // With knn.otherBanks: the best checkpoint's, the queries against each other bank, in the config's order
  // (knn-banks.json, study/knn-banks.ts).
  otherBanks?: { knn: KnnScores; correct: Correct }[];
  // Fine-tuning, its evaluations and checkpoints; not the k-NN passes. A resumed cell's steps before the resume count
  // at the speeds their metric rows recorded (train/train.ts TrainResult.seconds).
  trainSeconds: number;
  imagesPerSecond: number;
  knnSeconds: number; // every k-NN pass of the cell: the best checkpoint's and the curve's
  // The best checkpoint's right and wrong answers: each transfer test image, each k-NN query at reportK. They let the
  // comparisons count the sampling of the images as well as the seeds (study/comparisons.ts); absent in the
  // result.json of builds before them.
  // With transfer.val, its images too (val): the knee's choice on them is then paired by image as on the test images.
  correct?: { transfer: Correct; knn: Correct; val?: Correct };
}

// A cell whose training diverged (train/train.ts DivergedError): its result.json holds this instead of a
// CellResult, with no accuracies. A rerun skips it unless told to retry it (experiment --retry-diverged).
export interface DivergedCell {
  id: string;
  strategy: string;
  lr: number;
  seed: number;
  diverged: {
    step: number; // the step whose loss (or, at a checkpoint, whose parameters) was first seen non-finite
    loss: string; // the last loss read back, as text: JSON has no NaN or Infinity
    message: string; // the trainer's, which says whether the checkpoint it resumed from is suspect
  };
}

export type CellOutcome = CellResult | DivergedCell;

export function isDiverged(c: CellOutcome): c is DivergedCell {
  return "diverged" in c;
}

// One strategy at its chosen learning rate, averaged over seeds.
export interface TableRow {
  strategy: Strategy;
  lr: number;
  seeds: number;
  trainableParams: number;
  transfer: number; // mean over seeds, percent
  transferStd: number; // sample standard deviation over seeds (0 for one seed)
  val?: number; // with transfer.val: the val accuracy, mean over seeds, which chose the learning rate
  valStd?: number;
  knn: number; // source k-NN top-1 at reportK, mean over seeds
  knnStd: number;
  valKnn?: number; // with knn.val: the source k-NN top-1 on its images, mean over seeds, which chose the learning rate
  valKnnStd?: number;
  // With knn.otherBanks: the source k-NN top-1 of the queries against the other banks, each seed's mean over them,
  // then mean and sample standard deviation over the seeds.
  otherBanksKnn?: number;
  otherBanksKnnStd?: number;
  mean: number; // (transfer + knn) / 2
  // What the row's best checkpoints lost of the original backbone's source k-NN (negative: forgot), in points, paired
  // by query with the original's answers: the mean over seeds and its crossed interval over seeds and queries
  // (study/comparisons.ts changeFromOriginal); with knn.otherBanks, where the original and every cell were scored
  // against them, over the banks too, its mean over every bank (banks: how many). Absent where the baseline or a
  // cell kept no answers.
  knnChange?: MeanInterval & { banks: number };
  // Source k-NN top-1 at reportK per step of knn.atSteps: mean and std over seeds, and the change from the original
  // as knnChange's (over the other banks too where the original and every cell's point were scored against them),
  // where every cell's point kept its answers.
  // With the queries' classes, each point's change class by class too (byClass, as knnByClass) and its confusion
  // (as knnConfusion).
  // With the point before it too, the change since that point, each seed paired query by query with itself there:
  // whether the row went on forgetting between the two (sincePrevious).
  // With both, sincePrevious class by class (byClassSincePrevious, study/knn-classes.ts classesSince), and how often
  // each class is the answer, since the point before (answersSincePrevious).
  knnCurve?: {
    step: number;
    knn: number;
    knnStd: number;
    change?: MeanInterval & { banks: number };
    sincePrevious?: MeanInterval & { banks: number };
    byClass?: ClassKnn[];
    byClassSincePrevious?: ClassSince[];
    confusion?: KnnConfusion;
    answersSincePrevious?: AnswersSince; // the confusion's line of every query, since the point before
  }[];
  // Each pair of points of knnCurve, the earlier step `from` and the later `to`, where every cell kept its answers at
  // both: the change from one to the other, each seed paired query by query (and bank by bank) with itself, as
  // sincePrevious (which the neighbouring pairs equal). A span that is not two neighbours (30 to 300: what came back)
  // with an interval of its own, where the sum of its neighbours' means has none.
  knnSpans?: { from: number; to: number; change: MeanInterval & { banks: number } }[];
  // knnChange class by class of knn.queries (study/knn-classes.ts), where summarize was given the queries' classes.
  knnByClass?: ClassKnn[];
  // Where the queries went: the share of each class's queries given each class, less the original's (study/
  // knn-confusion.ts), where summarize was given the queries' classes and the answers hold the classes given.
  knnConfusion?: KnnConfusion;
}

export interface StudyNotes {
  backbone: string;
  model?: string; // modelLabel of the backbone, e.g. "ViT-S/16" (absent in results of earlier runs)
  data: Record<string, DatasetIdentity>;
  imageSize: number;
}

export interface StudyResults {
  name: string;
  reportK: number;
  temperature: number;
  selectBy: SelectBy;
  selectedOn: Selection; // the images that chose each cell's checkpoint and each strategy's learning rate
  notes: StudyNotes;
  baseline: BaselineResult;
  table: TableRow[]; // config order of strategies; only strategies with finished cells
  comparisons: Comparison[]; // every two table rows, their differences paired by seed (study/comparisons.ts)
  rates: RateComparison[]; // each row's strategy at its other rates (not diverged) against the row's, paired by seed
  cells: CellResult[];
  diverged: DivergedCell[]; // cells whose training diverged, left out of the table
  missing: string[]; // ids of the config's cells without a result yet (a report collected before every cell ran)
  // With knn.otherBanks and a rule that weighs source k-NN ("mean", "knee"): each strategy's rate as the rule chooses
  // it with the queries' k-NN against one bank in its source side's stead (knn.val's, or the queries' against
  // knn.bank), for knn.bank and then each other bank: whether the choice hangs on the draw of the bank. Absent where
  // a cell lacks its scores against the other banks.
  bankChoices?: { bank: string; rates: { strategy: string; lr: number }[] }[];
  config: StudyConfig;
}

// A backbone's name in reports: DINO's sizes as the paper writes them ("ViT-S/16"), any other by its shape.
export function modelLabel(a: { patchSize: number; width: number; depth: number }): string {
  const named = Object.entries(NAMED_CONFIGS).find(([, c]) => c.patchSize === a.patchSize && c.width === a.width && c.depth === a.depth);
  if (!named) return `ViT (patch ${a.patchSize}, width ${a.width}, depth ${a.depth})`;
  return named[0].replace(/^vit-([a-z])(\d+)$/, (_, size: string, patch: string) => `ViT-${size.toUpperCase()}/${patch}`);
}

// For each strategy, the learning rate with the best seed-averaged transfer accuracy (selectBy "transfer", what a
// practitioner can select without source data), the best mean of transfer and source k-NN accuracy ("mean"), or the
// knee ("knee"): of the rates whose transfer accuracy the paired 95% interval (study/comparisons.ts) does not tell
// from the best one's, the one that keeps the most source k-NN; with one seed, which gives no interval, the best
// one. With transfer.val, the val accuracy stands in for the transfer accuracy in that choice (its interval paired by
// seed and val image; over the seeds alone for cells that did not keep their val answers), and with knn.val its k-NN
// accuracy for the queries': no test image and no query chooses. A rate that diverged with any seed is not a
// candidate: the mean of the seeds that survived it would flatter it.
export function summarize(config: StudyConfig, baseline: BaselineResult, outcomes: CellOutcome[], notes: StudyNotes, queries?: QueryLabels): StudyResults {
  const k = String(config.knn.reportK);
  const cells = outcomes.filter((c): c is CellResult => !isDiverged(c));
  const unscored = config.knn.val && config.selectBy !== "transfer" ? cells.filter((c) => !c.valKnn).map((c) => c.id) : [];
  if (unscored.length > 0) {
    throw new Error(`summary: selectBy "${config.selectBy}" chooses the learning rates on knn.val, but ${unscored.length} finished cell(s) have no scores on its images (cells/<id>/knn-val.json of this knn.val): ${unscored.join(", ")}; experiment --collect scores them from their best checkpoints`);
  }
  const diverged = outcomes.filter(isDiverged);
  const paired = cells.map((c) => pairedCell(c, k));
  const table: TableRow[] = [];
  const candidates = new Map<string, number[]>(); // each strategy's rates the rule chose among
  const triedRows: TableRow[][] = []; // each strategy's rows at those rates
  for (const strategy of config.strategies) {
    const name = strategyName(strategy);
    const tried: TableRow[] = [];
    for (const lr of ratesFor(config, strategy)) {
      const group = cells.filter((c) => c.strategy === name && c.lr === lr);
      if (group.length === 0 || diverged.some((c) => c.strategy === name && c.lr === lr)) continue;
      const [transfer, transferStd] = meanStd(group.map((c) => c.transferAccuracy));
      const [knn, knnStd] = meanStd(group.map((c) => c.knn[k].top1));
      const row: TableRow = { strategy, lr, seeds: group.length, trainableParams: group[0].trainableParams, transfer, transferStd, knn, knnStd, mean: (transfer + knn) / 2 };
      if (config.transfer.val) [row.val, row.valStd] = meanStd(group.map((c) => c.valAccuracy!));
      if (config.knn.val && group.every((c) => c.valKnn)) [row.valKnn, row.valKnnStd] = meanStd(group.map((c) => c.valKnn![k].top1));
      if (config.knn.otherBanks && group.every((c) => c.otherBanks)) [row.otherBanksKnn, row.otherBanksKnnStd] = meanStd(group.map(otherBanksKnn(k)));
      const answers = rowAnswers(bestAnswers(group), baseline, unpackCorrect);
      if (answers) row.knnChange = changeOf(answers);
      if (config.knn.atSteps) row.knnCurve = curveOf(group, config.knn.atSteps, k, baseline);
      tried.push(row);
    }
    if (tried.length === 0) continue;
    candidates.set(name, tried.map((row) => row.lr));
    triedRows.push(tried);
    const chosen = choose(config.selectBy, tried, paired);
    // The changes between steps only for the table's rows: a rate not chosen is reported by its best checkpoints alone.
    if (chosen.knnCurve) addSpans(chosen, cells.filter((c) => c.strategy === name && c.lr === chosen.lr), baseline);
    // By class only for the table's rows: a thousand classes at every point of every rate tried would cost seconds.
    if (queries) addClasses(chosen, cells.filter((c) => c.strategy === name && c.lr === chosen.lr), baseline, queries);
    table.push(chosen);
  }
  const bankChoices = choicesByBank(config, triedRows, cells, paired);
  const missing = cellsOf(config).map((c) => c.id).filter((id) => !outcomes.some((c) => c.id === id));
  const rows = table.map((row) => ({ strategy: strategyName(row.strategy), lr: row.lr }));
  const comparisons = pairedComparisons(rows, paired);
  const rates = rateComparisons(rows.map((row) => ({ ...row, others: candidates.get(row.strategy)!.filter((lr) => lr !== row.lr) })), paired);
  return { name: config.name, reportK: config.knn.reportK, temperature: config.knn.temperature, selectBy: config.selectBy, selectedOn: selectionOf(config), notes, baseline, table, comparisons, rates, cells, diverged, missing, ...(bankChoices && { bankChoices }), config };
}

// StudyResults' bankChoices: the rule run again over each strategy's rows (`tried`) with each row's source k-NN the
// mean over its seeds of the queries' against one bank, for knn.bank and then each other bank.
function choicesByBank(config: StudyConfig, tried: TableRow[][], cells: CellResult[], paired: PairedCell[]): StudyResults["bankChoices"] {
  if (!config.knn.otherBanks || config.selectBy === "transfer" || !cells.every((c) => c.otherBanks)) return undefined;
  const k = String(config.knn.reportK);
  const against = (bank: number) => (c: CellResult) => (bank < 0 ? c.knn : c.otherBanks![bank].knn)[k].top1;
  const groups = tried.map((rows) => rows.map((row) => cells.filter((c) => c.strategy === strategyName(row.strategy) && c.lr === row.lr)));
  return [-1, ...config.knn.otherBanks.keys()].map((bank) => ({
    bank: bank < 0 ? "knn.bank" : `knn.otherBanks[${bank}]`,
    rates: tried.map((rows, i) => {
      const scored = rows.map((row, j) => ({ ...row, valKnn: undefined, knn: meanStd(groups[i][j].map(against(bank)))[0] }));
      const { strategy, lr } = choose(config.selectBy, scored, paired);
      return { strategy: strategyName(strategy), lr };
    }),
  }));
}

// A strategy's row among the rates it was tried at (in the config's order; the first wins a tie), as summarize says.
function choose(selectBy: SelectBy, tried: TableRow[], paired: PairedCell[]): TableRow {
  const chosenOn = (r: TableRow) => r.val ?? r.transfer;
  const knnOn = (r: TableRow) => r.valKnn ?? r.knn;
  const best = (rows: TableRow[], score: (r: TableRow) => number) => rows.reduce((b, r) => (score(r) > score(b) ? r : b));
  if (selectBy === "transfer") return best(tried, chosenOn);
  if (selectBy === "mean") return best(tried, (r) => (chosenOn(r) + knnOn(r)) / 2);
  const top = best(tried, chosenOn);
  const name = strategyName(top.strategy);
  const scored = top.val === undefined ? paired : paired.map((p) => ({ ...p, transfer: p.val!, correct: p.correct?.val && { ...p.correct, transfer: p.correct.val } }));
  // Over two seeds or more: one seed's interval, over the images alone, does not count training's randomness.
  const near = tried.filter((r) => {
    const d = pairedDifference(scored, { strategy: name, lr: r.lr }, { strategy: name, lr: top.lr });
    return r === top || (d.seeds.length >= 2 && d.transfer.hi >= 0);
  });
  return best(near, knnOn);
}

// A cell as the comparisons pair it (study/comparisons.ts), its source k-NN at k.
export function pairedCell(c: CellResult, k: string): PairedCell {
  return { strategy: c.strategy, lr: c.lr, seed: c.seed, transfer: c.transferAccuracy, knn: c.knn[k].top1, correct: c.correct && cellAnswers(c.correct, c.otherBanks), val: c.valAccuracy };
}

// A cell's right and wrong answers as 0/1 per image, its queries' against the other banks too (result-files.ts
// checked the bits when it read them).
function cellAnswers(c: NonNullable<CellResult["correct"]>, otherBanks: CellResult["otherBanks"]): PairedCell["correct"] {
  return { transfer: unpackCorrect(c.transfer), knn: unpackCorrect(c.knn), ...(c.val && { val: unpackCorrect(c.val) }), ...(otherBanks && { otherBanks: otherBanks.map((b) => unpackCorrect(b.correct)) }) };
}

// A cell's source k-NN top-1 at k against the other banks, their mean.
export const otherBanksKnn = (k: string) => (c: CellResult) => c.otherBanks!.reduce((a, b) => a + b.knn[k].top1, 0) / c.otherBanks!.length;

// The answers of a row's cells' best checkpoints (or of their points at one step of the curve), `cells[seed][bank]`,
// and the original's (baseline.json's), `original[bank]`, as changeFromOriginal pairs them: what `read` takes of each
// answer set (the right answers, or the classes given), against every bank where the original and every cell have
// it against the other banks too, else against knn.bank; undefined where the original or a cell lacks it there.
function rowAnswers(cells: { correct?: Correct; otherBanks?: { correct: Correct }[] }[], baseline: BaselineResult, read: (x: Correct) => Uint8Array | undefined): { cells: Uint8Array[][]; original: Uint8Array[] } | undefined {
  const original = baseline.correct && read(baseline.correct);
  const first = cells.map((c) => c.correct && read(c.correct));
  if (!original || !first.every((a) => a?.length === original.length)) return undefined;
  const banksOf = (x: { otherBanks?: { correct: Correct }[] }) => x.otherBanks?.map((b) => read(b.correct));
  const originalBanks = banksOf(baseline);
  const cellBanks = cells.map(banksOf);
  const every = originalBanks !== undefined && [originalBanks, ...cellBanks].every((b) => b?.length === originalBanks.length && b.every((a) => a?.length === original.length));
  return { cells: cells.map((_, s) => [first[s]!, ...(every ? cellBanks[s]! : [])] as Uint8Array[]), original: [original, ...(every ? originalBanks : [])] as Uint8Array[] };
}

const changeOf = (a: { cells: Uint8Array[][]; original: Uint8Array[] }): MeanInterval & { banks: number } => ({ ...changeFromOriginal(a.cells, a.original), banks: a.original.length });

// The best checkpoints' answers of a row's cells, as rowAnswers takes them.
const bestAnswers = (group: CellResult[]) => group.map((c) => ({ correct: c.correct?.knn, otherBanks: c.otherBanks }));

// A table row's forgetting curve: per step, the mean and sample standard deviation over its seeds, and the change
// from the original backbone, where every cell's points kept their answers.
function curveOf(group: CellResult[], steps: number[], k: string, baseline: BaselineResult): TableRow["knnCurve"] {
  return steps.map((step) => {
    const points = group.map((c) => c.knnCurve!.find((p) => p.step === step)!);
    const [knn, knnStd] = meanStd(points.map((p) => p.knn[k].top1));
    const answers = rowAnswers(points, baseline, unpackCorrect);
    return { step, knn, knnStd, ...(answers && { change: changeOf(answers) }) };
  });
}

// A table row's knnSpans, each pair of its curve's points where every cell (of `group`) kept its answers at both: the
// change from the earlier to the later (sinceOf), in the curve's order of the later, then of the earlier; and each
// point's sincePrevious, the span from the point before.
function addSpans(row: TableRow, group: CellResult[], baseline: BaselineResult): void {
  const curve = row.knnCurve!;
  const answers = curve.map((p) => rowAnswers(group.map((c) => c.knnCurve!.find((q) => q.step === p.step)!), baseline, unpackCorrect));
  const spans = curve.flatMap((to, j) =>
    curve.slice(0, j).flatMap((from, i) => {
      const [now, before] = [answers[j], answers[i]];
      return now && before ? [{ from: from.step, to: to.step, change: sinceOf(...sameBanks(now.cells, before.cells)) }] : [];
    }),
  );
  curve.forEach((p, j) => {
    const since = j > 0 && spans.find((s) => s.from === curve[j - 1].step && s.to === p.step);
    if (since) p.sincePrevious = since.change;
  });
  if (spans.length > 0) row.knnSpans = spans;
}

// A row's change from one point of its curve to the next, each seed's answers paired query by query with its own
// at the point before (`now[seed][bank]`, `before[seed][bank]`, as sameBanks keeps them).
function sinceOf(now: Uint8Array[][], before: Uint8Array[][]): MeanInterval & { banks: number } {
  return { ...pairedChange(pairBySeed(now, before)), banks: now[0].length };
}

// Two points' answers, `[seed][bank]`, against every bank where both were classified against them all, else against
// knn.bank alone.
function sameBanks(now: Uint8Array[][], before: Uint8Array[][]): [Uint8Array[][], Uint8Array[][]] {
  const banks = now[0].length === before[0].length ? now[0].length : 1;
  return [now.map((seed) => seed.slice(0, banks)), before.map((seed) => seed.slice(0, banks))];
}

// A table row's change class by class of the queries (`queries`), and its confusion where the answers hold the
// classes given, at its best checkpoints and at each point of its curve, where its cells kept their answers there;
// and at each point after the first, its change class by class, and in the classes given, since the point before.
function addClasses(row: TableRow, group: CellResult[], baseline: BaselineResult, queries: QueryLabels): void {
  // A point's answers, right and wrong and the classes given, each decoded once.
  const answersOf = (cells: Parameters<typeof rowAnswers>[0]) => ({ right: rowAnswers(cells, baseline, unpackCorrect), given: rowAnswers(cells, baseline, unpackPredicted) });
  const classesOf = ({ right, given }: ReturnType<typeof answersOf>) => ({
    ...(right && { byClass: knnByClass(right.cells, right.original, queries) }),
    ...(given && { confusion: knnConfusion(given.cells, given.original, queries) }),
  });
  const best = classesOf(answersOf(bestAnswers(group)));
  if (best.byClass) row.knnByClass = best.byClass;
  if (best.confusion) row.knnConfusion = best.confusion;
  let previous: Partial<ReturnType<typeof answersOf>> = {};
  for (const p of row.knnCurve ?? []) {
    const now = answersOf(group.map((c) => c.knnCurve!.find((q) => q.step === p.step)!));
    Object.assign(p, classesOf(now));
    if (now.right && previous.right) p.byClassSincePrevious = classesSince(...sameBanks(now.right.cells, previous.right.cells), queries);
    if (now.given && previous.given) p.answersSincePrevious = answersSince(...sameBanks(now.given.cells, previous.given.cells), queries.classes);
    previous = now;
  }
}

// results.json: everything, with strategies by name.
export function resultsJson(r: StudyResults): Record<string, unknown> {
  return { ...r, table: r.table.map((row) => ({ ...row, strategy: strategyName(row.strategy) })), config: configJson(r.config) };
}
