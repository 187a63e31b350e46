// `bench vit`: images/s for inference and for one training step of each strategy, the main thread's CPU time as
// a fraction of wall time, and the peak GPU memory held by the buffer pool.
import type { Command } from "../cli/command.js";
import { UsageError } from "../cli/command.js";
import { parseArgs } from "../cli/args.js";
import { initEngine, runtime } from "../engine/runtime.js";
import { Tensor, noGrad, tidy, tidyAsync } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import * as ops from "../engine/ops.js";
import { SGD } from "../engine/optim.js";
import { NAMED_CONFIGS, namedConfig, validateConfig, type VitConfig } from "../vit/config.js";
import { buildVit, initialiser } from "../vit/model.js";
import { applyStrategy, parseStrategy, strategyName } from "../peft/strategy.js";
import { deviceLine, formatProfile, profileOnce, timeGpu } from "./harness.js";
import type { KernelTime } from "../engine/profile.js";

const FLAGS = {
  model: "string",
  batch: "int",
  strategies: "list",
  reps: "int",
  "image-size": "int",
  json: "boolean",
  profile: "boolean",
} as const;

// The embedded default study's model (28 px Fashion-MNIST, patch 7), for `--model default`.
const DEFAULT_MODEL: VitConfig = { imageSize: 28, patchSize: 7, width: 64, depth: 4, heads: 2, mlpHidden: 256, classes: 0, eps: 1e-6 };
const STRATEGIES = ["full", "top-3", "linear", "lora-r8", "block-p3"];
const PROFILE_ROWS = 15; // kernels listed per case with --profile (the JSON has them all)

interface Row {
  case: string;
  imagesPerSecond: number;
  msPerStep: number;
  cpuFraction: number;
  peakPoolMiB: number;
  profile?: KernelTime[];
}

export const vitBench: Command = {
  summary: "ViT images/s: inference and a training step per strategy, CPU fraction, peak pool memory",
  usage: `usage: node dist/run.js bench vit [--model vit-s16] [--batch 8] [--strategies LIST] [--reps N] [--json]

  --model       ${Object.keys(NAMED_CONFIGS).join(", ")}, or "default" (the default study's small model)
  --batch       images per step (default 8)
  --strategies  training steps to time (default ${STRATEGIES.join(",")}; "none" for inference only)
  --image-size  input resolution (default: the model's native size)
  --reps        timed repetitions after one warm-up (default 3)
  --profile     also run each case once more with per-kernel GPU timestamps and list where its time goes`,
  async run(argv) {
    const { flags } = parseArgs(argv, FLAGS);
    const name = flags.model ?? "vit-s16";
    const config = name === "default" ? validateConfig(DEFAULT_MODEL) : namedConfig(name);
    const B = flags.batch ?? 8;
    if (B <= 0) throw new UsageError("--batch must be positive");
    const size = flags["image-size"] ?? config.imageSize;
    const strategies = flags.strategies?.[0] === "none" ? [] : (flags.strategies ?? STRATEGIES);
    await initEngine();
    const { pool } = runtime();
    if (!flags.json) console.log(`${deviceLine()}\nmodel ${name}, batch ${B}, ${size}x${size}`);
    const rng = new Rng(1);
    const images = Tensor.fromArray(rng.fill(B * 3 * size * size, () => rng.normal()), [B, 3, size, size]).keep();
    const labels = Int32Array.from({ length: B }, (_, i) => i % 10);
    const rows: Row[] = [];
    const reps = flags.reps ?? 3;
    const measure = async (label: string, run: () => void | Promise<void>) => {
      const t = await timeGpu(run, { reps });
      const row: Row = {
        case: label,
        imagesPerSecond: (B * 1000) / t.medianMs,
        msPerStep: t.medianMs,
        cpuFraction: t.cpuFraction,
        peakPoolMiB: pool.getStats().peakLiveBytes / 2 ** 20,
      };
      if (flags.profile) row.profile = await profileOnce(run);
      rows.push(row);
      if (!flags.json) {
        console.log(
          `${label.padEnd(12)} ${row.imagesPerSecond.toFixed(2).padStart(9)} img/s  ${row.msPerStep.toFixed(1).padStart(9)} ms/step  ` +
            `cpu ${(row.cpuFraction * 100).toFixed(0).padStart(3)}%  peak pool ${row.peakPoolMiB.toFixed(1)} MiB`,
        );
        if (row.profile) console.log(formatProfile(row.profile, PROFILE_ROWS));
      }
    };
    {
      const model = buildVit(config, initialiser(0));
      pool.resetPeak();
      await measure("inference", () => void tidy(() => noGrad(() => model.features(images))));
    }
    for (const text of strategies) {
      const model = buildVit(config, initialiser(0));
      const strategy = parseStrategy(text);
      const trainable = applyStrategy(model, strategy, 10);
      const opt = new SGD(trainable.map(([, t]) => t), { lr: 1e-3 });
      pool.resetPeak();
      const step = () =>
        tidyAsync(async () => {
          opt.zeroGrad();
          ops.crossEntropy(model.forward(images), labels).backward();
          opt.step();
        });
      await measure(`train ${strategyName(strategy)}`, step);
      opt.zeroGrad();
    }
    if (flags.json) console.log(JSON.stringify({ device: deviceLine(), model: name, batch: B, imageSize: size, rows }, null, 2));
  },
};
