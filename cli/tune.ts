// `tune`: times every version of each multi-version kernel family
// (kernels/registry.ts: matmul; rows, that is softmax, layernorm and cross-entropy; attention; knn) at the shapes
// one training step of a model runs, and stores the winners in the per-adapter cache (engine/tuning.ts) that the
// kernels consult on every later run. The shapes are those a traced step looked up (train/trace.ts: forward,
// cross-entropy, backward and an SGD update, per strategy), with the shapes the composed versions run
// (kernels/tune.ts withComposedShapes); the timing is kernels/tune.ts tuneShape. The tensor-core versions are checked
// on the device first, and one that fails is no candidate (kernels/tensor-core-check.ts). `tune --show` prints the
// cache, `--clear` deletes it.
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { initEngine, deviceLine } from "../engine/runtime.js";
import { Rng } from "../util/random.js";
import { type TuneEntry, clearTuneCache, readCache, storeTuned, tuneCachePath } from "../engine/tuning.js";
import { FAMILIES, familyNamed, resolveVersion } from "../kernels/registry.js";
import { DROP_FACTOR, candidates, tuneShape, withComposedShapes } from "../kernels/tune.js";
import { checkStepFits, traceTrainingStep } from "../train/trace.js";
import { type VitConfig, NAMED_CONFIGS, namedConfig, validateConfig } from "../vit/config.js";
import { STRATEGY_FORMS, type Strategy, parseStrategyFor, strategyTexts } from "../peft/strategy.js";
import { DEFAULT_MODEL } from "../study/config.js";
import { PRECISIONS, type Precision } from "../autograd/precision.js";
import { checkPrecisionOnDevice } from "../train/mixed-precision.js";
import { checkTensorCores, checksFor } from "../kernels/tensor-core-check.js";

export const FLAGS = {
  model: "string",
  batch: "int",
  classes: "int",
  families: "list",
  strategies: "list",
  reps: "int",
  json: "boolean",
  "dry-run": "boolean",
  show: "boolean",
  clear: "boolean",
  precision: "string",
} as const;
const FAMILY_NAMES = Object.keys(FAMILIES);

// --model default: the default study's backbone (study/config.ts), with DINO's LayerNorm eps and 5 classes, a
// domain's.
function modelConfig(name: string, classes: number | undefined): VitConfig {
  if (name === "default") return validateConfig({ ...DEFAULT_MODEL, eps: 1e-6, classes: classes ?? 5 });
  if (!(name in NAMED_CONFIGS)) {
    throw new UsageError(`--model: expected default or one of ${Object.keys(NAMED_CONFIGS).join(", ")}, got "${name}"`);
  }
  return namedConfig(name, classes ?? 100);
}

function showCache(json: boolean): void {
  const path = tuneCachePath();
  const cache = readCache(path);
  if (json) {
    console.log(JSON.stringify({ path, cache: cache ?? null }, null, 2));
    return;
  }
  if (!cache) {
    console.log(`no tuning cache at ${path}: every kernel uses its device default`);
    return;
  }
  console.log(`tuning cache ${path}\nadapter ${cache.adapter}\ncreated ${cache.created}`);
  for (const [key, e] of Object.entries(cache.entries)) {
    const others = Object.entries(e.candidates).map(([v, ms]) => `${v} ${ms.toFixed(2)}`).join(", ");
    console.log(`  ${key.padEnd(36)} ${e.version.padEnd(9)} ${e.ms.toFixed(2).padStart(9)} ms   (${others})`);
  }
}

// One shape's result: the winner, its gain over the version that ran the shape before (a candidate: the resolver
// runs only versions the adapter can run there), every candidate's time, and what uses the shape.
export function tunedLine(key: string, entry: TuneEntry, before: string, uses: string[]): string {
  const times = Object.entries(entry.candidates).map(([v, ms]) => `${v} ${ms.toFixed(2)}`).join("  ");
  const gain = (entry.candidates[before] / entry.ms).toFixed(2);
  return `${key.padEnd(36)} -> ${entry.version.padEnd(9)} x${gain} vs ${before.padEnd(9)} | ${times}   (${uses.join(", ")})`;
}

