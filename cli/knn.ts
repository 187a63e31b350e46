// `knn`: DINO's weighted k-NN classifier (eval/knn.ts) on feature and label files in NPY format.
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { checkOutputFile, decimal, parseArgs, required } from "../util/args.js";
import { labelsToInt32, readNpy, writeNpy } from "../data/npy.js";
import { refuseOverwrite } from "./file-checks.js";
import { initEngine } from "../engine/runtime.js";
import { MIN_TEMPERATURE, knnClassify } from "../eval/knn.js";

export const FLAGS = {
  train: "string",
  "train-labels": "string",
  test: "string",
  "test-labels": "string",
  k: "list",
  temperature: "number",
  json: "boolean",
  predictions: "string",
} as const;

const DEFAULT_KS = [10, 20, 100, 200];
const DEFAULT_T = 0.07;

async function readFeatures(path: string): Promise<{ data: Float32Array; rows: number; dim: number }> {
  const a = await readNpy(path);
  if (a.dtype !== "float32" || a.shape.length !== 2) {
    throw new Error(`knn: expected ${path} to hold float32 features (N, D), got ${a.dtype} (${a.shape.join(", ")})`);
  }
  const data = a.data as Float32Array;
  // One pass over the rows' squared lengths, summed in float64, where only a non-finite value makes one non-finite;
  // a non-finite value anywhere is named first. Each row is scaled to unit length on the device, its squared length
  // summed in float32: past ~3.4e38 (values of ~1e19) the length is infinite and the row's every similarity 0, silently.
  const d = a.shape[1];
  let overflow: { row: number; ss: number } | undefined;
  for (let row = 0; row < a.shape[0]; row++) {
    let ss = 0;
    for (let j = row * d; j < (row + 1) * d; j++) ss += data[j] * data[j];
    if (!Number.isFinite(ss)) {
      const col = data.subarray(row * d, (row + 1) * d).findIndex((v) => !Number.isFinite(v));
      throw new Error(`knn: expected finite features in ${path}, got ${data[row * d + col]} in row ${row} (column ${col})`);
    }
    if (!overflow && Math.fround(ss) === Infinity) overflow = { row, ss };
  }
  if (overflow) throw new Error(`knn: expected features whose squared length float32 holds (below 3.4e38) in ${path}, got ${overflow.ss.toPrecision(3)} in row ${overflow.row}`);
  return { data, rows: a.shape[0], dim: a.shape[1] };
}

// int32 or int64 (uint8 also passes), non-negative.
async function readLabels(path: string): Promise<Int32Array> {
  return labelsToInt32(await readNpy(path), path);
}

// Labels are 0..C-1, so the largest names C classes, each with a row of its own somewhere: a label past the number
// of labelled rows is a stray value, refused naming its file and row (else the vote would allocate a tally per class).
function checkClasses(files: [string, Int32Array][]): number {
  const rows = files.reduce((n, [, labels]) => n + labels.length, 0);
  let classes = 0;
  for (const [path, labels] of files) {
    labels.forEach((c, i) => {
      if (c >= rows) throw new Error(`knn: expected labels 0..C-1 with C at most the ${rows} labelled rows, got ${c} in row ${i} of ${path}`);
      classes = Math.max(classes, c + 1);
    });
  }
  return classes;
}

