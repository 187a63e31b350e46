// `bench vit`: images/s for inference and for one training step of each strategy, the main thread's CPU time as
// a fraction of wall time, and the peak GPU memory held by the buffer pool. The cases take their timed runs in
// turns (see run()), so their ratios, e.g. linear probing against full fine-tuning, are measured alike.
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { initEngine, runtime, deviceLine } from "../engine/runtime.js";
import { Tensor, tidy, tidyAsync } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import * as ops from "../autograd/ops.js";
import { SGD } from "../autograd/optim.js";
import { NAMED_CONFIGS, namedConfig, validateConfig } from "../vit/config.js";
import { buildVit, initialiser } from "../vit/model.js";
import { layerRateScale } from "../peft/layer-decay.js";
import { STRATEGY_FORMS, applyStrategy, parseStrategy, parseStrategyFor, strategyName, strategyTexts } from "../peft/strategy.js";
import { formatProfile } from "./harness.js";
import { mainThreadCpuMs, ownWaitEstimate, profileOnce } from "../engine/timing.js";
import { census } from "../engine/census.js";
import { Replay } from "../engine/replay.js";
import { median } from "../util/stats.js";
import type { KernelTime } from "../engine/profile.js";
import { backward, noGrad } from "../autograd/tape.js";
import { PRECISIONS, type Precision, withPrecision } from "../autograd/precision.js";
import { INT8_SLICES } from "../kernels/registry.js";
import { checkPrecisionOnDevice, lossScalerFor } from "../train/mixed-precision.js";
import { checkStepFits } from "../train/trace.js";
import { DEFAULT_MODEL } from "../study/config.js";

export const FLAGS = {
  model: "string",
  batch: "int",
  strategies: "list",
  reps: "int",
  "image-size": "int",
  json: "boolean",
  profile: "boolean",
  census: "boolean",
  replay: "boolean",
  precision: "string",
} as const;

// The default steps to time: the paper's five strategies, Block Expansion with a quarter of the depth in new blocks
// (p = 3 for ViT-S/16 and ViT-B/16, 1 for the default study's depth-4 model).
const defaultStrategies = (depth: number) => ["full", "top-3", "linear", "lora-r8", `block-p${depth % 4 === 0 ? depth / 4 : 1}`];
const PROFILE_ROWS = 15; // kernels listed per case with --profile or --census (the JSON has them all)

// One timed case: its step, its own wait estimate, and what its timed runs measured.
interface Case {
  label: string;
  run: () => void | Promise<void>;
  paced: ReturnType<typeof ownWaitEstimate>;
  ownBytes: number; // pool bytes the case keeps between runs
  runsMs: number[];
  cpuMs: number; // main-thread CPU time over the timed runs
  peakBytes: number;
}

interface Row {
  case: string;
  imagesPerSecond: number;
  msPerStep: number;
  cpuFraction: number;
  peakPoolMiB: number;
  profile?: KernelTime[];
  census?: KernelTime[];
}

