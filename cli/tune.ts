// `tune`: times every version of each multi-version kernel family (matmul; the row kernels softmax, layernorm and
// cross-entropy; attention: fused v1, v2 and unfused) at the shapes a ViT runs in fine-tuning, and stores the
// winners in the per-adapter cache (engine/tuning.ts) that the kernels consult on every later run. `tune --show`
// prints the cache, `--clear` deletes it.
//
// Timing: each candidate is warmed up (which compiles it) and run once; a candidate more than 3x slower than the
// best first run runs once more and is dropped if neither run came within 3x; the rest run reps-1 more times,
// round-robin (each with its own wait estimate), and are ranked by the median of all their runs.
// Small shapes are repeated inside each timed run (up to 32 times, to ~10 ms). Times are per workload (one product, or
// one forward+backward of a row op or of attention), in ms.
// Inputs are random; correctness of every version is the kernel tests' job, not this command's.
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { initEngine, deviceLine } from "../engine/runtime.js";
import { Tensor, tidy } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import {
  type TuneEntry,
  attentionShapeKey,
  clearTuneCache,
  matmulShapeKey,
  readCache,
  rowShapeKey,
  storeTuned,
  tuneCachePath,
} from "../engine/tuning.js";
import { MATMUL_VERSIONS, chooseVersion, matmulForward } from "../kernels/matmul.js";
import { ATTENTION_VERSIONS, pickVersion as attentionVersion } from "../kernels/attention.js";
import * as ops from "../autograd/ops.js";
import { backward } from "../autograd/tape.js";
import { type RowOp, type RowVersion, availableRowVersions, defaultRowVersion } from "../kernels/rows.js";
import { layernormBackward, layernormForward } from "../kernels/layernorm.js";
import { softmaxBackward, softmaxForward } from "../kernels/softmax.js";
import { crossEntropyBackward, crossEntropyForward } from "../kernels/cross-entropy.js";
import { type VitConfig, NAMED_CONFIGS, namedConfig, validateConfig } from "../vit/config.js";
import { type Strategy, parseStrategy } from "../peft/strategy.js";
import { ownWaitEstimate, timeGpu } from "../engine/timing.js";
import { median } from "../util/stats.js";

const FLAGS = {
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
} as const;
const FAMILIES = ["matmul", "rows", "attention"];
// The default study's backbone (eval/config.ts DEFAULT_STUDY), 5 classes per domain.
const DEFAULT_MODEL = { imageSize: 28, patchSize: 7, width: 64, depth: 4, heads: 2, mlpHidden: 256, eps: 1e-6 };
const DROP_FACTOR = 3; // candidates this much slower than the best first run are not timed further
const MIN_RUN_MS = 10; // each timed run repeats a small workload until it takes about this long ...
const MAX_INNER = 32; // ... but at most this many times

// One shape to tune. matmul: y (batch, M, N) = op(a) (batch, M, K) · op(b) (batch, K, N), 2-D for batch 1.
// rows: op over x (rows, C). attention: qkv (B, T, 3*H*D) -> o (B, T, H*D).
export type TuneShape =
  | { family: "matmul"; key: string; uses: string[]; M: number; K: number; N: number; transA: boolean; transB: boolean; batch: number; gelu: boolean }
  | { family: "rows"; key: string; uses: string[]; op: RowOp; rows: number; C: number }
  | { family: "attention"; key: string; uses: string[]; B: number; H: number; T: number; D: number };

