// The forgetting study (the paper's Table 1 and Figure 2). For every strategy x learning rate x seed ("cell"):
// fine-tune the backbone on the transfer domain with a new linear head, keep the checkpoint with the best transfer
// test accuracy, then measure how well that checkpoint's backbone still separates the source domain: DINO's k-NN
// accuracy, bank = source training images, queries = source test images. The original backbone's k-NN accuracy is
// measured once, as the reference.
//
// Run folder:
//   config.json           the checked config (configJson); a rerun with another config is refused (force starts
//                         over); the microBatch settings aside, which only split each step into passes
//   backbone.json         where the backbone came from (checkpoint, or pre-training hash and time)
//   baseline.json         the original backbone's k-NN accuracy
//   cells/<id>/           one per cell: train checkpoints and metrics (train/train.ts), result.json when finished
//   results.json, results.csv, table.md, figure2.svg, figure2.png   (study/results.ts, report.ts, figure.ts)
// Every file is written atomically. A cell whose result.json exists is skipped on rerun; an unfinished one resumes
// from its last training checkpoint. So a killed study, rerun with the same command, finishes only what is left,
// and computes what an uninterrupted run does (test/study/faults.test.ts kills one at every stage). The rerun also
// removes the temporary files of the writes the kill cut short, in the run folder and the pre-training's cache.
import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Dataset } from "../data/dataset.js";
import { Loader } from "../data/loader.js";
import { type DataSpec, openData } from "../data/spec.js";
import { Transform } from "../data/transforms.js";
import { loadVit } from "../vit/load.js";
import type { VisionTransformer } from "../vit/model.js";
import { type Strategy, applyStrategy, countParameters, depthProblem, strategyName } from "../peft/strategy.js";
import { countFor } from "../peft/count.js";
import { MANIFEST_KEY, type Manifest, manifestOf, sha256File } from "../peft/save.js";
import { extractFeatures } from "../eval/features.js";
import { knnClassify } from "../eval/knn.js";
import { evaluateAccuracy } from "../eval/accuracy.js";
import { type StudyConfig, configJson, parseStudyConfig, ratesFor, studyIdentity } from "./config.js";
import { pretrain, pretrainDir } from "../train/pretrain.js";
import { PassTooLargeError, train } from "../train/train.js";
import { loadTrainable } from "../train/checkpoint.js";
import type { ProgressStream } from "../train/progress.js";
import { removeStaleTemporaries, writeJsonAtomic } from "../util/atomic.js";
import { type BaselineResult, type CellResult, type KnnScores, type StudyResults, summarize } from "./results.js";
import { writeReport } from "./report.js";

export interface ExperimentOptions {
  config: StudyConfig;
  out: string; // the run folder
  force?: boolean; // discard the run folder's earlier cells and results, e.g. after changing the config
  log?: (line: string) => void; // status lines (the CLI passes stderr)
  progress?: ProgressStream; // training progress lines (the CLI passes stderr)
  maxCells?: number; // stop after training this many cells (finished ones skipped do not count)
}

export interface ExperimentResult {
  results: StudyResults;
  ran: string[]; // cell ids trained by this call
  skipped: string[]; // cell ids already finished before
  complete: boolean; // every cell finished (false when maxCells stopped the run)
  files: string[]; // the report files, when complete
  seconds: number;
}

export interface Cell {
  id: string; // file-name safe: "lora-r8_lr0.01_s0"
  strategy: Strategy;
  lr: number;
  seed: number;
}

export function cellsOf(config: StudyConfig): Cell[] {
  const cells: Cell[] = [];
  for (const strategy of config.strategies) {
    const name = strategyName(strategy).replace(/[@,]/g, "_");
    for (const lr of ratesFor(config, strategy)) {
      for (const seed of config.seeds) cells.push({ id: `${name}_lr${lr}_s${seed}`, strategy, lr, seed });
    }
  }
  return cells;
}

interface StudyData {
  bank: Dataset;
  queries: Dataset;
  transferTrain: Dataset;
  transferTest: Dataset;
  pretrain?: Dataset;
}

