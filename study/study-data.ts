// The study's data opened and checked: every data spec of the config opened once (each error naming its key), the
// splits that must not share images or classes refused before any work, what the data bounds (batch sizes, the
// k-NN's neighbours) checked, and the identities a run folder records, so that a later call on it refuses other data.
import { existsSync } from "node:fs";
import { type Dataset, type DatasetIdentity, classMismatch, portableIdentity, sharedImages } from "../data/dataset.js";
import { type DataSpec, type OpenedDatasets, openData, transformFor } from "../data/spec.js";
import { Loader } from "../data/loader.js";
import { Transform } from "../data/transforms.js";
import { TransformCache } from "../data/transform-cache.js";
import { runtime } from "../engine/runtime.js";
import { readJsonFile } from "../util/json-file.js";
import { differences } from "../util/differences.js";
import type { StudyConfig } from "./config.js";
import { splitForValidation } from "./validation.js";

export interface StudyData {
  bank: Dataset;
  queries: Dataset;
  transferTrain: Dataset; // without the images held out for transfer.val
  transferTest: Dataset;
  transferVal?: Dataset; // with transfer.val: the images that choose the checkpoints (study/validation.ts)
  knnVal?: Dataset; // with knn.val: the source images that choose the rates in the queries' stead (study/knn-val.ts)
  otherBanks?: Dataset[]; // with knn.otherBanks: other draws of the bank, in the config's order (study/knn-banks.ts)
  pretrain?: Dataset;
  opened: OpenedDatasets; // the whole datasets they were drawn from, each opened once
  transformed: TransformCache; // their transformed images, kept for every cell's evaluations and k-NN
}

export async function openStudyData(config: StudyConfig): Promise<StudyData> {
  const seed = config.seeds[0];
  const opened: OpenedDatasets = new Map();
  // `what` is the config key of the data, named in every error.
  const open = async (spec: DataSpec, what: string) => {
    let ds: Dataset;
    try {
      ds = await openData(spec, seed, opened);
    } catch (e) {
      throw new Error(`experiment: ${what}: ${(e as Error).message}`);
    }
    if (ds.length === 0) throw new Error(`experiment: ${what}: expected images, got none (check classes, perClass and fraction)`);
    return ds;
  };
  // All at once, so that the files' reads and inflation overlap on libuv's pool (the default study's two
  // Fashion-MNIST files were read one after the other); the error reported is the first in this order.
  const [bank, queries, transferTrain, transferTest] = [
    open(config.knn.bank, "knn.bank"),
    open(config.knn.queries, "knn.queries"),
    open(config.transfer.train, "transfer.train"),
    open(config.transfer.test, "transfer.test"),
  ];
  const pretrain = config.backbone.pretrain && open(config.backbone.pretrain.data, "backbone.pretrain.data");
  for (const p of [bank, queries, transferTrain, transferTest, pretrain]) if (p) p.catch(() => undefined); // awaited below, in order
  const data: StudyData = {
    bank: await bank,
    queries: await queries,
    transferTrain: await transferTrain,
    transferTest: await transferTest,
    pretrain: pretrain && (await pretrain),
    opened,
    transformed: new TransformCache(runtime().settings.imageCacheBytes),
  };
  const split = await splitForValidation(config, data.transferTrain, data.transferTest, open);
  data.transferTrain = split.train;
  if (split.val) data.transferVal = split.val;
  for (const [a, b, what] of [[data.queries, data.bank, ["knn.queries", "knn.bank"]], [data.transferTest, data.transferTrain, ["transfer.test", "transfer.train"]]] as const) {
    const mismatch = classMismatch(a, b, what);
    if (mismatch) throw new Error(`experiment: ${mismatch}`);
  }
  if (config.knn.val) {
    const val = (data.knnVal = await open(config.knn.val, "knn.val"));
    // A query of knn.val in the bank would find itself; one among the queries would score a rate it chose.
    const problem = classMismatch(val, data.bank, ["knn.val", "knn.bank"]) ?? sharedImages(val, data.bank, ["knn.val", "knn.bank"]) ?? sharedImages(val, data.queries, ["knn.val", "knn.queries"]);
    if (problem) throw new Error(`experiment: ${problem}`);
  }
  if (config.knn.otherBanks) data.otherBanks = await openOtherBanks(config.knn.otherBanks, data, open);
  return data;
}

