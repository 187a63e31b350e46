// `bench knn`: k-NN queries/s against a random bank, cosine similarity, top-k with k = kmax of DINO's sweep.
//   fused (kernels/knn.ts knnTopK): one pass per bank chunk keeps each query's top-k on the GPU; the run ends with
//      the (Q, k) read-back. One row per tiling (a version of kernels/registry.ts KNN) and bank-slice count asked
//      for (default: the tiling a call resolves and knnSlices' plan; a GPU scans the bank in slices, then merges
//      their lists).
//   matrix+cpu (the baseline): kernels/knn.ts knnSimilarity writes the full (Q, N) similarity matrix, in blocks of
//      queries that fit one storage binding; each block is read back and its top-k selected on the CPU (threshold
//      test, then insertion into a sorted list: the same order rule, sims descending, lower index first on ties).
// Both compute every similarity with the same f32 fma sequence, so the first run of each is validated exactly:
// identical indices and sims. Then --warmup untimed runs, then --reps timed runs, median reported.
// GFLOP/s counts 2*Q*N*D (the similarities only: KNN.work).
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { decimal, parseArgs } from "../util/args.js";
import { initEngine, runtime, deviceLine } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import { knnSimilarity, knnSlices, knnTopK } from "../kernels/knn.js";
import { KNN, isVersionOf, resolveVersion } from "../kernels/registry.js";
import { checkMemoryFits, checkTensorFits } from "./harness.js";

export const FLAGS = { json: "boolean", bank: "int", queries: "int", dim: "int", k: "int", reps: "int", warmup: "int", tilings: "list", slices: "list" } as const;
const UPLOAD_BYTES = 64 * 2 ** 20; // bank rows per uploaded tensor, as eval/knn.ts

interface TopK {
  sims: Float32Array; // (Q, k)
  indices: Int32Array; // (Q, k)
}

interface Row {
  kernel: string; // fused or matrix+cpu
  tiling: string;
  slices: number;
  bank: number;
  queries: number;
  dim: number;
  k: number;
  ms: number;
  queriesPerS: number;
  gflops: number;
}

// The CPU half of the baseline: the k best of each row of s (rows, n) into out at row offset q0.
function selectTopK(s: Float32Array, rows: number, n: number, k: number, out: TopK, q0: number): void {
  for (let i = 0; i < rows; i++) {
    const sims = out.sims.subarray((q0 + i) * k, (q0 + i + 1) * k).fill(-Infinity);
    const idx = out.indices.subarray((q0 + i) * k, (q0 + i + 1) * k).fill(-1);
    const row = s.subarray(i * n, (i + 1) * n);
    let kth = -Infinity;
    for (let r = 0; r < n; r++) {
      const v = row[r];
      if (!(v > kth)) continue;
      let j = k - 1;
      while (j > 0 && sims[j - 1] < v) {
        sims[j] = sims[j - 1];
        idx[j] = idx[j - 1];
        j--;
      }
      sims[j] = v;
      idx[j] = r;
      kth = sims[k - 1];
    }
  }
}

// Both kernels start from the queries on the CPU, x: (Q, D), and end with the top-k there.
async function fused(x: Float32Array, bank: Tensor[], d: number, k: number, tiling: string, slices: number): Promise<TopK> {
  const queries = Tensor.fromArray(x, [x.length / d, d]);
  const out = knnTopK(queries, bank, k, { normalize: true, version: tiling, slices });
  const result = { sims: await out.sims.data(), indices: await out.indices.dataInt() };
  [queries, out.sims, out.indices].forEach((t) => t.dispose());
  return result;
}

// The baseline's query blocks: (rows, N) matrices within one binding, a power of two, so their pooled buffers fit too.
const matrixBytes = () => 2 ** Math.floor(Math.log2(runtime().gpu.limits.maxStorageBufferBindingSize));

async function baseline(x: Float32Array, bank: Tensor[], n: number, d: number, k: number, tiling: string): Promise<TopK> {
  const q = x.length / d;
  const out: TopK = { sims: new Float32Array(q * k), indices: new Int32Array(q * k) };
  const block = Math.max(1, Math.floor(matrixBytes() / (n * 4)));
  for (let q0 = 0; q0 < q; q0 += block) {
    const rows = Math.min(block, q - q0);
    const queries = Tensor.fromArray(x.subarray(q0 * d, (q0 + rows) * d), [rows, d]);
    const s = knnSimilarity(queries, bank, { normalize: true, version: tiling });
    const data = await s.data();
    s.dispose();
    queries.dispose();
    selectTopK(data, rows, n, k, out, q0);
  }
  return out;
}

function compare(name: string, got: TopK, want: TopK, k: number): void {
  const bad = got.indices.findIndex((v, i) => v !== want.indices[i] || got.sims[i] !== want.sims[i]);
  if (bad >= 0) {
    throw new Error(
      `bench knn: ${name} disagrees with the baseline at query ${Math.floor(bad / k)}, rank ${bad % k}: ` +
        `index ${got.indices[bad]} sim ${got.sims[bad]}, expected index ${want.indices[bad]} sim ${want.sims[bad]}`,
    );
  }
}