// The matmuls, row kernels and attention of one fine-tuning step (forward and backward) of `config` at batch B
// with each of `strategies` (only LoRA adds shapes: its rank-r products), deduplicated by cache key. A linear
// layer x (M, K) · w (N, K)ᵀ (engine/ops.ts linear) runs forward "nt"; backward dx = dz (M, N) · w (N, K) "nn"
// and dw = dzᵀ · x "tn"; fc1's forward has the bias and GELU epilogue, timed with it. Unfused attention
// (engine/ops.ts) runs batched products over the B·H heads.
export function modelShapes(config: VitConfig, B: number, strategies: Strategy[] = [{ kind: "full" }]): TuneShape[] {
  const C = config.width;
  const G = (config.imageSize / config.patchSize) ** 2; // patches
  const T = G + 1; // tokens with CLS
  const shapes = new Map<string, TuneShape>();
  const add = (s: TuneShape) => {
    const old = shapes.get(s.key);
    if (old) old.uses.push(...s.uses);
    else shapes.set(s.key, s);
  };
  const mm = (use: string, m: number, k: number, n: number, transA: boolean, transB: boolean, batch = 1, gelu = false) =>
    add({ family: "matmul", key: matmulShapeKey(m, k, n, transA, transB, batch, gelu), uses: [use], M: m, K: k, N: n, transA, transB, batch, gelu });
  const linear = (name: string, M: number, K: number, N: number, dx: boolean, gelu = false) => {
    mm(`${name}`, M, K, N, false, true, 1, gelu);
    if (dx) mm(`${name} dx`, M, N, K, false, false);
    mm(`${name} dw`, N, M, K, true, false);
  };
  const rows = (op: RowOp, r: number, c: number, use: string) =>
    add({ family: "rows", key: rowShapeKey(op, r, c), uses: [use], op, rows: r, C: c });
  linear("patch-embed", B * G, 3 * config.patchSize ** 2, C, false); // the images need no gradient
  linear("qkv", B * T, C, 3 * C, true);
  linear("proj", B * T, C, C, true);
  linear("fc1", B * T, C, config.mlpHidden, true, true);
  linear("fc2", B * T, config.mlpHidden, C, true);
  if (config.classes > 0) linear("head", B, C, config.classes, true);
  rows("layernorm", B * T, C, "norm1/norm2");
  rows("layernorm", B, C, "final norm (CLS)");
  rows("softmax", B * config.heads * T, T, "attention probabilities (capture)");
  if (config.classes > 0) rows("cross-entropy", B, config.classes, "loss");
  const H = config.heads;
  const D = C / H;
  add({ family: "attention", key: attentionShapeKey(B, H, T, D), uses: ["attention forward+backward"], B, H, T, D });
  mm("unfused attention q·kᵀ, dP", T, D, T, false, true, B * H);
  mm("unfused attention P·v, dq", T, T, D, false, false, B * H);
  mm("unfused attention dv, dk", T, T, D, true, false, B * H);
  // LoRA: h = x·Aᵀ (A: n·r x in, the slices' A stacked), delta = h·Bᵀ (B: out x n·r), each a linear layer.
  for (const s of strategies) {
    if (s.kind !== "lora") continue;
    const targets = s.targets ?? ["q", "v"];
    const lora = (layer: string, inF: number, outF: number, nr: number) => {
      linear(`lora ${layer} A (r ${s.rank})`, B * T, inF, nr, true);
      linear(`lora ${layer} B (r ${s.rank})`, B * T, nr, outF, true);
    };
    const qkv = targets.filter((t) => t === "q" || t === "k" || t === "v").length;
    if (qkv > 0) lora("qkv", C, 3 * C, qkv * s.rank);
    if (targets.includes("proj")) lora("proj", C, C, s.rank);
    if (targets.includes("fc1")) lora("fc1", C, config.mlpHidden, s.rank);
    if (targets.includes("fc2")) lora("fc2", config.mlpHidden, C, s.rank);
  }
  return [...shapes.values()];
}

function versionsOf(shape: TuneShape): string[] {
  if (shape.family === "matmul") return MATMUL_VERSIONS;
  if (shape.family === "attention") return ATTENTION_VERSIONS;
  return availableRowVersions().map(String);
}

// What the kernels would pick now for this shape (cache included).
function currentVersion(shape: TuneShape): string {
  if (shape.family === "matmul") return chooseVersion(undefined, shape);
  if (shape.family === "attention") return attentionVersion(undefined, { B: shape.B, N: shape.T, H: shape.H, D: shape.D }, true);
  return String(defaultRowVersion(shape.op, shape.rows, shape.C));
}

const random = (rng: Rng, shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.fromArray(rng.fill(n, () => rng.uniform(-1, 1)), shape);
};

