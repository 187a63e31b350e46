// Which reading of chromium-experimental-subgroup-matrix's 8-bit loads this device follows, for when the int8 kernels
// fail their check on it (kernels/tensor-core-check.ts). The int8 kernels read i8 fragments as bytes of an array<i32>
// with offsets and strides counted in the array's elements, 32-bit words (as Dawn's compiler validates them), types
// naming columns first (subgroup_matrix_left<i8, K, M>), from workgroup memory, the right operand's columns
// k-contiguous (col_major). A wrong reading computes fast and wrong; so here one fragment product (A (M, K) times
// B (K, N), values in [-8, 8), from byte 64 of their arrays) runs in each of the 16 readings: offsets and strides in
// words or in bytes; types columns first or rows first; operands loaded from storage or copied to workgroup memory
// first; B stored row-major (K, N) or column-major (N, K). Each is exact (every i32 of C equals the host's product),
// wrong (the first element that is not), or does not compile. `info --probe` prints them, so that a lease on a device
// whose check failed says what the kernels should read instead.
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import { mmaI8Fragment } from "./registry.js";

export interface I8Reading {
  units: "bytes" | "words";
  order: "columns first" | "rows first";
  space: "storage" | "workgroup";
  right: "row_major" | "col_major";
}

export interface I8ReadingResult extends I8Reading {
  verdict: string; // "exact", "wrong: ...", "does not compile: ..."
}

const ORIGIN = 64; // bytes before each operand's first element: a reading of offsets in words or bytes differs there

export const I8_READINGS: I8Reading[] = (["words", "bytes"] as const).flatMap((units) =>
  (["columns first", "rows first"] as const).flatMap((order) =>
    (["storage", "workgroup"] as const).flatMap((space) => (["row_major", "col_major"] as const).map((right) => ({ units, order, space, right }))),
  ),
);

// The WGSL of one reading for an M x N x K fragment and subgroups of `sg`: C (M, N) = A (M, K) B (K, N).
export function i8ReadingWgsl(r: I8Reading, M: number, N: number, K: number, sg: number): string {
  const unit = r.units === "bytes" ? 1 : 4;
  const [aWords, bWords] = [(ORIGIN + M * K) / 4, (ORIGIN + K * N) / 4];
  const [left, right, result] =
    r.order === "columns first"
      ? [`subgroup_matrix_left<i8, ${K}, ${M}>`, `subgroup_matrix_right<i8, ${N}, ${K}>`, `subgroup_matrix_result<i32, ${N}, ${M}>`]
      : [`subgroup_matrix_left<i8, ${M}, ${K}>`, `subgroup_matrix_right<i8, ${K}, ${N}>`, `subgroup_matrix_result<i32, ${M}, ${N}>`];
  const [a, b] = r.space === "workgroup" ? ["WA", "WB"] : ["A", "B"];
  const bStride = r.right === "row_major" ? N : K; // elements between rows of (K, N), or between columns of (N, K)
  return /* wgsl */ `enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
@group(0) @binding(1) var<storage, read_write> C: array<i32>;
@group(0) @binding(2) var<storage, read> A: array<i32>;
@group(0) @binding(3) var<storage, read> B: array<i32>;
${r.space === "workgroup" ? `var<workgroup> WA: array<i32, ${aWords}>;\nvar<workgroup> WB: array<i32, ${bWords}>;` : ""}
@compute @workgroup_size(${sg})
fn main(@builtin(local_invocation_index) t: u32) {
  let lane = t;
  ${r.space === "workgroup" ? `for (var i = t; i < ${aWords}u; i += ${sg}u) { WA[i] = A[i]; }
  for (var i = t; i < ${bWords}u; i += ${sg}u) { WB[i] = B[i]; }
  workgroupBarrier();` : ""}
  let l = subgroupMatrixLoad<${left}, row_major>(&${a}, ${ORIGIN / unit}u, ${K / unit}u);
  let r = subgroupMatrixLoad<${right}, ${r.right}>(&${b}, ${ORIGIN / unit}u, ${bStride / unit}u);
  var c = ${result}();
  c = subgroupMatrixMultiplyAccumulate(l, r, c);
  subgroupMatrixStore<row_major>(&C, 0u, c, ${N}u);
}`;
}

// Each reading's verdict on this device's i8 x i8 -> i32 fragment (mmaI8Fragment), or none where it lists none.
export async function probeI8Readings(): Promise<I8ReadingResult[]> {
  const { gpu, batch } = runtime();
  const f = mmaI8Fragment(gpu);
  if (!f) return [];
  const { M, N, K } = f;
  const rng = new Rng(11);
  const a = Int8Array.from({ length: M * K }, () => Math.floor(rng.uniform(-8, 8)));
  const b = Int8Array.from({ length: K * N }, () => Math.floor(rng.uniform(-8, 8)));
  const want = Int32Array.from({ length: M * N }, (_, i) => {
    let sum = 0;
    for (let k = 0; k < K; k++) sum += a[Math.floor(i / N) * K + k] * b[k * N + (i % N)];
    return sum;
  });
  // Bytes into words, ORIGIN zero bytes first, as the little-endian memory an i8 fragment load reads.
  const words = (bytes: Int8Array) => {
    const out = new Int8Array(ORIGIN + bytes.length);
    out.set(bytes, ORIGIN);
    return Tensor.fromArray(new Int32Array(out.buffer), [out.length / 4], "i32");
  };
  const bColumns = Int8Array.from({ length: K * N }, (_, i) => b[(i % K) * N + Math.floor(i / K)]); // (N, K)
  const results: I8ReadingResult[] = [];
  for (const r of I8_READINGS) {
    const [ta, tb, tc] = [words(a), words(r.right === "row_major" ? b : bColumns), Tensor.empty([M * N], "i32")];
    let verdict: string;
    try {
      const kernel = getKernel("subgroup-matrix-probe", { ...r, fragment: `${M}x${N}x${K}/${gpu.subgroupMaxSize}` }, () => i8ReadingWgsl(r, M, N, K, gpu.subgroupMaxSize));
      batch.dispatch(kernel, [tc.buffer, ta.buffer, tb.buffer], undefined, [1]);
      const got = await tc.dataInt();
      const bad = got.findIndex((v, i) => v !== want[i]);
      verdict = bad < 0 ? "exact" : `wrong: C[${Math.floor(bad / N)}, ${bad % N}] = ${got[bad]}, expected ${want[bad]}`;
    } catch (e) {
      verdict = `does not compile: ${String((e as Error).message).split("\n").find((l) => /error/i.test(l))?.trim() ?? (e as Error).message}`;
    } finally {
      for (const t of [ta, tb, tc]) t.dispose();
    }
    results.push({ ...r, verdict });
  }
  return results;
}
