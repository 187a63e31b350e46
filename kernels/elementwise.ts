// Elementwise kernels: unary y = f(a), binary y = f(a, b) with NumPy broadcasting, and an in-place
// accumulate y += a. One family specialised by the expression; the scalar `alpha` is a per-call uniform.
//
//   v1 (the only one): 4 elements per invocation, or with broadcasting where the last axis is not a multiple of 4
//   one, workgroup 64, 1-D grid folded into (x, y).
// Broadcasting: the output shape is the broadcast of a and b (rank <= 8); each operand gets per-dimension
// strides with 0 on broadcast dimensions, passed in the uniform as two vec4<u32> per array. Axes both operands step
// over contiguously are merged first (a + pos_embed, (B, N, C) + (1, N, C), is (B, N*C) + (1, N*C)): an invocation
// finds its operands' indices with a division and a remainder per axis, which llvmpipe does one lane at a time, so
// fewer axes, and 4 elements per division, are most of the kernel's speed.
//
// Backward: derivatives are themselves elementwise ops (the BINARY derivative ops, called by autograd/ops.ts),
// and the reduction over broadcast dimensions is a sum (kernels/reduce.ts).
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor, type Shape, numel } from "../engine/tensor.js";
import { ERF, FLAT_GROUP, flatIndex, flatMain, grid1d, mainEntry } from "./wgsl.js";
import { mergeAxes } from "./permute.js";

const WG = 64;
const MAX_RANK = 8;

// Expressions over `a` (and `b`) and the uniform scalar `alpha`.
export const UNARY = {
  neg: "-a",
  exp: "exp(a)",
  log: "log(a)",
  sqrt: "sqrt(a)",
  square: "a * a",
  relu: "max(a, 0.0)",
  tanh: "tanh(a)",
  sigmoid: "1.0 / (1.0 + exp(-a))",
  // exact GELU, as PyTorch's default: x * Phi(x)
  gelu: "0.5 * a * (1.0 + erf(a * 0.70710678118654752))",
  scale: "a * alpha",
  addScalar: "a + alpha",
  copy: "a",
} as const;

export const BINARY = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  max: "max(a, b)",
  eq: "select(0.0, 1.0, a == b)",
  // derivatives that need the forward input a and the incoming gradient b
  reluGrad: "select(0.0, b, a > 0.0)",
  geluGrad: "b * (0.5 * (1.0 + erf(a * 0.70710678118654752)) + a * 0.39894228040143268 * exp(-0.5 * a * a))",
  tanhGrad: "b * (1.0 - a * a)", // a is the forward *output*
  sigmoidGrad: "b * a * (1.0 - a)", // a is the forward *output*
} as const;

export type UnaryOp = keyof typeof UNARY;
export type BinaryOp = keyof typeof BINARY;

interface ElementwiseSpec {
  [k: string]: string | number | boolean;
  expr: string;
  binary: boolean;
  broadcast: boolean; // false: a, b and y share one shape, 4 elements per invocation
  group4: boolean; // broadcast: 4 consecutive elements of the last axis per invocation (its extent a multiple of 4)
}

function wgsl(spec: ElementwiseSpec): string {
  const bDecl = spec.binary ? "@group(0) @binding(3) var<storage, read> B: array<f32>;" : "";
  const per = spec.group4 ? 4 : 1;
  const body = spec.broadcast
    ? /* wgsl */ `${flatMain(WG, `p.n / ${per}u`, "t")}
  let alpha = p.alpha;
  let i0 = t * ${per}u;
  var rem = i0;
  var ia = 0u;
  var ib = 0u;
  for (var d = 0u; d < p.rank; d++) {
    let axis = p.rank - 1u - d;
    let extent = p.shape[axis / 4u][axis % 4u];
    let coord = rem % extent;
    rem = rem / extent;
    ia += coord * p.sa[axis / 4u][axis % 4u];
    ib += coord * p.sb[axis / 4u][axis % 4u];
  }
  let last = p.rank - 1u;
  let la = p.sa[last / 4u][last % 4u];
  let lb = p.sb[last / 4u][last % 4u];
  for (var j = 0u; j < ${per}u; j++) {
    let a = A[ia + j * la];
    ${spec.binary ? "let b = B[ib + j * lb];" : "_ = lb;"}
    let i = i0 + j;
    y[i] = ${spec.expr};
  }`
    : /* wgsl */ `${mainEntry(WG)}
  let alpha = p.alpha;
  let base = (${flatIndex(WG)}) * 4u;
  for (var j = 0u; j < 4u; j++) {
    let i = base + j;
    if (i >= p.n) { return; }
    let a = A[i];
    ${spec.binary ? "let b = B[i];" : ""}
    y[i] = ${spec.expr};
  }`;
  return /* wgsl */ `
struct Params {
  n: u32, rank: u32, alpha: f32, _pad: u32,
  shape: array<vec4<u32>, 2>,
  sa: array<vec4<u32>, 2>,
  sb: array<vec4<u32>, 2>,
};
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
${bDecl}
${FLAT_GROUP}
${ERF}
${body}
}`;
}

