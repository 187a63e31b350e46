// Strided copy, the one data-movement kernel under permute, slice, sliceAssign and concat:
//
//   dst[dstOffset + sum_d c_d * dstStrides[d]] = src[srcOffset + sum_d c_d * srcStrides[d]]  for every c in shape
//
// and permuteForward(x, perm) = x.permute(perm) made contiguous, as such a copy with src strides permuted.
// Values move as 32-bit words (array<u32>), so the copy is bit-exact for f32 and i32 alike.
//
// Before encoding, axes of extent 1 are dropped and neighbouring axes that are contiguous in both src and dst are
// merged (e.g. the ViT permute (B, N, 3, H, D) -> (3, B, H, N, D) keeps D as one unit-stride run, and a slice
// along axis 0 becomes a single run). The merged rank is baked into the WGSL, so the index arithmetic is unrolled.
//
//   v1 (the only one): one invocation per 4 consecutive elements of the last merged axis, workgroup 64, 1-D grid
//   folded into (x, y). When that axis has unit stride on both sides and every offset and stride is a multiple of
//   4, the buffers bind as array<vec4<u32>> and each invocation moves one vec4; otherwise a loop of 4 words, or of
//   a whole last axis of up to SHORT_ROW words (the ViT's im2col moves rows of 7: 0.21 ms against 0.29 by census
//   for the default model's batch of 32, 2026-12-05, 368f3ee).
//   No shared memory: on CPU drivers barriers cost more than the strided reads they would save (a tiled
//   transpose would be the GPU version).
//
// Backward of permute is permuteForward(dy, inversePermutation(perm)).
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor, type Shape } from "../engine/tensor.js";
import { FLAT_GROUP, flatMain, grid1d, packUniform, uniformStruct, type UniformFields } from "./wgsl.js";

const WG = 64;
const MAX_RANK = 8; // after merging; keeps the uniform well under 256 bytes

interface CopySpec {
  [k: string]: number | boolean;
  outer: number; // merged axes before the last one (their index arithmetic is unrolled)
  vec4: boolean;
  per: number; // words per invocation without vec4: 4, or a whole last axis of up to SHORT_ROW words
}

// Without vec4, a last axis this short is one invocation's work: the outer axes' index arithmetic (a division and a
// remainder per axis, one lane at a time on llvmpipe) is paid once per row, not once per 4 words.
const SHORT_ROW = 8;

// Per call: the invocation count, the last axis (extent, strides, in groups of 4) and each outer axis's extent
// and strides, all in 32-bit words.
function fields(outer: number): UniformFields {
  const f: UniformFields = { count: "u32", groups: "u32", last: "u32", srcLast: "u32", dstLast: "u32", srcOff: "u32", dstOff: "u32" };
  for (let d = 0; d < outer; d++) Object.assign(f, { [`n${d}`]: "u32", [`ss${d}`]: "u32", [`ds${d}`]: "u32" });
  return f;
}

function wgsl(spec: CopySpec): string {
  const word = spec.vec4 ? "vec4<u32>" : "u32";
  // Coordinates of the outer axes, innermost first; the outermost needs no modulo.
  const coords: string[] = [];
  for (let d = spec.outer - 1; d >= 0; d--) {
    const c = d === 0 ? "row" : `row % p.n${d}`;
    coords.push(`  { let c = ${c}; s += c * p.ss${d}; o += c * p.ds${d};${d > 0 ? ` row = row / p.n${d};` : ""} }`);
  }
  const move = spec.vec4
    ? `  dst[o / 4u + g] = src[s / 4u + g];`
    : `  for (var j = 0u; j < ${spec.per}u; j++) {
    let c = g * ${spec.per}u + j;
    if (c >= p.last) { return; }
    dst[o + c * p.dstLast] = src[s + c * p.srcLast];
  }`;
  return /* wgsl */ `
${uniformStruct(fields(spec.outer))}
@group(0) @binding(1) var<storage, read_write> dst: array<${word}>;
@group(0) @binding(2) var<storage, read> src: array<${word}>;
${FLAT_GROUP}
// Thread mapping: invocation t copies group g = t % groups (a vec4, or per words) of row t / groups of the last axis;
// adjacent lanes touch adjacent groups of one row.
${flatMain(WG, "p.count")}
  let g = t % p.groups;
  var row = t / p.groups;
  var s = p.srcOff;
  var o = p.dstOff;
${coords.join("\n")}
${move}
}`;
}

// Where a view starts in its storage and the step of each axis, in elements.
export interface View {
  offset: number;
  strides: readonly number[];
}

export interface Axis {
  n: number;
  ss: number; // stride of the first strided operand (here the source)
  ds: number; // of the second (here the destination)
}

