// The autotuner's timing: every version of a family that the adapter can run at one shape, timed on random inputs,
// the winner returned as a tuning-cache entry (engine/tuning.ts). `tune` (cli/tune.ts) calls it for each shape a
// traced training step looked up (train/trace.ts), with the shapes of withComposedShapes below.
//
// Workloads: one product (matmul); one forward and backward (rows, attention); one top-k or similarity matrix
// (knn). Times are per workload, in ms. Inputs are random; correctness of every version is the kernel tests' job.
// Timing: each candidate is warmed up (which compiles it) and run once; a candidate more than 3x slower than the
// best first run runs once more and is dropped if neither run came within 3x; the rest run reps-1 more times,
// round-robin (each with its own wait estimate), and are ranked by the median of all their runs. Small shapes are
// repeated inside each timed run (up to 32 times, to ~10 ms).
import { type Resolution, type TracedShape, addUses, traceDry } from "../engine/trace.js";
import { Tensor, numel, tidy } from "../engine/tensor.js";
import type { TuneEntry } from "../engine/tuning.js";
import { ownWaitEstimate, timeGpu } from "../engine/timing.js";
import { median } from "../util/stats.js";
import { Rng } from "../util/random.js";
import { type FamilyName, type ShapeOf, availableVersions, familyNamed } from "./registry.js";
import { matmulForward } from "./matmul.js";
import { layernormBackward, layernormForward } from "./layernorm.js";
import { softmaxBackward, softmaxForward } from "./softmax.js";
import { crossEntropyBackward, crossEntropyForward } from "./cross-entropy.js";
import { attentionBackward, attentionForward } from "./attention.js";
import { knnSimilarity, knnTopK } from "./knn.js";

export const DROP_FACTOR = 3; // candidates this much slower than the best first run are not timed further
const MIN_RUN_MS = 10; // each timed run repeats a small workload until it takes about this long ...
const MAX_INNER = 32; // ... but at most this many times

// Random inputs for a shape, and a function that encodes one workload in `version`, disposing what it makes.
// The caller disposes the inputs.
interface Workload {
  inputs: Tensor[];
  run: (version: string) => void;
}

const random = (rng: Rng, shape: number[]) => Tensor.fromArray(rng.fill(numel(shape), () => rng.uniform(-1, 1)), shape);

// Each family's workload, at the shapes its look-ups report.
const WORKLOADS: { [F in FamilyName]: (shape: ShapeOf<F>, rng: Rng) => Workload } = {
  matmul({ M, K, N, transA, transB, batch, gelu, inputs }, rng) {
    const lead = batch > 1 ? [batch] : [];
    const a = random(rng, [...lead, ...(transA ? [K, M] : [M, K])]);
    const b = random(rng, [...lead, ...(transB ? [N, K] : [K, N])]);
    const bias = gelu ? random(rng, [N]) : undefined;
    return {
      inputs: bias ? [a, b, bias] : [a, b],
      run: (version) => matmulForward(a, b, { transA, transB, bias, gelu, version, inputs }).dispose(),
    };
  },
  rows({ op, rows, C }, rng) {
    const x = random(rng, [rows, C]);
    const dy = random(rng, [rows, C]);
    if (op === "layernorm") {
      const gamma = random(rng, [C]);
      const beta = random(rng, [C]);
      const all = { dx: true, dgamma: true, dbeta: true };
      return {
        inputs: [x, dy, gamma, beta],
        run: (version) =>
          tidy(() => {
            const { mean, rstd } = layernormForward(x, gamma, beta, 1e-6, version);
            layernormBackward(dy, x, gamma, mean, rstd, all, version);
          }),
      };
    }
    if (op === "softmax") return { inputs: [x, dy], run: (version) => tidy(() => void softmaxBackward(softmaxForward(x, version), dy, version)) };
    const labels = Tensor.fromArray(rng.fill(rows, () => Math.min(C - 1, Math.floor(rng.uniform(0, C)))), [rows], "i32");
    const dloss = Tensor.scalar(1);
    return {
      inputs: [x, dy, labels, dloss],
      run: (version) =>
        tidy(() => {
          const { lse } = crossEntropyForward(x, labels, { version });
          crossEntropyBackward(x, labels, lse, dloss, { version });
        }),
    };
  },
  attention({ B, N, H, D, inputs }, rng) {
    const qkv = random(rng, [B, N, 3 * H * D]);
    const dout = random(rng, [B, N, H * D]);
    return {
      inputs: [qkv, dout],
      run: (version) =>
        tidy(() => {
          const { saved } = attentionForward(qkv, H, { version, inputs });
          attentionBackward(saved, dout);
        }),
    };
  },
  knn({ Q, N, D, K, normalize }, rng) {
    const queries = random(rng, [Q, D]);
    const bank = random(rng, [N, D]);
    return {
      inputs: [queries, bank],
      run: (version) =>
        tidy(() => {
          if (K > 0) knnTopK(queries, bank, K, { normalize, version });
          else knnSimilarity(queries, bank, { normalize, version });
        }),
    };
  },
};

