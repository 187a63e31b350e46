// study/result-files.ts: a cell's result.json read back is checked against its folder's cell id, since the summary
// groups the cells by what the file says (a strategy edited by hand would move the cell into another row).
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCellOutcome } from "../../study/result-files.js";
import { cells, config } from "./fixture.js";

const root = mkdtempSync(join(tmpdir(), "result-files-"));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("readCellOutcome", () => {
  it("refuses a result.json whose strategy, learning rate or seed contradicts its cell id, naming the file", async () => {
    const cell = cells.find((c) => c.id === "linear_lr0.1_s0")!;
    const folder = join(root, "cells", cell.id);
    const path = join(folder, "result.json");
    await mkdir(folder, { recursive: true });
    await writeFile(path, JSON.stringify(cell));
    expect((await readCellOutcome(root, cell.id, config, "report")).id).toBe(cell.id);
    const cases: [Record<string, unknown>, string][] = [
      [{ strategy: "full" }, `"strategy": "linear" as the cell id linear_lr0.1_s0 says, got "full"`],
      [{ lr: 0.01 }, `"lr": 0.1 as the cell id linear_lr0.1_s0 says, got 0.01`],
      [{ seed: 1 }, `"seed": 0 as the cell id linear_lr0.1_s0 says, got 1`],
    ];
    for (const [edit, says] of cases) {
      await writeFile(path, JSON.stringify({ ...cell, ...edit }));
      await expect(readCellOutcome(root, cell.id, config, "report")).rejects.toThrow(`report: ${path}: expected ${says}; delete the cell's folder ${folder} to train it again`);
    }
    // A diverged cell's file states them too.
    await writeFile(path, JSON.stringify({ id: cell.id, strategy: "linear", lr: 0.1, seed: 1, diverged: { step: 3, loss: "NaN", message: "m" } }));
    await expect(readCellOutcome(root, cell.id, config, "report")).rejects.toThrow(`"seed": 0 as the cell id linear_lr0.1_s0 says, got 1`);
  });

  it("names the run's config.json as the other cause where the result lacks what it asks for", async () => {
    const cell = cells.find((c) => c.id === "linear_lr0.1_s0")!;
    const folder = join(root, "cells", cell.id);
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, "result.json"), JSON.stringify(cell));
    // A config.json edited by hand after the cell ran: it reports another k than the cell measured.
    const edited = { ...config, knn: { ...config.knn, reportK: 7, ks: [...config.knn.ks, 7] } };
    await expect(readCellOutcome(root, cell.id, edited, "report")).rejects.toThrow(
      `delete the cell's folder ${folder} to train it again (or, where the run's config.json was edited after the cell ran, restore it)`,
    );
  });
});
