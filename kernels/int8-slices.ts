// An f32 matrix as int8 slices, for products on 8-bit integer tensor cores (matmul's mma*i8 versions): NVIDIA's
// Vulkan driver lists subgroup matrices of i8 x i8 -> i32 and, through Dawn, none of f16 (docs/PERFORMANCE.md,
// NVIDIA H200), so 8-bit integers are the only way to its tensor cores from WGSL. The splitting is Ozaki's scheme as
// Ootomo, Ozaki and Yokota run f64 products on int8 units ("DGEMM on integer matrix multiplication unit", 2024).
//
// Each row r of op(x) (R rows of K, k along the row) gets an exponent e_r, the least with max_k |x[r, k]| < 2^e_r,
// and S signed digits per element in base 128 (S slices: 3, or 2 for half the products), balanced (each in
// [-64, 64]):
//
//   v = x * 2^(6 - e_r)           (|v| < 64, exact: a power of two)
//   d0 = round(v),  v1 = (v - d0) * 128,  d1 = round(v1),  v2 = (v1 - d1) * 128,  d2 = round(v2), ...
//   x = 2^e_r * (d0 * 2^-6 + d1 * 2^-13 + ... + d_(S-1) * 2^(-6 - 7(S-1))) + err,  |err| <= 2^e_r * 2^-7S
//
// (round: to nearest, ties to even; every step is exact in f32.) A product sums the digit products of slices i and j
// with i + j < S exactly in i32, one sum per i + j, and scales each row and column once (kernels/matmul-mma.ts
// mmaI8Wgsl): S(S + 1)/2 products of int8 matrices for one of f32, 6 with 3 slices, 3 with 2. Per k, in units of
// 2^(e_m + e_n) = max|a[m, :]| max|b[:, n]| / (ρ_m ρ_n) with ρ = max / 2^e in [1/2, 1), the dropped digit products
// (i + j >= S) come to at most D = 2^-20 (1 + 2^-8) with 3 slices, 2^-14 with 2, and each operand's err times the
// other's value to 2^-7S ρ; the worst case is ρ = 1/2, 4 D + 4 * 2^-7S: y[m, n] is within
// 2^-SLICE_BOUND[S] K max_k |a[m, k]| max_k |b[k, n]| of the exact product, besides f32 rounding: 2^-17 with 3
// slices (0.75 of it), 2^-11 with 2. A row with a value that is not finite gets the scale NaN, so that its products
// come out NaN rather than finite garbage: a loss scaler's overflow check and training's divergence check see them.
// Exponents below MIN_EXPONENT are raised to it (2^(6 - e) must be an f32), which costs digits only in rows whose
// largest value is below 2^-101.
//
// Layout, per batch entry, in 4-byte words: R4 = R rounded up to 4 words of scales (f32 bits of 2^e_r, or NaN), then
// slice 0's rows, slice 1's, ..., each row W = ceil(K / 16) * 4 words of 4 digits (k ascending from the low
// byte, zero past K): every row a whole number of vec4s, so that the product stages them as vec4s.
//
// One workgroup per 16 rows of a batch entry, 16 threads per row along k. kAlong (x stored (R, K)): consecutive
// threads run along k; else (x stored (K, R)) along r, so that both layouts read memory in 64-byte runs. The row's
// maximum comes from the 16 threads' partial maxima in workgroup memory; then each thread writes words w = kk,
// kk + 16, ... of its row, re-reading x (from the cache). Long rows of few row blocks go in chunks of k on GPUs
// (CHUNK_K below): the same workgroups per (row block, chunk), the maxima written by one pass and read by a second.
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { FLAT_GROUP, grid1d, mainEntry, packUniform, range, storageBindings, uniformStruct } from "./wgsl.js";

export type SliceCount = 2 | 3;
// -log2 of the product's bound in units of K max|a[m, :]| max|b[:, n]| (see the header), per slice count.
export const SLICE_BOUND: Record<SliceCount, number> = { 2: 11, 3: 17 };
const MIN_EXPONENT = -100;
const ROWS = 16; // rows of op(x) per workgroup
const LANES = 16; // threads per row

const FIELDS = { R: "u32", K: "u32", W: "u32", R4: "u32", stride: "u32", groupsR: "u32", groups: "u32", chunkK: "u32", chunks: "u32" } as const;

