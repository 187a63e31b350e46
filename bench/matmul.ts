// `bench matmul`: GFLOP/s of kernels/matmul.ts per shape (M x K x N), layout and version.
//   shapes   square 256, 512, 1024, 2048 and the ViT GEMMs 3200x192x576 (ViT-Ti qkv, batch 16), 12608x384x1152
//            (ViT-S qkv, batch 64), 12608x768x2304 (ViT-B qkv, batch 64); or --shapes
//   layouts  nn (a · b), tn (aᵀ stored (K, M)), nt (bᵀ stored (N, K): nn.Linear's forward), tt; --layouts
//   versions the ones meant for this device (reg* on CPU drivers, all the adapter can run on GPUs); or --version
//   precision f32, or f16 inputs accumulated in f32 (--precision f16; the mma versions multiply only these), or
//            int8 or int8x2 (--precision: the int8 versions beside the exact ones, as training.precision runs them)
// Each version and layout is first validated against float64 CPU products at 67x45x71 and 300x77x257 (atol = rtol =
// 1e-4 * sqrt(K), 2e-3 * sqrt(K) with f16 inputs; int8's bound, 2^-17 K at inputs within 1, is within the first
// there). Then per case one warm-up run (pipeline compile, packing), then --reps timed runs, each a few
// products back to back (enough for ~4 GFLOP, at most 100) between batch.sync() calls; the median is reported,
// with the best run.
// A shape's cases (every version and layout, and TF.js) take their timed runs in turns, round by round, so a
// slow spell of the host falls on all of them alike.
// GFLOP/s counts 2*M*N*K per wall second. "cpu GFLOP/s" counts it per CPU-second of the process's worker threads
// (where lavapipe runs the kernels; best run): on a machine shared with other work it is the steadier number, and
// on an idle machine wall GFLOP/s approaches it times the number of cores.
// TF.js: per shape, in the same run, @tensorflow/tfjs-backend-webgpu's matMul on the same Dawn device (bench/tfjs.ts;
// validated the same way, timed the same way and in the same rounds: warm-up, then the median of the same number
// of runs, each ending with the queue idle); "vs tfjs" is our fastest version's median GFLOP/s over TF.js's, per
// layout nn only (TF.js's transposes are separate kernels). --no-tfjs skips it; if TF.js fails to start, the
// reason is printed and our rows still come.
import { readdirSync, readFileSync } from "node:fs";
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { initEngine, runtime, deviceLine } from "../engine/runtime.js";
import { throwIfDeviceError } from "../engine/device.js";
import { Tensor } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import { matmulForward, type Precision } from "../kernels/matmul.js";
import { PRECISIONS } from "../autograd/precision.js";
import { checkPrecisionOnDevice } from "../train/mixed-precision.js";
import { MATMUL, type MatmulVersion, isVersionOf } from "../kernels/registry.js";
import { type TimedCase, callsPerRun, checkTensorFits } from "./harness.js";
import { ownWaitEstimate } from "../engine/timing.js";
import { median } from "../util/stats.js";
import type { TfjsMatmul } from "./tfjs.js";

export const FLAGS = { json: "boolean", version: "list", shapes: "list", layouts: "list", reps: "int", "no-tfjs": "boolean", precision: "string" } as const;
const SHAPES = ["256x256x256", "512x512x512", "1024x1024x1024", "2048x2048x2048", "3200x192x576", "12608x384x1152", "12608x768x2304"];
const LAYOUTS: Record<string, { transA: boolean; transB: boolean }> = {
  nn: { transA: false, transB: false },
  tn: { transA: true, transB: false },
  nt: { transA: false, transB: true },
  tt: { transA: true, transB: true },
};
const CHECK = [67, 45, 71]; // M, K, N of the validation product
const CHECK_TILES = [300, 77, 257]; // ours also here: several 64- and 128-wide tiles with edges, K past two slabs of 32

// What a row reports of its timed runs, ours and TF.js's alike.
interface Figures {
  medianMs: number; // per product
  gflops: number; // at the median
  bestGflops: number;
  cpuGflops: number; // per CPU-second of the worker threads, best run
}

interface Row extends Figures {
  M: number;
  K: number;
  N: number;
  layout: string;
  version: string;
  reps: number;
}

interface TfjsRow extends Figures {
  M: number;
  K: number;
  N: number;
  reps: number;
  ours: number; // our best version's median GFLOP/s (layout nn) / TF.js's
}