export const tune: Command = {
  summary: "time the versions of each kernel family at a model's shapes and cache the winners for this adapter",
  usage: `usage: node dist/run.js tune [--model vit-s16] [--batch 8] [--classes N] [--strategies full,lora-r8]
                             [--families matmul,rows,attention] [--precision ${PRECISIONS.join("|")}]
                             [--reps 2] [--json] [--dry-run]
       node dist/run.js tune --show [--json]
       node dist/run.js tune --clear

  --model       default (the default study's backbone), ${Object.keys(NAMED_CONFIGS).join(", ")} (default vit-s16)
  --batch       images per step (default 8)
  --classes     classes of the linear head, at least 1 (default 100; 5 for --model default)
  --strategies  the fine-tuning strategies whose training step to trace (default full), each one of
                ${STRATEGY_FORMS};
                lora-rR adds its rank-r products, linear and top-K run fewer of the model's shapes
  --families    which kernel families to tune: ${FAMILY_NAMES.join(", ")} (default all those a training step
                runs: knn runs in evaluations only, and \`bench knn\` times its versions)
  --precision   ${PRECISIONS.join(", ")} (default f32): tune the shapes of a training step with that training.precision
                (int8, int8x2: matmul's int8 versions beside the exact ones, at shapes of their own that only such
                runs use). Evaluations run in f32 whatever the precision: tune f32 too for their shapes
  --reps        timed runs per surviving candidate (default 2); candidates over ${DROP_FACTOR}x the best first run stop early
  --json        print the results (or the cache, with --show) as JSON
  --dry-run     list the shapes and candidates, time nothing, write nothing
  --show        print this adapter's cache
  --clear       delete this adapter's cache

The cache lives in $PEFT_TUNE_CACHE, else $XDG_CACHE_HOME/peft-vit-webgpu, else ~/.cache/peft-vit-webgpu, one file
per adapter and driver. Kernels use its winners automatically for exactly the tuned shapes; PEFT_TUNE=0 ignores it;
an explicit version (PEFT_MATMUL, or a call's version option) still wins.`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    if (flags.show && flags.clear) throw new UsageError("--show and --clear exclude each other");
    const families = flags.families ?? FAMILY_NAMES;
    for (const f of families) if (!FAMILY_NAMES.includes(f)) throw new UsageError(`--families: expected some of ${FAMILY_NAMES.join(", ")}, got "${f}"`);
    const batch = flags.batch ?? 8;
    const reps = flags.reps ?? 2;
    if (batch < 1) throw new UsageError(`--batch: expected a positive integer, got ${batch}`);
    if (reps < 1) throw new UsageError(`--reps: expected a positive integer, got ${reps}`);
    if (flags.classes !== undefined && flags.classes < 1) throw new UsageError(`--classes: expected >= 1, got ${flags.classes}`);
    const modelName = flags.model ?? "vit-s16";
    const config = modelConfig(modelName, flags.classes);

    const precision = (flags.precision ?? "f32") as Precision;
    if (!PRECISIONS.includes(precision)) throw new UsageError(`--precision: expected one of ${PRECISIONS.join(", ")}, got "${precision}"`);
    await initEngine();
    if (flags.show) return showCache(!!flags.json);
    if (flags.clear) {
      const path = tuneCachePath();
      console.log(clearTuneCache() ? `deleted ${path}` : `no tuning cache at ${path}`);
      return;
    }
    checkStepFits(config, modelName, batch);
    await checkPrecisionOnDevice("tune", "--precision", precision);
    // The tensor-core versions this precision's calls could run, checked on the device first: one that fails is no
    // candidate (kernels/tensor-core-check.ts).
    const faults: string[] = [];
    for (const p of checksFor(precision)) faults.push(...(await checkTensorCores(p)).values());
    if (!flags.json) for (const fault of faults) console.log(`not a candidate, failed its check on this device: ${fault}`);
    let strategies: Strategy[];
    try {
      strategies = strategyTexts(flags.strategies ?? ["full"]).map((text) => parseStrategyFor(text, config));
    } catch (e) {
      throw new UsageError(`--strategies: ${e instanceof Error ? e.message : e}`);
    }
    const shapes = withComposedShapes(traceTrainingStep(config, batch, strategies, precision)).filter((s) => families.includes(s.family));
    // A family asked for by name that the step never looks up (knn runs in evaluations) would be tuned at no shape.
    for (const f of flags.families ?? []) {
      if (!shapes.some((s) => s.family === f)) throw new UsageError(`--families: a training step of ${modelName} runs no ${f} kernel, so there is nothing of it to tune`);
    }
    // What the kernels would run now at a shape (the cache included).
    const now = (s: (typeof shapes)[number]) => resolveVersion(familyNamed(s.family), s.shape);
    if (flags["dry-run"]) {
      const plan = shapes.map((s) => ({ key: `${s.family}/${s.key}`, uses: s.uses, candidates: candidates(s), now: now(s) }));
      if (flags.json) console.log(JSON.stringify({ model: modelName, batch, deviceFaults: faults, shapes: plan }, null, 2));
      else for (const p of plan) console.log(`${p.key.padEnd(36)} ${p.candidates.join(",").padEnd(40)} now ${p.now}   ${p.uses.join(", ")}`);
      return;
    }

    if (!flags.json) console.log(`${deviceLine()}\ntuning ${shapes.length} shapes of ${modelName} at batch ${batch}, ${reps} reps`);
    const rng = new Rng(0);
    const entries: Record<string, TuneEntry> = {};
    const report = [];
    for (const shape of shapes) {
      const before = now(shape);
      const entry = await tuneShape(shape, reps, rng);
      const key = `${shape.family}/${shape.key}`;
      const family = familyNamed(shape.family);
      entries[key] = entry;
      // The winner's rate: GFLOP/s or GB/s of the workload timed.
      const rate = { value: family.work(shape.shape) / entry.ms / 1e6, unit: family.unit === "FLOP" ? "GFLOP/s" : "GB/s" };
      report.push({ key, uses: shape.uses, before, ...entry, rate });
      if (!flags.json) console.log(tunedLine(key, entry, before, shape.uses));
    }
    const path = await storeTuned(entries);
    if (flags.json) console.log(JSON.stringify({ model: modelName, batch, reps, path, deviceFaults: faults, results: report }, null, 2));
    else console.log(`wrote ${Object.keys(entries).length} entries to ${path}`);
  },
};
