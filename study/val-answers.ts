// The val answers image by image (result.json's correct.val, with transfer.val), which pair the knee's choice on
// val accuracy by image as on the test images (study/comparisons.ts), for the finished cells of builds that did not
// keep them: each cell's best checkpoint scored on the val images again, which must give the val accuracy that
// chose it. Cells trained now keep theirs as they finish (study/runner.ts).
import { type CellOutcome, type CellResult, isDiverged, packCorrect } from "./results.js";
import { writeCellCorrect } from "./result-files.js";

// `evaluate` scores a cell's best checkpoint on the val images; where that gives the val accuracy that chose it, the
// answers are added to its result.json (nothing else in it changes). Cells that kept no answers at all (builds
// before per-image results) stay as they are.
export async function addValAnswers(
  out: string,
  outcomes: CellOutcome[],
  evaluate: (id: string) => Promise<{ accuracy: number; correct: Uint8Array }>,
  log: (line: string) => void,
): Promise<void> {
  const missing = outcomes.filter((c): c is CellResult => !isDiverged(c) && c.correct !== undefined && c.correct.val === undefined);
  if (missing.length > 0) log(`transfer.val: adding the val answers of ${missing.length} cell(s) of an earlier build, from their best checkpoints`);
  for (const cell of missing) {
    const { accuracy, correct } = await evaluate(cell.id);
    if (accuracy !== cell.valAccuracy) {
      log(`  ${cell.id}: its best checkpoint scores ${accuracy}% on transfer.val, not the ${cell.valAccuracy}% that chose it: left without them (its choice paired by seed alone)`);
      continue;
    }
    await writeCellCorrect(out, cell.id, "val", packCorrect(correct));
  }
}

