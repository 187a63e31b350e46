// `experiment`: runs a forgetting study (study/runner.ts) from a JSON config, or the embedded default study
// when run without a config (`node dist/run.js` with no arguments comes here).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { type Flags, checkInputFolder, checkOutputFolder, parseArgs } from "../util/args.js";
import { initEngine, runtime } from "../engine/runtime.js";
import { DEFAULT_STUDY, type StudyConfig, parseStudyConfig } from "../study/config.js";
import { type ExperimentResult, folderChanges, runExperiment } from "../study/runner.js";
import { readCellOutcome } from "../study/result-files.js";
import { isDiverged } from "../study/results.js";
import { cellClaimPath, cellFolder, cellResultPath, cellsOf, formatCellList, parseCellList, parseShard } from "../study/cells.js";
import { LAST_CHECKPOINT } from "../train/checkpoint.js";
import { CLAIM_TIMING, describeOwner, readClaim, staleness, thisOwner } from "../study/claims.js";
import { describeSubmission, resubmitFailed, submitStudy } from "../study/slurm.js";
import { runWorkers, workerAdapters, workerCount } from "../study/workers.js";
import { pciDisplayDevices } from "../engine/pci.js";
import { tableMarkdown } from "../study/report.js";
import { formatDuration } from "../train/progress.js";
import { readJsonFile } from "../util/json-file.js";

export const FLAGS = {
  config: "string",
  out: "string",
  force: "boolean",
  "retry-diverged": "boolean",
  "max-cells": "int",
  cells: "string",
  shard: "string",
  "list-cells": "boolean",
  "prepare-only": "boolean",
  collect: "boolean",
  workers: "int",
  adapters: "list",
  slurm: "boolean",
  partition: "string",
  "gpus-per-task": "int",
  time: "string",
  "array-max": "int",
  "dry-run": "boolean",
  "resubmit-failed": "boolean",
  backend: "string",
  adapter: "string",
} as const;

type ExperimentFlags = Flags<typeof FLAGS>;

// The flags that make sense together, checked before anything is read.
function checkFlags(flags: ExperimentFlags): void {
  const given = (names: string[]) => names.filter((n) => flags[n as keyof ExperimentFlags] !== undefined).map((n) => `--${n}`);
  const alone = (flag: string, others: string[]) => {
    const clash = given(others);
    if (flags[flag as keyof ExperimentFlags] !== undefined && clash.length > 0) throw new UsageError(`flag --${flag} does not go with ${clash.join(", ")}`);
  };
  for (const [name, min] of [["max-cells", 1], ["workers", 1], ["gpus-per-task", 1], ["array-max", 1]] as const) {
    const v = flags[name];
    if (v !== undefined && v < min) throw new UsageError(`flag --${name}: expected an integer >= ${min}, got ${v}`);
  }
  alone("cells", ["shard"]);
  alone("list-cells", ["cells", "shard", "prepare-only", "collect", "workers", "slurm", "resubmit-failed", "force", "max-cells"]);
  // A job script with --force would discard the finished cells again whenever it is resubmitted: another --out starts over.
  alone("slurm", ["cells", "shard", "prepare-only", "collect", "workers", "max-cells", "force", "retry-diverged", "resubmit-failed"]);
  alone("resubmit-failed", ["cells", "shard", "prepare-only", "collect", "workers", "max-cells", "force", "retry-diverged"]);
  alone("collect", ["cells", "shard", "prepare-only", "workers", "max-cells", "force", "retry-diverged"]);
  alone("prepare-only", ["cells", "shard", "workers", "max-cells"]);
  alone("workers", ["max-cells"]);
  // A worker given a selection shares the folder: discarding it or its diverged cells is the preparation's job.
  for (const shared of ["cells", "shard"]) alone(shared, ["force", "retry-diverged"]);
  const slurmOnly = given(["partition", "gpus-per-task", "time", "array-max"]);
  if (slurmOnly.length > 0 && !flags.slurm) throw new UsageError(`flag ${slurmOnly[0]} needs --slurm`);
  if (flags["dry-run"] && !flags.slurm && !flags["resubmit-failed"]) throw new UsageError("flag --dry-run needs --slurm or --resubmit-failed");
  if (flags.adapters && !flags.workers) throw new UsageError("flag --adapters needs --workers");
  // Worker i takes adapter i, round robin: more adapters than workers would leave some unused without a word.
  if (flags.adapters && flags.workers && !flags.adapters.includes("each-gpu") && flags.adapters.length > flags.workers) {
    throw new UsageError(`flag --adapters: expected at most one adapter per worker (--workers ${flags.workers}), got ${flags.adapters.length}: ${flags.adapters.join(",")}`);
  }
  if (flags.adapters && flags.adapter) throw new UsageError("flag --adapters does not go with --adapter");
}