// knn.otherBanks opened: each another draw of the bank, so of its classes and size, and sharing no image with it,
// with the queries (a query would find itself) or with another of them (two draws that overlap vary less).
async function openOtherBanks(specs: DataSpec[], data: StudyData, open: (spec: DataSpec, what: string) => Promise<Dataset>): Promise<Dataset[]> {
  const banks: Dataset[] = [];
  for (const [i, spec] of specs.entries()) {
    const what = `knn.otherBanks[${i}]`;
    const bank = await open(spec, what);
    const others: [Dataset, string][] = [[data.bank, "knn.bank"], [data.queries, "knn.queries"], ...banks.map((b, j): [Dataset, string] => [b, `knn.otherBanks[${j}]`])];
    const problem =
      classMismatch(bank, data.bank, [what, "knn.bank"]) ??
      (bank.length !== data.bank.length ? `${what}: expected as many images as knn.bank (${data.bank.length}: another draw of it), got ${bank.length}` : undefined) ??
      others.map(([other, name]) => sharedImages(bank, other, [what, name])).find((p) => p);
    if (problem) throw new Error(`experiment: ${problem}`);
    banks.push(bank);
  }
  return banks;
}

// A loader of the study's images through the spec's transform in training's batches: in order (the images that score
// a cell: transfer.test, transfer.val), or shuffled by `seed` with the last partial batch dropped (a cell's training
// images). The same batches wherever a cell is scored (the runner, the analysis's resets), so that its answers
// repeat image by image.
export function studyLoader(config: StudyConfig, ds: Dataset, spec: DataSpec, size: number, cache: TransformCache | undefined, order = { shuffle: false, seed: 0 }): Loader {
  return new Loader(ds, new Transform(transformFor(spec, size)), { batchSize: config.training.batchSize, shuffle: order.shuffle, seed: order.seed, dropLast: order.shuffle, cache });
}

// What the data bound, checked once it is open and before the run folder is touched: a training batch of more
// images than transfer.train holds, or more neighbours than the bank, would fail (or mislabel the table) later.
export function checkDataFit(config: StudyConfig, data: StudyData): void {
  const problems: string[] = [];
  const train = data.transferTrain.length;
  if (config.training.batchSize > train) problems.push(`training.batchSize: expected at most the ${train} images of transfer.train${data.transferVal ? " (after transfer.val's)" : ""} (every step takes a whole batch), got ${config.training.batchSize}`);
  const pretrain = config.backbone.pretrain;
  if (pretrain && data.pretrain && pretrain.batchSize > data.pretrain.length) {
    problems.push(`backbone.pretrain.batchSize: expected at most the ${data.pretrain.length} images of backbone.pretrain.data, got ${pretrain.batchSize}`);
  }
  const over = config.knn.ks.filter((k) => k > data.bank.length);
  if (over.length > 0) problems.push(`knn.ks: expected neighbour counts of at most the ${data.bank.length} images of knn.bank, got ${over.join(", ")}`);
  if (problems.length > 0) throw new Error(`experiment: ${problems.join("; ")}`);
}

// The identities of the study's data (data/dataset.ts: file names and sizes, the subset drawn, the count), without
// the folder they were read from.
export function dataIdentities(data: StudyData): Record<string, Omit<DatasetIdentity, "root">> {
  const sets = { bank: data.bank, queries: data.queries, transferTrain: data.transferTrain, transferTest: data.transferTest, transferVal: data.transferVal, pretrain: data.pretrain };
  return Object.fromEntries(Object.entries(sets).flatMap(([key, ds]) => (ds ? [[key, portableIdentity(ds.identity)]] : [])));
}

// The data the baseline (and so the cells) was computed on, against the data as it is now: files replaced or
// grown under the same config would mix two datasets in one table. baseline.json of an earlier build holds none.
export async function checkSameData(baselinePath: string, data: StudyData): Promise<void> {
  if (!existsSync(baselinePath)) return;
  const recorded = ((await readJsonFile(baselinePath, "experiment")) as { data?: Record<string, unknown> } | null)?.data;
  if (recorded === undefined) return;
  const changed = differences(recorded, dataIdentities(data));
  if (changed.length > 0) {
    throw new Error(`experiment: the data differs from the data of this run folder's baseline and cells (${baselinePath}):\n  ${changed.map((d) => d.text).join("\n  ")}\nrestore the files, or start over with --force or another --out`);
  }
}
