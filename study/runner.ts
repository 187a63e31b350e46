// The forgetting study (the paper's Table 1 and Figure 2). For every strategy x learning rate x seed ("cell"):
// fine-tune the backbone on the transfer domain with a new linear head, keep the checkpoint with the best transfer
// test accuracy (or, with transfer.val, the best on val: study/validation.ts), then measure how well that
// checkpoint's backbone still separates the source domain: DINO's k-NN accuracy (study/study-knn.ts), bank = source
// training images, queries = source test images. The original backbone's k-NN accuracy is measured once, as the
// reference. The data is opened and checked by study/study-data.ts. With knn.atSteps, each cell's backbone is also
// scored at those steps of its fine-tuning (the forgetting curve), as the model is there: LoRA active, added blocks
// in place.
//
// Run folder:
//   prepare.claim.json    while a worker prepares the backbone and baseline.json (study/claims.ts)
//   config.json           the checked config (configJson). A rerun may add or remove strategies, learning rates
//                         and seeds (and change name, selectBy, the microBatch settings): the finished cells stay,
//                         config.json becomes the new config. Any other change is refused naming its keys
//                         (study/changes.ts), unless `force` starts over
//   backbone.json         where the backbone came from (checkpoint, or pre-training hash and time) and its SHA-256
//   baseline.json         the original backbone's k-NN accuracy, its queries' answers (the reference of each row's
//                         forgetting, added on a rerun to a file of an earlier build), and the identities of the data
//                         it was measured on. Later calls on the folder refuse another backbone file or other data;
//                         with knn.otherBanks, knn-banks.json beside it: the original's queries against those banks
//   cells/<id>/           one per cell: train checkpoints and metrics (train/train.ts), result.json when finished
//                         or diverged; knn-curve.json, the forgetting curve's points so far (study/knn-curve.ts);
//                         claim.json while a worker trains it (study/claims.ts); with knn.val, knn-val.json, the
//                         best checkpoint's scores on its images (study/knn-val.ts), made before result.json and
//                         for finished cells whenever knn.val is added or changed
//   results.json, results.csv, table.md   (study/results.ts, report.ts)
//   figure2.*, forgetting.*, figure3.*   the figures as .vl.json (Vega-Lite), .svg and .png (study/figures/);
//                         forgetting.* only with knn.atSteps, figure3.* with Block Expansion at several p and rates
//   analysis.*, analysis-*.*  with the `analysis` key, once every cell has a result: the per-block analysis
//                         (study/analysis.ts), kept on a rerun that changes nothing it depends on
// Every file is written atomically. A cell whose result.json exists is skipped on rerun; an unfinished one resumes
// from its last training checkpoint. So a killed study, rerun with the same command, finishes only what is left,
// and computes what an uninterrupted run does (test/study/faults.test.ts kills one at every stage). The rerun also
// removes the temporary files of the writes the kill cut short, in the run folder and the pre-training's cache.
//
// A cell whose training diverges (a non-finite loss or parameter: train/train.ts DivergedError) is a result, not
// an error: its result.json records the step and loss, the study goes on, the table names it, and a rerun skips it
// unless `retryDiverged` deletes its folder to train it again from scratch. A diverged pre-training ends the study,
// since every cell needs the backbone. The log says at the start which cells are skipped, when a cell resumes, and
// after each cell an estimate of the time left.
//
// Several workers can share a run folder (experiment --cells / --shard / --workers, Slurm array tasks: study/cells.ts,
// study/slurm.ts): each worker claims a cell before training it, and the preparation (pre-training, the original
// backbone's k-NN) before doing it, so nothing runs twice; a worker waits for the cells of its selection that others
// hold, and a stale claim (a dead worker) is taken over. A worker given a selection leaves the report to `collect`,
// which writes it from the cells finished so far and names the missing ones, and the upgrades of finished cells of
// earlier builds to the preparation and `collect`.
import { existsSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Dataset } from "../data/dataset.js";
import type { DataSpec } from "../data/spec.js";
import { loadVit } from "../vit/load.js";
import { HeadsError, readArchitecture } from "../vit/checkpoint.js";
import type { VisionTransformer } from "../vit/model.js";
import type { Tensor } from "../engine/tensor.js";
import type { Loader } from "../data/loader.js";
import type { TrainSettings } from "../train/settings.js";
import { applyStrategy, countParameters, strategyName, strategyProblem } from "../peft/strategy.js";
import { countFor } from "../peft/count.js";
import { MANIFEST_KEY, type Manifest, loadFinetuned, manifestOf, sha256File } from "../peft/save.js";
import { evaluateAccuracy, evaluateCorrect } from "../eval/accuracy.js";
import { type StudyConfig, configJson, headInitFor, isDinoPretrain, parseStudyConfig } from "./config.js";
import { type ConfigChanges, configChanges } from "./changes.js";
import { pretrain, pretrainDir } from "../train/pretrain.js";
import { dinoPretrain, dinoPretrainDir } from "../train/dino-pretrain.js";
import { CollapseError } from "../train/dino-collapse.js";
import { DivergedError, PassTooLargeError, type TrainResult, train } from "../train/train.js";
import { checkPrecisionOnDevice } from "../train/mixed-precision.js";
import { FORMAT, LAST_CHECKPOINT, loadTrainable, snapshot, sweepTemporaries } from "../train/checkpoint.js";
import { describeBackbone, describeCheckpoint } from "../train/backbone-manifest.js";
import { type F32Tensor, readSafetensors, readSafetensorsHeader, writeSafetensors } from "../vit/safetensors.js";
import { type ProgressStream, formatDuration } from "../train/progress.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { readJsonFile } from "../util/json-file.js";
import { resolveShipped } from "../util/shipped.js";
import { type BaselineResult, type CellOutcome, type CellResult, type DivergedCell, type StudyResults, isDiverged, modelLabel, packCorrect, summarize } from "./results.js";
import { REPORT_FILES, writeReport } from "./report.js";
import { readBackboneRecord, readBaseline, readCellOutcome } from "./result-files.js";
import { KnnCurve } from "./knn-curve.js";
import { type StudyData, checkDataFit, checkSameData, dataIdentities, openStudyData, studyLoader } from "./study-data.js";
import { curvePoint, knnScores, otherBankScores } from "./study-knn.js";
import { addBaselineAnswers, copyOriginalBanks } from "./original-answers.js";
import { selectionOf, valTransformSpec } from "./validation.js";
import { headOf, headTensors, startingHead, writeHead } from "./probe-head.js";
import { type Cell, KNN_CURVE_FILE, KNN_BANKS_FILE, PROBE_FOLDER, cellCheckpointPath, cellClaimPath, cellFolder, cellKnnBanksPath, cellsFolder, cellResultPath, cellsOf, originalKnnBanksPath, stepFile } from "./cells.js";
import { scoreKnnVal } from "./knn-val.js";
import { scoreOtherBanks } from "./knn-banks.js";
import { addValAnswers } from "./val-answers.js";
import { addGivenClasses } from "./given-answers.js";
import { CLAIM_TIMING, type Claim, type ClaimOwner, type ClaimTiming, claimOrWait, describeOwner, removeStaleClaim, thisOwner, tryClaim } from "./claims.js";
import { ANALYSIS_FILES, analyzeRun } from "./analysis.js";
import { ownWaitEstimate } from "../engine/timing.js";

