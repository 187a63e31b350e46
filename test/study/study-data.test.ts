// study/study-data.ts: a study's datasets, opened all at once: each file opened once and shared by the keys that
// name it; a dataset that cannot be opened is named by its config key, the first in the config's order where
// several cannot, whichever fails first in time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStudyConfig } from "../../study/config.js";
import { openStudyData } from "../../study/study-data.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { miniData, miniStudy } from "./program.js";

useEngine();

const root = mkdtempSync(join(tmpdir(), "study-data-test-"));
const mini = () => miniStudy(join(root, "data"), join(root, "cache"));

beforeAll(async () => {
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 24, test: 8 }, seed: 2, noise: 160 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("openStudyData", () => {
  it("opens each key's subset, each file once for every key that names it", async () => {
    const data = await openStudyData(parseStudyConfig(mini()));
    expect([data.bank.length, data.queries.length, data.transferTrain.length, data.transferTest.length, data.pretrain?.length]).toEqual([72, 24, 72, 24, 72]);
    expect([...data.opened.keys()].map((k) => JSON.parse(k)[2])).toEqual(["train", "test"]);
  });

  it("names the first key in the config's order of those that cannot be opened", async () => {
    const missing = (split: string, classes: string) => miniData(join(root, "nowhere"), split, classes);
    const m = mini();
    const bothBad = parseStudyConfig({ ...m, knn: { ...m.knn, queries: missing("test", "0-2") }, transfer: { ...m.transfer, test: missing("test", "3-5") } });
    await expect(openStudyData(bothBad)).rejects.toThrow(/^experiment: knn\.queries: /);
    const lastBad = parseStudyConfig({ ...m, transfer: { ...m.transfer, test: missing("test", "3-5") } });
    await expect(openStudyData(lastBad)).rejects.toThrow(/^experiment: transfer\.test: /);
  });
});
