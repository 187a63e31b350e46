// Reductions along one axis: sum, mean, max. The input is viewed as (outer, n, inner) around the axis and
// the output is (outer, inner) (keepdim is a reshape in autograd/ops.ts).
//
//   v1: one invocation per output element loops over n; workgroup 64, grid folded into (x, y).
//   When the outputs alone are too few to fill the device and n is long, a first pass reduces chunks of n into
//   partials (outer, chunks, inner) and a second pass reduces the partials. How many invocations fill a device
//   (SPREAD): 256 on CPU drivers, where a chunk is still >= 1024 elements; 65536 on GPUs, chunks >= 32. A bias
//   gradient (6304 rows, 384 columns) stays 6 workgroups of one pass on a CPU driver; on an H200 one pass took
//   1.5-2.3 ms per bias, half of a ViT-S training step's GPU time (88 of 180 ms;
//   2026-11-27, 39f3c42).
// max backward is built from elementwise ops in autograd/ops.ts (mask of the maxima, ties share the gradient).
// sumInto: a sum over the first axis whose outputs go to two tensors, the first `head.size` to head, the rest to
// tail: a product split along k sums its partial products and bias sums (kernels/matmul.ts) straight into the
// gradient and the bias gradient, where a sum and two buffer copies did it.
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { FLAT_GROUP, flatMain, grid1d, packUniform, uniformStruct } from "./wgsl.js";

const WG = 64;
export interface ReduceSpread {
  invocations: number; // first-pass invocations that fill the device
  minChunk: number; // fewest elements per chunk
}
export const SPREAD: { cpu: ReduceSpread; gpu: ReduceSpread } = {
  cpu: { invocations: 256, minChunk: 1024 },
  gpu: { invocations: 65536, minChunk: 32 },
};
const FIELDS = { outer: "u32", n: "u32", inner: "u32", chunk: "u32", chunks: "u32", scale: "f32", head: "u32" } as const;

export type ReduceOp = "sum" | "mean" | "max";

interface ReduceSpec {
  [k: string]: string | boolean;
  op: "sum" | "max"; // mean is a sum with scale 1/n
  tail: boolean; // outputs from p.head on go to a second binding (sumInto)
}

function wgsl(spec: ReduceSpec): string {
  const init = spec.op === "max" ? "-3.402823e38" : "0.0";
  const combine = spec.op === "max" ? "acc = max(acc, v);" : "acc += v;";
  return /* wgsl */ `
${uniformStruct(FIELDS)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
${spec.tail ? "@group(0) @binding(3) var<storage, read_write> tail: array<f32>;" : ""}
${FLAT_GROUP}
// Thread mapping: one invocation per output (o, c, i) of shape (outer, chunks, inner).
${flatMain(WG, "p.outer * p.chunks * p.inner", "idx")}
  let i = idx % p.inner;
  let c = (idx / p.inner) % p.chunks;
  let o = idx / (p.inner * p.chunks);
  let start = c * p.chunk;
  let end = min(start + p.chunk, p.n);
  var acc = ${init};
  for (var j = start; j < end; j++) {
    let v = x[(o * p.n + j) * p.inner + i];
    ${combine}
  }
  ${spec.tail ? "if (idx < p.head) { y[idx] = acc * p.scale; } else { tail[idx - p.head] = acc * p.scale; }" : "y[idx] = acc * p.scale;"}
}`;
}

function encode(op: "sum" | "max", x: Tensor, outer: number, n: number, inner: number, chunk: number, scale: number): Tensor {
  const chunks = Math.ceil(n / chunk);
  const y = Tensor.empty([outer, chunks, inner]);
  const kernel = getKernel("reduce", { op, tail: false }, wgsl);
  const uniform = packUniform(FIELDS, { outer, n, inner, chunk, chunks, scale, head: 0 });
  runtime().batch.dispatch(kernel, [y.buffer, x.buffer], uniform, grid1d(Math.ceil(y.size / WG)), x.size * 4);
  return y;
}

// x (n, head.size + tail.size) summed over its first axis in one pass: the first head.size sums written to head,
// the others to tail (see the header; n is a split count, too short to chunk).
export function sumInto(x: Tensor, head: Tensor, tail: Tensor): void {
  const inner = head.size + tail.size;
  if (x.dtype !== "f32" || head.dtype !== "f32" || tail.dtype !== "f32" || x.shape.length !== 2 || x.shape[1] !== inner || x.shape[0] === 0) {
    throw new Error(`sumInto: expected f32 x (n >= 1, ${inner}) for head ${head} and tail ${tail}, got ${x}`);
  }
  const n = x.shape[0];
  const kernel = getKernel("reduce", { op: "sum", tail: true }, wgsl);
  const uniform = packUniform(FIELDS, { outer: 1, n, inner, chunk: n, chunks: 1, scale: 1, head: head.size });
  runtime().batch.dispatch(kernel, [head.buffer, x.buffer, tail.buffer], uniform, grid1d(Math.ceil(inner / WG)), x.size * 4);
}

// The chunk length of the first pass, or n for a single pass.
export function reduceChunk(outputs: number, n: number, spread: ReduceSpread): number {
  const chunks = Math.min(Math.ceil(spread.invocations / outputs), Math.floor(n / spread.minChunk));
  return chunks < 2 ? n : Math.ceil(n / chunks);
}

// Reduces x along `axis`; the result has that axis removed. `spread` overrides the device's (tests).
export function reduceForward(op: ReduceOp, x: Tensor, axis: number, spread?: ReduceSpread): Tensor {
  if (x.dtype !== "f32") throw new Error(`${op}: expected an f32 tensor, got ${x.dtype} ${x}`);
  const rank = x.shape.length;
  const ax = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(ax) || ax < 0 || ax >= rank) throw new Error(`${op}: expected an axis in [-${rank}, ${rank}), got ${axis} for x ${x}`);
  const n = x.shape[ax];
  if (n === 0) throw new Error(`${op}: expected a non-empty axis ${axis}, got x ${x}`);
  const outer = x.shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const outShape = [...x.shape.slice(0, ax), ...x.shape.slice(ax + 1)];
  const base = op === "max" ? "max" : "sum";
  const scale = op === "mean" ? 1 / n : 1;
  const chunk = reduceChunk(outer * inner, n, spread ?? (runtime().gpu.isCpu ? SPREAD.cpu : SPREAD.gpu));
  let y: Tensor;
  if (chunk < n) {
    const partial = encode(base, x, outer, n, inner, chunk, 1);
    const chunks = partial.shape[1];
    y = encode(base, partial, outer, chunks, inner, chunks, scale);
    partial.dispose();
  } else y = encode(base, x, outer, n, inner, n, scale);
  const out = y.reshape(outShape);
  y.dispose();
  return out;
}