// Random inputs for `shape` and a function that encodes one forward+backward (rows, attention) or one product
// (matmul) with `version`, disposing what it makes. Returns the inputs too, for the caller to dispose.
function workload(shape: TuneShape, rng: Rng): { inputs: Tensor[]; run: (version: string) => void } {
  if (shape.family === "matmul") {
    const { M, K, N, transA, transB, batch, gelu } = shape;
    const lead = batch > 1 ? [batch] : [];
    const a = random(rng, [...lead, ...(transA ? [K, M] : [M, K])]);
    const b = random(rng, [...lead, ...(transB ? [N, K] : [K, N])]);
    const bias = gelu ? random(rng, [N]) : undefined;
    const inputs = bias ? [a, b, bias] : [a, b];
    return { inputs, run: (version) => matmulForward(a, b, { transA, transB, bias, gelu, version }).dispose() };
  }
  if (shape.family === "attention") {
    const { B, H, T, D } = shape;
    const qkv = random(rng, [B, T, 3 * H * D]).requireGrad();
    const dout = random(rng, [B, T, H * D]);
    return {
      inputs: [qkv, dout],
      run: (version) =>
        tidy(() => {
          backward(ops.attention(qkv, H, { version }), dout);
          qkv.grad!.dispose(); // a leaf's gradient is kept across scopes
          qkv.grad = undefined;
        }),
    };
  }
  const { op, rows, C } = shape;
  const x = random(rng, [rows, C]);
  const dy = random(rng, [rows, C]);
  if (op === "layernorm") {
    const gamma = random(rng, [C]);
    const beta = random(rng, [C]);
    return {
      inputs: [x, dy, gamma, beta],
      run: (version) => {
        const v = Number(version) as RowVersion;
        const { y, mean, rstd } = layernormForward(x, gamma, beta, 1e-6, v);
        const g = layernormBackward(dy, x, gamma, mean, rstd, { dx: true, dgamma: true, dbeta: true }, v);
        for (const t of [y, mean, rstd, g.dx, g.dgamma, g.dbeta]) t?.dispose();
      },
    };
  }
  if (op === "softmax") {
    return {
      inputs: [x, dy],
      run: (version) => {
        const v = Number(version) as RowVersion;
        const y = softmaxForward(x, v);
        softmaxBackward(y, dy, v).dispose();
        y.dispose();
      },
    };
  }
  const labels = Tensor.fromArray(rng.fill(rows, () => Math.min(C - 1, Math.floor(rng.uniform(0, C)))), [rows], "i32");
  const dloss = Tensor.scalar(1);
  return {
    inputs: [x, dy, labels, dloss],
    run: (version) => {
      const opts = { version: Number(version) as RowVersion };
      const { loss, lse } = crossEntropyForward(x, labels, opts);
      crossEntropyBackward(x, labels, lse, dloss, opts).dispose();
      loss.dispose();
      lse.dispose();
    },
  };
}

