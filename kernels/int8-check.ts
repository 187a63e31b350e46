// The int8 products checked on the device before a run relies on them. The int8 versions (mma64i8, mma128i8) were
// written from our reading of chromium-experimental-subgroup-matrix and checked with its operations emulated
// (test/subgroup-matrix-emulation.ts): i8 fragments as bytes of an array<i32>, their offsets and strides counted in
// bytes, their types naming columns first. A driver that reads them otherwise computes fast and wrong, and nothing
// else would say so: so before the products of an "int8" or "int8x2" run go to tensor cores, each int8 version runs
// one product per layout (nn, nt, tn) at a shape with edges in every dimension and k across several slabs, rows
// and columns of different scales, and every element is held to the f64 product within twice its slices' bound
// (2^-17 or 2^-11 K max|a[m, :]| max|b[:, n]|, kernels/int8-slices.ts), as the kernel tests hold them.
// A failure refuses the precision wherever a run or a benchmark asks for it (train/mixed-precision.ts
// checkPrecisionOnDevice); `info --check` shows the verdict. Once per process, precision and fragment: six small
// products and one read-back.
import { runtime } from "../engine/runtime.js";
import { Tensor, readTensors } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import { matmulForward } from "./matmul.js";
import { SLICE_BOUND, type SliceCount } from "./int8-slices.js";
import { INT8_SLICES, MATMUL, MATMUL_TILINGS, fragmentKey, mmaI8Fragment } from "./registry.js";

type Int8Precision = "int8" | "int8x2";
const SHAPE = { M: 37, K: 100, N: 45 }; // edges of every tile in m and n; k: three slabs of 32 and a part
const LAYOUTS = [
  { name: "nn", transA: false, transB: false },
  { name: "nt", transA: false, transB: true },
  { name: "tn", transA: true, transB: false },
];

const verdicts = new Map<string, Promise<string | undefined>>();

// The check's verdict for `precision` on this adapter: undefined where every product was within its bound, else
// the first element that was not. Run on the first call, then remembered.
export function int8SelfCheck(precision: Int8Precision): Promise<string | undefined> {
  const { gpu } = runtime();
  const fragment = mmaI8Fragment(gpu);
  if (!fragment) return Promise.resolve(`the adapter lists no subgroup matrix of i8 into i32`);
  const key = `${precision} ${fragmentKey(fragment, gpu)}`;
  let verdict = verdicts.get(key);
  if (!verdict) verdicts.set(key, (verdict = checkInt8Products(precision)));
  return verdict;
}

// The check itself, each time it is called: see the header.
export async function checkInt8Products(precision: Int8Precision): Promise<string | undefined> {
  const { M, K, N } = SHAPE;
  const slices = INT8_SLICES[precision] as SliceCount;
  const rng = new Rng(8);
  // op(a) (M, K) and op(b) (K, N), f32 values, each row of a and column of b at its own power-of-two scale.
  const a = Float64Array.from({ length: M * K }, (_, i) => Math.fround(rng.uniform(-1, 1) * 2 ** ((Math.floor(i / K) % 9) - 4)));
  const b = Float64Array.from({ length: K * N }, (_, i) => Math.fround(rng.uniform(-1, 1) * 2 ** (((i % N) % 7) - 3)));
  const stored = (x: Float64Array, rows: number, cols: number, trans: boolean) =>
    trans ? Float32Array.from({ length: rows * cols }, (_, i) => x[(i % rows) * cols + Math.floor(i / rows)]) : Float32Array.from(x);
  const versions = MATMUL.versions.filter((v) => MATMUL_TILINGS[v].kind === "mmai8");
  const runs = versions.flatMap((version) => LAYOUTS.map((layout) => ({ version, layout })));
  const inputs: Tensor[] = [];
  const outputs = runs.map(({ version, layout: { transA, transB } }) => {
    const ta = Tensor.fromArray(stored(a, M, K, transA), transA ? [K, M] : [M, K]);
    const tb = Tensor.fromArray(stored(b, K, N, transB), transB ? [N, K] : [K, N]);
    inputs.push(ta, tb);
    return matmulForward(ta, tb, { version, transA, transB, inputs: precision });
  });
  let values: Float32Array[];
  try {
    values = await readTensors(outputs);
  } finally {
    for (const t of [...inputs, ...outputs]) t.dispose();
  }
  const maxA = Array.from({ length: M }, (_, m) => a.subarray(m * K, (m + 1) * K).reduce((x, v) => Math.max(x, Math.abs(v)), 0));
  const maxB = Array.from({ length: N }, (_, n) => Array.from({ length: K }, (_, k) => Math.abs(b[k * N + n])).reduce((x, v) => Math.max(x, v), 0));
  for (const [r, { version, layout }] of runs.entries()) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let want = 0;
        for (let k = 0; k < K; k++) want += a[m * K + k] * b[k * N + n];
        const got = values[r][m * N + n];
        const bound = 2 ** (1 - SLICE_BOUND[slices]) * K * maxA[m] * maxB[n];
        if (!(Math.abs(got - want) <= bound)) {
          return `${version} (${layout.name}) at ${M}x${K}x${N}: y[${m}, ${n}] = ${got}, expected ${want} within ${bound.toExponential(2)}`;
        }
      }
    }
  }
  return undefined;
}