async function openAll(config: StudyConfig): Promise<StudyData> {
  const seed = config.seeds[0];
  // `what` is the config key of the data, named in every error.
  const open = async (spec: DataSpec, what: string) => {
    let ds: Dataset;
    try {
      ds = await openData(spec, seed);
    } catch (e) {
      throw new Error(`experiment: ${what}: ${(e as Error).message}`);
    }
    if (ds.length === 0) throw new Error(`experiment: ${what}: expected images, got none (check classes, perClass and fraction)`);
    return ds;
  };
  const data: StudyData = {
    bank: await open(config.knn.bank, "knn.bank"),
    queries: await open(config.knn.queries, "knn.queries"),
    transferTrain: await open(config.transfer.train, "transfer.train"),
    transferTest: await open(config.transfer.test, "transfer.test"),
    pretrain: config.backbone.pretrain && (await open(config.backbone.pretrain.data, "backbone.pretrain.data")),
  };
  if (data.transferTest.classes.length !== data.transferTrain.classes.length) {
    throw new Error(`experiment: expected transfer.test to have the ${data.transferTrain.classes.length} classes of transfer.train, got ${data.transferTest.classes.length}`);
  }
  return data;
}

function disposeModel(model: VisionTransformer): void {
  for (const [, t] of model.parameters()) t.dispose();
}

// DINO's k-NN accuracy of a backbone: features of every bank and query image, in loader batches so that the
// images of a large bank never sit in memory at once.
async function knnScores(model: VisionTransformer, config: StudyConfig, data: StudyData, size: number): Promise<{ scores: KnnScores; seconds: number }> {
  const started = performance.now();
  const featuresOf = async (ds: Dataset, spec: DataSpec) => {
    const loader = new Loader(ds, new Transform({ kind: spec.transform, size }), { batchSize: config.knn.batchSize });
    const out = new Float32Array(ds.length * model.width);
    const labels = new Int32Array(ds.length);
    let rows = 0;
    for await (const b of loader.epoch(0)) {
      const n = b.labels.length;
      const { features } = await extractFeatures(model, b.images, [n, 3, size, size], { batch: config.knn.batchSize });
      out.set(features, rows * model.width);
      labels.set(b.labels, rows);
      rows += n;
    }
    return { features: out.subarray(0, rows * model.width), labels: labels.subarray(0, rows) };
  };
  const bank = await featuresOf(data.bank, config.knn.bank);
  const queries = await featuresOf(data.queries, config.knn.queries);
  const classes = Math.max(data.bank.classes.length, data.queries.classes.length);
  const results = await knnClassify({
    train: bank.features,
    trainLabels: bank.labels,
    test: queries.features,
    testLabels: queries.labels,
    ks: config.knn.ks,
    temperature: config.knn.temperature,
    classes,
  });
  const scores: KnnScores = Object.fromEntries(results.map((r) => [String(r.k), { top1: r.top1, top5: r.top5 }]));
  return { scores, seconds: (performance.now() - started) / 1000 };
}

async function readJson<T = unknown>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, "utf8")) as T;
}

// Refuses to mix results of two configs in one folder, unless forced (which clears the earlier results).
async function claimFolder(out: string, config: StudyConfig, force: boolean, log: (l: string) => void): Promise<void> {
  const path = join(out, "config.json");
  const now = studyIdentity(config);
  if (existsSync(path)) {
    let before: string;
    try {
      before = studyIdentity(parseStudyConfig(await readJson(path), path));
    } catch (e) {
      before = `unreadable: ${(e as Error).message}`;
    }
    if (before !== now) {
      if (!force) throw new Error(`experiment: ${out} holds a run of another config (${path}); use --force to discard it, or choose another --out`);
    }
    if (force) {
      log(`--force: discarding the earlier results in ${out}`);
      for (const name of ["cells", "baseline.json", "backbone.json", "results.json", "results.csv", "table.md", "figure2.svg", "figure2.png"]) {
        await rm(join(out, name), { recursive: true, force: true });
      }
    }
  }
  await writeJsonAtomic(path, configJson(config));
}