export const experiment: Command = {
  summary: "run a forgetting study: fine-tune with each strategy, then transfer and source k-NN accuracy (default: the embedded study)",
  usage: `usage: node dist/run.js experiment [--config FILE.json] [--out DIR] [--force] [--retry-diverged] [--max-cells N]
         [--cells LIST | --shard I/N] [--prepare-only] [--collect] [--list-cells] [--workers N [--adapters A,B]]
         [--slurm [--partition P] [--gpus-per-task N] [--time T] [--array-max M] [--dry-run]]
         [--resubmit-failed [--dry-run]]
       node dist/run.js                  (no arguments: the embedded default study)

  --config     the study (see configs/default.json and configs/paper/); default: the embedded
               Fashion-MNIST study (source classes 0-4, transfer classes 5-9) on the shipped DINO backbone
               (backbones/, found from any working directory; configs/default-supervised.json: one pre-trained
               with labels)
  --out        the run folder (default runs/<config name>); results.json, results.csv, table.md, figure2.*, with
               knn.atSteps forgetting.* and, where the cells kept their answers, forgetting-between-steps.* (the
               change from each step to the next) and knn-spans.csv (from every step to every later one), with Block
               Expansion at several p and rates figure3.*, with a strategy at several rates tradeoff.* (.svg, .png,
               .vl.json), knn-classes.csv and knn-classes-between.csv (the forgetting class by class, and from each
               step of knn.atSteps to the next), for at most 20 source classes forgetting-classes*.*, and
               knn-confusion.csv, forgetting-confusion*.* (where the lost queries went) and knn-answers-between.csv
               (each class as the answer, step to step), with the analysis key analysis.* and analysis-*.* (the
               per-block analysis, as \`analyze\`)
  --force      discard the run folder's earlier results and start over (needed after a config change other than
               strategies, learningRates, seeds, name, selectBy, analysis, knn.val and knn.otherBanks, which keep the
               finished cells)
  --retry-diverged   train the cells that diverged in an earlier run again, from scratch (else they are skipped)
  --max-cells  stop after training this many cells; rerunning the same command continues with the rest
  --backend, --adapter   choose the WebGPU backend / adapter (see \`info\`)

Cells as units of work (several workers may share one run folder; each cell is claimed, so none runs twice):
  --list-cells     list the cells with their numbers and state (finished, diverged, claimed, started, to do)
  --cells LIST     run only these cells, e.g. 3,7-9; the report is left to --collect
  --shard I/N      run the I-th of N interleaved shares of the cells (cells I, I+N, ...)
  --prepare-only   only the backbone (pre-training) and the original backbone's k-NN, which every cell reads
  --collect        write results.json, the table and the figures from the cells finished so far; names the missing
  --workers N      prepare, run N worker processes on this machine sharing the cells (at most one per cell
                   left to run), then collect
  --adapters A,B   with --workers: worker i uses the i-th adapter (round robin; as --adapter takes them);
                   each-gpu: the GPUs on the PCI bus by address, one per worker (tells identical GPUs apart)

Slurm (sbatch, squeue and sacct on a login node):
  --slurm          write the job scripts into DIR/slurm/ and submit: a preparation job, an array of one task per
                   cell after it (afterok), and a collect job after the array (afterany)
  --partition P, --gpus-per-task N, --time T   passed to sbatch for every job
  --array-max M    at most M cell tasks at once (--array=1-N%M)
  --dry-run        show the sbatch commands without submitting: with --slurm after writing the scripts, with
                   --resubmit-failed those it would run
  --resubmit-failed   resubmit the cells whose tasks failed, timed out or were cancelled (with a new collect job);
                   each resumes from its last checkpoint

Every strategy x learning rate x seed is one cell: fine-tune, keep the best checkpoint by transfer accuracy,
then the k-NN accuracy of its backbone on the source data. Finished cells are skipped when rerun; an interrupted
cell resumes from its last checkpoint. A cell whose loss or weights become non-finite is recorded as diverged
and the study goes on; the table names it. Adding strategies, learning rates or seeds to the config of a run
folder (or changing its name, selectBy, analysis, knn.val or knn.otherBanks) keeps its finished cells; another
change is refused, naming the keys. The config is checked first; errors name the key path.`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    checkFlags(flags);
    let json: unknown = DEFAULT_STUDY;
    const source = flags.config ?? "the embedded default study";
    if (flags.config) json = await readJsonFile(flags.config, "experiment", "read the config");
    const config = parseStudyConfig(json, source);
    const out = flags.out ?? `runs/${config.name}`;
    const all = cellsOf(config);
    const count = all.length;
    let selection: number[] | undefined;
    try {
      if (flags.cells !== undefined) selection = parseCellList(flags.cells, count);
      if (flags.shard !== undefined) selection = parseShard(flags.shard, count);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    // How a worker or a Slurm job runs this program.
    const self = [process.execPath, resolve(process.argv[1])];
    const deviceFlags = [...(flags.backend ? ["--backend", flags.backend] : []), ...(flags.adapter ? ["--adapter", flags.adapter] : [])];

    // A file on --out's path is named as --out's before any work, rather than by the first claim or write it stops.
    // What only reads the folder (the list, a resubmission's dry run) needs no right to write in it.
    if (flags["list-cells"] || (flags["resubmit-failed"] && flags["dry-run"])) await checkInputFolder(out, "out");
    else await checkOutputFolder(out, "out");

    if (flags["list-cells"]) return listCells(config, out);
    if (flags["resubmit-failed"]) {
      const r = await resubmitFailed({ out: resolve(out), dryRun: flags["dry-run"] });
      for (const line of r.lines) console.log(line);
      if (r.commands.length === 0) console.log("nothing to resubmit");
      for (const c of r.commands) console.log(`${flags["dry-run"] ? "would run" : "submitted"}: ${c}`);
      if (r.submission) console.log(describeSubmission(r.submission));
      return;
    }
    if (flags.slurm) {
      // A folder of a config whose finished cells this one cannot keep is refused here, before any job waits.
      if (existsSync(join(out, "config.json"))) await folderChanges(out, config);
      const r = await submitStudy(config, {
        out: resolve(out),
        cwd: process.cwd(),
        command: self,
        flags: deviceFlags,
        partition: flags.partition,
        gpusPerTask: flags["gpus-per-task"],
        time: flags.time,
        arrayMax: flags["array-max"],
        dryRun: flags["dry-run"],
      });
      if (r.nothing) {
        console.log(r.nothing);
        return;
      }
      console.log(`study "${config.name}" (${source}): ${count} cell(s) -> ${out}; job scripts ${r.scripts.join(", ")}`);
      for (const c of r.commands) console.log(`${flags["dry-run"] ? "would run" : "submitted"}: ${c}`);
      if (r.submission) console.log(`${describeSubmission(r.submission)}; squeue shows them, logs in ${join(out, "slurm", "logs")}`);
      return;
    }

    const adapters = flags.adapters && workerAdapters(flags.adapters, pciDisplayDevices()); // checked before any work
    const started = performance.now();
    await initEngine({ backend: flags.backend, adapter: flags.adapter });
    const gpu = runtime().gpu;
    const device = `${gpu.adapterInfo.description || gpu.adapterInfo.device || "?"}${gpu.isCpu ? " (CPU driver)" : ""}`;
    // A shard past the last cell holds none (more workers than cells): it says so, and runs nothing.
    const cellsLine = selection && (selection.length > 0 ? `, cells ${formatCellList(selection)} of ${count}` : `, no cell: --shard ${flags.shard} holds none of the ${count}`);
    console.error(`study "${config.name}" (${source}) -> ${out}${cellsLine ?? ""}`);
    console.error(`device: ${device}`);
    const common = { config, out, owner: thisOwner(runtime().settings.slurm), log: (line: string) => console.error(line), progress: process.stderr };
    let result: ExperimentResult;
    let failed: unknown; // a worker's failure, thrown once the report of the finished cells is written
    if (flags.workers) {
      await runExperiment({ ...common, force: flags.force, retryDiverged: flags["retry-diverged"], prepareOnly: true });
      const picked = selection ?? Array.from({ length: count }, (_, i) => i + 1);
      const workers = workerCount(flags.workers, picked.filter((n) => !existsSync(cellResultPath(out, all[n - 1].id))).length);
      if (workers.note) console.error(workers.note);
      if (workers.count > 0) {
        console.error(`starting ${workers.count} worker(s)${adapters ? ` on ${adapters.join(", ")}` : ""}`);
        failed = await runWorkers({
          command: self,
          args: ["experiment", "--config", resolve(out, "config.json"), "--out", resolve(out), "--cells", formatCellList(picked), ...deviceFlags],
          count: workers.count,
          adapters,
          log: (line) => console.error(line),
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
      }
      // The report of what the workers finished, the others' cells too where one failed (its error comes last).
      result = await runExperiment({ ...common, collect: true });
    } else {
      result = await runExperiment({
        ...common,
        force: flags.force,
        retryDiverged: flags["retry-diverged"],
        maxCells: flags["max-cells"],
        cells: selection,
        prepareOnly: flags["prepare-only"],
        collect: flags.collect,
      });
    }
    const seconds = (performance.now() - started) / 1000;
    if (result.diverged.length > 0) console.error(`${result.diverged.length} cell(s) diverged: ${result.diverged.join(", ")} (--retry-diverged trains them again)`);
    const done = count - result.missing.length;
    if (flags["prepare-only"]) console.log(`prepared ${out}: the backbone and baseline.json; ${done} of ${count} cell(s) done`);
    else if (result.files.length > 0) {
      console.log(tableMarkdown(result.results));
      if (result.missing.length > 0) console.log(`${result.missing.length} of ${count} cell(s) missing from this report: ${result.missing.join(", ")}`);
      console.log(`wrote ${result.files.join(", ")}`);
    } else if (selection) console.log(`ran ${result.ran.length} cell(s); ${done} of ${count} done. --collect writes the report${result.missing.length > 0 ? " (from what is finished then)" : ""}.`);
    else console.log(`stopped after ${result.ran.length} cell(s) (--max-cells); ${done} of ${count} done. Rerun the same command to continue.`);
    console.log(`wall time: ${formatDuration(seconds)} (${seconds.toFixed(1)} s) on ${device}`);
    if (failed) throw failed;
  },
};

// Each cell's number, id and state, read from the run folder without a device. A folder of another config, whose
// cells a run would refuse, is refused here too: its states are not this config's.
async function listCells(config: StudyConfig, out: string): Promise<void> {
  if (existsSync(join(out, "config.json"))) await folderChanges(out, config);
  const cells = cellsOf(config);
  const width = String(cells.length).length;
  const idWidth = Math.max(...cells.map((c) => c.id.length));
  for (const [i, cell] of cells.entries()) {
    const dir = cellFolder(out, cell.id);
    const resultPath = cellResultPath(out, cell.id);
    let state = "to do";
    const claim = existsSync(resultPath) ? undefined : await readClaim(cellClaimPath(out, cell.id));
    if (existsSync(resultPath)) state = isDiverged(await readCellOutcome(out, cell.id, config, "experiment")) ? "diverged" : "finished";
    else if (claim) {
      const stale = staleness(claim, CLAIM_TIMING);
      state = `claimed by ${describeOwner(claim)}${stale ? ` (stale: ${stale})` : ""}`;
    } else if (existsSync(join(dir, LAST_CHECKPOINT))) state = "started, resumable";
    console.log(`${String(i + 1).padStart(width)}  ${cell.id.padEnd(idWidth)}  ${state}`);
  }
}
