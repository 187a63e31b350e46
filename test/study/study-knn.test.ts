// study/study-knn.ts: a curve point's one pass over the queries gives, against each bank, what a pass with that
// bank as knn.bank gives; the other banks alone the same; the class given to each query is kept for few classes;
// non-finite features at a step of training are that cell's divergence, named by step and rate, and an error
// elsewhere.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStudyConfig, type StudyConfig } from "../../study/config.js";
import { type StudyData, openStudyData } from "../../study/study-data.js";
import { curvePoint, knnScores, otherBankScores } from "../../study/study-knn.js";
import { buildVit, initialiser, type VisionTransformer } from "../../vit/model.js";
import { validateConfig } from "../../vit/config.js";
import { DivergedError } from "../../train/train.js";
import { unpackCorrect, unpackPredicted } from "../../study/results.js";
import { writeNpy } from "../../data/npy.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { MINI_MODEL, miniData, miniStudy } from "./program.js";

useEngine();

const root = mkdtempSync(join(tmpdir(), "study-knn-test-"));
const draw = (n: number) => ({ ...miniData(join(root, "data"), "train", "0-2"), ...(n > 0 && { skipPerClass: 8 * n }), perClass: 8 });
const SIZE = MINI_MODEL.imageSize;
let config: StudyConfig;
let data: StudyData;
let model: VisionTransformer;

beforeAll(async () => {
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 24, test: 8 }, seed: 2, noise: 160 });
  const mini = miniStudy(join(root, "data"), join(root, "cache"));
  config = parseStudyConfig({ ...mini, knn: { ...mini.knn, bank: draw(0), otherBanks: [draw(1), draw(2)] } });
  data = await openStudyData(config);
  model = buildVit(validateConfig({ ...MINI_MODEL, classes: 0, eps: 1e-6 }), initialiser(3));
});

afterAll(async () => {
  model.dispose();
  await rm(root, { recursive: true, force: true });
});

// The study with knn.otherBanks[i] as its bank.
const asBank = (i: number): [StudyConfig, StudyData] => [
  { ...config, knn: { ...config.knn, bank: config.knn.otherBanks![i] } },
  { ...data, bank: data.otherBanks![i] },
];

describe("the study's k-NN", () => {
  it("scores a curve point against every bank in one pass, each as a pass with that bank as knn.bank", async () => {
    const point = await curvePoint(model, config, data, SIZE, { step: 7, lr: 0.1 });
    const own = await knnScores(model, config, data, SIZE);
    expect({ knn: point.knn, correct: point.correct }).toEqual({ knn: own.scores, correct: own.correct });
    expect(point.step).toBe(7);
    expect(point.banks!.map((b) => b.spec)).toEqual(config.knn.otherBanks);
    expect(point.banks!.map((b) => b.data.subset)).toEqual(data.otherBanks!.map((d) => d.identity.subset));
    expect(point.banks!.every((b) => !("root" in b.data))).toBe(true); // a run folder may move
    const others = await otherBankScores(model, config, data, SIZE, [1, 0]);
    for (const i of [0, 1]) {
      const alone = await knnScores(model, ...asBank(i), SIZE);
      expect({ knn: point.banks![i].knn, correct: point.banks![i].correct }).toEqual({ knn: alone.scores, correct: alone.correct });
      expect({ scores: others[1 - i].scores, correct: others[1 - i].correct }).toEqual({ scores: alone.scores, correct: alone.correct });
    }
    // Without knn.otherBanks, the bank alone.
    const { otherBanks: _, ...knn } = config.knn;
    const { otherBanks: __, ...one } = data;
    expect((await curvePoint(model, { ...config, knn }, one, SIZE, { step: 7, lr: 0.1 })).banks).toBeUndefined();
  });

  it("keeps the class given to each query where the queries have at most 20 classes, and none for more", async () => {
    const { correct } = await knnScores(model, config, data, SIZE);
    const right = unpackCorrect(correct);
    const given = unpackPredicted(correct)!;
    expect(given.length).toBe(data.queries.length);
    given.forEach((c, q) => expect(c === data.queries.labels[q] ? 1 : 0, `query ${q}`).toBe(right[q]));
    // 21 classes of two images each, their labels the classes' order.
    const many = join(root, "many");
    await mkdir(many, { recursive: true });
    await writeNpy(join(many, "x_images.npy"), Uint8Array.from({ length: 42 * 64 }, (_, i) => (i * 7919) % 251), [42, 8, 8]);
    await writeNpy(join(many, "x_labels.npy"), Int32Array.from({ length: 42 }, (_, i) => i % 21), [42]);
    const spec = { dataset: "npy", root: many, split: "x", transform: "eval" };
    const wide = parseStudyConfig({ ...miniStudy(join(root, "data"), join(root, "cache")), knn: { bank: spec, queries: spec, ks: [3, 5], reportK: 5, batchSize: 32 } });
    const wideData = await openStudyData(wide);
    expect(wideData.queries.classes.length).toBe(21);
    const scored = await knnScores(model, wide, wideData, SIZE);
    expect([scored.correct.count, scored.correct.predicted]).toEqual([42, undefined]);
  });

  it("takes non-finite features at a step of training for the cell's divergence, and for an error elsewhere", async () => {
    const [, w] = model.parameters().find(([name]) => name === "norm.weight")!;
    const kept = await w.data();
    w.write(new Float32Array(kept.length).fill(NaN));
    try {
      const diverged = await curvePoint(model, config, data, SIZE, { step: 7, lr: 0.1 }).catch((e: Error) => e);
      expect(diverged).toBeInstanceOf(DivergedError);
      expect((diverged as DivergedError).step).toBe(7);
      expect((diverged as Error).message).toMatch(/^the source k-NN of step 7: the backbone's feature \d+ of bank \(npy\) image 0 is NaN: the k-NN cannot score it \(lr 1\.00e-1\)$/);
      const elsewhere = await knnScores(model, config, data, SIZE).catch((e: Error) => e);
      expect(elsewhere).not.toBeInstanceOf(DivergedError);
      expect((elsewhere as Error).message).toContain("the k-NN cannot score it");
    } finally {
      w.write(kept);
    }
  });
});