export const knn: Command = {
  summary: "DINO's weighted k-NN top-1/top-5 accuracy on feature files",
  usage: `usage: node dist/run.js knn --train X.npy --train-labels Y.npy --test Q.npy --test-labels L.npy
                           [--k 10,20,100,200] [--temperature 0.07] [--json] [--predictions P.npy]

  --train          training features, float32 (N, D)
  --train-labels   training labels, int32, int64 or uint8 (N)
  --test           test features, float32 (Q, D)
  --test-labels    test labels, int32, int64 or uint8 (Q)
  --k              neighbour counts, comma-separated (default ${DEFAULT_KS.join(",")}); one pass serves all
  --temperature    T in the vote weight exp(sim / T) (default ${DEFAULT_T})
  --json           print {temperature, classes, train, test, dim, results: {"<k>": {top1, top5, used}}}
  --predictions    also write each test row's top-1 class at each k, int32 (K, Q), rows in --k's order: with
                   --test-labels, a confusion matrix (which classes a model's errors go to)

Features are L2-normalised; similarity is cosine. Classes: 1 + the largest label. Accuracies in percent. A k
larger than the training set votes with every training row ("used" says how many).
Equal similarities rank the lower training row first, equal votes the lower class first.`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const paths = {
      train: required(flags.train, "train"),
      trainLabels: required(flags["train-labels"], "train-labels"),
      test: required(flags.test, "test"),
      testLabels: required(flags["test-labels"], "test-labels"),
    };
    const ks = flags.k?.map((s) => decimal(s) ?? NaN) ?? DEFAULT_KS;
    if (ks.some((k) => !Number.isInteger(k) || k < 1)) throw new UsageError(`flag --k: expected positive integers, got "${flags.k?.join(",")}"`);
    const twice = ks.find((k, i) => ks.indexOf(k) !== i);
    if (twice !== undefined) throw new UsageError(`flag --k: expected distinct neighbour counts, got ${twice} twice`);
    const predictionsPath = flags.predictions;
    if (predictionsPath !== undefined) {
      refuseOverwrite("predictions", predictionsPath, [["train", paths.train], ["train-labels", paths.trainLabels], ["test", paths.test], ["test-labels", paths.testLabels]]);
      await checkOutputFile(predictionsPath, "predictions");
    }
    const temperature = flags.temperature ?? DEFAULT_T;
    if (!(temperature >= MIN_TEMPERATURE)) throw new UsageError(`flag --temperature: expected a number >= 1/700 (${MIN_TEMPERATURE.toPrecision(3)}: below it the votes exp(sim / T) overflow), got ${temperature}`);

    // Read together, but a problem is reported in flag order, not in the order the reads happen to fail.
    const settled = await Promise.allSettled([readFeatures(paths.train), readLabels(paths.trainLabels), readFeatures(paths.test), readLabels(paths.testLabels)]);
    for (const s of settled) if (s.status === "rejected") throw s.reason;
    const [train, trainLabels, test, testLabels] = settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as [
      Awaited<ReturnType<typeof readFeatures>>,
      Awaited<ReturnType<typeof readLabels>>,
      Awaited<ReturnType<typeof readFeatures>>,
      Awaited<ReturnType<typeof readLabels>>,
    ];
    for (const [rows, labels, features, file] of [
      [train.rows, trainLabels, paths.train, paths.trainLabels],
      [test.rows, testLabels, paths.test, paths.testLabels],
    ] as const) {
      if (rows === 0) throw new Error(`knn: expected at least one row of features in ${features}, got 0`);
      if (labels.length !== rows) throw new Error(`knn: expected ${rows} labels in ${file}, one per row of ${features}, got ${labels.length}`);
    }
    if (train.dim !== test.dim) {
      throw new Error(`knn: expected features of dimension ${train.dim} in ${paths.test}, as in ${paths.train}, got (${test.rows}, ${test.dim})`);
    }

    const classes = checkClasses([[paths.trainLabels, trainLabels], [paths.testLabels, testLabels]]);
    // A test class no training row has can never be voted for: its rows count as wrong, which is DINO's arithmetic,
    // but most often labels numbered in two ways (a split's classes 5-9 against 0-4), which a warning names.
    const trained = new Set(trainLabels);
    const unseen = testLabels.filter((c) => !trained.has(c));
    if (unseen.length > 0) {
      const which = [...new Set(unseen)].sort((a, b) => a - b);
      console.error(`warning: knn: ${unseen.length} of ${testLabels.length} test rows (${paths.testLabels}) have a class no training row has (${which.slice(0, 10).join(", ")}${which.length > 10 ? ", ..." : ""}): no vote can name it`);
    }

    await initEngine();
    const results = await knnClassify({ train: train.data, trainLabels, test: test.data, testLabels, ks, temperature, classes });
    if (predictionsPath !== undefined) {
      const all = new Int32Array(ks.length * test.rows);
      results.forEach((r, i) => all.set(r.predictions, i * test.rows));
      await writeNpy(predictionsPath, all, [ks.length, test.rows]);
    }
    if (flags.json) {
      const byK = Object.fromEntries(results.map((r) => [String(r.k), { top1: r.top1, top5: r.top5, used: r.used }]));
      console.log(JSON.stringify({ temperature, classes, train: train.rows, test: test.rows, dim: train.dim, results: byK }));
      return;
    }
    const sizes = `${train.rows} train, ${test.rows} test, ${classes} classes, D = ${train.dim}`;
    console.log(`k-NN, weighted vote exp(sim / ${temperature}): ${sizes}`);
    console.log("     k    top-1    top-5");
    for (const r of results) {
      const used = r.used < r.k ? `   (${r.used} used: the training set has ${train.rows} rows)` : "";
      console.log(`${String(r.k).padStart(6)}  ${r.top1.toFixed(2).padStart(7)}  ${r.top5.toFixed(2).padStart(7)}${used}`);
    }
  },
};