async function time(run: () => Promise<unknown>, warmup: number, reps: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function positive(name: string, v: number | undefined, fallback: number, min = 1): number {
  const value = v ?? fallback;
  if (value < min) throw new UsageError(`--${name}: expected an integer >= ${min}, got ${value}`);
  return value;
}

export const knnBench: Command = {
  summary: "k-NN top-k: fused kernel vs full similarity matrix + CPU top-k, queries/s",
  usage: `usage: node dist/run.js bench knn [--bank N] [--queries Q] [--dim D] [--k K] [--tilings LIST] [--slices LIST] [--reps N] [--warmup N] [--json]

  --bank      bank rows N (default 100000)
  --queries   queries Q (default 256)
  --dim       feature dimension D (default 768)
  --k         neighbours kept (default 200, DINO's largest)
  --tilings   fused-kernel tilings, from ${KNN.versions.join(", ")} (default: the one a call resolves)
  --slices    bank slices of the fused kernel, e.g. 1,16,64 (default: the device's plan)
  --reps      timed runs, median reported (default 3)
  --warmup    untimed runs after validation (default 1)
  --json      print the rows as JSON`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const n = positive("bank", flags.bank, 100_000);
    const q = positive("queries", flags.queries, 256);
    const d = positive("dim", flags.dim, 768);
    const k = positive("k", flags.k, 200);
    const reps = positive("reps", flags.reps, 3);
    const warmup = positive("warmup", flags.warmup, 1, 0);
    const asked = (flags.tilings ?? []).map((t) => {
      if (!isVersionOf(KNN, t)) throw new UsageError(`--tilings: unknown "${t}"; choose from ${KNN.versions.join(", ")}`);
      return t;
    });
    const sliceCounts = (flags.slices ?? []).map((v) => {
      const count = decimal(v) ?? NaN; // not Number: "0x10" is no count of 16
      if (!Number.isInteger(count) || count < 1) throw new UsageError(`--slices: expected integers >= 1, got "${v}"`);
      return count;
    });
    if (k > n) throw new UsageError(`--k: expected at most the bank's ${n} rows, got ${k}`);
    await initEngine();
    checkTensorFits("--queries, --dim", `the queries (${q}, ${d})`, q * d);
    checkTensorFits("--queries, --k", `the top-k lists (${q}, ${k})`, q * k);
    if (4 * n > matrixBytes()) throw new UsageError(`--bank: expected at most ${matrixBytes() / 4} rows, one query's similarities in the baseline's storage binding, got ${n}`);
    checkMemoryFits("--bank, --dim", `the bank (${n}, ${d})`, 4 * n * d);
    const shape = { Q: q, N: n, D: d, K: k, normalize: true };
    const tilings = asked.length > 0 ? asked : [resolveVersion(KNN, shape)];

    const rng = new Rng(1);
    const x = rng.fill(q * d, () => rng.uniform(-1, 1));
    const rowsPerPart = Math.max(1, Math.floor(UPLOAD_BYTES / (d * 4)));
    const bank: Tensor[] = [];
    for (let r0 = 0; r0 < n; r0 += rowsPerPart) {
      const rows = Math.min(rowsPerPart, n - r0);
      bank.push(Tensor.fromArray(rng.fill(rows * d, () => rng.uniform(-1, 1)), [rows, d]));
    }

    const rows: Row[] = [];
    const row = (kernel: string, tiling: string, slices: number, ms: number): Row => ({
      kernel, tiling, slices, bank: n, queries: q, dim: d, k, ms, queriesPerS: (1000 * q) / ms, gflops: KNN.work(shape) / ms / 1e6,
    });
    const want = await baseline(x, bank, n, d, k, tilings[0]);
    rows.push(row("matrix+cpu", tilings[0], 1, await time(() => baseline(x, bank, n, d, k, tilings[0]), warmup, reps)));
    for (const tiling of tilings) {
      for (const slices of sliceCounts.length > 0 ? sliceCounts : [knnSlices(q, n, k, tiling)]) {
        compare(`fused ${tiling} in ${slices} slices`, await fused(x, bank, d, k, tiling, slices), want, k);
        rows.push(row("fused", tiling, slices, await time(() => fused(x, bank, d, k, tiling, slices), warmup, reps)));
      }
    }
    bank.forEach((t) => t.dispose());

    if (flags.json) {
      console.log(JSON.stringify({ device: deviceLine(), rows }, null, 2));
      return;
    }
    console.log(deviceLine());
    console.log(`k-NN, cosine, bank ${n} x ${d}, ${q} queries, k = ${k}`);
    console.log("kernel          tiling   slices        ms   queries/s   GFLOP/s");
    for (const r of rows) {
      const numbers = `${r.ms.toFixed(0).padStart(9)} ${r.queriesPerS.toFixed(1).padStart(11)} ${r.gflops.toFixed(2).padStart(9)}`;
      console.log(`${r.kernel.padEnd(15)} ${r.tiling.padEnd(8)} ${String(r.slices).padStart(6)} ${numbers}`);
    }
  },
};