// ms: per product, one per timed run; bestCpuNs: the least worker-thread CPU time of a product.
function figures(flop: number, ms: number[], bestCpuNs: number): Figures {
  const medianMs = median(ms);
  return {
    medianMs,
    gflops: flop / medianMs / 1e6,
    bestGflops: flop / Math.min(...ms) / 1e6,
    cpuGflops: bestCpuNs > 0 ? flop / bestCpuNs : NaN,
  };
}

function parseShape(s: string): [number, number, number] {
  const dims = s.split("x").map(Number);
  if (dims.length !== 3 || dims.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new UsageError(`--shapes: expected MxKxN with positive integers, got "${s}"`);
  }
  return dims as [number, number, number];
}

// CPU nanoseconds of every thread but the main one (lavapipe's workers); 0 where /proc is missing.
function workerCpuNs(): number {
  let ns = 0;
  try {
    for (const tid of readdirSync("/proc/self/task")) {
      if (Number(tid) !== process.pid) ns += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    }
  } catch {
    return 0;
  }
  return ns;
}

function random(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return rng.fill(n, () => rng.uniform(-1, 1));
}

// a, b stored in `layout`; returns the tensors for a logical (M, K) · (K, N) product.
function operands(M: number, K: number, N: number, layout: string, a: Float32Array, b: Float32Array): [Tensor, Tensor] {
  const { transA, transB } = LAYOUTS[layout];
  return [
    Tensor.fromArray(transA ? transpose(a, M, K) : a, transA ? [K, M] : [M, K]),
    Tensor.fromArray(transB ? transpose(b, K, N) : b, transB ? [N, K] : [K, N]),
  ];
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = x[r * cols + c];
  return t;
}

// Throws naming `who` (version and layout, or TF.js) and the first mismatch when product(a, b) for a (M, K),
// b (K, N) at CHECK differs from a float64 CPU product.
// Tolerance atol = rtol = 1e-4 * sqrt(K), with f16 inputs 2e-3 * sqrt(K) (test/kernels/matmul.test.ts says why).
async function validate(who: string, product: (a: Float32Array, b: Float32Array) => Promise<Float32Array>, at = CHECK, f16 = false): Promise<void> {
  const [M, K, N] = at;
  const a = random(M * K, 1);
  const b = random(K * N, 2);
  const y = await product(a, b);
  const tol = (f16 ? 2e-3 : 1e-4) * Math.sqrt(K);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let want = 0;
      for (let k = 0; k < K; k++) want += a[m * K + k] * b[k * N + n];
      const got = y[m * N + n];
      if (!(Math.abs(got - want) <= tol + tol * Math.abs(want))) {
        throw new Error(`bench matmul: ${who} at ${at.join("x")}: y[${m}, ${n}] expected ${want}, got ${got}`);
      }
    }
  }
}

async function ours(version: string, layout: string, inputs: Precision, at: number[], a: Float32Array, b: Float32Array): Promise<Float32Array> {
  const [M, K, N] = at;
  const [ta, tb] = operands(M, K, N, layout, a, b);
  const yt = matmulForward(ta, tb, { ...LAYOUTS[layout], version, inputs });
  const y = await yt.data();
  for (const t of [ta, tb, yt]) t.dispose();
  return y;
}

// The FLOPs of one product M x K x N.
const productFlop = (M: number, K: number, N: number) => MATMUL.work({ M, K, N, transA: false, transB: false, batch: 1 });