// Long rows in chunks (GPUs): a weight gradient's operands are a few hundred rows of tens of thousands of k (ViT-B/16
// at batch 64: 768 x 12608), which one workgroup per 16 rows would run as 48 workgroups on a GPU of 132 SMs. There,
// where the row blocks are under CHUNK_MIN_GROUPS and K spans at least two chunks of CHUNK_K (a multiple of 64, so
// that chunks meet at whole vec4s of words), a first pass writes each (row, chunk)'s maximum and a second reads the
// row's and writes the chunk's digits: ceil(K / CHUNK_K) times the workgroups, one dispatch more.
const CHUNK_K = 1024;
const CHUNK_MIN_GROUPS = 512;

type Phase = "whole" | "max" | "digits"; // one pass; the chunked maxima; the chunked digits from them

// Words of one batch entry's slices, and where its parts start: R4 scales, then `slices` slices of R rows of W words.
export function int8SliceLayout(R: number, K: number, slices: SliceCount): { R4: number; W: number; stride: number } {
  const R4 = Math.ceil(R / 4) * 4;
  const W = Math.ceil(K / 16) * 4;
  return { R4, W, stride: R4 + slices * R * W };
}

// The pass's WGSL; slices: the digits' count (the maxima's pass has none).
function wgsl(spec: { kAlong: boolean; slices?: SliceCount; phase: Phase }): string {
  const { slices: S = 0, phase } = spec;
  const threads = ROWS * LANES;
  // x[bat][r][k] (kAlong) or x[bat][k][r].
  const at = (k: string) => (spec.kAlong ? `inBase + r * p.K + ${k}` : `inBase + (${k}) * p.R + r`);
  const digits = (slice: number) => `(u32(i32(d${slice}.x)) & 0xffu) | ((u32(i32(d${slice}.y)) & 0xffu) << 8u) | ((u32(i32(d${slice}.z)) & 0xffu) << 16u) | (u32(i32(d${slice}.w)) << 24u)`;
  const bindings: Parameters<typeof storageBindings>[0] =
    phase === "max" ? [["partial", "array<u32>", "read_write"], ["x", "array<f32>", "read"]] : [["out", "array<u32>", "read_write"], ["x", "array<f32>", "read"]];
  if (phase === "digits") bindings.push(["partial", "array<u32>", "read"]);
  // The row's maximum over the chunk's k, from the 16 lanes' (lane 0 of the row holds it), and whether a value is not
  // finite: all exponent bits set (a bit test, which no compiler folds away as it may x != x).
  const chunkMax = `var m = 0.0;
  var bad = 0u;
  if (live) {
    for (var k = kLo + kk; k < kHi; k += ${LANES}u) {
      let v = x[${at("k")}];
      bad |= select(0u, 1u, (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u);
      m = max(m, abs(v));
    }
  }
  partMax[lid.x] = m;
  partBad[lid.x] = bad;
  workgroupBarrier();
  if (kk == 0u && live) {
    for (var j = 1u; j < ${LANES}u; j++) {
      let q = ${spec.kAlong ? `lid.x + j` : `lid.x + j * ${ROWS}u`};
      m = max(m, partMax[q]);
      bad |= partBad[q];
    }
  }`;
  // The row's maximum from its chunks' (NaN where a value is not finite).
  const rowMax = `var m = 0.0;
  var bad = 0u;
  if (kk == 0u && live) {
    for (var j = 0u; j < p.chunks; j++) {
      let b = partial[(bat * p.R + r) * p.chunks + j];
      bad |= select(0u, 1u, b == 0x7fc00000u);
      m = max(m, bitcast<f32>(b));
    }
  }`;
  const body =
    phase === "max"
      ? `${chunkMax}
  if (kk == 0u && live) { partial[(bat * p.R + r) * p.chunks + c] = select(bitcast<u32>(m), 0x7fc00000u, bad != 0u); }
}`
      : `${phase === "whole" ? chunkMax : rowMax}
  if (kk == 0u && live) {
    let e = max(frexp(m).exp, ${MIN_EXPONENT}i);
    rowScale[rr] = ldexp(1.0, 6i - e);
    if (c == 0u) { out[outBase + r] = select(bitcast<u32>(ldexp(1.0, e)), 0x7fc00000u, bad != 0u); }
  }
  workgroupBarrier();
  if (!live) { return; }
  let s = rowScale[rr];
  let rowAt = outBase + p.R4 + r * p.W;
  let wHi = select(kHi / 4u, p.W, c + 1u == p.chunks);
  for (var w = kLo / 4u + kk; w < wHi; w += ${LANES}u) {
    let k = 4u * w;
    let v0 = vec4<f32>(${[0, 1, 2, 3].map((c) => `select(0.0, x[${at(`min(k + ${c}u, p.K - 1u)`)}], k + ${c}u < p.K)`).join(", ")}) * s;
    ${range(S).map((i) => `let d${i} = round(v${i});${i + 1 < S ? `\n    let v${i + 1} = (v${i} - d${i}) * 128.0;` : ""}`).join("\n    ")}
    ${range(S).map((sl) => `out[rowAt + ${sl}u * p.R * p.W + w] = ${digits(sl)};`).join("\n    ")}
  }
}`;
  return /* wgsl */ `
${uniformStruct(FIELDS)}
${storageBindings(bindings)}
${FLAT_GROUP}
var<workgroup> partMax: array<f32, ${threads}>;
var<workgroup> partBad: array<u32, ${threads}>;
var<workgroup> rowScale: array<f32, ${ROWS}>; // 2^(6 - e_r), the digits' scale
${mainEntry(threads)}
  let gc = flatGroup(wid, nwg);
  if (gc >= p.groups * p.chunks) { return; }
  let g = gc / p.chunks; // the batch entry's row block
  let c = gc % p.chunks; // the chunk of k
  let bat = g / p.groupsR;
  let rr = ${spec.kAlong ? `lid.x / ${LANES}u` : `lid.x % ${ROWS}u`};
  let kk = ${spec.kAlong ? `lid.x % ${LANES}u` : `lid.x / ${ROWS}u`};
  let r = (g % p.groupsR) * ${ROWS}u + rr;
  let live = r < p.R;
  let inBase = bat * p.R * p.K;
  let outBase = bat * p.stride;
  let kLo = c * p.chunkK;
  let kHi = min(p.K, kLo + p.chunkK);
  ${body}`;
}

