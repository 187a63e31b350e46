// Other draws of the k-NN bank (knn.otherBanks): the source k-NN accuracy depends on which images the bank holds as
// well as on the seeds and the queries, and a difference between two strategies measured against one bank speaks
// of that bank. Each cell's best checkpoint classifies the same queries against each other bank, and the
// differences' intervals count the bank as a sample too (study/comparisons.ts, util/stats.ts crossedMeanInterval3).
// The table's k-NN column stays the bank's.
//
// The scores are kept beside the cell's result (cells/<id>/knn-banks.json, read by study/result-files.ts), one entry
// per bank with its spec and the identity of its images, as knn.val's are: knn.otherBanks may be added to, grown or
// changed in a run folder whose cells have finished (study/changes.ts keeps them), and only the banks a cell has no
// current scores for are then scored, from its best checkpoint, no cell trained again. A cell's are made before its
// result.json is written. The original backbone's are kept so too, in the run folder's knn-banks.json, beside
// baseline.json: each row's forgetting is then paired with the original's answers against every bank.
import { type Dataset, portableIdentity } from "../data/dataset.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { differences } from "../util/differences.js";
import type { StudyConfig } from "./config.js";
import type { Correct, KnnScores } from "./results.js";
import { type KnnBankScores, readKnnBanks } from "./result-files.js";
import { MAX_CLASSES } from "./knn-classes.js";

// Scores each backbone of `targets` (finished cells' best checkpoints by id, or the original: each with its
// knn-banks.json) against the banks of knn.otherBanks (`banks`, opened in the config's order) that its file holds no
// scores of these images for (of the `queries`). Where the queries have at most MAX_CLASSES classes, an entry of a
// build before the classes given were kept is classified again too, and takes them where the pass gives its scores
// and right answers (else it stays as it was). `score` classifies one backbone's queries against the banks at the
// indices it is given, in one pass over the queries; `what` names n backbones in the log.
export async function scoreOtherBanks(
  targets: { name: string; path: string }[],
  config: StudyConfig,
  banks: Dataset[],
  queries: Dataset,
  score: (name: string, which: number[]) => Promise<{ scores: KnnScores; correct: Correct; seconds: number }[]>,
  log: (line: string) => void,
  what = (n: number) => `${n} cell(s)' queries against the other banks from their best checkpoints`,
): Promise<void> {
  const data = banks.map((b) => portableIdentity(b.identity));
  const ungiven = (b: KnnBankScores) => queries.classes.length <= MAX_CLASSES && b.correct.predicted === undefined;
  const stale: { name: string; path: string; kept: (KnnBankScores | undefined)[]; which: number[] }[] = [];
  for (const { name, path } of targets) {
    const kept = (await readKnnBanks(path, config, queries.length)).map((b, i) => (b && differences(b.data, data[i]).length === 0 ? b : undefined));
    const which = kept.flatMap((b, i) => (b && !ungiven(b) ? [] : [i]));
    if (which.length > 0) stale.push({ name, path, kept, which });
  }
  if (stale.length === 0) return;
  log(`knn.otherBanks: classifying ${what(stale.length)}`);
  for (const { name, path, kept, which } of stale) {
    const fresh = await score(name, which);
    const entries = kept.map((b, i): KnnBankScores => {
      if (b && !ungiven(b)) return b;
      const { scores, correct, seconds } = fresh[which.indexOf(i)];
      if (!b) return { spec: config.knn.otherBanks![i], data: data[i], knn: scores, correct, seconds };
      const same = JSON.stringify(scores) === JSON.stringify(b.knn) && correct.bits === b.correct.bits;
      if (!same) log(`  ${name}: against knn.otherBanks[${i}] it scores ${JSON.stringify(scores)}, not the ${JSON.stringify(b.knn)} its file holds: left without the classes given`);
      return same ? { ...b, correct } : b;
    });
    await writeJsonAtomic(path, { banks: entries });
  }
}
