// `experiment`: runs a forgetting study (study/runner.ts) from a JSON config, or the embedded default study
// when run without a config (`node dist/run.js` with no arguments comes here).
import { readFile } from "node:fs/promises";
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { initEngine, runtime } from "../engine/runtime.js";
import { DEFAULT_STUDY, parseStudyConfig } from "../study/config.js";
import { cellsOf, runExperiment } from "../study/runner.js";
import { tableMarkdown } from "../study/report.js";
import { formatDuration } from "../train/progress.js";
import { describeFileError, isFileError } from "../util/file-errors.js";

const FLAGS = {
  config: "string",
  out: "string",
  force: "boolean",
  "retry-diverged": "boolean",
  "max-cells": "int",
  backend: "string",
  adapter: "string",
} as const;

export const experiment: Command = {
  summary: "run a forgetting study: fine-tune with each strategy, then transfer and source k-NN accuracy (default: the embedded study)",
  usage: `usage: node dist/run.js experiment [--config FILE.json] [--out DIR] [--force] [--retry-diverged] [--max-cells N]
       node dist/run.js                  (no arguments: the embedded default study)

  --config     the study (see configs/default.json and configs/paper/); default: the embedded
               Fashion-MNIST study (source classes 0-4 with a small ViT pre-trained on them, transfer classes 5-9)
  --out        the run folder (default runs/<config name>); results.json, results.csv, table.md, figure2.*, with
               knn.atSteps forgetting.*, with Block Expansion at several p and rates figure3.* (.svg, .png, .vl.json)
  --force      discard the run folder's earlier results and start over (needed after a config change other than
               strategies, learningRates, seeds, name and selectBy, which keep the finished cells)
  --retry-diverged   train the cells that diverged in an earlier run again, from scratch (else they are skipped)
  --max-cells  stop after training this many cells; rerunning the same command continues with the rest
  --backend, --adapter   choose the WebGPU backend / adapter (see \`info\`)

Every strategy x learning rate x seed is one cell: fine-tune, keep the best checkpoint by transfer accuracy,
then the k-NN accuracy of its backbone on the source data. Finished cells are skipped when rerun; an interrupted
cell resumes from its last checkpoint. A cell whose loss or weights become non-finite is recorded as diverged
and the study goes on; the table names it. Adding strategies, learning rates or seeds to the config of a run
folder keeps its finished cells; another change is refused, naming the keys. The config is checked first;
errors name the key path.`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    if (flags["max-cells"] !== undefined && flags["max-cells"] < 1) throw new UsageError(`flag --max-cells: expected an integer >= 1, got ${flags["max-cells"]}`);
    let json: unknown = DEFAULT_STUDY;
    const source = flags.config ?? "the embedded default study";
    if (flags.config) {
      const text = await readFile(flags.config, "utf8").catch((e: Error) => {
        throw new Error(`experiment: ${isFileError(e) ? describeFileError(e, flags.config, "read the config") : `cannot read the config ${flags.config}: ${e.message}`}`);
      });
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new Error(`experiment: ${flags.config}: expected JSON, got a parse error: ${(e as Error).message}`);
      }
    }
    const config = parseStudyConfig(json, source);
    const out = flags.out ?? `runs/${config.name}`;

    const started = performance.now();
    await initEngine({ backend: flags.backend, adapter: flags.adapter });
    const gpu = runtime().gpu;
    const device = `${gpu.adapterInfo.description || gpu.adapterInfo.device || "?"}${gpu.isCpu ? " (CPU driver)" : ""}`;
    console.error(`study "${config.name}" (${source}) -> ${out}`);
    console.error(`device: ${device}`);
    const result = await runExperiment({
      config,
      out,
      force: flags.force,
      retryDiverged: flags["retry-diverged"],
      maxCells: flags["max-cells"],
      log: (line) => console.error(line),
      progress: process.stderr,
    });
    const seconds = (performance.now() - started) / 1000;
    if (result.diverged.length > 0) console.error(`${result.diverged.length} cell(s) diverged: ${result.diverged.join(", ")} (--retry-diverged trains them again)`);
    if (!result.complete) {
      const total = cellsOf(result.results.config).length;
      const done = result.results.cells.length + result.results.diverged.length;
      console.log(`stopped after ${result.ran.length} cell(s) (--max-cells); ${done} of ${total} done. Rerun the same command to continue.`);
    } else {
      console.log(tableMarkdown(result.results));
      console.log(`wrote ${result.files.join(", ")}`);
    }
    console.log(`wall time: ${formatDuration(seconds)} (${seconds.toFixed(1)} s) on ${device}`);
  },
};