// Drops extent-1 axes and merges each axis into the one before when both operands step over the pair contiguously
// (a stride of 0 merges with 0): the same elements, fewer coordinates for a kernel to compute. Empty when every
// axis has extent 1. Shared by the strided copy and broadcasting elementwise ops (kernels/elementwise.ts).
export function mergeAxes(shape: Shape, ss: readonly number[], ds: readonly number[]): Axis[] {
  const merged: Axis[] = [];
  shape.forEach((n, i) => {
    if (n === 1) return;
    const prev = merged[merged.length - 1];
    if (prev && prev.ss === ss[i] * n && prev.ds === ds[i] * n) Object.assign(prev, { n: prev.n * n, ss: ss[i], ds: ds[i] });
    else merged.push({ n, ss: ss[i], ds: ds[i] });
  });
  return merged;
}

// Encodes the strided copy from `src` (through srcView) into `dst` (through dstView) over `shape`.
// The caller guarantees both views stay inside their tensors; dst and src must be different storage.
export function copyStrided(dst: Tensor, dstView: View, src: Tensor, srcView: View, shape: Shape): void {
  if (dst.dtype !== src.dtype) throw new Error(`copy: expected one dtype, got dst ${dst} and src ${src}`);
  if (dst.buffer === src.buffer) throw new Error(`copy: expected dst ${dst} and src ${src} in different storage`);
  if (shape.length !== srcView.strides.length || shape.length !== dstView.strides.length) {
    throw new Error(`copy: expected strides of rank ${shape.length}, got src (${srcView.strides}) and dst (${dstView.strides})`);
  }
  if (shape.some((n) => n === 0)) return;
  const merged = mergeAxes(shape, srcView.strides, dstView.strides);
  const axes = merged.length > 0 ? merged : [{ n: 1, ss: 1, ds: 1 }];
  if (axes.length > MAX_RANK) throw new Error(`copy: expected rank <= ${MAX_RANK} after merging axes, got ${axes.length} for (${shape})`);
  const last = axes[axes.length - 1];
  const outer = axes.slice(0, -1);
  const words = [srcView.offset, dstView.offset, last.n, ...outer.flatMap((a) => [a.ss, a.ds])];
  const vec4 = last.ss === 1 && last.ds === 1 && words.every((w) => w % 4 === 0);
  const per = !vec4 && last.n <= SHORT_ROW ? last.n : 4;
  const groups = Math.ceil(last.n / per);
  const rows = outer.reduce((r, a) => r * a.n, 1);
  const values: Record<string, number> = {
    count: rows * groups,
    groups,
    last: last.n,
    srcLast: last.ss,
    dstLast: last.ds,
    srcOff: srcView.offset,
    dstOff: dstView.offset,
  };
  outer.forEach((a, d) => Object.assign(values, { [`n${d}`]: a.n, [`ss${d}`]: a.ss, [`ds${d}`]: a.ds }));
  const spec: CopySpec = { outer: outer.length, vec4, per };
  const kernel = getKernel("copy", spec, wgsl);
  const uniform = packUniform(fields(outer.length), values);
  runtime().batch.dispatch(kernel, [dst.buffer, src.buffer], uniform, grid1d(Math.ceil((rows * groups) / WG)), rows * last.n * 8);
}

// Row-major strides of a contiguous tensor.
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

function checkPermutation(perm: number[], rank: number, of: string): void {
  const seen = new Set(perm);
  if (perm.length !== rank || seen.size !== rank || perm.some((a) => !Number.isInteger(a) || a < 0 || a >= rank)) {
    throw new Error(`permute: expected a permutation of 0..${rank - 1} for ${of}, got [${perm.join(", ")}]`);
  }
}

// x: any shape (rank <= 8 after merging) -> y: (x.shape[perm[0]], x.shape[perm[1]], ...), contiguous, same dtype.
export function permuteForward(x: Tensor, perm: number[]): Tensor {
  checkPermutation(perm, x.shape.length, `${x}`);
  const shape = perm.map((a) => x.shape[a]);
  const y = Tensor.empty(shape, x.dtype);
  const xStrides = contiguousStrides(x.shape);
  copyStrided(y, { offset: 0, strides: contiguousStrides(shape) }, x, { offset: 0, strides: perm.map((a) => xStrides[a]) }, shape);
  return y;
}

// q with q[perm[i]] = i, so that permuting by perm and then by q is the identity.
export function inversePermutation(perm: number[]): number[] {
  checkPermutation(perm, perm.length, `rank ${perm.length}`);
  const inv = new Array<number>(perm.length);
  perm.forEach((a, i) => (inv[a] = i));
  return inv;
}
