// The tensor-core kernels checked on the device before anything relies on them. The mma versions (matmul's mma64 and
// mma128, attention's mma: f32 or f16 fragments) and the int8 ones (mma64i8, mma128i8: i8 fragments) were written
// from our reading of chromium-experimental-subgroup-matrix and checked with its operations emulated
// (test/subgroup-matrix-emulation.ts): i8 fragments as bytes of an array<i32>, their offsets and strides counted in
// its 32-bit elements (as Dawn's compiler validates them), every type naming columns first. A driver that reads them
// otherwise computes fast and wrong (kernels/subgroup-matrix-probe.ts tries the other readings), and so does one
// whose "f32" fragments multiply in less than f32 (TF32's 10-bit significand); nothing else would say so. So before a
// precision's calls may go to tensor cores:
//   each matmul version runs one product per layout (nn, nt, tn) at a shape with edges in every dimension and k across
//   several slabs, rows and columns of different scales, and every element is held to the f64 product within twice
//   its bound, in units of K max|a[m, :]| max|b[:, n]|: the slices' 2^-17 or 2^-11 (kernels/int8-slices.ts) for int8
//   and int8x2; f16 inputs' rounding, 2^-10, and f32 accumulation's K 2^-24 for f16; the accumulation's alone for f32;
//   attention's mma runs a forward and backward at (B, N, H, D) = (1, 37, 2, 32), o and dqkv held to the fused
//   default's (reg or tiled, f32) within twice the kernel tests' tolerance (f32 2e-5 + 1e-4 |x|, f16 4e-3 + 4e-3 |x|).
// A version that fails is recorded (kernels/registry.ts recordDeviceFault) and unavailable to that precision's calls
// from then on: `tune` does not time it, a tuned cache's choice of it is passed over, and the int8 precisions are
// refused (train/mixed-precision.ts checkPrecisionOnDevice). `info --check` shows the verdicts. Once per process,
// precision and fragment: a few small calls and one read-back each.
import { runtime } from "../engine/runtime.js";
import { Tensor, readTensors } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import { matmulForward } from "./matmul.js";
import { SLICE_BOUND, type SliceCount } from "./int8-slices.js";
import { ATTENTION, INT8_SLICES, MATMUL, MATMUL_TILINGS, type MatmulVersion, type Precision, fragmentKey, fusedAttentionDefault, mmaFragment, mmaI8Fragment, precisionLacks, recordDeviceFault } from "./registry.js";
import { attentionBackward, attentionForward } from "./attention.js";

const SHAPE = { M: 37, K: 100, N: 45 }; // edges of every tile in m and n; k: several slabs and a part
const LAYOUTS = [
  { name: "nn", transA: false, transB: false },
  { name: "nt", transA: false, transB: true },
  { name: "tn", transA: true, transB: false },
];

const ATTENTION_SHAPE = { B: 1, N: 37, H: 2, D: 32 }; // N past one streamed block of 32 rows; D two fragments wide
const ATTENTION_MMA = "attention mma"; // attention's version among matmul's in a check's verdicts

// The tensor-core versions the calls of `inputs` could run here: matmul's mma and attention's where the adapter lists
// their fragment for f32 or f16 inputs, matmul's mmai8 for int8 and int8x2 where it lists i8 x i8 -> i32; none that
// failed its check. Attention's is named ATTENTION_MMA.
export function tensorCoreVersions(inputs: Precision): string[] {
  const { gpu } = runtime();
  const shape = { ...SHAPE, transA: false, transB: false, batch: 1, gelu: false, inputs };
  const kind = INT8_SLICES[inputs] ? "mmai8" : "mma";
  const matmul: string[] = MATMUL.versions.filter((v) => MATMUL_TILINGS[v].kind === kind && !MATMUL.unavailable!(v, shape, gpu));
  const attention = kind === "mma" && !ATTENTION.unavailable!("mma", { ...ATTENTION_SHAPE, inputs }, gpu);
  return attention ? [...matmul, ATTENTION_MMA] : matmul;
}

// The checks the calls of `precision` need: those of its own fragments, and for int8 and int8x2 also f32's, in which
// their mma versions (matmul's and attention's) multiply.
export function checksFor(precision: Precision): Precision[] {
  return INT8_SLICES[precision] ? [precision, "f32"] : [precision];
}

const verdicts = new Map<string, Promise<Map<string, string>>>();

// The faults of those versions for `inputs` (empty where every call was within its bound), each recorded in the
// registry. Run on the first call for these inputs and fragments, then remembered.
export function checkTensorCores(inputs: Precision): Promise<Map<string, string>> {
  const { gpu } = runtime();
  const fragment = INT8_SLICES[inputs] ? mmaI8Fragment(gpu) : mmaFragment(gpu, inputs === "f16" ? "f16" : "f32");
  const key = `${inputs} ${fragment ? fragmentKey(fragment, gpu) : "none"}`;
  let verdict = verdicts.get(key);
  if (!verdict) {
    const versions = tensorCoreVersions(inputs);
    verdict = (async () => {
      const faults: Map<string, string> = await checkProducts(versions.filter((v) => v !== ATTENTION_MMA) as MatmulVersion[], inputs);
      const attention = versions.includes(ATTENTION_MMA) ? await checkAttention(inputs) : undefined;
      if (attention) faults.set(ATTENTION_MMA, attention);
      for (const [version, fault] of faults) {
        if (version === ATTENTION_MMA) recordDeviceFault("attention", "mma", inputs, fault);
        else recordDeviceFault("matmul", version, inputs, fault);
      }
      return faults;
    })();
    verdicts.set(key, verdict);
  }
  return verdict;
}

