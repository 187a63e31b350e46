// study/val-answers.ts: the val answers of cells of builds that did not keep them, added to result.json from a
// scoring of their best checkpoints that must give the val accuracy that chose them; cells that have them, diverged
// cells and cells of builds before any answers are left alone. (test/study/validation.test.ts runs it in a study.)
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addValAnswers } from "../../study/val-answers.js";
import { cellFolder, cellResultPath } from "../../study/cells.js";
import type { CellOutcome, CellResult } from "../../study/results.js";
import { packBits } from "../../util/bits.js";
import { makeFolder } from "../../util/make-folder.js";
import { cells, diverged } from "./fixture.js";

const out = mkdtempSync(join(tmpdir(), "val-answers-test-"));
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

const answers = (right: number[]) => ({ count: right.length, bits: packBits(right) });
// A finished cell chosen on val at 50 %, with test and k-NN answers, and its val answers unless `withVal` is false.
const cell = (c: CellResult, withVal: boolean): CellResult => ({
  ...c,
  valAccuracy: 50,
  finalValAccuracy: 50,
  correct: { transfer: answers([1, 0]), knn: answers([1, 1]), ...(withVal && { val: answers([0, 1]) }) },
});

async function write(outcomes: CellOutcome[]): Promise<void> {
  for (const c of outcomes) {
    await makeFolder(cellFolder(out, c.id));
    await writeFile(cellResultPath(out, c.id), JSON.stringify(c));
  }
}

const read = async (id: string) => JSON.parse(await readFile(cellResultPath(out, id), "utf8"));

describe("addValAnswers", () => {
  it("adds the answers that give the recorded val accuracy, and only to cells without them", async () => {
    const [without, having, older] = [cell(cells[0], false), cell(cells[1], true), { ...cells[2], valAccuracy: 50 }];
    const lost = diverged("full", 0.01, 1, 3);
    await write([without, having, older, lost]);
    const asked: string[] = [];
    const log: string[] = [];
    await addValAnswers(out, [without, having, older, lost], async (id) => (asked.push(id), { accuracy: 50, correct: Uint8Array.from([1, 0]) }), (l) => log.push(l));
    expect(asked).toEqual([without.id]); // not the cell that has them, the build before answers, or the diverged cell
    expect(log).toEqual(["transfer.val: adding the val answers of 1 cell(s) of an earlier build, from their best checkpoints"]);
    expect(await read(without.id)).toEqual({ ...without, correct: { ...without.correct, val: answers([1, 0]) } });
    expect(await read(having.id)).toEqual(having);
  });

  it("leaves a cell whose checkpoint no longer gives its val accuracy without them, and says so", async () => {
    const c = cell(cells[3], false);
    await write([c]);
    const log: string[] = [];
    await addValAnswers(out, [c], async () => ({ accuracy: 100, correct: Uint8Array.from([1, 1]) }), (l) => log.push(l));
    expect(log[1]).toBe(`  ${c.id}: its best checkpoint scores 100% on transfer.val, not the 50% that chose it: left without them (its choice paired by seed alone)`);
    expect(await read(c.id)).toEqual(c);
  });
});