function workload(r: Resolution, rng: Rng): Workload {
  return WORKLOADS[familyNamed(r.family).name as FamilyName](r.shape as never, rng);
}

// The versions `tune` times at a shape: those the adapter can run there (matmul's int8 ones only at products of
// precision "int8" or "int8x2", kernels/registry.ts).
export function candidates(r: Resolution): string[] {
  return availableVersions(familyNamed(r.family), r.shape);
}

// `shapes` and the shapes their families' composed versions look up in turn (unfused attention's products and
// softmax), found by running those versions' workloads in a dry run; a shape found so is used by
// "<family>/<key> <version>".
export function withComposedShapes(shapes: TracedShape[]): TracedShape[] {
  const all = new Map(shapes.map((s) => [`${s.family}/${s.key}`, { ...s, uses: [...s.uses] }]));
  const rng = new Rng(0);
  for (const s of shapes) {
    const family = familyNamed(s.family);
    for (const version of family.composed ?? []) {
      if (!candidates(s).includes(version)) continue;
      const { inputs, run } = workload(s, rng);
      const inner = traceDry(() => run(version)).filter((r) => r.family !== s.family || r.key !== s.key);
      addUses(all, inner, `${s.family}/${s.key} ${version}`);
      for (const t of inputs) t.dispose();
    }
  }
  return [...all.values()];
}

// Times every candidate at the shape (see the header for the early drop). Returns the cache entry.
export async function tuneShape(r: Resolution, reps: number, rng: Rng): Promise<TuneEntry> {
  const versions = candidates(r);
  const { inputs, run } = workload(r, rng);
  let inner = 1;
  // Each candidate keeps its own wait estimate: taking turns with one learned on a slower candidate would make a
  // faster one oversleep, and lose.
  const paced = Object.fromEntries(versions.map((v) => [v, ownWaitEstimate()]));
  const timed = async (v: string, warmup: number, n: number) => {
    const t = await paced[v](() => timeGpu(() => { for (let i = 0; i < inner; i++) run(v); }, { warmup, reps: n }));
    return t.runsMs.map((ms) => ms / inner);
  };
  const runs: Record<string, number[]> = {};
  for (const v of versions) runs[v] = await timed(v, 1, 1); // the warm-up compiles the version
  // A small shape takes less than the ~1 ms a submit and wait cost: repeat it inside each timed run and time the
  // first runs again, so that the kernels, not the round trip, are compared.
  const first = Math.min(...Object.values(runs).map((r) => r[0]));
  if (first < MIN_RUN_MS) {
    inner = Math.min(MAX_INNER, Math.ceil(MIN_RUN_MS / first));
    for (const v of versions) runs[v] = await timed(v, 0, 1);
  }
  // A candidate far behind gets one more run before it is dropped: one slow run can be the host, not the kernel.
  const best = Math.min(...Object.values(runs).map((r) => r[0]));
  for (const v of versions) if (runs[v][0] > DROP_FACTOR * best) runs[v].push(...(await timed(v, 0, 1)));
  const kept = versions.filter((v) => Math.min(...runs[v]) <= DROP_FACTOR * best);
  // The remaining runs go round-robin over the kept candidates, so that a slower or faster spell of the machine
  // falls on all of them alike.
  for (let rep = 1; rep < reps; rep++) for (const v of kept) runs[v].push(...(await timed(v, 0, 1)));
  for (const t of inputs) t.dispose();
  const times: Record<string, number> = {};
  for (const [v, r] of Object.entries(runs)) times[v] = round(median(r));
  // Ties go to the earlier version in the family's list.
  const version = Object.keys(times).reduce((w, v) => (times[v] < times[w] ? v : w));
  return { version, ms: times[version], candidates: times };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