// What an int8 precision needs of the device: undefined where both int8 versions passed their check, else the first
// fault, or what the adapter lacks (precisionLacks's words).
export async function int8SelfCheck(precision: "int8" | "int8x2"): Promise<string | undefined> {
  const lacks = precisionLacks(precision, runtime().gpu);
  if (lacks) return lacks;
  const faults = await checkTensorCores(precision);
  return faults.values().next().value;
}

// The check itself, each time it is called, for `versions` with products of `inputs`: see the header. Returns the
// first wrong element of each version that had one.
export async function checkProducts(versions: MatmulVersion[], inputs: Precision): Promise<Map<MatmulVersion, string>> {
  const { M, K, N } = SHAPE;
  const rng = new Rng(8);
  // op(a) (M, K) and op(b) (K, N), f32 values, each row of a and column of b at its own power-of-two scale.
  const a = Float64Array.from({ length: M * K }, (_, i) => Math.fround(rng.uniform(-1, 1) * 2 ** ((Math.floor(i / K) % 9) - 4)));
  const b = Float64Array.from({ length: K * N }, (_, i) => Math.fround(rng.uniform(-1, 1) * 2 ** (((i % N) % 7) - 3)));
  const stored = (x: Float64Array, rows: number, cols: number, trans: boolean) =>
    trans ? Float32Array.from({ length: rows * cols }, (_, i) => x[(i % rows) * cols + Math.floor(i / rows)]) : Float32Array.from(x);
  const runs = versions.flatMap((version) => LAYOUTS.map((layout) => ({ version, layout })));
  const tensors: Tensor[] = [];
  const outputs = runs.map(({ version, layout: { transA, transB } }) => {
    const ta = Tensor.fromArray(stored(a, M, K, transA), transA ? [K, M] : [M, K]);
    const tb = Tensor.fromArray(stored(b, K, N, transB), transB ? [N, K] : [K, N]);
    const y = matmulForward(ta, tb, { version, transA, transB, inputs });
    tensors.push(ta, tb, y);
    return y;
  });
  let values: Float32Array[];
  try {
    values = await readTensors(outputs);
  } finally {
    for (const t of tensors) t.dispose();
  }
  const slices = INT8_SLICES[inputs] as SliceCount | undefined;
  const unit = slices ? 2 ** -SLICE_BOUND[slices] : (inputs === "f16" ? 2 ** -10 : 0) + K * 2 ** -24;
  const maxA = Array.from({ length: M }, (_, m) => a.subarray(m * K, (m + 1) * K).reduce((x, v) => Math.max(x, Math.abs(v)), 0));
  const maxB = Array.from({ length: N }, (_, n) => Array.from({ length: K }, (_, k) => Math.abs(b[k * N + n])).reduce((x, v) => Math.max(x, v), 0));
  const faults = new Map<MatmulVersion, string>();
  for (const [r, { version, layout }] of runs.entries()) {
    if (faults.has(version)) continue;
    for (let i = 0; i < M * N && !faults.has(version); i++) {
      const [m, n] = [Math.floor(i / N), i % N];
      let want = 0;
      for (let k = 0; k < K; k++) want += a[m * K + k] * b[k * N + n];
      const got = values[r][i];
      const bound = 2 * unit * K * maxA[m] * maxB[n];
      if (!(Math.abs(got - want) <= bound)) faults.set(version, `${version} (${layout.name}, ${inputs}) at ${M}x${K}x${N}: y[${m}, ${n}] = ${got}, expected ${want} within ${bound.toExponential(2)}`);
    }
  }
  return faults;
}

// Attention's mma version against the fused default at ATTENTION_SHAPE, forward and backward: the first element of o
// or dqkv out of tolerance, or undefined.
export async function checkAttention(inputs: Precision): Promise<string | undefined> {
  const { B, N, H, D } = ATTENTION_SHAPE;
  const rng = new Rng(9);
  const qkv = Tensor.fromArray(Float32Array.from({ length: B * N * 3 * H * D }, () => rng.uniform(-1, 1)), [B, N, 3 * H * D]);
  const dout = Tensor.fromArray(Float32Array.from({ length: B * N * H * D }, () => rng.uniform(-1, 1)), [B, N, H * D]);
  const reference = fusedAttentionDefault(runtime().gpu);
  const tensors: Tensor[] = [qkv, dout];
  const outputs = [reference, "mma"].flatMap((version) => {
    const { o, saved } = attentionForward(qkv, H, { version, inputs });
    const dqkv = attentionBackward(saved, dout);
    tensors.push(o, dqkv);
    return [o, dqkv];
  });
  let values: Float32Array[];
  try {
    values = await readTensors(outputs);
  } finally {
    for (const t of tensors) t.dispose();
  }
  // Twice the tests' tolerance against f64 (test/kernels/attention-mma.test.ts): here both sides carry their own error.
  const [atol, rtol] = inputs === "f16" ? [8e-3, 8e-3] : [4e-5, 2e-4];
  for (const [i, name] of ["o", "dqkv"].entries()) {
    const [want, got] = [values[i], values[2 + i]];
    for (let e = 0; e < want.length; e++) {
      if (!(Math.abs(got[e] - want[e]) <= atol + rtol * Math.abs(want[e]))) {
        return `attention mma (${inputs}) at (B, N, H, D) = (${B}, ${N}, ${H}, ${D}): ${name}[${e}] = ${got[e]}, expected ${want[e]} (${reference}) within ${(atol + rtol * Math.abs(want[e])).toExponential(2)}`;
      }
    }
  }
  return undefined;
}
