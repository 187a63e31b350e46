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
// result.json is written.
import type { Dataset } from "../data/dataset.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { differences } from "../util/differences.js";
import type { StudyConfig } from "./config.js";
import type { Correct, KnnScores } from "./results.js";
import { cellKnnBanksPath } from "./cells.js";
import { type KnnBankScores, readKnnBanks } from "./result-files.js";

// Scores the finished cells among `ids` against the banks of knn.otherBanks (`banks`, opened in the config's order)
// that their knn-banks.json holds no scores of these images for (of its `queries` queries). `score` classifies one
// cell's best checkpoint's queries against the banks at the indices it is given, in one pass over the queries.
export async function scoreOtherBanks(
  out: string,
  ids: string[],
  config: StudyConfig,
  banks: Dataset[],
  queries: number,
  score: (id: string, which: number[]) => Promise<{ scores: KnnScores; correct: Correct; seconds: number }[]>,
  log: (line: string) => void,
): Promise<void> {
  const data = banks.map(({ identity: { root: _, ...identity } }) => identity);
  const stale: { id: string; kept: (KnnBankScores | undefined)[]; which: number[] }[] = [];
  for (const id of ids) {
    const kept = (await readKnnBanks(cellKnnBanksPath(out, id), config, queries)).map((b, i) => (b && differences(b.data, data[i]).length === 0 ? b : undefined));
    const which = kept.flatMap((b, i) => (b ? [] : [i]));
    if (which.length > 0) stale.push({ id, kept, which });
  }
  if (stale.length === 0) return;
  log(`knn.otherBanks: classifying ${stale.length} cell(s)' queries against the other banks from their best checkpoints`);
  for (const { id, kept, which } of stale) {
    const fresh = await score(id, which);
    const entries = kept.map((b, i): KnnBankScores => {
      if (b) return b;
      const { scores, correct, seconds } = fresh[which.indexOf(i)];
      return { spec: config.knn.otherBanks![i], data: data[i], knn: scores, correct, seconds };
    });
    await writeJsonAtomic(cellKnnBanksPath(out, id), { banks: entries });
  }
}
