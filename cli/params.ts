// `params`: the paper's Table 1 column of trainable parameters for every strategy, for a named ViT or a checkpoint's.
import type { Command } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { NAMED_CONFIGS, type VitConfig, namedConfig } from "../vit/config.js";
import { HeadsError, readArchitecture } from "../vit/checkpoint.js";
import { configOf } from "../vit/load.js";
import { UsageError } from "../util/command.js";
import { countFor } from "../peft/count.js";
import { refuseFinetuned } from "./file-checks.js";
import { STRATEGY_FORMS, type Strategy, parseStrategy, parseStrategyFor, strategyName, strategyProblem, strategyTexts } from "../peft/strategy.js";

export const FLAGS = { model: "string", weights: "string", heads: "int", key: "string", classes: "int", strategies: "list", json: "boolean" } as const;
const DEFAULT = ["full", "top-3", "linear", "lora-r4", "lora-r8", "lora-r16", "block-p1", "block-p2", "block-p3", "block-p4"];

export const params: Command = {
  summary: "trainable parameter counts per strategy (the paper's Table 1 column)",
  usage: `usage: node dist/run.js params [--model vit-b16 | --weights FILE] [--classes 100] [--strategies LIST] [--json]

  --model       ${Object.keys(NAMED_CONFIGS).join(", ")} (default vit-b16)
  --weights     count for the ViT of a checkpoint instead (its shapes: a study's backbone, an export), e.g. a
                study's table: params --weights backbone.safetensors --classes 5 --strategies full,lora-r4
  --heads, --key  with --weights, as for \`features\` (the counts do not depend on the head count)
  --classes     classes of the new linear head (default 100, CIFAR-100)
  --strategies  comma-separated, each one of
                ${STRATEGY_FORMS}, e.g. block@1,3
                (default ${DEFAULT.join(",")};
                with --weights those of them that fit its depth and width)
  --json        exact integers, with the total parameter count of each model`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    if (flags.model !== undefined && flags.weights !== undefined) throw new UsageError("--model, --weights: expected one of them, got both");
    if (flags.weights === undefined && (flags.heads !== undefined || flags.key !== undefined)) throw new UsageError("--heads, --key: expected only with --weights");
    const model = flags.weights ?? flags.model ?? "vit-b16";
    if (flags.weights === undefined && !(model in NAMED_CONFIGS)) throw new UsageError(`--model: expected one of ${Object.keys(NAMED_CONFIGS).join(", ")}, got "${model}"`);
    if (flags.classes !== undefined && !(flags.classes >= 1)) throw new UsageError(`--classes: expected an integer >= 1, got ${flags.classes}`);
    if (flags.heads !== undefined && flags.heads < 1) throw new UsageError(`--heads: expected an integer >= 1, got ${flags.heads}`);
    const classes = flags.classes ?? 100;
    const config = flags.weights === undefined ? namedConfig(model, classes) : await checkpointConfig(flags.weights, classes, flags.heads, flags.key);
    // The default list is for ViT-B/16; a checkpoint's depth may not take all of it (block-p3 on 4 blocks).
    const texts = (flags.strategies && strategyTexts(flags.strategies)) ?? DEFAULT.filter((text) => flags.weights === undefined || !strategyProblem(parseStrategy(text), config));
    const rows = texts.map((text) => {
      let strategy: Strategy;
      try {
        strategy = parseStrategyFor(text, config);
      } catch (e) {
        throw new UsageError(`--strategies: ${(e as Error).message}`);
      }
      return { strategy: strategyName(strategy), ...countFor(config, strategy) };
    });
    const twice = rows.find((r, i) => rows.findIndex((o) => o.strategy === r.strategy) !== i);
    if (twice) throw new UsageError(`--strategies: expected distinct strategies, got ${twice.strategy} twice`);
    if (flags.json) {
      console.log(JSON.stringify({ model, classes: config.classes, rows }, null, 2));
      return;
    }
    const shape = `${config.depth} blocks, width ${config.width}, patch ${config.patchSize}, ${config.imageSize} px`;
    console.log(`${model}${flags.weights === undefined ? "" : ` (${shape})`} with a ${config.classes}-class head`);
    const column = Math.max(10, ...rows.map((r) => r.strategy.length)); // top-3-frozen-norm is 17 wide
    console.log(`${"strategy".padEnd(column)} ${"trainable".padStart(10)} ${"paper".padStart(8)}  ${"exact".padStart(11)}  total`);
    for (const r of rows) {
      console.log(
        `${r.strategy.padEnd(column)} ${human(r.trainable).padStart(10)} ${human(r.paper, Math.floor).padStart(8)}  ${String(r.trainable).padStart(11)}  ${human(r.total)}`,
      );
    }
    if (rows.some((r) => r.headCountedTwice)) {
      console.log(
        "\nThe paper's LoRA figures count the classifier twice: the peft version the authors used marked both the\n" +
          "original head and its saved copy (modules_to_save) as trainable. 'trainable' is the exact count.",
      );
    }
  },
};

// The ViT of a checkpoint, from its shapes alone, with a new head of `classes`: what a study fine-tunes from it.
async function checkpointConfig(path: string, classes: number, heads: number | undefined, key: string | undefined): Promise<VitConfig> {
  await refuseFinetuned("params", path);
  const a = await readArchitecture(path, { heads, key }).catch((e) => {
    throw e instanceof HeadsError ? new UsageError(`--heads: ${e.message}`) : e;
  });
  return configOf(path, a, classes);
}

// 85.9M, 21.3M, 76.9K, 301K as in the paper, whose table truncates thousands (448,712 -> 448K): pass Math.floor.
function human(n: number, thousands: (x: number) => number = Math.round): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e5) return `${thousands(n / 1e3)}K`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