// The broadcast of two shapes, NumPy rules; throws naming the op and both shapes.
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: expected a and b shapes that broadcast (each axis equal or 1), got a (${a.join(", ")}) and b (${b.join(", ")})`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

// Strides of `shape` seen through the broadcast `out` shape (0 on broadcast dimensions).
function broadcastStrides(shape: Shape, out: Shape): number[] {
  const strides = new Array(out.length).fill(0);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const axis = out.length - shape.length + i;
    strides[axis] = shape[i] === 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

// The output's axes as the broadcast kernel walks them: permute.ts's mergeAxes over both operands' strides, one
// axis of extent 1 where nothing is left.
export function mergeBroadcastAxes(out: Shape, sa: number[], sb: number[]): { shape: number[]; sa: number[]; sb: number[] } {
  const axes = mergeAxes(out, sa, sb);
  if (axes.length === 0) return { shape: [1], sa: [0], sb: [0] };
  return { shape: axes.map((x) => x.n), sa: axes.map((x) => x.ss), sb: axes.map((x) => x.ds) };
}

function params(n: number, out: Shape, alpha: number, sa: number[], sb: number[]): ArrayBuffer {
  const buf = new ArrayBuffer(16 + 3 * 32);
  const u = new Uint32Array(buf);
  u[0] = n;
  u[1] = out.length;
  new Float32Array(buf)[2] = alpha;
  out.forEach((d, i) => (u[4 + i] = d));
  sa.forEach((s, i) => (u[12 + i] = s));
  sb.forEach((s, i) => (u[20 + i] = s));
  return buf;
}

function checkF32(op: string, t: Tensor): void {
  if (t.dtype !== "f32") throw new Error(`${op}: expected an f32 tensor, got ${t.dtype} ${t}`);
}

function encode(expr: string, out: Tensor, a: Tensor, b: Tensor | undefined, alpha: number): void {
  const broadcast = b !== undefined && (a.size !== out.size || b.size !== out.size);
  if (out.shape.length > MAX_RANK) throw new Error(`elementwise: expected an output of rank <= ${MAX_RANK}, got (${out.shape.join(", ")})`);
  const n = out.size;
  const axes = broadcast && b ? mergeBroadcastAxes(out.shape, broadcastStrides(a.shape, out.shape), broadcastStrides(b.shape, out.shape)) : { shape: out.shape, sa: [], sb: [] };
  const group4 = broadcast && axes.shape[axes.shape.length - 1] % 4 === 0;
  const spec: ElementwiseSpec = { expr, binary: b !== undefined, broadcast, group4 };
  const kernel = getKernel("elementwise", spec, wgsl);
  const perGroup = broadcast && !group4 ? WG : WG * 4;
  const buffers = b ? [out.buffer, a.buffer, b.buffer] : [out.buffer, a.buffer];
  runtime().batch.dispatch(kernel, buffers, params(n, axes.shape, alpha, axes.sa, axes.sb), grid1d(Math.ceil(n / perGroup)), n * 12);
}

export function unaryForward(op: UnaryOp, a: Tensor, alpha = 0): Tensor {
  checkF32(op, a);
  const out = Tensor.empty(a.shape);
  if (out.size > 0) encode(UNARY[op], out, a, undefined, alpha);
  return out;
}

export function binaryForward(op: BinaryOp, a: Tensor, b: Tensor, alpha = 0): Tensor {
  checkF32(op, a);
  checkF32(op, b);
  const out = Tensor.empty(broadcastShapes(op, a.shape, b.shape));
  if (out.size > 0) encode(BINARY[op], out, a, b, alpha);
  return out;
}

// y += alpha * a in y's own storage (gradient accumulation). Sizes must match. y is read through its
// read_write binding: WebGPU forbids binding one buffer as both writable and read-only in a dispatch.
export function axpyInPlace(y: Tensor, a: Tensor, alpha: number): void {
  checkF32("axpy", y);
  checkF32("axpy", a);
  if (numel(a.shape) !== y.size) throw new Error(`axpy: expected a with y's ${y.size} elements, got a ${a} for y ${y}`);
  if (y.size > 0) encode("y[i] + a * alpha", y, a, undefined, alpha);
}