// A pass that outgrew a storage binding, named by the config key that sets its size (the trainer knows no keys);
// any other error as it is.
export function passTooLarge(e: unknown, key: string): unknown {
  if (!(e instanceof PassTooLargeError)) return e;
  return new Error(`${e.message} (a smaller ${key}, now ${e.microBatch}, keeps each pass's tensors within one binding)`, { cause: e });
}

export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResult> {
  const started = performance.now();
  const { config } = o;
  const log = o.log ?? (() => undefined);
  const out = resolve(o.out);
  await claimFolder(out, config, o.force ?? false, log);
  const sweep = async (dir: string) => {
    const n = await removeStaleTemporaries(dir);
    if (n > 0) log(`removed ${n} temporary file(s) of writes cut short by an interrupted run, in ${dir}`);
  };
  await sweep(out);
  const data = await openAll(config);

  // The backbone: a checkpoint file, or the cached supervised pre-training.
  let backbonePath: string;
  let heads = config.backbone.heads;
  let backboneNote: string;
  if (config.backbone.pretrain) {
    const spec = config.backbone.pretrain;
    await sweep(pretrainDir(spec, data.pretrain!));
    log(`backbone: supervised pre-training on ${data.pretrain!.identity.name} (${data.pretrain!.identity.subset ?? "all"}), a stand-in for DINO's self-supervised pre-training`);
    const p = await pretrain(spec, data.pretrain!, o.progress).catch((e) => {
      throw passTooLarge(e, "backbone.pretrain.microBatch");
    });
    log(p.cached ? `backbone: cached ${p.path}` : `backbone: pre-trained in ${p.seconds.toFixed(1)} s, final loss ${p.finalLoss?.toFixed(4)}, saved ${p.path}`);
    backbonePath = p.path;
    heads = spec.model.heads;
    backboneNote = `ViT (${spec.model.width} wide, ${spec.model.depth} blocks, ${spec.model.heads} heads, patch ${spec.model.patchSize}) pre-trained with labels for ${spec.steps} steps on ${data.pretrain!.identity.name} ${data.pretrain!.identity.subset ?? ""} (supervised, a stand-in for DINO)`;
    if (!existsSync(join(out, "backbone.json"))) await writeJsonAtomic(join(out, "backbone.json"), { kind: "pretrain", path: p.path, hash: p.hash, seconds: p.seconds });
  } else {
    backbonePath = resolve(config.backbone.checkpoint!);
    backboneNote = `checkpoint ${backbonePath}`;
    await writeJsonAtomic(join(out, "backbone.json"), { kind: "checkpoint", path: backbonePath });
  }
  const load = async () => (await loadVit(backbonePath, { heads, key: config.backbone.key })).model;
  // Each cell's checkpoints name their base by hash, so that `export` can rebuild the fine-tuned model.
  const base = { file: backbonePath, sha256: await sha256File(backbonePath) };

  // Everything the cells need is checked before the first one trains.
  const original = await load();
  const vit = original.config;
  const size = config.imageSize ?? vit.imageSize;
  const classes = data.transferTrain.classes.length;
  for (const [i, s] of config.strategies.entries()) {
    const problem = depthProblem(s, vit.depth);
    if (problem) throw new Error(`experiment: strategies[${i}]: expected ${problem} (the backbone's), got ${strategyName(s)}`);
  }
  const baselinePath = join(out, "baseline.json");
  if (!existsSync(baselinePath)) {
    log(`k-NN of the original backbone: ${data.bank.length} bank images, ${data.queries.length} queries`);
    const { scores, seconds } = await knnScores(original, config, data, size);
    const baseline: BaselineResult = { knn: scores, seconds };
    await writeJsonAtomic(baselinePath, baseline);
  }
  disposeModel(original);
  const baseline = await readJson<BaselineResult>(baselinePath);
  log(`original backbone: source k-NN top-1 ${baseline.knn[config.knn.reportK].top1.toFixed(2)}% (k = ${config.knn.reportK})`);

  const cells = cellsOf(config);
  const ran: string[] = [];
  const skipped: string[] = [];
  for (const [i, cell] of cells.entries()) {
    const dir = join(out, "cells", cell.id);
    const resultPath = join(dir, "result.json");
    if (existsSync(resultPath)) {
      skipped.push(cell.id);
      continue;
    }
    if (o.maxCells !== undefined && ran.length >= o.maxCells) break;
    log(`cell ${i + 1}/${cells.length}: ${strategyName(cell.strategy)}, lr ${cell.lr}, seed ${cell.seed}`);
    const result = await runCell(cell, { config, data, dir, size, classes, load, base, progress: o.progress });
    await writeJsonAtomic(resultPath, result);
    log(`  transfer ${result.transferAccuracy.toFixed(2)}% (best at step ${result.bestStep}), source k-NN ${result.knn[config.knn.reportK].top1.toFixed(2)}%, ${result.trainSeconds.toFixed(1)} s training`);
    ran.push(cell.id);
  }

  const finished: CellResult[] = [];
  for (const cell of cells) {
    const path = join(out, "cells", cell.id, "result.json");
    if (existsSync(path)) finished.push(await readJson<CellResult>(path));
  }
  const complete = finished.length === cells.length;
  const results = summarize(config, baseline, finished, {
    backbone: backboneNote,
    data: Object.fromEntries(Object.entries(data).filter(([, d]) => d).map(([k, d]) => [k, d!.identity])),
    imageSize: size,
  });
  const files = complete ? await writeReport(out, results) : [];
  return { results, ran, skipped, complete, files, seconds: (performance.now() - started) / 1000 };
}