export interface ExperimentOptions {
  config: StudyConfig;
  out: string; // the run folder
  force?: boolean; // discard the run folder's earlier cells and results, e.g. after a config change they do not survive
  retryDiverged?: boolean; // train the cells that diverged in an earlier run again, from scratch (else they are skipped)
  log?: (line: string) => void; // status lines (the CLI passes stderr)
  progress?: ProgressStream; // training progress lines (the CLI passes stderr)
  maxCells?: number; // stop after training this many cells (finished ones skipped do not count)
  // Only these cells (numbers from 1, study/cells.ts). Other workers may share the folder: config.json must be
  // this config, and the report is left to `collect`.
  cells?: number[];
  prepareOnly?: boolean; // stop after the backbone and the original backbone's k-NN
  collect?: boolean; // train nothing: write the report from the cells finished so far, naming the missing ones
  owner?: ClaimOwner; // who claims cells (default: this process, without Slurm ids)
  claimTiming?: ClaimTiming; // default CLAIM_TIMING
}

export interface ExperimentResult {
  results: StudyResults;
  ran: string[]; // cell ids trained by this call, diverged or not
  skipped: string[]; // cell ids with a result before this call (finished or diverged), not trained again
  diverged: string[]; // cell ids whose training diverged, in this call or before
  complete: boolean; // every cell has a result (false when maxCells stopped the run)
  missing: string[]; // cell ids without a result
  files: string[]; // the report files: when complete (and no selection of cells), or with collect
  seconds: number;
}

const readJson = (path: string) => readJsonFile(path, "experiment");

// A checkpoint backbone's depth and width are known once its header is read: every strategy is checked against
// them before any work (a pre-trained one's, with the config), and the images' size against its patch. A pinned
// SHA-256 is checked first.
async function checkBackboneFit(config: StudyConfig): Promise<void> {
  const { checkpoint, heads, key, sha256 } = config.backbone;
  let arch: { patchSize: number; imageSize: number } | undefined = config.backbone.pretrain?.model;
  if (checkpoint !== undefined) {
    const path = resolveShipped(checkpoint, "experiment: backbone.checkpoint");
    if (sha256 !== undefined) {
      const actual = await sha256File(path);
      if (actual !== sha256) throw new Error(`experiment: backbone.sha256: expected ${path} to hash to ${sha256}, got ${actual} (another file, or a damaged copy)`);
    }
    const read = await readArchitecture(path, { heads, key }).catch((e) => {
      throw e instanceof HeadsError ? new Error(`experiment: backbone.heads: ${e.message}`, { cause: e }) : e;
    });
    const problems = config.strategies.flatMap((s, i) => {
      const problem = strategyProblem(s, read);
      return problem ? [`strategies[${i}]: expected ${problem} (backbone.checkpoint ${path}), got ${strategyName(s)}`] : [];
    });
    if (problems.length > 0) throw new Error(`experiment: ${problems.join("; ")}`);
    arch = read;
  }
  if (arch && config.imageSize !== undefined && config.imageSize % arch.patchSize !== 0) {
    throw new Error(`experiment: imageSize: expected a multiple of the backbone's patch size ${arch.patchSize} (its images are ${arch.imageSize} px), got ${config.imageSize}`);
  }
}

