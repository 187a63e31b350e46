// DINO's k-NN classifier: against PyTorch's answers (test/fixtures/knn-*, through the library and the CLI), against
// test/ref/knn.ts on tie-heavy data (exact: +-1 features in D = 16 have exact cosines), and on a hand-made case
// where the exp(sim / T) weighting, not the neighbour count, decides. Accuracies are compared exactly: they are
// counts over the test rows.
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { mkdtempSync } from "node:fs";
import { mkdtemp, rm, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "../../engine/tensor.js";
import { Rng } from "../../util/random.js";
import { readNpy, writeNpy } from "../../data/npy.js";
import { MIN_TEMPERATURE, knnClassify } from "../../eval/knn.js";
import { knn as knnCommand } from "../../cli/knn.js";
import { UsageError } from "../../util/command.js";
import { useEngine } from "../helpers.js";
import { knnClassifyRef } from "../ref/knn.js";

useEngine();

const FIXTURES = join(import.meta.dirname, "../fixtures");
// The command's tests write their feature files into a folder of their own under this one.
const tmp = mkdtempSync(join(tmpdir(), "knn-test-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));

interface Expected {
  temperature: number;
  classes: number;
  results: Record<string, { top1: number; top5: number; predictions: number[] }>;
}

// Clustered +-1 features in D = 16: each row is its class prototype with some signs flipped.
function clustered(rows: number, classes: number, seed: number, labels?: Int32Array): { x: Float32Array; y: Int32Array } {
  const d = 16;
  const proto = new Rng(99);
  const centres = proto.fill(classes * d, () => (proto.next() < 0.5 ? -1 : 1));
  const rng = new Rng(seed);
  const y = labels ?? Int32Array.from({ length: rows }, () => rng.int(classes));
  const x = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) x[r * d + j] = centres[y[r] * d + j] * (rng.next() < 0.3 ? -1 : 1);
  return { x, y };
}

describe("knnClassify", () => {
  it("matches PyTorch's eval_knn on the fixture (top-1, top-5, predictions; int64 train labels)", async () => {
    const expected = JSON.parse(await readFile(join(FIXTURES, "knn-expected.json"), "utf8")) as Expected;
    const [train, trainLabels, test, testLabels] = await Promise.all(
      ["knn-train", "knn-train-labels", "knn-test", "knn-test-labels"].map((f) => readNpy(join(FIXTURES, `${f}.npy`))),
    );
    expect(trainLabels.dtype).toBe("int64");
    const results = await knnClassify({
      train: train.data as Float32Array,
      trainLabels: Int32Array.from(trainLabels.data as BigInt64Array, Number),
      test: test.data as Float32Array,
      testLabels: testLabels.data as Int32Array,
      ks: [10, 20],
      temperature: expected.temperature,
      classes: expected.classes,
    });
    for (const r of results) {
      const want = expected.results[String(r.k)];
      expect({ k: r.k, top1: r.top1, top5: r.top5 }).toEqual({ k: r.k, top1: want.top1, top5: want.top5 });
      expect(Array.from(r.predictions)).toEqual(want.predictions);
      // Which queries it got right: the predictions that are the labels, as many as top-1 counts.
      const labels = testLabels.data as Int32Array;
      expect(Array.from(r.correct)).toEqual(want.predictions.map((p, i) => (p === labels[i] ? 1 : 0)));
      expect((100 * r.correct.reduce((a, b) => a + b, 0)) / labels.length).toBe(r.top1);
    }
  });

  it("equals the CPU reference with ties, chunked bank, query batches, k > N", async () => {
    const classes = 7;
    const train = clustered(300, classes, 1);
    const test = clustered(61, classes, 2);
    const ks = [20, 1, 3, 10, 500];
    const got = await knnClassify({
      train: train.x, trainLabels: train.y, test: test.x, testLabels: test.y, ks, temperature: 0.07, chunkRows: 37, queryBatch: 16,
    });
    const want = knnClassifyRef(train.x, train.y, test.x, test.y, 16, ks, 0.07, classes);
    expect(got.map((r) => ({ k: r.k, top1: r.top1, top5: r.top5, predictions: r.predictions }))).toEqual(want);
    // Not trivially 100 %, and k changes the answer.
    expect(new Set(want.map((r) => r.top1)).size).toBeGreaterThan(1);
    expect(want.every((r) => r.top1 < 100)).toBe(true);
  });

  it("takes Tensors and gives the same answers", async () => {
    const train = clustered(90, 4, 3);
    const test = clustered(33, 4, 4);
    const opts = { trainLabels: train.y, testLabels: test.y, ks: [5, 10], temperature: 0.1 };
    const fromArrays = await knnClassify({ ...opts, train: train.x, test: test.x });
    const tensors = { train: Tensor.fromArray(train.x, [90, 16]), test: Tensor.fromArray(test.x, [33, 16]) };
    const fromTensors = await knnClassify({ ...opts, ...tensors });
    expect(fromTensors).toEqual(fromArrays);
    expect(fromArrays.map((r) => ({ k: r.k, top1: r.top1, top5: r.top5, predictions: r.predictions }))).toEqual(
      knnClassifyRef(train.x, train.y, test.x, test.y, 16, [5, 10], 0.1, 4),
    );
  });

  it("one class: everything is right", async () => {
    const train = clustered(10, 1, 5);
    const test = clustered(3, 1, 6);
    const [r] = await knnClassify({ train: train.x, trainLabels: train.y, test: test.x, testLabels: test.y, ks: [20], temperature: 0.07 });
    expect(r).toEqual({ k: 20, used: 10, top1: 100, top5: 100, predictions: new Int32Array(3), correct: Uint8Array.from([1, 1, 1]) });
  });

  it("weights by exp(sim / T): two neighbours at cos 0.5 lose to one at cos 0.6 when T = 0.07, win when T = 1", async () => {
    // exp(0.6/0.07) = 5.3e3 > 2 exp(0.5/0.07) = 2.5e3, but exp(0.6) = 1.82 < 2 exp(0.5) = 3.30.
    const c5 = Math.sqrt(1 - 0.25);
    const c6 = Math.sqrt(1 - 0.36);
    const train = Float32Array.from([0.5, c5, 0.5, -c5, 0.6, c6, -1, 0]);
    const trainLabels = Int32Array.from([0, 0, 1, 2]);
    const test = Float32Array.from([2, 0]);
    const run = (temperature: number) => knnClassify({ train, trainLabels, test, testLabels: Int32Array.from([0]), ks: [3], temperature });
    expect((await run(0.07))[0]).toMatchObject({ top1: 0, top5: 100, predictions: Int32Array.from([1]) });
    expect((await run(1))[0]).toMatchObject({ top1: 100, top5: 100, predictions: Int32Array.from([0]) });
  });

  it("top-5 counts only the first min(5, k) classes, as eval_knn.py", async () => {
    // The label's class is second by votes: inside the top 5, but not inside the top min(5, 1) = 1.
    const train = Float32Array.from([1, 0, 0.9, 0.1, 0.8, 0.2]);
    const trainLabels = Int32Array.from([1, 0, 2]);
    const test = Float32Array.from([1, 0]);
    const run = (k: number) => knnClassify({ train, trainLabels, test, testLabels: Int32Array.from([0]), ks: [k], temperature: 0.07 });
    expect((await run(1))[0]).toMatchObject({ top1: 0, top5: 0 });
    expect((await run(2))[0]).toMatchObject({ top1: 0, top5: 100 });
  });

  it("rejects mismatched features and bad labels, naming them", async () => {
    const base = { trainLabels: Int32Array.from([0, 1]), testLabels: Int32Array.from([0]), ks: [1], temperature: 0.07 };
    await expect(knnClassify({ ...base, train: new Float32Array(6), test: new Float32Array(2) })).rejects.toThrow(
      "knnClassify: expected test features of dimension 3 as train, got 2",
    );
    await expect(knnClassify({ ...base, train: new Float32Array(5), test: new Float32Array(2) })).rejects.toThrow(
      "knnClassify: expected train features of 2 rows (a multiple of 2 values), got 5 values",
    );
    await expect(knnClassify({ ...base, train: new Float32Array(4), test: new Float32Array(2), classes: 1 })).rejects.toThrow(
      "knnClassify: expected train labels in [0, 1), got 1 at row 1",
    );
    await expect(knnClassify({ ...base, train: new Float32Array(4), test: new Float32Array(2), ks: [0] })).rejects.toThrow(
      "knnClassify: expected ks of positive integers, got [0]",
    );
    // exp(1 / T) overflows a double below T = 1/709.8: every positive similarity's vote would be Infinity.
    await expect(knnClassify({ ...base, train: new Float32Array(4), test: new Float32Array(2), temperature: 1e-300 })).rejects.toThrow(
      "knnClassify: expected temperature >= 1/700 (0.00143: below it the votes exp(sim / T) overflow), got 1e-300",
    );
    expect(Number.isFinite(1e4 * Math.exp(1 / MIN_TEMPERATURE))).toBe(true);
    const stray = { ...base, trainLabels: Int32Array.from([0, 2147483647]) };
    await expect(knnClassify({ ...stray, train: new Float32Array(4), test: new Float32Array(2) })).rejects.toThrow(
      "knnClassify: expected labels 0..C-1 with C at most the 3 labelled rows, got a largest label of 2147483647",
    );
  });
});

describe("knn command", () => {
  afterEach(() => vi.restoreAllMocks());

  async function runJson(argv: string[]): Promise<Record<string, unknown>> {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await knnCommand.run([...argv, "--json"]);
    expect(log).toHaveBeenCalledTimes(1);
    return JSON.parse(String(log.mock.calls[0][0]));
  }

  const fixtureFlags = ["train", "train-labels", "test", "test-labels"].flatMap((f) => [`--${f}`, join(FIXTURES, `knn-${f}.npy`)]);

  // A training and a test set of clustered() in the command's four files in `dir`; returns the flags naming them.
  type Features = ReturnType<typeof clustered>;
  async function featureFiles(dir: string, train: Features, test: Features, testLabels = test.y): Promise<string[]> {
    await writeNpy(join(dir, "x.npy"), train.x, [train.y.length, 16]);
    await writeNpy(join(dir, "y.npy"), train.y, [train.y.length]);
    await writeNpy(join(dir, "q.npy"), test.x, [test.y.length, 16]);
    await writeNpy(join(dir, "l.npy"), testLabels, [test.y.length]);
    return ["--train", "x.npy", "--train-labels", "y.npy", "--test", "q.npy", "--test-labels", "l.npy"].map((a) => (a.endsWith(".npy") ? join(dir, a) : a));
  }

  it("reproduces knn-expected.json (--k 10,20, default temperature)", async () => {
    const expected = JSON.parse(await readFile(join(FIXTURES, "knn-expected.json"), "utf8")) as Expected;
    const out = await runJson([...fixtureFlags, "--k", "10,20"]);
    expect(out).toMatchObject({ temperature: 0.07, classes: 8, train: 50, test: 20, dim: 8 });
    const results = out.results as Record<string, unknown>;
    expect(Object.keys(results)).toEqual(["10", "20"]);
    for (const k of ["10", "20"]) expect(results[k]).toEqual({ top1: expected.results[k].top1, top5: expected.results[k].top5, used: Number(k) });
  });

  it("defaults to k = 10, 20, 100, 200 and reads int32 labels written by writeNpy", async () => {
    const dir = await mkdtemp(join(tmp, "cli-"));
    const train = clustered(40, 3, 7);
    const test = clustered(9, 3, 8);
    const flags = await featureFiles(dir, train, test);
    const out = await runJson([...flags, "--temperature", "0.5"]);
    const want = knnClassifyRef(train.x, train.y, test.x, test.y, 16, [10, 20, 100, 200], 0.5, 3);
    // k = 100 and 200 vote with all 40 training rows, and say so.
    expect(out.results).toEqual(Object.fromEntries(want.map((r) => [String(r.k), { top1: r.top1, top5: r.top5, used: Math.min(r.k, 40) }])));
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await knnCommand.run(flags);
    const rows = log.mock.calls.map((c) => String(c[0]));
    expect(rows.find((l) => l.trim().startsWith("100 "))).toContain("(40 used: the training set has 40 rows)");
    expect(rows.find((l) => l.trim().startsWith("20 "))).not.toContain("used");
  });

  it("writes each test row's top-1 class at each k with --predictions, int32 (K, Q) in --k's order", async () => {
    const dir = await mkdtemp(join(tmp, "cli-"));
    const train = clustered(40, 3, 7);
    const test = clustered(9, 3, 8);
    const flags = await featureFiles(dir, train, test);
    const out = join(dir, "predictions.npy");
    await runJson([...flags, "--temperature", "0.5", "--k", "20,1,5", "--predictions", out]);
    const written = await readNpy(out);
    expect([written.dtype, written.shape]).toEqual(["int32", [3, 9]]);
    const want = knnClassifyRef(train.x, train.y, test.x, test.y, 16, [20, 1, 5], 0.5, 3);
    expect(Array.from(written.data as Int32Array)).toEqual(want.flatMap((r) => Array.from(r.predictions)));
    vi.restoreAllMocks();
    // Over an input, refused before any work, the input as it was.
    const labels = await readFile(join(dir, "l.npy"));
    await expect(knnCommand.run([...flags, "--predictions", join(dir, "l.npy")])).rejects.toThrow(new UsageError(`--predictions: expected a file other than --test-labels, which it would overwrite, got ${join(dir, "l.npy")}`));
    expect((await readFile(join(dir, "l.npy"))).equals(labels)).toBe(true);
  });

  it("votes with every training row for a k past them, however large, as for k = N", async () => {
    const dir = await mkdtemp(join(tmp, "cli-"));
    const train = clustered(40, 3, 7);
    const test = clustered(9, 3, 8);
    const flags = await featureFiles(dir, train, test);
    const [want] = knnClassifyRef(train.x, train.y, test.x, test.y, 16, [40], 0.5, 3);
    // 10^8 and 10^14 neighbours: (Q, k) lists past any device's buffers, and past a u32 for the second.
    for (const k of ["40", "100000000", "99999999999999"]) {
      const out = await runJson([...flags, "--temperature", "0.5", "--k", k]);
      expect(out.results, `--k ${k}`).toEqual({ [k]: { top1: want.top1, top5: want.top5, used: 40 } });
      vi.restoreAllMocks(); // runJson's spy, for the next run's
    }
    const [n, past] = await knnClassify({ train: train.x, trainLabels: train.y, test: test.x, testLabels: test.y, ks: [40, 1e8], temperature: 0.5 });
    expect({ ...past, k: 40 }).toEqual({ ...n, k: 40 });
  });

  it("warns of test rows whose class no training row has (labels numbered in two ways), and scores them wrong", async () => {
    const dir = await mkdtemp(join(tmp, "cli-"));
    const train = clustered(12, 3, 1);
    const test = clustered(6, 3, 2);
    const flags = await featureFiles(dir, train, test, test.y.map((c) => c + 3)); // classes 3-5 against the training rows' 0-2
    const warned = vi.spyOn(console, "error").mockImplementation(() => {});
    const out = await runJson([...flags, "--k", "5"]);
    // Top-1 is 0; top-5 may count them among the classes of no votes, tied after the voted ones, as DINO's topk does.
    expect((out.results as Record<string, { top1: number }>)["5"].top1).toBe(0);
    expect(warned.mock.calls.map((c) => String(c[0]))).toEqual([`warning: knn: 6 of 6 test rows (${join(dir, "l.npy")}) have a class no training row has (3, 4, 5): no vote can name it`]);
    vi.restoreAllMocks();
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    await writeNpy(join(dir, "l.npy"), test.y, [6]);
    await runJson([...flags, "--k", "5"]);
    expect(quiet).not.toHaveBeenCalled();
  });

  it("rejects a stray label and a non-finite feature, naming the file and row", async () => {
    const dir = await mkdtemp(join(tmp, "cli-"));
    const train = clustered(10, 2, 1);
    const test = clustered(4, 2, 2);
    const file = (name: string) => join(dir, name);
    await writeNpy(file("x.npy"), train.x, [10, 16]);
    await writeNpy(file("q.npy"), test.x, [4, 16]);
    await writeNpy(file("l.npy"), test.y, [4]);
    const labels = Int32Array.from(train.y);
    labels[7] = 2147483647;
    await writeNpy(file("y.npy"), labels, [10]);
    const flags = ["--train", file("x.npy"), "--train-labels", file("y.npy"), "--test", file("q.npy"), "--test-labels", file("l.npy")];
    await expect(knnCommand.run(flags)).rejects.toThrow(`knn: expected labels 0..C-1 with C at most the 14 labelled rows, got 2147483647 in row 7 of ${file("y.npy")}`);
    await writeNpy(file("y.npy"), train.y, [10]);
    const bad = Float32Array.from(test.x);
    bad[2 * 16 + 5] = NaN;
    await writeNpy(file("q.npy"), bad, [4, 16]);
    await expect(knnCommand.run(flags)).rejects.toThrow(`knn: expected finite features in ${file("q.npy")}, got NaN in row 2 (column 5)`);
    const inf = Float32Array.from(train.x);
    inf[9 * 16] = Infinity;
    await writeNpy(file("x.npy"), inf, [10, 16]);
    await expect(knnCommand.run(flags)).rejects.toThrow(`knn: expected finite features in ${file("x.npy")}, got Infinity in row 9 (column 0)`);
    // Finite, yet its squared length past float32's range: the device's unit scaling would make it all zeros.
    const huge = Float32Array.from(train.x);
    huge[3 * 16 + 1] = 2e19;
    await writeNpy(file("x.npy"), huge, [10, 16]);
    await expect(knnCommand.run(flags)).rejects.toThrow(`knn: expected features whose squared length float32 holds (below 3.4e38) in ${file("x.npy")}, got 4.00e+38 in row 3`);
  });

  it("rejects bad flags as usage errors", async () => {
    await expect(knnCommand.run(fixtureFlags.slice(2))).rejects.toThrow(new UsageError("missing required flag --train"));
    await expect(knnCommand.run([...fixtureFlags, "--k", "10,x"])).rejects.toThrow(UsageError);
    await expect(knnCommand.run([...fixtureFlags, "--temperature", "0"])).rejects.toThrow(UsageError);
    await expect(knnCommand.run([...fixtureFlags, "--bogus"])).rejects.toThrow("unknown flag --bogus");
  });
});
