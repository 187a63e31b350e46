// `params`: the paper's Table 1 column of trainable parameters for every strategy.
import type { Command } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { NAMED_CONFIGS, namedConfig } from "../vit/config.js";
import { UsageError } from "../util/command.js";
import { countFor } from "../peft/count.js";
import { type Strategy, parseStrategyFor, strategyName } from "../peft/strategy.js";

export const FLAGS = { model: "string", classes: "int", strategies: "list", json: "boolean" } as const;
const DEFAULT = ["full", "top-3", "linear", "lora-r4", "lora-r8", "lora-r16", "block-p1", "block-p2", "block-p3", "block-p4"];

export const params: Command = {
  summary: "trainable parameter counts per strategy (the paper's Table 1 column)",
  usage: `usage: node dist/run.js params [--model vit-b16] [--classes 100] [--strategies LIST] [--json]

  --model       ${Object.keys(NAMED_CONFIGS).join(", ")} (default vit-b16)
  --classes     classes of the new linear head (default 100, CIFAR-100)
  --strategies  comma-separated (default ${DEFAULT.join(",")})
  --json        exact integers, with the total parameter count of each model`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const model = flags.model ?? "vit-b16";
    if (!(model in NAMED_CONFIGS)) throw new UsageError(`--model: expected one of ${Object.keys(NAMED_CONFIGS).join(", ")}, got "${model}"`);
    if (flags.classes !== undefined && !(flags.classes >= 1)) throw new UsageError(`--classes: expected an integer >= 1, got ${flags.classes}`);
    const config = namedConfig(model, flags.classes ?? 100);
    const rows = (flags.strategies ?? DEFAULT).map((text) => {
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
      console.log(JSON.stringify({ model: flags.model ?? "vit-b16", classes: config.classes, rows }, null, 2));
      return;
    }
    console.log(`${flags.model ?? "vit-b16"} with a ${config.classes}-class head`);
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

// 85.9M, 21.3M, 76.9K, 301K as in the paper, whose table truncates thousands (448,712 -> 448K): pass Math.floor.
function human(n: number, thousands: (x: number) => number = Math.round): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e5) return `${thousands(n / 1e3)}K`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
