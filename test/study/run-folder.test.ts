// study/run-folder.ts: a run folder read back for `report`. More of it (partial runs, a run not yet prepared, the
// combined table): test/study/paper-report.test.ts.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readRunFolder } from "../../study/run-folder.js";
import { configJson } from "../../study/config.js";
import { cells, config } from "./fixture.js";

const root = mkdtempSync(join(tmpdir(), "run-folder-"));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("readRunFolder", () => {
  // Reported as "nothing finished", it said 0 of 0 cells of a folder whose cells had all finished.
  it("refuses cell results without baseline.json, naming the preparation that measures it", async () => {
    const dir = join(root, "no-baseline");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "config.json"), JSON.stringify(configJson(config)));
    for (const c of cells.slice(0, 3)) {
      await mkdir(join(dir, "cells", c.id), { recursive: true });
      await writeFile(join(dir, "cells", c.id, "result.json"), JSON.stringify(c));
    }
    await expect(readRunFolder(dir)).rejects.toThrow(
      `report: ${dir}: 3 cell result(s) but no baseline.json (the original backbone's k-NN, which the preparation writes): run experiment --prepare-only --config ${join(dir, "config.json")} --out ${dir} to measure it again`,
    );
  });
});
