// `analyze`: where forgetting happens, block by block, for every finished cell of a run folder (study/analysis.ts).
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { checkOutputFolder, decimal, parseArgs } from "../util/args.js";
import { initEngine } from "../engine/runtime.js";
import { analyzeRun } from "../study/analysis.js";
import { DEFAULTS, INTERPOLATION_HEADS, type InterpolationHead, firstUnordered } from "../study/config.js";
import { strategiesFlag } from "./strategies-flag.js";

export const FLAGS = {
  images: "int",
  "grid-images": "int",
  "bank-per-class": "int",
  resets: "boolean",
  "reset-layers": "boolean",
  "resets-between-steps": "boolean",
  interpolate: "list",
  "interpolate-head": "string",
  strategies: "list",
  "table-rates": "boolean",
  "all-rates": "boolean",
  backbone: "string",
  out: "string",
  redraw: "boolean",
  backend: "string",
  adapter: "string",
} as const;

export const analyze: Command = {
  summary: "compare every finished cell's backbone with the original, block by block: CKA, layer-wise k-NN, weight change, attention",
  usage: `usage: node dist/run.js analyze RUN_DIR [--images N] [--resets | --reset-layers] [--resets-between-steps] [--interpolate LIST [--interpolate-head probe]] [--strategies LIST] [--table-rates | --all-rates] [--out DIR] [--redraw]

  RUN_DIR           a study's run folder (experiment --out) with at least one finished cell
  --images          source-domain images compared: this many of knn.queries, evenly spaced (default: the config's
                    analysis.images, else ${DEFAULTS.analysis.images})
  --grid-images     images in the attention-map figure, at most --images (more: all, with a note)
                    (default: analysis.gridImages, else ${DEFAULTS.analysis.gridImages})
  --bank-per-class  the layer-wise k-NN's bank: knn.bank with this many images per class (default:
                    analysis.bankPerClass, else knn.bank as it is)
  --resets          also reset parts of every best backbone (and every one kept at analysis.atSteps) where
                    fine-tuning started (each alone, all of them, all but each) and score it as the study does
                    (transfer.test, knn.queries against knn.bank): which part's change cost the source domain
                    (default: analysis.resets)
  --reset-layers    --resets with each block's layers reset apart (norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
                    mlp.fc2): which layer's change cost it (analysis.resets "layers")
  --resets-between-steps  with analysis.atSteps: put each kept backbone's parts back to their values at the kept
                    step before (each alone, all, all but each; with --reset-layers each block's layers apart) and
                    score it as the study does: which part's change from one kept step to the next cost the source
                    domain, or won it back (default: analysis.resetsBetweenSteps)
  --interpolate     also move every best backbone back towards where fine-tuning started, at these weights a in
                    [0, 1] (ascending), e.g. 0,0.25,0.5,0.75: each trained tensor at (1 - a) start + a fine-tuned
                    (LoRA by its merged weight, the head kept), scored as the study does: how much of the change
                    the transfer needs (default: analysis.interpolate)
  --interpolate-head  tuned: the fine-tuned head at every weight; probe: the head moved too, from the head of the
                    linear probing cell of the same seed (an -lpft cell's: its own probe's), so that a = 0 is a
                    linear probe (WiSE-FT's path from its zero-shot model; default: analysis.interpolateHead, else
                    tuned)
  --strategies      only these strategies' cells, e.g. full,top-4 (default: analysis.strategies, else every
                    finished cell)
  --table-rates     only the cells at their strategy's rate in the table: the rows the summaries and figures show
                    (the per-cell numbers of the other rates are then left out; default: analysis.tableRates)
  --all-rates       the cells at every rate, where the config's analysis.tableRates leaves all but the table's out
  --backbone        the original backbone's file, when the one backbone.json names has moved
  --out             the folder for the files (default: RUN_DIR)
  --redraw          where the folder holds an analysis.json of the same settings and cells, keep its numbers and
                    make its summary, CSV files, figures and log anew, measuring nothing (after a build that draws
                    them otherwise); else measure as without it
  --backend, --adapter   choose the WebGPU backend / adapter (see \`info\`)

Writes analysis.json (every number), analysis.csv (one number per line), analysis-cka.*, analysis-knn.*,
analysis-weights.*, analysis-drift.* (.svg, .png, .vl.json), analysis-attention.svg / .png and, for at most 20 classes,
analysis-classes.csv / .* (each block's change class by class) and analysis-confusion.csv / .* (each block's
confusion: which class a lost image is taken for). Per block of the original: linear
CKA of the block outputs (CLS token, all tokens mean-pooled), the k-NN accuracy of the block's CLS token after the
final LayerNorm, the relative weight change (LoRA merged), and the Jensen-Shannon divergence of the CLS attention
per head. Block Expansion's new blocks count with the block they follow. Where the config has analysis.atSteps, the
backbones each cell kept at those steps are measured so too: analysis-steps.csv, analysis-steps-cka.* and
analysis-steps-knn.* (each block's CKA and layer-wise k-NN change against the step), analysis-steps-between.csv / .*
(each block's change from one kept step to the next). With resets, analysis-resets.*:
each reset's source k-NN won back and transfer changed, against the fine-tuned model's own; with both,
analysis-steps-resets.* (the source k-NN each part's reset wins back against the step); with
--resets-between-steps, analysis-steps-resets-between.* (what each part's change from one kept step to the next did
to the source k-NN, a heatmap per strategy). With --interpolate,
analysis-interpolation.*: source k-NN against transfer at each weight, per strategy. Where the config has
knn.otherBanks, every layer-wise and source k-NN, of the best backbones and of the kept ones, is classified against
each other bank too, and the changes' intervals count the banks.`,
  async run(argv) {
    // The one positional argument of any command: the run folder comes first.
    const positional = argv.length > 0 && !argv[0].startsWith("-");
    const dir = positional ? argv[0] : undefined;
    const flags = parseArgs(positional ? argv.slice(1) : argv, FLAGS);
    if (dir === undefined) throw new UsageError("expected a run folder: analyze RUN_DIR");
    for (const flag of ["images", "grid-images", "bank-per-class"] as const) {
      const v = flags[flag];
      if (v !== undefined && v < 1) throw new UsageError(`flag --${flag}: expected an integer >= 1, got ${v}`);
    }
    const strategies = flags.strategies && strategiesFlag(flags.strategies);
    const interpolate = flags.interpolate?.map((text) => {
      const a = decimal(text);
      if (a === undefined || a < 0 || a > 1) throw new UsageError(`flag --interpolate: expected weights in [0, 1], got "${text}"`);
      return a;
    });
    const unordered = interpolate ? firstUnordered(interpolate) : -1;
    if (unordered > 0) throw new UsageError(`flag --interpolate: expected ascending, distinct weights, got ${interpolate![unordered]} after ${interpolate![unordered - 1]}`);
    if (flags["table-rates"] && flags["all-rates"]) throw new UsageError("flags --table-rates and --all-rates: expected one of them, got both");
    const head = flags["interpolate-head"];
    if (head !== undefined && !(INTERPOLATION_HEADS as readonly string[]).includes(head)) throw new UsageError(`flag --interpolate-head: expected ${INTERPOLATION_HEADS.join(" or ")}, got "${head}"`);
    // CKA compares the images' features across images: one image has no variance to compare.
    if (flags.images === 1) throw new UsageError("flag --images: expected at least 2 images (CKA compares features across them), got 1");
    // The files are written after minutes of work: where they go is checked first.
    if (flags.out !== undefined) await checkOutputFolder(flags.out, "out");
    await initEngine({ backend: flags.backend, adapter: flags.adapter });
    const { files } = await analyzeRun(dir, {
      out: flags.out,
      images: flags.images,
      gridImages: flags["grid-images"],
      bankPerClass: flags["bank-per-class"],
      resets: flags["reset-layers"] ? "layers" : flags.resets,
      resetsBetweenSteps: flags["resets-between-steps"] && flags["reset-layers"] ? "layers" : flags["resets-between-steps"],
      interpolate,
      interpolateHead: head as InterpolationHead | undefined,
      strategies,
      tableRates: flags["all-rates"] ? false : flags["table-rates"],
      backbone: flags.backbone,
      redraw: flags.redraw,
      log: (line) => console.error(line),
    });
    console.log(`wrote ${files.join(", ")}`);
  },
};