interface CellContext {
  base: Manifest["base"]; // the backbone's file and SHA-256
  config: StudyConfig;
  data: StudyData;
  dir: string;
  size: number;
  classes: number;
  load: () => Promise<VisionTransformer>;
  progress?: ProgressStream;
}

async function runCell(cell: Cell, c: CellContext): Promise<CellResult> {
  const { config, data, size } = c;
  const settings = { ...config.training, lr: cell.lr };
  const model = await c.load();
  const strategy = cell.strategy.kind === "lora" ? { ...cell.strategy, seed: cell.seed } : cell.strategy;
  const name = strategyName(cell.strategy);
  const counts = countFor({ ...model.config, classes: c.classes }, strategy);
  const trainable = applyStrategy(model, strategy, c.classes, cell.seed);
  const manifest = manifestOf(trainable, { strategyOptions: strategy, classes: c.classes, heads: model.config.heads, seed: cell.seed, base: c.base, hyperParameters: { ...settings } });
  try {
    const loader = (ds: Dataset, spec: DataSpec, shuffle: boolean) =>
      new Loader(ds, new Transform({ kind: spec.transform, size }), { batchSize: settings.batchSize, shuffle, seed: cell.seed, dropLast: shuffle });
    const testLoader = loader(data.transferTest, config.transfer.test, false);
    const result = await train({
      model,
      trainable,
      train: loader(data.transferTrain, config.transfer.train, true),
      settings,
      evaluate: () => evaluateAccuracy(model, testLoader),
      dir: c.dir,
      metadata: { [MANIFEST_KEY]: JSON.stringify(manifest) },
      progress: c.progress && { stream: c.progress, label: `${name} lr ${cell.lr}` },
    }).catch((e) => {
      throw passTooLarge(e, "training.microBatch");
    });
    // The backbone of the best checkpoint (by transfer accuracy) is the one whose forgetting is measured.
    await loadTrainable(result.bestPath, trainable);
    const knn = await knnScores(model, config, data, size);
    return {
      id: cell.id,
      strategy: name,
      lr: cell.lr,
      seed: cell.seed,
      trainableParams: countParameters(trainable),
      paperParams: counts.paper,
      totalParams: counts.total,
      transferAccuracy: result.bestAccuracy!,
      finalTransferAccuracy: result.finalAccuracy!,
      bestStep: result.bestStep,
      finalLoss: result.finalLoss,
      knn: knn.scores,
      trainSeconds: result.seconds,
      imagesPerSecond: result.imagesPerSecond,
      knnSeconds: knn.seconds,
    };
  } finally {
    for (const [, p] of trainable) p.dispose();
    disposeModel(model);
  }
}