export const vitBench: Command = {
  summary: "ViT images/s: inference and a training step per strategy, CPU fraction, peak pool memory",
  usage: `usage: node dist/run.js bench vit [--model vit-s16] [--batch 8] [--strategies LIST] [--reps N] [--profile] [--census] [--replay] [--json]

  --model       ${Object.keys(NAMED_CONFIGS).join(", ")}, or "default", the default study's small model (default
                vit-s16)
  --batch       images per step (default 8)
  --strategies  training steps to time, each one of
                ${STRATEGY_FORMS}
                (default ${defaultStrategies(12).join(",")}, block-p1 at depth 4; "none" for inference only)
  --image-size  input resolution (default: the model's native size)
  --reps        timed repetitions after one warm-up (default 3)
  --profile     also run each case once more with per-kernel GPU timestamps and list where its time goes
  --census      also run each case once more, recording its dispatches, and time each of them on its own, back to
                back (engine/census.ts: steadier than --profile on CPU drivers; it changes the cases' models, so
                it runs after the timed runs)
  --replay      also time inference and each training step replayed: its commands recorded once and encoded again
                per run, without the host work of autograd and the kernels' wrappers (engine/replay.ts)
  --precision   ${PRECISIONS.join(", ")} (default f32), as training.precision: f16 the products' inputs in f16,
                with loss scaling; int8, int8x2 the products on 8-bit tensor cores as ${INT8_SLICES.int8} or ${INT8_SLICES.int8x2} int8 slices
  --json        print the rows as JSON`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const name = flags.model ?? "vit-s16";
    if (name !== "default" && !(name in NAMED_CONFIGS)) throw new UsageError(`--model: expected default or one of ${Object.keys(NAMED_CONFIGS).join(", ")}, got "${name}"`);
    const config = name === "default" ? validateConfig({ ...DEFAULT_MODEL, classes: 0, eps: 1e-6 }) : namedConfig(name);
    const B = flags.batch ?? 8;
    if (B <= 0) throw new UsageError("--batch must be positive");
    if (flags.reps !== undefined && flags.reps < 1) throw new UsageError(`--reps: expected an integer >= 1, got ${flags.reps}`);
    const size = flags["image-size"] ?? config.imageSize;
    if (size < 1 || size % config.patchSize !== 0) throw new UsageError(`--image-size: expected a multiple of the patch size ${config.patchSize}, got ${size}`);
    if (flags.strategies?.includes("none") && flags.strategies.length > 1) throw new UsageError(`--strategies: expected "none" alone (inference only), got ${flags.strategies.join(",")}`);
    const strategies = flags.strategies?.[0] === "none" ? [] : flags.strategies ? strategyTexts(flags.strategies) : defaultStrategies(config.depth);
    // Each strategy against the model before the device starts, named as the flag's.
    for (const text of strategies) {
      try {
        parseStrategyFor(text, config);
      } catch (e) {
        throw new UsageError(`--strategies: ${e instanceof Error ? e.message : e}`);
      }
    }
    const precision = (flags.precision ?? "f32") as Precision;
    if (!PRECISIONS.includes(precision)) throw new UsageError(`--precision must be one of ${PRECISIONS.join(", ")}, got "${precision}"`);
    await initEngine();
    // The largest step it builds: a head of 10 classes (the labels' range) at the size asked for.
    checkStepFits({ ...config, imageSize: size, classes: 10 }, name, B);
    await checkPrecisionOnDevice("bench vit", "--precision", precision);
    const { pool } = runtime();
    if (!flags.json) console.log(`${deviceLine()}\nmodel ${name}, batch ${B}, ${size}x${size}, ${precision}`);
    const rng = new Rng(1);
    const images = Tensor.fromArray(rng.fill(B * 3 * size * size, () => rng.normal()), [B, 3, size, size]).keep();
    const labelTensor = Tensor.fromArray(Int32Array.from({ length: B }, (_, i) => i % 10), [B], "i32").keep();
    const reps = flags.reps ?? 3;
    const { batch } = runtime();
    // Every case (inference, then one training step per strategy) is built and warmed up in turn; then the timed
    // runs go round-robin over the cases, each with its own wait estimate, so that a slow spell of the host falls on
    // all of them alike. Memory: a case's peak is what its run adds on top of everything live before it, plus what
    // the case itself keeps between runs (its model, gradients and optimiser state, measured after its warm-up), as
    // if it were alone.
    const cases: Case[] = [];
    // Pinned bytes count as held: a replay's temporaries (engine/replay.ts).
    const held = () => pool.getStats().liveBytes + pool.getStats().pinnedBytes;
    const addCase = async (label: string, build: () => (() => void | Promise<void>) | Promise<() => void | Promise<void>>) => {
      const before = held();
      const run = await build();
      const paced = ownWaitEstimate();
      await paced(async () => {
        await run();
        await batch.sync();
      });
      cases.push({ label, run, paced, ownBytes: held() - before, runsMs: [], cpuMs: 0, peakBytes: 0 });
    };
    // A case's run replayed: run once, so that what a first run makes lazily (frozen weights' packs, optimiser
    // state) exists before the capture.
    const replayed = async (run: () => void | Promise<void>) => {
      await run();
      const replay = await Replay.capture(run);
      return () => replay.run();
    };
    const inference = () => {
      const model = buildVit(config, initialiser(0));
      return () => void tidy(() => noGrad(() => withPrecision(precision, () => model.features(images))));
    };
    await addCase("inference", inference);
    if (flags.replay) await addCase("replay inference", () => replayed(inference()));
    // A training step of a strategy: forward, backward and the optimiser's step (constant learning rate).
    const trainStep = (text: string) => {
      const model = buildVit(config, initialiser(0));
      const strategy = parseStrategy(text);
      const trainable = applyStrategy(model, strategy, 10);
      const scaler = lossScalerFor(precision, undefined);
      const lrScale = strategy.layerDecay === undefined ? undefined : layerRateScale(trainable, model.blocks.length, strategy.layerDecay);
      const opt = new SGD(trainable.map(([, t]) => t), { lr: 1e-3, momentum: 0.9, lrScale, skipZero: scaler !== undefined });
      return () =>
        tidyAsync(async () => {
          opt.zeroGrad();
          withPrecision(precision, () => backward(ops.crossEntropy(model.forward(images), labelTensor), scaler?.scale.reshape([])));
          if (scaler) opt.step(scaler.unscale(opt.params));
          else opt.step();
        });
    };
    for (const text of strategies) {
      const name = strategyName(parseStrategy(text));
      await addCase(`train ${name}`, () => trainStep(text));
      if (flags.replay) await addCase(`replay ${name}`, () => replayed(trainStep(text)));
    }
    for (let r = 0; r < reps; r++) {
      for (const c of cases) {
        await c.paced(async () => {
          const live = pool.getStats().liveBytes;
          pool.resetPeak();
          const cpu0 = mainThreadCpuMs();
          const t0 = performance.now();
          await c.run();
          await batch.sync();
          c.runsMs.push(performance.now() - t0);
          c.cpuMs += mainThreadCpuMs() - cpu0;
          c.peakBytes = Math.max(c.peakBytes, pool.getStats().peakLiveBytes - live + c.ownBytes);
        });
      }
    }
    const rows: Row[] = [];
    for (const c of cases) {
      const ms = median(c.runsMs);
      const row: Row = {
        case: c.label,
        imagesPerSecond: (B * 1000) / ms,
        msPerStep: ms,
        cpuFraction: c.cpuMs / c.runsMs.reduce((a, b) => a + b, 0),
        peakPoolMiB: c.peakBytes / 2 ** 20,
      };
      if (flags.profile) row.profile = await c.paced(() => profileOnce(c.run));
      if (flags.census) row.census = await census(c.run);
      rows.push(row);
      if (!flags.json) {
        console.log(
          `${c.label.padEnd(16)} ${row.imagesPerSecond.toFixed(2).padStart(9)} img/s  ${row.msPerStep.toFixed(1).padStart(9)} ms/step  ` +
            `cpu ${(row.cpuFraction * 100).toFixed(0).padStart(3)}%  peak pool ${row.peakPoolMiB.toFixed(1)} MiB`,
        );
        if (row.profile) console.log(formatProfile(row.profile, PROFILE_ROWS, "profiled"));
        if (row.census) console.log(formatProfile(row.census, PROFILE_ROWS, "census"));
      }
    }
    if (flags.json) console.log(JSON.stringify({ device: deviceLine(), model: name, batch: B, imageSize: size, precision, rows }, null, 2));
  },
};
