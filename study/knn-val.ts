// Source-domain validation (knn.val): the k-NN accuracy of each cell's best checkpoint on source images that are
// neither the bank nor the queries. Where selectBy weighs source k-NN ("mean", "knee"), these scores choose each
// strategy's learning rate in the queries' stead, so that no query scores a rate it chose, as transfer.val does for
// the transfer accuracy. Without it the rates are chosen on the queries themselves, which favours each chosen rate
// (the best of several on the images that then score it).
//
// The scores are kept beside the cell's result (cells/<id>/knn-val.json, read by study/result-files.ts), with the
// spec and the identity of the images they were measured on, not in result.json: knn.val may be added to, or
// changed in, a run folder whose cells have finished (study/changes.ts keeps them), and its scores are then made
// from the best checkpoints, no cell trained again. A cell's are made before its result.json is written, so a
// finished cell of the current knn.val always has them.
import { type Dataset, portableIdentity } from "../data/dataset.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { differences } from "../util/differences.js";
import type { StudyConfig } from "./config.js";
import type { KnnScores } from "./results.js";
import { cellKnnValPath } from "./cells.js";
import { type KnnValScores, readKnnVal } from "./result-files.js";

// Scores the finished cells among `ids` whose knn-val.json does not hold the scores of these images (`val`, knn.val
// opened): absent, damaged, of another spec, or of images that have changed since. `score` measures one cell's best
// checkpoint on them.
export async function scoreKnnVal(
  out: string,
  ids: string[],
  config: StudyConfig,
  val: Dataset,
  score: (id: string) => Promise<{ scores: KnnScores; seconds: number }>,
  log: (line: string) => void,
): Promise<void> {
  const data = portableIdentity(val.identity);
  const stale: string[] = [];
  for (const id of ids) {
    const held = await readKnnVal(cellKnnValPath(out, id), config);
    if (!held || differences(held.data, data).length > 0) stale.push(id);
  }
  if (stale.length === 0) return;
  log(`knn.val: scoring ${stale.length} cell(s)' best checkpoints on ${val.length} source images (${val.identity.subset ?? val.identity.split})`);
  for (const id of stale) {
    const { scores, seconds } = await score(id);
    const file: KnnValScores = { spec: config.knn.val!, data, knn: scores, seconds };
    await writeJsonAtomic(cellKnnValPath(out, id), file);
  }
}
