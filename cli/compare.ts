// `compare`: two run folders' cells against each other, paired by seed and image (study/run-comparison.ts).
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { decimal, parseArgs } from "../util/args.js";
import { writeFileAtomic } from "../util/atomic.js";
import { basename, dirname, join } from "node:path";
import { figureFiles } from "../plot/render.js";
import { runComparisonCurveSpec } from "../study/figures/run-comparison-curve.js";
import { readRunFolder } from "../study/run-folder.js";
import { compareRuns, runComparisonMarkdown } from "../study/run-comparison.js";
import { strategiesFlag } from "./strategies-flag.js";

export const FLAGS = { strategies: "list", "table-rates": "boolean", rates: "list", curve: "boolean", figure: "string", out: "string", json: "boolean" } as const;

export const compare: Command = {
  summary: "two run folders' cells against each other, paired by seed and image: what a change of the config did",
  usage: `usage: node dist/run.js compare RUN_A RUN_B [--strategies LIST] [--table-rates | --rates LR_A,LR_B] [--curve] [--figure NAME] [--out FILE.md] [--json]

  RUN_A, RUN_B   run folders of \`experiment\` (finished or not) that scored the same transfer test images and
                 k-NN queries at the same k, e.g. two studies whose configs differ in a key a run folder holds one
                 value of (linearProbe.headNorm, training.steps, the backbone)
  --strategies   only these strategies, e.g. full,full-lpft (default: every strategy both configs have)
  --table-rates  each strategy's table row in B against its row in A, whose rates may differ (default: each rate
                 that both runs finished)
  --rates        each strategy's cells at LR_A in A against those at LR_B in B, e.g. 0.0003,0.003: where a change
                 moved the best rate, one point of each run's curve against the other
  --curve        each pair's forgetting curve too: B's source k-NN less A's after each step of knn.atSteps that
                 both runs scored, paired as the cells are
  --figure       draw those curves (implies --curve) into NAME.svg, NAME.png and NAME.vl.json: B - A against the
                 step, with the intervals as error bars
  --out          also write the table to this markdown file
  --json         print the comparison as JSON instead of markdown

For each strategy and rate, B's cells less A's in points, seed by seed over the seeds both runs finished and image
by image where both recorded their answers: the mean and its 95% confidence interval, as a study's table.md pairs
its rows (crossed over seeds and images). It first lists what differs in B's config from A's.`,
  async run(argv) {
    // The run folders come first.
    const split = argv.findIndex((arg) => arg.startsWith("-"));
    const dirs = split < 0 ? argv : argv.slice(0, split);
    const flags = parseArgs(split < 0 ? [] : argv.slice(split), FLAGS);
    if (dirs.length !== 2) throw new UsageError(`expected two run folders, RUN_A RUN_B, got ${dirs.length}${dirs.length > 0 ? ` (${dirs.join(" ")})` : ""}`);
    const strategies = flags.strategies && strategiesFlag(flags.strategies);
    const rates = flags.rates?.map((text) => decimal(text));
    if (rates && (rates.length !== 2 || rates.some((lr) => lr === undefined || lr <= 0))) throw new UsageError(`flag --rates: expected two learning rates > 0, A's and B's, got "${flags.rates!.join(",")}"`);
    // NAME is the files' path without the extension: "runs/" would write runs.svg beside the folder.
    if (flags.figure !== undefined && /[/\\]$/.test(flags.figure)) throw new UsageError(`flag --figure: expected the figure's path without its extension, e.g. runs/a-b-curve, got ${flags.figure} (a folder)`);
    if (rates && flags["table-rates"]) throw new UsageError("flags --table-rates and --rates: expected one of them, got both");
    const [a, b] = [await readRunFolder(dirs[0], "compare"), await readRunFolder(dirs[1], "compare")];
    const comparison = compareRuns(a, b, { strategies, tableRates: flags["table-rates"], rates: rates as [number, number] | undefined, curve: flags.curve || flags.figure !== undefined });
    const markdown = runComparisonMarkdown(comparison);
    if (flags.out !== undefined) await writeFileAtomic(flags.out, markdown);
    if (flags.figure !== undefined) {
      for (const [file, data] of await figureFiles([[basename(flags.figure), runComparisonCurveSpec(comparison)]])) await writeFileAtomic(join(dirname(flags.figure), file), data);
    }
    console.log(flags.json ? JSON.stringify(comparison, null, 2) : markdown);
  },
};