// Refuses to mix the cells of two studies in one folder, unless forced (which clears the earlier results); a config
// that only adds or removes cells (study/changes.ts) keeps the finished ones, and the log says what changed.
async function claimFolder(out: string, config: StudyConfig, force: boolean, log: (l: string) => void): Promise<void> {
  const path = join(out, "config.json");
  if (existsSync(path) && force) {
    log(`--force: discarding the earlier results in ${out}`);
    // The files made from the results first, the results (baseline, cells) last: a kill in between leaves a folder
    // that still holds results, which a rerun without --force refuses, never a report or analysis (reused while its
    // cells' ids match) that a new config would take for its own.
    for (const name of [...ANALYSIS_FILES, ...REPORT_FILES, "backbone.json", KNN_BANKS_FILE, "baseline.json", "cells"]) {
      await rm(join(out, name), { recursive: true, force: true });
    }
  } else if (existsSync(path) && !(await holdsResults(out))) {
    // An earlier call that stopped before any result (an error in its data, say) leaves nothing to keep.
    if (JSON.stringify(await readJson(path).catch(() => undefined)) !== JSON.stringify(configJson(config))) log(`config changed: ${out} holds no results yet, so the new config replaces ${path}`);
  } else if (existsSync(path)) {
    const { before, changes } = await folderChanges(out, config);
    if (changes.keeping.length > 0 && before) {
      const had = cellsOf(before).map((c) => c.id);
      const now = cellsOf(config).map((c) => c.id);
      log(`config changed, finished cells kept: ${changes.keeping.join("; ")}`);
      const added = now.filter((id) => !had.includes(id));
      const dropped = had.filter((id) => !now.includes(id));
      if (added.length > 0) log(`  ${added.length} cell(s) added: ${added.join(", ")}`);
      if (dropped.length > 0) log(`  ${dropped.length} cell(s) no longer in the config, kept in cells/ but left out of the results: ${dropped.join(", ")}`);
    }
  }
  await writeJsonAtomic(path, configJson(config));
}

// The folder's config.json (undefined where unreadable) and how `config` changes it; throws, naming the keys, where
// the folder's finished cells cannot be kept under it (study/changes.ts).
export async function folderChanges(out: string, config: StudyConfig): Promise<{ before?: StudyConfig; changes: ConfigChanges }> {
  const path = join(out, "config.json");
  const before = await readJson(path).then((json) => parseStudyConfig(json, path)).catch((e: Error) => e);
  const changes = before instanceof Error ? { keeping: [], refusing: [`unreadable: ${before.message}`] } : configChanges(before, config);
  if (changes.refusing.length > 0) {
    throw new Error(`experiment: ${out} holds a run of another config (${path}), whose finished cells this one cannot use:\n  ${changes.refusing.join("\n  ")}\nuse --force to discard them and start over, or choose another --out`);
  }
  return { before: before instanceof Error ? undefined : before, changes };
}

// Whether a run folder holds anything a config change could make wrong: the original backbone's k-NN, or a cell's
// folder (its checkpoints, its result).
async function holdsResults(out: string): Promise<boolean> {
  const cells = cellsFolder(out);
  return existsSync(join(out, "baseline.json")) || (existsSync(cells) && (await readdir(cells)).length > 0);
}

// A worker sharing the folder takes the study as config.json has it (absent: the preparation writes it). A changed
// config goes through a run without a selection of cells, or --prepare-only, first: that checks what it changes.
async function checkSameConfig(out: string, config: StudyConfig): Promise<void> {
  const path = join(out, "config.json");
  if (!existsSync(path)) return;
  if (JSON.stringify(await readJson(path)) !== JSON.stringify(configJson(config))) {
    throw new Error(`experiment: ${path} holds another config than this one; workers sharing a run folder (--cells, --shard, --collect) need the same config: run --prepare-only with the new one first (it keeps the finished cells where it can, or names what it cannot keep), or on Slurm submit it with --slurm again`);
  }
}

