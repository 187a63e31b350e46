// Model selection on transfer.val (study/validation.ts): the config's forms and the errors of bad ones, a changed
// val refused when growing a run, and miniature studies: a val split of its own chooses the checkpoint where val
// and test disagree on the best step (the test accuracy reported is the test accuracy at val's step, read from the
// same training chosen on test), its answers kept image by image (and added to cells of builds that did not keep
// them), a fraction held out of training, and an interrupted cell resumed to the uninterrupted result.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStudyConfig, type StudyConfig } from "../../study/config.js";
import { configChanges } from "../../study/changes.js";
import { defaultRoot } from "../../data/registry.js";
import type { CellResult } from "../../study/results.js";
import type { MetricRow } from "../../train/train.js";
import { runExperiment } from "../../study/runner.js";
import { splitForValidation } from "../../study/validation.js";
import { ArrayDataset } from "../../data/dataset.js";
import { readSafetensors } from "../../vit/safetensors.js";
import { packBits, unpackBits } from "../../util/bits.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { miniData, miniStudy } from "./program.js";

useEngine();

// Made at once: the configs below are built while the tests are collected.
const root = mkdtempSync(join(tmpdir(), "validation-test-"));

beforeAll(async () => {
  // Noisy patterns: accuracies that move from evaluation to evaluation, so val and test can disagree.
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 16, test: 8, val: 8 }, seed: 5, noise: 100 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const data = (split: string, classes = "3-5") => miniData(join(root, "data"), split, classes);

// program.ts's miniature study with one cell, evaluated at every step of eight.
function json(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const mini = miniStudy(join(root, "data"), join(root, "cache"));
  return {
    ...mini,
    name: "val",
    knn: { ...mini.knn, ks: [3], reportK: 3 },
    strategies: ["full"],
    learningRates: [0.01],
    training: { steps: 8, batchSize: 12, evalEvery: 1, warmupSteps: 1, lossEvery: 1 },
    ...overrides,
  };
}

const study = (overrides: Record<string, unknown> = {}): StudyConfig => parseStudyConfig(json(overrides));
const withVal = (val: unknown) => study({ transfer: { train: data("train"), test: data("test"), val } });

function problems(val: unknown): string {
  try {
    parseStudyConfig(json({ transfer: { train: data("train"), test: data("test"), val } }));
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected the config to be refused");
}

describe("transfer.val in the config", () => {
  it("takes a split of its own or a fraction held out of transfer.train; absent, it stays absent", () => {
    expect(withVal(data("val")).transfer.val).toMatchObject({ dataset: "npy", split: "val", classes: [3, 4, 5] });
    expect(withVal({ fraction: 0.25 }).transfer.val).toEqual({ fraction: 0.25 });
    expect("val" in study().transfer).toBe(false);
  });

  it("refuses a split and a fraction together, a fraction outside (0, 1), the test or training split, unknown keys", () => {
    expect(problems({ ...data("val"), fraction: 0.5 })).toContain(
      'transfer.val: expected either a split (a data spec, like transfer.test) or {"fraction": f} held out of transfer.train, got both a split and a fraction',
    );
    expect(problems({ split: "val", fraction: 0.5 })).toContain("got both a split and a fraction");
    for (const f of [0, 1, 1.5, -0.1]) expect(problems({ fraction: f })).toContain(`transfer.val.fraction: expected a number in (0, 1), the share of each class of transfer.train held out, got ${f}`);
    expect(problems(data("test"))).toMatch(/transfer\.val: expected a split other than transfer\.test's, got the same \(npy test in .*\), without a skipPerClass that takes images after its own$/m);
    expect(problems(data("train"))).toContain("transfer.val: expected a split other than transfer.train's, got the same");
    expect(problems(data("train"))).toContain('without a skipPerClass that takes images after its own; {"fraction": f} holds part of it out of training');
    // With skipPerClass, images of the same split: taken, and compared image by image when the data is open.
    expect(withVal({ ...data("train"), skipPerClass: 12 }).transfer.val).toMatchObject({ split: "train", skipPerClass: 12 });
    // A spec without a root reads its dataset's default root, which the message names (not the working directory).
    const fashion = { dataset: "fashion-mnist", split: "test", classes: "5-9" };
    const noRoot = () => parseStudyConfig(json({ transfer: { train: { ...fashion, split: "train" }, test: fashion, val: fashion } }));
    expect(noRoot).toThrow(`transfer.val: expected a split other than transfer.test's, got the same (fashion-mnist test in ${defaultRoot("fashion-mnist")}), without`);
    expect(problems({ fraction: 0.1, perClass: 3 })).toContain("transfer.val.perClass: unknown key (known keys: fraction)");
    expect(problems({})).toContain("transfer.val.fraction: missing (required)");
    expect(problems("val")).toContain('transfer.val: expected a data spec or {"fraction": f}, got "val"');
  });

  it("is a change that a run folder's finished cells do not survive, and with a fraction so is the first seed", () => {
    const plain = study();
    expect(configChanges(plain, withVal({ fraction: 0.25 })).refusing).toEqual(['transfer.val: absent -> {"fraction":0.25}']);
    expect(configChanges(withVal({ fraction: 0.25 }), withVal({ fraction: 0.5 })).refusing).toEqual(["transfer.val.fraction: 0.25 -> 0.5"]);
    expect(configChanges(withVal(data("val")), plain).refusing).toEqual([expect.stringMatching(/^transfer\.val: \{.*\} -> absent$/)]);
    const reseeded = { ...withVal({ fraction: 0.25 }), seeds: [1] };
    expect(configChanges(withVal({ fraction: 0.25 }), reseeded).refusing).toEqual(["seeds[0]: 0 -> 1 (the first seed draws the images of transfer.val.fraction)"]);
  });
});

describe("splitForValidation", () => {
  // Images named by their source: `where` is what source(i) says.
  const images = (split: string, where: (i: number) => string, n = 6, classes = ["a", "b", "c"]) => {
    const identity = { name: "mem", root: "/mem", split, count: n, hash: split };
    const layout = { offset: 0, stride: 4, width: 2, height: 2, channels: 1 as const, planar: false };
    return new ArrayDataset(identity, classes, Int32Array.from({ length: n }, (_, i) => i % 3), new Uint8Array(4 * n), layout, where);
  };
  const train = images("train", (i) => `/mem/train#${i}`);
  const test = images("test", (i) => `/mem/test#${i}`);
  const config = withVal(data("val"));

  it("refuses a val split that shares images with the test or training images under another name, or labels other classes", async () => {
    // Another root and split whose files are the test split's (e.g. an image folder's val/ opened as its own root).
    const sameAsTest = images("val", (i) => `/mem/test#${i + 2}`);
    await expect(splitForValidation(config, train, test, async () => sameAsTest)).rejects.toThrow("experiment: transfer.val: expected no image of transfer.test, got 4 of them (the first: /mem/test#2)");
    const sameAsTrain = images("val", (i) => (i === 5 ? "/mem/train#0" : `/mem/val#${i}`));
    await expect(splitForValidation(config, train, test, async () => sameAsTrain)).rejects.toThrow("expected no image of transfer.train, got 1 of them (the first: /mem/train#0)");
    const fewer = new ArrayDataset({ ...sameAsTrain.identity }, ["a", "b"], new Int32Array(6), new Uint8Array(24), { offset: 0, stride: 4, width: 2, height: 2, channels: 1, planar: false }, (i) => `/v#${i}`);
    await expect(splitForValidation(config, train, test, async () => fewer)).rejects.toThrow("experiment: expected transfer.val to have the 3 classes of transfer.train in the same order, got 2 classes (give both the same classes)");
    const others = images("val", (i) => `/mem/val#${i}`, 6, ["a", "b", "d"]);
    await expect(splitForValidation(config, train, test, async () => others)).rejects.toThrow('experiment: expected transfer.val to have the 3 classes of transfer.train in the same order, got label 2 "d" where transfer.train has "c"');
  });

  it("holds out round(fraction x count) of each class, and refuses a fraction that leaves a part empty", async () => {
    const { train: rest, val } = await splitForValidation(withVal({ fraction: 0.5 }), train, test, async () => test);
    expect([rest.length, val!.length]).toEqual([3, 3]);
    expect(await splitForValidation(study(), train, test, async () => test)).toEqual({ train });
    const two = images("train", (i) => `/t#${i}`, 3);
    await expect(splitForValidation(withVal({ fraction: 0.1 }), two, test, async () => test)).rejects.toThrow(
      "experiment: transfer.val.fraction 0.1 of transfer.train's 3 images leaves the held-out images (transfer.val) empty",
    );
  });
});

const cellOf = async (dir: string): Promise<CellResult> => JSON.parse(await readFile(join(dir, "cells", "full_lr0.01_s0", "result.json"), "utf8"));
const metricsOf = async (dir: string): Promise<MetricRow[]> => JSON.parse(await readFile(join(dir, "cells", "full_lr0.01_s0", "metrics.json"), "utf8")).rows;

describe("a miniature study choosing on val", () => {
  it("reports the test accuracy at the step val chose, where test alone would choose another", async () => {
    const onTest = join(root, "on-test");
    const onVal = join(root, "on-val");
    await runExperiment({ config: study(), out: onTest });
    await runExperiment({ config: withVal(data("val")), out: onVal });
    const [testCell, valCell] = [await cellOf(onTest), await cellOf(onVal)];
    const [testRows, valRows] = [await metricsOf(onTest), await metricsOf(onVal)];
    // The same training (the same losses at every step): only the images evaluated differ.
    expect(valRows.map((r) => r.loss)).toEqual(testRows.map((r) => r.loss));
    expect([valCell.bestStep, testCell.bestStep]).toEqual([7, 8]); // val and test disagree
    const testAt = (step: number) => testRows.find((r) => r.step === step)!.accuracy;
    expect(valCell.transferAccuracy).toBe(testAt(valCell.bestStep));
    expect(valCell.transferAccuracy).toBeLessThan(testCell.transferAccuracy);
    expect(valCell.finalTransferAccuracy).toBe(testAt(8));
    expect(valCell.valAccuracy).toBe(Math.max(...valRows.map((r) => r.accuracy ?? -1)));
    expect(valCell.valAccuracy).toBe(valRows.find((r) => r.step === valCell.bestStep)!.accuracy);
    expect(valCell.finalValAccuracy).toBe(valRows.at(-1)!.accuracy);
    expect(testCell.valAccuracy).toBeUndefined();
    // Its val answers image by image, as many right as its val accuracy; none without transfer.val.
    const right = unpackBits(valCell.correct!.val!.bits, valCell.correct!.val!.count)!;
    expect([right.length, (100 * right.reduce((a, b) => a + b, 0)) / right.length]).toEqual([24, valCell.valAccuracy]);
    expect(testCell.correct!.val).toBeUndefined();

    const results = JSON.parse(await readFile(join(onVal, "results.json"), "utf8"));
    expect(results.selectedOn).toBe("transfer.val");
    expect(results.notes.data.transferVal).toMatchObject({ split: "val", count: 24 });
    expect(results.table[0].val).toBe(valCell.valAccuracy);
    expect(JSON.parse(await readFile(join(onTest, "results.json"), "utf8")).selectedOn).toBe("transfer.test");
    const table = await readFile(join(onVal, "table.md"), "utf8");
    expect(table).toContain("at the checkpoint chosen on transfer.val (npy val (classes 3,4,5 -> 0..2), 24 images)");
    expect(table).toContain("No test image chose a checkpoint or a learning rate.");
    expect(table).toContain("each row shows the one with the best val accuracy");
    expect(await readFile(join(onTest, "table.md"), "utf8")).toContain("the test images chose the checkpoint, as in the paper");
    const csv = (await readFile(join(onVal, "results.csv"), "utf8")).trim().split("\n");
    expect(csv[0]).toContain(",best_step,val_acc,");
    expect(csv[2].split(",")[9]).toBe(valCell.valAccuracy!.toFixed(2));
    for (const [dir, on] of [[onVal, "transfer.val"], [onTest, "transfer.test"]]) {
      const { metadata } = await readSafetensors(join(dir, "cells", "full_lr0.01_s0", "best.safetensors"));
      expect(JSON.parse(metadata.manifest).hyperParameters.selectedOn).toBe(on);
    }
  });

  it("adds the val answers to the cells of a build that did not keep them, from their best checkpoints", async () => {
    const whole = join(root, "on-val"); // the first test's run, or this one's own when it runs alone
    const config = withVal(data("val"));
    await runExperiment({ config, out: whole });
    const dir = join(root, "without-answers");
    await cp(whole, dir, { recursive: true });
    const path = join(dir, "cells", "full_lr0.01_s0", "result.json");
    const kept = await cellOf(whole);
    const { val: _, ...older } = kept.correct!;
    await writeFile(path, JSON.stringify({ ...kept, correct: older }));
    const log: string[] = [];
    const r = await runExperiment({ config, out: dir, log: (l) => log.push(l) });
    expect(r.ran).toEqual([]);
    expect(log).toContain("transfer.val: adding the val answers of 1 cell(s) of an earlier build, from their best checkpoints");
    expect(await cellOf(dir)).toEqual(kept);
    // Answers that do not give the val accuracy are refused by name.
    await writeFile(path, JSON.stringify({ ...kept, correct: { ...older, val: { count: 2, bits: packBits([1, 1]) } } }));
    await expect(runExperiment({ config, out: dir })).rejects.toThrow(`found its "correct" transfer.val bits right on 100% of the images, where its accuracy is ${kept.valAccuracy}%`);
  });

  it("holds a seeded fraction of each class out of training", async () => {
    const dir = join(root, "held-out");
    const r = await runExperiment({ config: withVal({ fraction: 0.25 }), out: dir });
    const { transferTrain, transferVal } = r.results.notes.data;
    expect([transferTrain.count, transferVal.count]).toEqual([36, 12]); // 16 of each of 3 classes: 12 + 4 per class
    expect(transferVal.subset).toBe("classes 3,4,5 -> 0..2; then held out: fraction 0.25 per class, seed 0");
    expect(transferTrain.subset).toBe("classes 3,4,5 -> 0..2; then without the held-out fraction 0.25 per class, seed 0");
    expect(r.results.cells[0].valAccuracy).toBeDefined();
  });

  it("resumes an interrupted cell to the uninterrupted result", async () => {
    const whole = join(root, "on-val"); // the first test's run, or this one's own when it runs alone
    const config = withVal(data("val"));
    await runExperiment({ config, out: whole });
    const dir = join(root, "interrupted");
    // A progress stream that fails once step 5 is reported: after the checkpoint of step 5, before step 6.
    const failing = { write: (text: string) => { if (/ 5\/8/.test(text)) throw new Error("interrupted at step 5"); } };
    await expect(runExperiment({ config, out: dir, progress: failing })).rejects.toThrow("interrupted at step 5");
    expect((await readSafetensors(join(dir, "cells", "full_lr0.01_s0", "last.safetensors"))).metadata.step).toBe("5");
    const log: string[] = [];
    await runExperiment({ config, out: dir, log: (l) => log.push(l) });
    expect(log).toContain("  resuming cell full_lr0.01_s0 from step 5 of 8");
    const strip = ({ trainSeconds: _t, imagesPerSecond: _i, knnSeconds: _k, ...c }: CellResult) => c;
    expect(strip(await cellOf(dir))).toEqual(strip(await cellOf(whole)));
    for (const file of ["best.safetensors", "last.safetensors"]) {
      const [a, b] = [await readFile(join(dir, "cells", "full_lr0.01_s0", file)), await readFile(join(whole, "cells", "full_lr0.01_s0", file))];
      expect(a.equals(b), file).toBe(true);
    }
  });
});
