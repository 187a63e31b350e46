// The original backbone's answers, which each row's forgetting is paired with query by query (study/results.ts),
// for a run folder of a build that did not keep them: baseline.json's from a finished cell that measured the
// original itself, else from its k-NN once more; knn-banks.json's (with knn.otherBanks) from a linear-probing cell's.
import { existsSync } from "node:fs";
import { writeJsonAtomic } from "../util/atomic.js";
import { readJsonFile } from "../util/json-file.js";
import type { StudyConfig } from "./config.js";
import { type BaselineResult, type CellOutcome, type CellResult, type Correct, type KnnScores, isDiverged } from "./results.js";
import { readBaseline } from "./result-files.js";
import { cellKnnBanksPath, originalKnnBanksPath } from "./cells.js";
import { MAX_CLASSES } from "./knn-classes.js";

// The original backbone's answers query by query (baseline.json's correct), which pair each row's forgetting with
// it (study/results.ts knnChange), and the classes it gave them where knn.queries has at most MAX_CLASSES classes
// (`classes`: how many it has; each row's confusion, study/knn-confusion.ts), for a baseline.json of a build that
// did not keep them: the original's k-NN again (`measure`), which must give the scores the file holds; where it does
// not (another device, say), the file stays as it is and the changes go without intervals (or the rows without
// their confusion). Where a finished cell (of `outcomes`) measured the original backbone itself, its answers are the
// original's and no pass is made: on ImageNet's bank that pass is the baseline's whole cost again.
export async function addBaselineAnswers(
  path: string,
  config: StudyConfig,
  outcomes: CellOutcome[],
  measure: () => Promise<{ scores: KnnScores; correct: Correct }>,
  log: (line: string) => void,
  classes: number,
): Promise<void> {
  const baseline = await readBaseline(path, config, "experiment");
  // The classes given too, of which the confusion is made, where the queries have few enough classes to keep them.
  const given = classes <= MAX_CLASSES;
  if (baseline.correct && (baseline.correct.predicted !== undefined || !given)) return;
  const what = baseline.correct ? "classes given query by query" : "answers query by query";
  const measured = originalAnswersIn(outcomes, baseline, given);
  if (measured) {
    log(`the original backbone's ${what} from cell ${measured.id}, which measured it (baseline.json of an earlier build)`);
    await writeJsonAtomic(path, { ...baseline, correct: measured.correct });
    return;
  }
  log(`k-NN of the original backbone again, for its ${what} (baseline.json of an earlier build)`);
  const { scores, correct } = await measure();
  if (JSON.stringify(scores) !== JSON.stringify(baseline.knn)) {
    log(`  it scores ${JSON.stringify(scores)}, not the ${JSON.stringify(baseline.knn)} of ${path}: left without them (${baseline.correct ? "the rows go without their confusion" : "the forgetting's changes go without intervals"})`);
    return;
  }
  await writeJsonAtomic(path, { ...baseline, correct });
}

// A finished cell that measured the original backbone itself, with the baseline's scores: linear probing's best
// checkpoint (its backbone frozen: the same features, so the same votes, to the bit) or any cell's curve point at
// step 0 (before the first update; LoRA and added blocks start as exact identities).
// With `given`, only answers that hold the classes given.
function originalAnswersIn(outcomes: CellOutcome[], baseline: BaselineResult, given: boolean): { id: string; correct: Correct } | undefined {
  const enough = (x: Correct | undefined): x is Correct => x !== undefined && (!given || x.predicted !== undefined);
  for (const c of outcomes) {
    if (isDiverged(c)) continue;
    if (frozenOriginal(c, baseline) && enough(c.correct?.knn)) return { id: c.id, correct: c.correct.knn };
    const start = c.knnCurve?.find((p) => p.step === 0);
    if (start && enough(start.correct) && sameScores(start.knn, baseline)) return { id: c.id, correct: start.correct };
  }
  return undefined;
}

const sameScores = (knn: KnnScores, baseline: BaselineResult) => JSON.stringify(knn) === JSON.stringify(baseline.knn);

// A finished linear-probing cell whose k-NN is the baseline's: its backbone is the original's.
const frozenOriginal = (c: CellOutcome, baseline: BaselineResult): c is CellResult => !isDiverged(c) && c.strategy === "linear" && sameScores(c.knn, baseline);

// Where the run folder holds no knn-banks.json of the original yet, a finished linear-probing cell's (its backbone
// frozen, its k-NN the baseline's to the bit) is the original's: copied, so that only banks it lacks are scored.
export async function copyOriginalBanks(out: string, outcomes: CellOutcome[], baseline: BaselineResult, log: (line: string) => void): Promise<void> {
  if (existsSync(originalKnnBanksPath(out))) return;
  const linear = outcomes.find((c) => frozenOriginal(c, baseline) && existsSync(cellKnnBanksPath(out, c.id)));
  if (!linear) return;
  const banks = await readJsonFile(cellKnnBanksPath(out, linear.id), "experiment").catch(() => undefined); // a damaged one: scored anew
  if (banks === undefined) return;
  log(`knn.otherBanks: the original backbone's queries against the other banks from cell ${linear.id}, whose backbone is the original's`);
  await writeJsonAtomic(originalKnnBanksPath(out), banks);
}