// What the cells' result.json files say before this call trains any, in cell order. Finished and diverged cells
// are skipped; with `retry` a diverged cell's folder is deleted so that it trains again from scratch, result.json
// last, so that a kill halfway leaves it diverged. The log says which.
async function priorOutcomes(out: string, config: StudyConfig, cells: Cell[], retry: boolean, log: (l: string) => void): Promise<Map<string, CellOutcome>> {
  const prior = new Map<string, CellOutcome>();
  for (const cell of cells) {
    const path = cellResultPath(out, cell.id);
    if (existsSync(path)) prior.set(cell.id, await readCellOutcome(out, cell.id, config, "experiment"));
  }
  const finished = [...prior].filter(([, c]) => !isDiverged(c)).map(([id]) => id);
  const diverged = [...prior].filter(([, c]) => isDiverged(c)).map(([id]) => id);
  if (finished.length > 0) log(`skipping ${finished.length} finished cell(s): ${finished.join(", ")}`);
  if (diverged.length > 0 && !retry) log(`skipping ${diverged.length} diverged cell(s) (--retry-diverged trains them again): ${diverged.join(", ")}`);
  if (diverged.length > 0 && retry) {
    log(`--retry-diverged: training ${diverged.length} diverged cell(s) again from scratch: ${diverged.join(", ")}`);
    for (const id of diverged) {
      const dir = cellFolder(out, id);
      for (const name of await readdir(dir)) if (name !== basename(cellResultPath(out, id))) await rm(join(dir, name), { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
      prior.delete(id);
    }
  }
  return prior;
}

// The result.json of a cell whose training diverged.
function divergedCell(cell: Cell, e: DivergedError): DivergedCell {
  return { id: cell.id, strategy: strategyName(cell.strategy), lr: cell.lr, seed: cell.seed, diverged: { step: e.step, loss: String(e.loss), message: e.message } };
}

// A pass that outgrew a storage binding, named by the config key that sets its size (the trainer knows no keys);
// any other error as it is.
export function passTooLarge(e: unknown, key: string): unknown {
  if (!(e instanceof PassTooLargeError)) return e;
  return new Error(`${e.message} (a smaller ${key}, now ${e.microBatch}, keeps each pass's tensors within one binding)`, { cause: e });
}

// The claims a study holds are released however it ends, an error included (study/claims.ts).
export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResult> {
  const held = new Set<Claim>();
  try {
    return await runStudy(o, held);
  } finally {
    for (const claim of held) await claim.release();
  }
}

// The study's backbone and what backbone.json records of it: a checkpoint file, or its pre-training (supervised or
// DINO), cached by its settings and run here where the cache lacks it, unless `collecting`: a collect trains
// nothing, and from another working folder (the cache's folder is relative to it) it pre-trained the backbone again
// only to find it hashed otherwise than the run's. `note` describes a pre-trained one for the report; a checkpoint's
// description needs its hash, which the caller computes.
async function prepareBackbone(
  config: StudyConfig,
  data: StudyData,
  collecting: boolean,
  progress: ProgressStream | undefined,
  log: (line: string) => void,
): Promise<{ path: string; heads: number | undefined; note?: string; record: Record<string, unknown> }> {
  const pretrainSpec = config.backbone.pretrain;
  const notCached = (dir: string) =>
    new Error(`experiment: --collect trains nothing, but the backbone's pre-training is not cached in ${dir} (backbone.pretrain.cacheDir, relative to the working folder): collect from the folder the preparation ran in`);
  if (pretrainSpec && isDinoPretrain(pretrainSpec)) {
    const { cacheDir, ...spec } = pretrainSpec;
    const ds = data.pretrain!;
    const dir = dinoPretrainDir(spec, ds, cacheDir);
    const path = join(dir, "backbone.safetensors");
    // Finished once its manifest is there too, which is written after the backbone: a run killed in between resumes
    // from its checkpoint of the last step, which writes both again (the same backbone).
    if (existsSync(path) && existsSync(join(dir, "backbone.json"))) log(`backbone: cached ${path}`);
    else if (collecting) throw notCached(dir);
    else {
      log(`backbone: DINO pre-training on ${ds.identity.name} (${ds.identity.subset ?? "all"}) in ${dir}`);
      const p = await dinoPretrain({ spec, data: ds, dir, progress, log }).catch((e) => {
        // Every cell needs the backbone: a diverged or collapsed pre-training ends the study.
        if (e instanceof DivergedError) throw new Error(`experiment: the backbone's DINO pre-training diverged: ${e.message}; a smaller backbone.pretrain.lr (now ${spec.lr}) should train it`, { cause: e });
        if (e instanceof CollapseError) throw new Error(`experiment: the backbone's DINO pre-training collapsed (backbone.pretrain): ${e.message}`, { cause: e });
        throw e;
      });
      log(`backbone: DINO pre-trained in ${p.seconds.toFixed(1)} s, saved ${p.path}`);
    }
    return { path, heads: spec.model.heads, note: describeBackbone("dino", spec.model, spec.steps, ds.identity), record: { kind: "pretrain", method: "dino", path } };
  }
  if (pretrainSpec) {
    const spec = pretrainSpec;
    if (collecting) {
      const dir = pretrainDir(spec, data.pretrain!);
      if (!existsSync(join(dir, "backbone.safetensors"))) throw notCached(dir);
    }
    log(`backbone: supervised pre-training on ${data.pretrain!.identity.name} (${data.pretrain!.identity.subset ?? "all"}), a stand-in for DINO's self-supervised pre-training`);
    const p = await pretrain(spec, data.pretrain!, progress, log).catch((e) => {
      // Every cell needs the backbone: unlike a cell's, this divergence ends the study.
      if (e instanceof DivergedError) throw new Error(`experiment: the backbone's pre-training diverged: ${e.message}; a smaller backbone.pretrain.lr (now ${spec.lr}) should train it`, { cause: e });
      throw passTooLarge(e, "backbone.pretrain.microBatch");
    });
    log(p.cached ? `backbone: cached ${p.path}` : `backbone: pre-trained in ${p.seconds.toFixed(1)} s, final loss ${p.finalLoss?.toFixed(4)}, saved ${p.path}`);
    return {
      path: p.path,
      heads: spec.model.heads,
      note: `${describeBackbone("supervised", spec.model, spec.steps, data.pretrain!.identity)} (supervised, a stand-in for DINO)`,
      record: { kind: "pretrain", path: p.path, hash: p.hash, seconds: p.seconds },
    };
  }
  const path = resolveShipped(config.backbone.checkpoint!, "experiment: backbone.checkpoint");
  return { path, heads: config.backbone.heads, record: { kind: "checkpoint", path } };
}

// backbone.json: where the backbone came from and its SHA-256, which every later call checks: the cells and the
// baseline of a run folder were computed from that file, and another one under the same path (or a pre-training
// cache made again differently) would mix two backbones in one table.
async function recordBackbone(out: string, record: Record<string, unknown>, sha256: string): Promise<void> {
  const recorded = (await readBackboneRecord(out, "experiment"))?.sha256;
  const path = join(out, "backbone.json");
  if (recorded !== undefined && recorded !== sha256) {
    throw new Error(`experiment: the backbone ${record.path} hashes to ${sha256}, but this run folder's baseline and cells were computed from one hashing to ${recorded} (${path}): restore that file, or start over with --force or another --out`);
  }
  // Written where absent, and where a folder of an earlier build recorded no hash.
  if (recorded === undefined) await writeJsonAtomic(path, { ...record, sha256 });
}

async function runStudy(o: ExperimentOptions, held: Set<Claim>): Promise<ExperimentResult> {
  const started = performance.now();
  const { config } = o;
  const log = o.log ?? (() => undefined);
  const out = resolve(o.out);
  const owner = o.owner ?? thisOwner();
  const timing = o.claimTiming ?? CLAIM_TIMING;
  const sweep = (dir: string) => sweepTemporaries(dir, log);
  const cells = cellsOf(config);
  const selected = o.cells ? o.cells.map((n) => cells[n - 1]) : cells;
  if (selected.some((c) => c === undefined)) throw new Error(`experiment: expected cell numbers from 1 to ${cells.length}, got ${o.cells!.join(",")}`);
  // A worker sharing the folder neither rewrites config.json nor sweeps the folder: others are writing in it.
  const shared = o.cells !== undefined || o.collect === true;
  // Everything the config, the backbone's header and the data can tell is checked before the run folder is touched
  // (--force discards it).
  await checkBackboneFit(config);
  // The cells' precision against the adapter (and an int8 one's products on the device) before any work: a
  // preparation (a CPU node's, say) or a collect trains no cell, and a pre-training checks its own when it runs.
  if (!o.prepareOnly && !o.collect) await checkPrecisionOnDevice("experiment", "training.precision", config.training.precision);
  const data = await openStudyData(config);
  checkDataFit(config, data);
  const baselinePath = join(out, "baseline.json");
  if (!o.force) await checkSameData(baselinePath, data);
  if (shared) await checkSameConfig(out, config);
  else {
    await claimFolder(out, config, o.force ?? false, log);
    await sweep(out);
  }
  if (o.collect && !existsSync(baselinePath)) throw new Error(`experiment: nothing to collect in ${out}: the preparation (the backbone and the original backbone's k-NN, baseline.json) has not run`);
  const prior = await priorOutcomes(out, config, selected, o.retryDiverged ?? false, log);
  for (const id of prior.keys()) await removeStaleClaim(cellClaimPath(out, id), timing, log);

  // The preparation (backbone, baseline.json) once, by whichever worker claims it first; the others wait for it.
  const preparing = await claimOrWait(join(out, "prepare.claim.json"), owner, timing, log, () => existsSync(baselinePath));
  if (preparing) {
    held.add(preparing);
    if (shared && !existsSync(join(out, "config.json"))) await writeJsonAtomic(join(out, "config.json"), configJson(config));
  }

  const { path: backbonePath, heads, note, record } = await prepareBackbone(config, data, o.collect === true, o.progress, log);
  const load = async () => (await loadVit(backbonePath, { heads, key: config.backbone.key })).model;
  // Each cell's checkpoints name their base by hash, so that `export` can rebuild the fine-tuned model.
  const base = { file: backbonePath, sha256: await sha256File(backbonePath) };
  await recordBackbone(out, record, base.sha256);
  const backboneNote = note ?? (await describeCheckpoint(backbonePath, base.sha256));
  if (note === undefined) log(`backbone: ${backboneNote}`);

  // Everything the cells need is checked before the first one trains.
  const original = await load();
  const vit = original.config;
  const size = config.imageSize ?? vit.imageSize;
  const classes = data.transferTrain.classes.length;
  // A finished cell's best checkpoint scored on knn.val's images (study/knn-val.ts), and on transfer.val's.
  const withBest = async <T>(id: string, use: (model: VisionTransformer) => Promise<T>): Promise<T> => {
    const { model } = await loadFinetuned(backbonePath, cellCheckpointPath(out, id), { heads, key: config.backbone.key, baseSha256: base.sha256 });
    try {
      return await use(model);
    } finally {
      model.dispose();
    }
  };
  const scoreVal = (id: string) => withBest(id, (model) => knnScores(model, config, data, size, undefined, { dataset: data.knnVal!, spec: config.knn.val! }));
  const scoreBanks = (id: string, which: number[]) => withBest(id, (model) => otherBankScores(model, config, data, size, which));
  const answerKnn = (id: string) => withBest(id, (model) => knnScores(model, config, data, size));
  const answerVal = (id: string) =>
    withBest(id, (model) => evaluateCorrect(model, studyLoader(config, data.transferVal!, valTransformSpec(config), size, data.transformed)));
  if (!existsSync(baselinePath)) {
    log(`k-NN of the original backbone: ${data.bank.length} bank images, ${data.queries.length} queries`);
    const { scores, correct, seconds } = await knnScores(original, config, data, size);
    const baseline: BaselineResult = { knn: scores, seconds, data: dataIdentities(data), correct };
    await writeJsonAtomic(baselinePath, baseline);
  } else if (o.cells === undefined) {
    // Not by a worker given its cells: others may be reading the file.
    await addBaselineAnswers(baselinePath, config, [...prior.values()], () => knnScores(original, config, data, size), log, data.queries.classes.length);
  }
  // The original's queries against the other banks, which each row's forgetting is paired with bank by bank.
  if (data.otherBanks && (preparing || o.cells === undefined)) {
    await copyOriginalBanks(out, [...prior.values()], await readBaseline(baselinePath, config, "experiment"), log);
    const originalBanks = [{ name: "the original backbone", path: originalKnnBanksPath(out) }];
    const score = (_: string, which: number[]) => otherBankScores(original, config, data, size, which);
    await scoreOtherBanks(originalBanks, config, data.otherBanks, data.queries, score, log, () => "the original backbone's queries against the other banks");
  }
  original.dispose();
  if (preparing) {
    await preparing.release();
    held.delete(preparing);
  }
  const baseline = await readBaseline(baselinePath, config, "experiment");
  log(`original backbone: source k-NN top-1 ${baseline.knn[config.knn.reportK].top1.toFixed(2)}% (k = ${config.knn.reportK})`);

  const ran: string[] = [];
  const pending = o.prepareOnly || o.collect ? [] : selected.filter((c) => !prior.has(c.id));
  const toRun = Math.min(pending.length, o.maxCells ?? Infinity);
  // For the ETA: the wall time of each cell finished whole here (a diverged one ends early; a resumed one trained
  // only its last steps here, as little as none, once "9 cells left: about 6 s").
  const cellSeconds: number[] = [];
  const finished = (cell: Cell) => existsSync(cellResultPath(out, cell.id));
  // Each pass claims what it can of the cells nobody has finished; cells other workers hold are waited for.
  for (let waited = false; ran.length < toRun && pending.some((c) => !finished(c)); ) {
    const busy: string[] = [];
    for (const cell of pending) {
      if (ran.length >= toRun) break;
      if (finished(cell)) continue;
      const attempt = await tryClaim(cellClaimPath(out, cell.id), owner, timing, log);
      if ("heldBy" in attempt) {
        busy.push(`${cell.id} (${describeOwner(attempt.heldBy)})`);
        continue;
      }
      held.add(attempt.claim);
      if (!finished(cell)) await runClaimedCell(cell);
      await attempt.claim.release();
      held.delete(attempt.claim);
    }
    if (busy.length > 0 && ran.length < toRun && pending.some((c) => !finished(c))) {
      if (!waited) log(`waiting for ${busy.length} cell(s) that other workers are training: ${busy.join(", ")}`);
      waited = true;
      await sleep(timing.pollMs);
    }
  }

  async function runClaimedCell(cell: Cell): Promise<void> {
    const dir = cellFolder(out, cell.id);
    const resultPath = cellResultPath(out, cell.id);
    if (shared) await sweep(dir); // a dead worker's temporary files: this one holds the cell now
    log(`cell ${cells.indexOf(cell) + 1}/${cells.length}: ${strategyName(cell.strategy)}, lr ${cell.lr}, seed ${cell.seed}`);
    const cellStarted = performance.now();
    let resumed = false;
    const onResume = () => void (resumed = true);
    const result: CellOutcome = await runCell(cell, { config, data, dir, size, classes, load, base, progress: o.progress, log, onResume }).catch((e) => {
      if (e instanceof DivergedError) return divergedCell(cell, e);
      throw e;
    });
    // knn.val's scores before result.json: a finished cell of this knn.val always has them.
    if (data.knnVal && !isDiverged(result)) await scoreKnnVal(out, [cell.id], config, data.knnVal, scoreVal, () => undefined);
    if (data.otherBanks && !isDiverged(result)) await scoreOtherBanks([{ name: cell.id, path: cellKnnBanksPath(out, cell.id) }], config, data.otherBanks, data.queries, scoreBanks, () => undefined);
    await writeJsonAtomic(resultPath, result);
    ran.push(cell.id);
    if (isDiverged(result)) {
      log(`  ${result.diverged.message}`);
      log(`  recorded as diverged in ${resultPath}, left out of the table; going on with the next cell (--retry-diverged trains it again)`);
    } else {
      if (!resumed) cellSeconds.push((performance.now() - cellStarted) / 1000);
      log(`  transfer ${result.transferAccuracy.toFixed(2)}% (best at step ${result.bestStep}), source k-NN ${result.knn[config.knn.reportK].top1.toFixed(2)}%, ${result.trainSeconds.toFixed(1)} s training`);
    }
    // Simple and honest: the mean wall time of the cells finished so far, though strategies differ in cost.
    if (ran.length < toRun && cellSeconds.length > 0) {
      const mean = cellSeconds.reduce((a, b) => a + b) / cellSeconds.length;
      log(`  ${toRun - ran.length} cell(s) left: about ${formatDuration(mean * (toRun - ran.length))}, at ${mean.toFixed(1)} s per cell (the mean of the ${cellSeconds.length} trained whole so far)`);
    }
  }

  const readOutcomes = async () => {
    const outcomes: CellOutcome[] = [];
    for (const cell of cells) if (existsSync(cellResultPath(out, cell.id))) outcomes.push(await readCellOutcome(out, cell.id, config, "experiment"));
    return outcomes;
  };
  let outcomes = await readOutcomes();
  // Cells that finished before knn.val or knn.otherBanks was added or changed get their scores from their best
  // checkpoints, and cells of builds that did not keep their val answers, or the classes their queries were given,
  // get them so. Not by a worker given a selection of cells: the preparation and `collect` do it once, where many
  // workers would each do it all again.
  if (o.cells === undefined || o.collect) {
    const finishedIds = outcomes.filter((c) => !isDiverged(c)).map((c) => c.id);
    if (data.knnVal) await scoreKnnVal(out, finishedIds, config, data.knnVal, scoreVal, log);
    if (data.otherBanks) await scoreOtherBanks(finishedIds.map((id) => ({ name: id, path: cellKnnBanksPath(out, id) })), config, data.otherBanks, data.queries, scoreBanks, log);
    if (data.transferVal) await addValAnswers(out, outcomes, answerVal, log);
    const given = await addGivenClasses(out, outcomes, answerKnn, log, data.queries.classes.length);
    if (data.knnVal || data.otherBanks || data.transferVal || given) outcomes = await readOutcomes();
  }
  const complete = outcomes.length === cells.length;
  const notes = {
    backbone: backboneNote,
    model: modelLabel(vit),
    // Each dataset by its key (the opened files and the cache have no identity), the other banks as knn.otherBanks[i].
    data: Object.fromEntries(
      Object.entries(data).flatMap(([k, d]) => (Array.isArray(d) ? d.map((b: Dataset, i) => [`knn.otherBanks[${i}]`, b.identity]) : d && "identity" in d ? [[k, d.identity]] : [])),
    ),
    imageSize: size,
  };
  // With the queries' classes: each row's forgetting class by class too (study/knn-classes.ts).
  const results = summarize(config, baseline, outcomes, notes, data.queries);
  const files = o.collect || (complete && !shared && !o.prepareOnly) ? await writeReport(out, results) : [];
  // The analysis waits with an estimate of its own: one learned on training steps made its read-backs oversleep
  // (in the default study it took 28 s, 13-14 alone; engine/timing.ts ownWaitEstimate).
  if (complete && files.length > 0 && config.analysis && results.cells.length > 0) {
    files.push(...(await ownWaitEstimate()(() => analyzeRun(out, { reuse: true, log, opened: data.opened, transformed: data.transformed }))).files);
  }
  const diverged = results.diverged.map((c) => c.id);
  return { results, ran, skipped: [...prior.keys()], diverged, complete, missing: results.missing, files, seconds: (performance.now() - started) / 1000 };
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
  log: (line: string) => void;
  onResume?: () => void; // the cell resumed from a checkpoint: its wall time here is part of a cell's
}

async function runCell(cell: Cell, c: CellContext): Promise<CellResult> {
  const { config, data, size } = c;
  // A strategy's layer-wise decay is how its cells train (and part of their checkpoints' identity).
  const settings = { ...config.training, lr: cell.lr, ...(cell.strategy.layerDecay !== undefined && { layerDecay: cell.strategy.layerDecay }), ...(cell.strategy.kind === "full" && cell.strategy.keepFlat && { keepFlat: true as const }) };
  const model = await c.load();
  const strategy = cell.strategy.kind === "lora" ? { ...cell.strategy, seed: cell.seed } : cell.strategy;
  const name = strategyName(cell.strategy);
  const counts = countFor({ ...model.config, classes: c.classes }, strategy);
  const headInit = headInitFor(config, cell.strategy);
  const trainable = applyStrategy(model, strategy, c.classes, cell.seed, headInit);
  const probe = cell.strategy.probeFirst ? config.linearProbe : undefined;
  const manifest = manifestOf(trainable, { strategyOptions: strategy, classes: c.classes, heads: model.config.heads, seed: cell.seed, headInit, base: c.base, hyperParameters: { ...settings, ...(probe && { linearProbe: probe }), selectedOn: selectionOf(config) } });
  try {
    const loader = (ds: Dataset, spec: DataSpec, shuffle: boolean) => studyLoader(config, ds, spec, size, data.transformed, { shuffle, seed: cell.seed });
    const testLoader = loader(data.transferTest, config.transfer.test, false);
    // The images that choose the best checkpoint: transfer.val's, else the test images.
    const selectLoader = data.transferVal ? loader(data.transferVal, valTransformSpec(config), false) : testLoader;
    const metadata = { [MANIFEST_KEY]: JSON.stringify(manifest) };
    // LP-FT: the head alone first, the backbone frozen, in a folder of its own (which resumes as the cell does); the
    // fine-tuning then starts from its head. First, while the model is as applyStrategy made it: a resumed cell's
    // checkpoint loaded for its curve or kept step would train a lost probe on the fine-tuned backbone.
    // linearProbe.headNorm "drawn" scales the probe's head to the norm of the one the cell drew: read first.
    const drawn = probe?.headNorm === "drawn" ? await headOf(trainable) : new Map<string, Float32Array>();
    const probed = probe && (await trainProbe(c, cell, model, trainable, { ...settings, lr: probe.lr, steps: probe.steps ?? settings.steps, layerDecay: undefined }, loader(data.transferTrain, config.transfer.train, true), metadata));
    // A resumed fine-tuning then loads its own checkpoint over the head written here.
    if (probe?.headNorm !== undefined) writeHead(trainable, startingHead(await headOf(trainable), probe.headNorm, drawn, `cell ${cell.id}'s linear probe`));
    const resumed = await resumedStep(c.dir);
    const curve = config.knn.atSteps && (await startCurve(c, model, trainable, cell.lr, resumed));
    // The backbones of analysis.atSteps, as the best checkpoint holds its own, with the optimiser's state as the last
    // checkpoint holds it (the analysis reads the step its memory would make). Unjudged: a cell that diverges says so
    // through its losses, and its steps are never analysed.
    const keptSteps = config.analysis?.atSteps;
    const keepStep = async (step: number, tensors: Map<string, F32Tensor>) => {
      await writeSafetensors(join(c.dir, stepFile(step)), tensors, { ...metadata, format: FORMAT, step: String(step) });
    };
    // A kill between the checkpoint training resumes from and its step's backbone left that one missing.
    if (keptSteps?.includes(resumed) && !existsSync(join(c.dir, stepFile(resumed)))) {
      await keepStep(resumed, (await readSafetensors(join(c.dir, LAST_CHECKPOINT))).tensors);
    }
    let curveSecondsInTraining = 0;
    const result = await train({
      model,
      trainable,
      train: loader(data.transferTrain, config.transfer.train, true),
      settings,
      evaluate: () => evaluateAccuracy(model, selectLoader),
      dir: c.dir,
      metadata,
      progress: c.progress && { stream: c.progress, label: `${name} lr ${cell.lr}` },
      onResume: (step) => {
        c.log(`  resuming cell ${cell.id} from step ${step} of ${settings.steps}`);
        c.onResume?.();
      },
      // The model here is the one the step's update made (the update is encoded before it, so the k-NN's forward
      // passes run after it on the device), with the step's pending losses untouched: they are read later.
      onStep: (curve || keptSteps) && (async (step, state) => {
        if (keptSteps?.includes(step)) await keepStep(step, await snapshot([...trainable, ...state], step, false));
        if (!curve || !config.knn.atSteps!.includes(step)) return;
        const point = await curvePoint(model, config, data, size, { step, lr: cell.lr });
        await curve.add(point);
        curveSecondsInTraining += point.seconds;
      }),
    }).catch((e) => {
      throw passTooLarge(e, "training.microBatch");
    });
    // Chosen on val, the last step's test accuracy is measured now, with the model as training left it. Then the
    // best checkpoint's on the test images, image by image: chosen on the test images, the accuracy training
    // measured for it again.
    const final = data.transferVal ? await evaluateAccuracy(model, testLoader) : result.finalAccuracy!;
    await loadTrainable(result.bestPath, trainable);
    const tested = await evaluateCorrect(model, testLoader);
    if (!data.transferVal && tested.accuracy !== result.bestAccuracy) {
      throw new Error(`experiment: cell ${cell.id}: expected its best checkpoint (step ${result.bestStep}) to score ${result.bestAccuracy}% on the transfer test images again, got ${tested.accuracy}%: an evaluation that does not repeat itself`);
    }
    // Chosen on val, its answers image by image too, which must give the accuracy that chose the checkpoint.
    const valTested = data.transferVal && (await evaluateCorrect(model, selectLoader));
    if (valTested && valTested.accuracy !== result.bestAccuracy) {
      throw new Error(`experiment: cell ${cell.id}: expected its best checkpoint (step ${result.bestStep}) to score ${result.bestAccuracy}% on the transfer.val images again, got ${valTested.accuracy}%: an evaluation that does not repeat itself`);
    }
    const test = { best: tested.accuracy, final };
    // The backbone of the best checkpoint (by transfer accuracy) is the one whose forgetting is measured. Where the
    // curve scored that very step, its point is that measurement (the same weights; the tests check they agree).
    const knnCurve = curve && curve.complete(config.knn.atSteps!);
    const atBest = knnCurve?.points.find((p) => p.step === result.bestStep);
    const atBestCorrect = atBest && curve?.correctAt(result.bestStep);
    const knn = atBest && atBestCorrect ? { scores: atBest.knn, correct: atBestCorrect, seconds: 0 } : await knnScores(model, config, data, size, { step: result.bestStep, lr: cell.lr });
    // So too its scores against the other banks: knn-banks.json from the point, whose pass the curve's seconds count
    // (the runner scores only the banks it lacks, study/knn-banks.ts).
    const atBestBanks = atBest && curve?.banksAt(result.bestStep);
    if (atBestBanks) await writeJsonAtomic(join(c.dir, KNN_BANKS_FILE), { banks: atBestBanks.map((b) => ({ ...b, seconds: 0 })) });
    return {
      id: cell.id,
      strategy: name,
      lr: cell.lr,
      seed: cell.seed,
      trainableParams: countParameters(trainable),
      paperParams: counts.paper,
      totalParams: counts.total,
      transferAccuracy: test.best,
      finalTransferAccuracy: test.final,
      ...(data.transferVal && { valAccuracy: result.bestAccuracy!, finalValAccuracy: result.finalAccuracy! }),
      bestStep: result.bestStep,
      finalLoss: result.finalLoss,
      knn: knn.scores,
      knnCurve: knnCurve?.points,
      trainSeconds: result.seconds + (probed?.seconds ?? 0) - curveSecondsInTraining,
      imagesPerSecond: result.imagesPerSecond,
      knnSeconds: knn.seconds + (knnCurve?.seconds ?? 0),
      correct: { transfer: packCorrect(tested.correct), knn: knn.correct, ...(valTested && { val: packCorrect(valTested.correct) }) },
    };
  } finally {
    for (const [, p] of trainable) p.dispose();
    model.dispose();
  }
}

// An -lpft cell's linear probe: `trainable`'s head trained alone for the probe's settings, every other trainable
// tensor frozen meanwhile (so no gradient is computed for it), into the cell's probe/ folder.
async function trainProbe(c: CellContext, cell: Cell, model: VisionTransformer, trainable: [string, Tensor][], settings: TrainSettings, loader: Loader, metadata: Record<string, string>): Promise<TrainResult> {
  const head = headTensors(trainable);
  const frozen = trainable.filter((t) => !head.includes(t));
  for (const [, t] of frozen) t.requiresGrad = false;
  try {
    return await train({
      model,
      trainable: head,
      train: loader,
      settings,
      dir: join(c.dir, PROBE_FOLDER),
      metadata,
      progress: c.progress && { stream: c.progress, label: `${strategyName(cell.strategy)} lr ${cell.lr}: linear probe` },
      onResume: (step) => c.log(`  resuming cell ${cell.id}'s linear probe from step ${step} of ${settings.steps}`),
    }).catch((e) => {
      throw passTooLarge(e, "training.microBatch");
    });
  } finally {
    for (const [, t] of frozen) t.requiresGrad = true;
  }
}

// The step a cell's training resumes from: its last checkpoint's, else 0.
async function resumedStep(dir: string): Promise<number> {
  const lastPath = join(dir, LAST_CHECKPOINT);
  return existsSync(lastPath) ? Number((await readSafetensorsHeader(lastPath)).metadata.step) : 0;
}

// The cell's forgetting curve as far as a killed run left it, with the point at the step training resumes from
// (0: the backbone before the first update) measured now if it is missing: training itself only measures the steps
// it makes. For a resumed cell that is the last checkpoint's state, which is loaded here for it (train() loads it
// again); a kill just after that checkpoint, before its point was stored, leaves it missing.
async function startCurve(c: CellContext, model: VisionTransformer, trainable: [string, Tensor][], lr: number, resumed: number): Promise<KnnCurve> {
  const lastPath = join(c.dir, LAST_CHECKPOINT);
  const curve = await KnnCurve.resume(join(c.dir, KNN_CURVE_FILE), resumed);
  if (c.config.knn.atSteps!.includes(resumed) && !curve.has(resumed)) {
    if (resumed > 0) await loadTrainable(lastPath, trainable);
    await curve.add(await curvePoint(model, c.config, c.data, c.size, { step: resumed, lr }));
  }
  return curve;
}