// How many chunks of CHUNK_K a slicing of `groups` row blocks of K runs in (see CHUNK_K): 1, one pass, on CPU drivers,
// for enough row blocks or short rows.
export function sliceChunks(groups: number, K: number, isCpu: boolean): number {
  return !isCpu && groups < CHUNK_MIN_GROUPS && K >= 2 * CHUNK_K ? Math.ceil(K / CHUNK_K) : 1;
}

// x: f32 (batch, R, K) with kAlong, else (batch, K, R) (any shape of that many elements; gathered and strided inputs
// are materialised by the caller). Returns the `slices` slices of op(x), (batch, stride) words as i32
// (int8SliceLayout). chunkK: force chunks of that many k (a positive multiple of 64; tests), else sliceChunks' plan.
export function int8Slices(x: Tensor, batch: number, R: number, K: number, kAlong: boolean, slices: SliceCount, chunkK?: number): Tensor {
  if (x.dtype !== "f32") throw new Error(`int8 slices: expected an f32 matrix, got ${x}`);
  if (x.size !== batch * R * K) throw new Error(`int8 slices: expected ${batch} x ${R} x ${K} elements, got ${x}`);
  if (slices !== 2 && slices !== 3) throw new Error(`int8 slices: expected 2 or 3 slices, got ${slices}`);
  if (chunkK !== undefined && !(Number.isInteger(chunkK) && chunkK > 0 && chunkK % 64 === 0)) {
    throw new Error(`int8 slices: expected chunkK a positive multiple of 64, got ${chunkK}`);
  }
  const { R4, W, stride } = int8SliceLayout(R, K, slices);
  const out = Tensor.empty([batch, stride], "i32");
  if (out.size === 0) return out;
  const groupsR = Math.ceil(R / ROWS);
  const groups = batch * groupsR;
  const chunks = chunkK !== undefined ? Math.max(1, Math.ceil(K / chunkK)) : sliceChunks(groups, K, runtime().gpu.isCpu);
  const uniform = (chunk: number) => packUniform(FIELDS, { R, K, W, R4, stride, groupsR, groups, chunkK: chunk, chunks });
  const work = x.size * 8 + out.size * 4;
  if (chunks === 1) {
    const kernel = getKernel("int8-slices", { kAlong, slices, phase: "whole" }, wgsl);
    runtime().batch.dispatch(kernel, [out.buffer, x.buffer], uniform(K), grid1d(groups), work);
    return out;
  }
  const chunk = chunkK ?? CHUNK_K;
  const partial = Tensor.empty([batch * R * chunks], "i32"); // each (row, chunk)'s maximum, f32 bits (NaN: not finite)
  const max = getKernel("int8-slices", { kAlong, phase: "max" }, wgsl);
  runtime().batch.dispatch(max, [partial.buffer, x.buffer], uniform(chunk), grid1d(groups * chunks), x.size * 4);
  const digits = getKernel("int8-slices", { kAlong, slices, phase: "digits" }, wgsl);
  runtime().batch.dispatch(digits, [out.buffer, x.buffer, partial.buffer], uniform(chunk), grid1d(groups * chunks), work - x.size * 4);
  partial.dispose();
  return out;
}
