// Source-domain validation (knn.val, study/knn-val.ts) in miniature studies: each cell's best checkpoint scored on
// images that are neither the bank nor the queries (the same numbers as a study whose queries they are), kept in
// knn-val.json before result.json; added to a finished run folder without training a cell again, scored anew when
// changed, left when unchanged; and refused where its images are the bank's, the queries' or of other classes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStudyConfig, type StudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import type { KnnValScores } from "../../study/result-files.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { miniData, miniStudy } from "./program.js";

useEngine();

const root = mkdtempSync(join(tmpdir(), "knn-val-test-"));
const data = (split: string, classes = "0-2", more: Record<string, unknown> = {}) => ({ ...miniData(join(root, "data"), split, classes), ...more });

beforeAll(async () => {
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 24, test: 8, val: 8 }, seed: 2, noise: 160 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// The miniature study with full fine-tuning at two rates, one seed; `val` its knn.val, `queries` its knn.queries.
function study(o: { val?: unknown; queries?: unknown; selectBy?: string } = {}): StudyConfig {
  const mini = miniStudy(join(root, "data"), join(root, "cache"));
  return parseStudyConfig({
    ...mini,
    knn: { ...mini.knn, ...(o.queries ? { queries: o.queries } : {}), ...(o.val ? { val: o.val } : {}) },
    strategies: ["full"],
    learningRates: [0.3, 0.03],
    selectBy: o.selectBy ?? "knee",
  });
}

const IDS = ["full_lr0.3_s0", "full_lr0.03_s0"];
const valFile = async (dir: string, id: string): Promise<KnnValScores> => JSON.parse(await readFile(join(dir, "cells", id, "knn-val.json"), "utf8"));

describe("knn.val", () => {
  it("scores each cell's best checkpoint on its images, as a study whose queries they are, and chooses on them", async () => {
    const dir = join(root, "with-val");
    const r = await runExperiment({ config: study({ val: data("val") }), out: dir });
    const asQueries = await runExperiment({ config: study({ queries: data("val"), selectBy: "transfer" }), out: join(root, "as-queries") });
    for (const id of IDS) {
      const file = await valFile(dir, id);
      expect(file.spec).toEqual(study({ val: data("val") }).knn.val);
      expect(file.data).toMatchObject({ name: "npy", split: "val", count: 24, subset: "classes 0,1,2 -> 0..2" });
      const cell = r.results.cells.find((c) => c.id === id)!;
      expect(cell.valKnn).toEqual(file.knn);
      // The same training, the same best checkpoint: its k-NN on those images as queries.
      expect(file.knn).toEqual(asQueries.results.cells.find((c) => c.id === id)!.knn);
    }
    expect(r.results.notes.data.knnVal).toMatchObject({ split: "val", count: 24 });
    const row = r.results.table[0];
    const scoreOf = (lr: number) => r.results.cells.find((c) => c.lr === lr)!.valKnn!["5"].top1;
    expect(row.valKnn).toBe(scoreOf(row.lr));
    const csv = (await readFile(join(dir, "results.csv"), "utf8")).trim().split("\n");
    const column = csv[0].split(",").indexOf("val_knn5_top1");
    expect(column).toBeGreaterThan(0);
    expect(csv.slice(2).map((line) => line.split(",")[column])).toEqual(IDS.map((id) => r.results.cells.find((c) => c.id === id)!.valKnn!["5"].top1.toFixed(2)));
    expect(await readFile(join(dir, "table.md"), "utf8")).toContain("The rates were chosen on knn.val (npy val (classes 0,1,2 -> 0..2), 24 images) in the queries' stead");
  });

  it("is scored for a finished run folder's cells when added, anew when changed, and not again when unchanged", async () => {
    const dir = join(root, "added");
    await runExperiment({ config: study({ selectBy: "transfer" }), out: dir });
    expect(IDS.map((id) => existsSync(join(dir, "cells", id, "knn-val.json")))).toEqual([false, false]);
    const log: string[] = [];
    const added = await runExperiment({ config: study({ val: data("val") }), out: dir, log: (l) => log.push(l) });
    expect(added.ran).toEqual([]);
    expect(log).toContain("knn.val: scoring 2 cell(s)' best checkpoints on 24 source images (classes 0,1,2 -> 0..2)");
    for (const id of IDS) expect((await valFile(dir, id)).knn).toEqual((await valFile(join(root, "with-val"), id)).knn);
    log.length = 0;
    await runExperiment({ config: study({ val: data("val") }), out: dir, log: (l) => log.push(l) });
    expect(log.filter((l) => l.startsWith("knn.val"))).toEqual([]);
    const fewer = data("val", "0-2", { perClass: 4 });
    await runExperiment({ config: study({ val: fewer }), out: dir, log: (l) => log.push(l) });
    expect(log.filter((l) => l.startsWith("knn.val"))).toEqual(["knn.val: scoring 2 cell(s)' best checkpoints on 12 source images (classes 0,1,2 -> 0..2; first 4 per class)"]);
    expect((await valFile(dir, IDS[0])).data.count).toBe(12);
  });

  it("refuses images of the bank or the queries, and other classes, by name, before any work", async () => {
    const refused = (val: unknown) => runExperiment({ config: study({ val }), out: join(root, "refused") });
    await expect(refused(data("train", "0-2", { skipPerClass: 20 }))).rejects.toThrow(/^experiment: knn\.val: expected no image of knn\.bank, got 12 of them \(the first: .*train.*\)$/);
    await expect(refused(data("test"))).rejects.toThrow(/^experiment: knn\.val: expected no image of knn\.queries, got 24 of them/);
    await expect(refused(data("val", "0-1"))).rejects.toThrow("experiment: expected knn.val to have the 3 classes of knn.bank in the same order, got 2 classes (give both the same classes)");
    expect(existsSync(join(root, "refused", "cells"))).toBe(false);
    // Images of the bank's split after those the bank takes are its own.
    const bank = data("train", "0-2", { perClass: 16 });
    const mini = miniStudy(join(root, "data"), join(root, "cache"));
    const config = parseStudyConfig({ ...mini, knn: { ...mini.knn, bank, val: data("train", "0-2", { skipPerClass: 16 }) }, strategies: ["linear"], learningRates: [0.3] });
    const r = await runExperiment({ config, out: join(root, "skipped") });
    expect(r.results.notes.data.knnVal).toMatchObject({ count: 24, subset: "classes 0,1,2 -> 0..2; each class after the first 16" });
  });
});