// TF.js on our device, validated; undefined (after printing why) when it cannot start or computes wrong.
async function startTfjs(json: boolean): Promise<TfjsMatmul | undefined> {
  try {
    const { loadTfjs } = await import("./tfjs.js");
    const tfjs = await loadTfjs(runtime().gpu);
    await validate("tfjs", (a, b) => tfjs.product(a, b, CHECK[0], CHECK[1], CHECK[2]));
    throwIfDeviceError("tfjs start-up");
    if (!json) console.log(`TF.js ${tfjs.version} WebGPU backend on the same device, validated at ${CHECK.join("x")}`);
    return tfjs;
  } catch (e) {
    console.error(`bench matmul: TF.js comparison skipped: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}

// Our version on one layout's operands, warmed up (pipeline compile, packing).
async function prepareOurs(operands: Operands, version: string, inputs: Precision, inner: number): Promise<TimedCase> {
  const { a, b, out, layout } = operands;
  const { batch } = runtime();
  const run = () => {
    for (let i = 0; i < inner; i++) matmulForward(a, b, { ...LAYOUTS[layout], version, out, inputs });
  };
  const paced = ownWaitEstimate();
  await paced(async () => {
    run();
    await batch.sync();
  });
  return {
    once: () =>
      paced(async () => {
        const t0 = performance.now();
        run();
        await batch.sync();
        return (performance.now() - t0) / inner;
      }),
    dispose() {},
  };
}

// The operands one layout's cases share.
interface Operands {
  layout: string;
  a: Tensor;
  b: Tensor;
  out: Tensor;
}

// Per case, `reps` runs taken in turns (round 1 of every case, then round 2, ...), so that every case sees the
// same share of the host's slow spells: on a shared machine speed drifts over minutes, which would otherwise
// skew the ratio between cases timed one after another. Returns per case the ms per product of each run and the
// least worker-thread CPU nanoseconds of a product.
async function interleave(cases: TimedCase[], reps: number, inner: number): Promise<{ ms: number[]; cpuNs: number }[]> {
  const out = cases.map(() => ({ ms: [] as number[], cpuNs: Infinity }));
  for (let r = 0; r < reps; r++) {
    for (const [i, c] of cases.entries()) {
      const c0 = workerCpuNs();
      out[i].ms.push(await c.once());
      out[i].cpuNs = Math.min(out[i].cpuNs, (workerCpuNs() - c0) / inner);
    }
  }
  return out;
}

// Every row of one shape: our versions on each layout and, for nn, TF.js (skipped, after printing why, when it
// fails at this shape; its device errors are taken here, not by our next batch).
async function timeShape(M: number, K: number, N: number, layouts: string[], versions: string[], inputs: Precision, reps: number, tfjs: TfjsMatmul | undefined) {
  const flop = productFlop(M, K, N);
  const inner = callsPerRun(flop, "FLOP"); // products per timed run (bench/harness.ts)
  const sets: Operands[] = layouts.map((layout) => {
    const [a, b] = operands(M, K, N, layout, random(M * K, 3), random(K * N, 4));
    return { layout, a, b, out: Tensor.empty([M, N]) };
  });
  const labels: { layout: string; version: string }[] = [];
  const cases: TimedCase[] = [];
  try {
    for (const set of sets) {
      for (const version of versions) {
        cases.push(await prepareOurs(set, version, inputs, inner));
        labels.push({ layout: set.layout, version });
      }
    }
    let tfjsCase: TimedCase | undefined;
    if (tfjs && layouts.includes("nn")) {
      try {
        tfjsCase = await tfjs.prepare(M, K, N, inner);
        throwIfDeviceError("tfjs matMul");
        cases.push(tfjsCase);
      } catch (e) {
        console.error(`bench matmul: TF.js at ${M}x${K}x${N} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const timed = await interleave(cases, reps, inner);
    const rows: Row[] = labels.map((l, i) => ({ M, K, N, ...l, reps, ...figures(flop, timed[i].ms, timed[i].cpuNs) }));
    let tfjsRow: TfjsRow | undefined;
    if (tfjsCase) {
      const f = figures(flop, timed[labels.length].ms, timed[labels.length].cpuNs);
      const ours = Math.max(...rows.filter((r) => r.layout === "nn").map((r) => r.gflops));
      tfjsRow = { M, K, N, reps, ...f, ours: ours / f.gflops };
    }
    return { rows, tfjsRow };
  } finally {
    for (const c of cases) c.dispose();
    for (const { a, b, out } of sets) for (const t of [a, b, out]) t.dispose();
  }
}

export const matmul: Command = {
  summary: "matmul GFLOP/s per shape, layout and version",
  usage: `usage: node dist/run.js bench matmul [--json] [--version V,...] [--shapes MxKxN,...] [--layouts ${Object.keys(LAYOUTS).join(",")}] [--reps N] [--no-tfjs]
       [--precision ${PRECISIONS.join("|")}]

  --version   versions to time (default: reg* on CPU drivers, all the adapter can run on GPUs); one of ${MATMUL.versions.join(", ")}
  --shapes    M x K x N products (default: ${SHAPES.join(", ")})
  --layouts   nn, tn (a stored transposed), nt (b stored transposed), tt (default: nn)
  --reps      timed runs per case (default: 5, or 3 above 10 GFLOP per product)
  --no-tfjs   skip the comparison with TensorFlow.js's WebGPU backend on the same device (made where --layouts
              includes nn)
  --precision f16: a and b read in f16, accumulated in f32 (mixed precision; the mma versions need it); int8, int8x2:
              the products of that training.precision (the int8 versions need one of them); default f32
  --json      print the rows as JSON`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const shapes = (flags.shapes ?? SHAPES).map(parseShape);
    const layouts = flags.layouts ?? ["nn"];
    for (const l of layouts) if (!(l in LAYOUTS)) throw new UsageError(`--layouts: expected nn, tn, nt or tt, got "${l}"`);
    for (const v of flags.version ?? []) {
      if (!isVersionOf(MATMUL, v)) throw new UsageError(`--version: expected one of ${MATMUL.versions.join(", ")}, got "${v}"`);
    }
    if (flags.reps !== undefined && flags.reps < 1) throw new UsageError(`--reps: expected at least 1, got ${flags.reps}`);

    const inputs = (flags.precision ?? "f32") as Precision;
    if (!PRECISIONS.includes(inputs)) throw new UsageError(`--precision: expected one of ${PRECISIONS.join(", ")}, got "${inputs}"`);
    const { gpu } = await initEngine();
    for (const [M, K, N] of shapes) {
      const operands: [string, number][] = [["a (M, K)", M * K], ["b (K, N)", K * N], ["y (M, N)", M * N]];
      for (const [what, values] of operands) checkTensorFits("--shapes", `${M}x${K}x${N}'s ${what}`, values);
    }
    await checkPrecisionOnDevice("bench matmul", "--precision", inputs);
    const f16 = inputs === "f16";
    const runnable = (v: MatmulVersion) => !MATMUL.unavailable!(v, { M: 1, K: 1, N: 1, transA: false, transB: false, batch: 1, inputs }, gpu);
    const versions: string[] = flags.version ?? MATMUL.versions.filter((v) => (!gpu.isCpu || v.startsWith("reg")) && runnable(v));
    if (!flags.json) console.log(deviceLine());
    for (const v of versions) {
      for (const l of layouts) for (const at of [CHECK, CHECK_TILES]) await validate(`${v} ${l}`, (a, b) => ours(v, l, inputs, at, a, b), at, f16);
    }
    if (!flags.json) {
      console.log(`validated ${versions.join(", ")} (${layouts.join(", ")}, ${inputs} inputs) against float64 products at ${CHECK.join("x")} and ${CHECK_TILES.join("x")}`);
    }
    const tfjs = flags["no-tfjs"] || !layouts.includes("nn") ? undefined : await startTfjs(flags.json ?? false);
    const width = Math.max(10, ...versions.map((v) => v.length)); // of the version column
    if (!flags.json) console.log(`M x K x N           layout  ${"version".padEnd(width)} reps    ms/product   GFLOP/s    best  cpu GFLOP/s${tfjs ? "  vs tfjs" : ""}`);
    const f = (x: number, w: number, d = 1) => x.toFixed(d).padStart(w);
    const line = (M: number, K: number, N: number, layout: string, who: string, reps: number, r: Figures) =>
      `${`${M}x${K}x${N}`.padEnd(19)} ${layout.padEnd(7)} ${who.padEnd(width)} ${String(reps).padStart(4)} ` +
      `${f(r.medianMs, 12, 2)} ${f(r.gflops, 9)} ${f(r.bestGflops, 7)} ${f(r.cpuGflops, 12)}`;
    const rows: Row[] = [];
    const tfjsRows: TfjsRow[] = [];
    for (const [M, K, N] of shapes) {
      const reps = flags.reps ?? (productFlop(M, K, N) > 10e9 ? 3 : 5);
      const shape = await timeShape(M, K, N, layouts, versions, inputs, reps, tfjs);
      rows.push(...shape.rows);
      if (shape.tfjsRow) tfjsRows.push(shape.tfjsRow);
      if (flags.json) continue;
      for (const row of shape.rows) console.log(line(M, K, N, row.layout, row.version, reps, row));
      if (shape.tfjsRow) console.log(`${line(M, K, N, "nn", "tfjs", reps, shape.tfjsRow)} ${f(shape.tfjsRow.ours, 7, 2)}x`);
    }
    if (flags.json) console.log(JSON.stringify({ device: deviceLine(), precision: inputs, versions, layouts, rows, tfjs: tfjsRows }, null, 2));
  },
};
