// The class each k-NN query was given (result.json's correct.knn.predicted), of which each row's confusion is made
// (study/knn-confusion.ts), for the finished cells of builds that did not keep it: each cell's best checkpoint's k-NN
// again, which must give the scores and the right answers result.json holds. The best checkpoints' alone: the points
// of a forgetting curve have no checkpoint, so such a cell's curve stays without them (and its row's curve without
// its confusion). Its answers against knn.otherBanks get them where study/knn-banks.ts classifies them again.
import { type CellOutcome, type CellResult, type Correct, type KnnScores, isDiverged } from "./results.js";
import { writeCellCorrect } from "./result-files.js";
import { MAX_CLASSES } from "./knn-classes.js";

// `score` gives a cell's best checkpoint's k-NN; `classes`: how many knn.queries has (none kept beyond MAX_CLASSES).
// Returns whether some result.json was written.
export async function addGivenClasses(
  out: string,
  outcomes: CellOutcome[],
  score: (id: string) => Promise<{ scores: KnnScores; correct: Correct }>,
  log: (line: string) => void,
  classes: number,
): Promise<boolean> {
  if (classes > MAX_CLASSES) return false;
  const missing = outcomes.filter((c): c is CellResult => !isDiverged(c) && c.correct !== undefined && c.correct.knn.predicted === undefined);
  if (missing.length > 0) log(`adding the class given to each k-NN query of ${missing.length} cell(s) of an earlier build, from their best checkpoints`);
  let wrote = false;
  for (const cell of missing) {
    const { scores, correct } = await score(cell.id);
    if (JSON.stringify(scores) !== JSON.stringify(cell.knn) || correct.bits !== cell.correct!.knn.bits) {
      log(`  ${cell.id}: its best checkpoint scores ${JSON.stringify(scores)}, not the ${JSON.stringify(cell.knn)} of its result.json (or not on the same queries): left without them`);
      continue;
    }
    if (await writeCellCorrect(out, cell.id, "knn", correct)) wrote = true;
  }
  return wrote;
}