// Times every candidate of `shape` (see the header for the early drop). Returns the cache entry.
async function tuneShape(shape: TuneShape, reps: number, rng: Rng): Promise<TuneEntry> {
  const { inputs, run } = workload(shape, rng);
  let inner = 1;
  // Each candidate keeps its own wait estimate: taking turns with one learned on a slower candidate would make a
  // faster one oversleep, and lose.
  const paced = Object.fromEntries(versionsOf(shape).map((v) => [v, ownWaitEstimate()]));
  const timed = async (v: string, warmup: number, n: number) => {
    const t = await paced[v](() => timeGpu(() => { for (let i = 0; i < inner; i++) run(v); }, { warmup, reps: n }));
    return t.runsMs.map((ms) => ms / inner);
  };
  const runs: Record<string, number[]> = {};
  for (const v of versionsOf(shape)) runs[v] = await timed(v, 1, 1); // the warm-up compiles the version
  // A small shape takes less than the ~1 ms a submit and wait cost: repeat it inside each timed run and time the
  // first runs again, so that the kernels, not the round trip, are compared.
  const first = Math.min(...Object.values(runs).map((r) => r[0]));
  if (first < MIN_RUN_MS) {
    inner = Math.min(MAX_INNER, Math.ceil(MIN_RUN_MS / first));
    for (const v of versionsOf(shape)) runs[v] = await timed(v, 0, 1);
  }
  // A candidate far behind gets one more run before it is dropped: one slow run can be the host, not the kernel.
  const best = Math.min(...Object.values(runs).map((r) => r[0]));
  for (const v of versionsOf(shape)) if (runs[v][0] > DROP_FACTOR * best) runs[v].push(...(await timed(v, 0, 1)));
  const kept = versionsOf(shape).filter((v) => Math.min(...runs[v]) <= DROP_FACTOR * best);
  // The remaining runs go round-robin over the kept candidates, so that a slower or faster spell of the machine
  // falls on all of them alike.
  for (let rep = 1; rep < reps; rep++) for (const v of kept) runs[v].push(...(await timed(v, 0, 1)));
  for (const t of inputs) t.dispose();
  const candidates: Record<string, number> = {};
  for (const [v, r] of Object.entries(runs)) candidates[v] = round(median(r));
  // Ties go to the earlier version in the family's list.
  const version = Object.keys(candidates).reduce((w, v) => (candidates[v] < candidates[w] ? v : w));
  return { version, ms: candidates[version], candidates };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

function modelConfig(name: string, classes: number | undefined): VitConfig {
  if (name === "default") return validateConfig({ ...DEFAULT_MODEL, classes: classes ?? 5 });
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

export const tune: Command = {
  summary: "time the versions of each kernel family at a model's shapes and cache the winners for this adapter",
  usage: `usage: node dist/run.js tune [--model vit-s16] [--batch 8] [--classes N] [--strategies full,lora-r8]
                             [--families matmul,rows,attention] [--reps 2] [--json] [--dry-run]
       node dist/run.js tune --show [--json]
       node dist/run.js tune --clear

  --model       default (the default study's backbone), ${Object.keys(NAMED_CONFIGS).join(", ")} (default vit-s16)
  --batch       images per step (default 8)
  --classes     classes of the linear head (default 100; 5 for --model default)
  --strategies  the fine-tuning strategies whose shapes to add (default full; lora-rR adds its rank-r products,
                the others run the model's own shapes)
  --families    which kernel families to tune: ${FAMILIES.join(", ")} (default all)
  --reps        timed runs per surviving candidate (default 2); candidates over ${DROP_FACTOR}x the best first run stop early
  --json        print the results (or the cache, with --show) as JSON
  --dry-run     list the shapes and candidates, time nothing, write nothing
  --show        print this adapter's cache
  --clear       delete this adapter's cache

The cache lives in $PEFT_TUNE_CACHE, else $XDG_CACHE_HOME/peft-vit-webgpu, else ~/.cache/peft-vit-webgpu, one file
per adapter and driver. Kernels use its winners automatically for exactly the tuned shapes; PEFT_TUNE=0 ignores it;
an explicit version (PEFT_MATMUL, or a call's version option) still wins.`,
  async run(argv) {
    const { flags, positional } = parseArgs(argv, FLAGS);
    if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
    if (flags.show && flags.clear) throw new UsageError("--show and --clear exclude each other");
    const families = flags.families ?? FAMILIES;
    for (const f of families) if (!FAMILIES.includes(f)) throw new UsageError(`--families: expected some of ${FAMILIES.join(", ")}, got "${f}"`);
    const batch = flags.batch ?? 8;
    const reps = flags.reps ?? 2;
    if (batch < 1) throw new UsageError(`--batch: expected a positive integer, got ${batch}`);
    if (reps < 1) throw new UsageError(`--reps: expected a positive integer, got ${reps}`);
    if (flags.classes !== undefined && flags.classes < 0) throw new UsageError(`--classes: expected >= 0, got ${flags.classes}`);
    const modelName = flags.model ?? "vit-s16";
    const config = modelConfig(modelName, flags.classes);

    await initEngine();
    if (flags.show) return showCache(!!flags.json);
    if (flags.clear) {
      const path = tuneCachePath();
      console.log(clearTuneCache() ? `deleted ${path}` : `no tuning cache at ${path}`);
      return;
    }
    let strategies: Strategy[];
    try {
      strategies = (flags.strategies ?? ["full"]).map(parseStrategy);
    } catch (e) {
      throw new UsageError(`--strategies: ${e instanceof Error ? e.message : e}`);
    }
    const shapes = modelShapes(config, batch, strategies).filter((s) => families.includes(s.family));
    if (flags["dry-run"]) {
      const plan = shapes.map((s) => ({ key: `${s.family}/${s.key}`, uses: s.uses, candidates: versionsOf(s), now: currentVersion(s) }));
      if (flags.json) console.log(JSON.stringify({ model: modelName, batch, shapes: plan }, null, 2));
      else for (const p of plan) console.log(`${p.key.padEnd(36)} ${p.candidates.join(",").padEnd(40)} now ${p.now}   ${p.uses.join(", ")}`);
      return;
    }

    if (!flags.json) console.log(`${deviceLine()}\ntuning ${shapes.length} shapes of ${modelName} at batch ${batch}, ${reps} reps`);
    const rng = new Rng(0);
    const entries: Record<string, TuneEntry> = {};
    const report = [];
    for (const shape of shapes) {
      const before = currentVersion(shape);
      const entry = await tuneShape(shape, reps, rng);
      const key = `${shape.family}/${shape.key}`;
      entries[key] = entry;
      report.push({ key, uses: shape.uses, before, ...entry });
      if (!flags.json) {
        const times = Object.entries(entry.candidates).map(([v, ms]) => `${v} ${ms.toFixed(2)}`).join("  ");
        const gain = entry.candidates[before] / entry.ms;
        console.log(`${key.padEnd(36)} -> ${entry.version.padEnd(9)} x${gain.toFixed(2)} vs ${before.padEnd(9)} | ${times}   (${shape.uses.join(", ")})`);
      }
    }
    const path = await storeTuned(entries);
    if (flags.json) console.log(JSON.stringify({ model: modelName, batch, reps, path, results: report }, null, 2));
    else console.log(`wrote ${Object.keys(entries).length} entries to ${path}`);
  },
};
