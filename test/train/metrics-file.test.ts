// A run's metrics.json read back (train/metrics-file.ts): the arrays asked for, and each way a file is not the
// metrics a run wrote refused naming the file, what was expected, what it got, and the caller's way out. Resumes
// that meet a damaged file: test/train/train.test.ts, test/train/dino-pretrain.test.ts, test/train/pretrain.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readMetricsFile } from "../../train/metrics-file.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "metrics-file-test-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("readMetricsFile", () => {
  const read = (path: string) => readMetricsFile(path, "dino", ["rows", "knn"], "the metrics of last.safetensors's steps", "delete runs/x to start over");

  it("reads the arrays asked for", async () => {
    const path = join(root, "good.json");
    const saved = { rows: [{ step: 1, loss: 2.5 }], knn: [{ step: 0, accuracy: 40 }] };
    await writeFile(path, JSON.stringify(saved, null, 2));
    expect(await read(path)).toEqual(saved);
  });

  it("refuses a file that is not the metrics a run wrote, naming it, what it got and the way out", async () => {
    const path = join(root, "bad.json");
    const expected = `dino: ${path}: expected the metrics of last.safetensors's steps ({"rows": [...], "knn": [...]}), got`;
    const cases: [string, string][] = [
      ['{"rows": [{"step": 1', `dino: ${path}: expected JSON, got a parse error`],
      ["[]", `${expected} an array of 0`],
      ["null", `${expected} null`],
      ['{"rows": []}', `${expected} no "knn"`],
      ['{"rows": "3 rows", "knn": []}', `${expected} "rows": "3 rows"`],
      ['{"rows": [], "knn": [{"step": 0}, {"accuracy": 40}]}', `${expected} knn[1] without a step: {"accuracy":40}`],
      ['{"rows": [null], "knn": []}', `${expected} rows[0] without a step: null`],
    ];
    for (const [text, message] of cases) {
      await writeFile(path, text);
      const e = (await read(path).catch((err: unknown) => err)) as Error;
      expect(e.message, text).toContain(message);
      expect(e.message, text).toMatch(/; delete runs\/x to start over$/);
    }
  });

  it("refuses a missing file, naming it and the way out", async () => {
    const path = join(root, "gone.json");
    await expect(read(path)).rejects.toThrow(new RegExp(`^dino: cannot read .*${path}.*; delete runs/x to start over$`));
  });
});
