// Slice and concat along one axis, and their backward. The tensor is viewed as (outer, n, inner) around the axis:
//
//   sliceForward:  y (outer, end-start, inner) = x[:, start:end, :]
//   sliceAssign:   y[:, start:start+m, :] = x (outer, m, inner), in y's storage
//   concatForward: y = [x_0 | x_1 | ...] along the axis, one sliceAssign per input
//   sliceBackward: dx = zeros(inputShape) with dx[:, start:start+m, :] = dy
//   placeBlocks:   y (R, C) = zeros with block i, x_i (h_i, w_i), at rows row_i.. and columns col_i..
//   blockOf:       y (h, w) = x[row:row+h, col:col+w] of a 2-D x (a placed block's gradient)
// concat's backward is one sliceForward of dy per input (autograd/ops.ts).
//
// Every copy is the strided-copy kernel of kernels/permute.ts (bit-exact, any 32-bit dtype); merging axes makes a
// slice a copy of `outer` runs of m*inner contiguous words, moved as vec4 when the extents allow.
import { Tensor, type Shape } from "../engine/tensor.js";
import { copyStrided } from "./permute.js";
import { fillInto } from "./fill.js";

function normaliseAxis(op: string, shape: Shape, axis: number): number {
  const ax = axis < 0 ? axis + shape.length : axis;
  if (!Number.isInteger(ax) || ax < 0 || ax >= shape.length) {
    throw new Error(`${op}: expected an axis in [-${shape.length}, ${shape.length}), got ${axis} for (${shape.join(", ")})`);
  }
  return ax;
}

// (outer, n, inner) around `ax`.
function around(shape: Shape, ax: number): [number, number, number] {
  const prod = (s: Shape) => s.reduce((a, b) => a * b, 1);
  return [prod(shape.slice(0, ax)), shape[ax], prod(shape.slice(ax + 1))];
}

// x: (..., n, ...) -> (..., end-start, ...), 0 <= start <= end <= n.
export function sliceForward(x: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = normaliseAxis("slice", x.shape, axis);
  const [outer, n, inner] = around(x.shape, ax);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || end > n) {
    throw new Error(`slice: expected 0 <= start <= end <= ${n} on axis ${ax} of ${x}, got [${start}, ${end})`);
  }
  const m = end - start;
  const y = Tensor.empty(x.shape.map((d, i) => (i === ax ? m : d)), x.dtype);
  copyStrided(
    y,
    { offset: 0, strides: [m * inner, inner, 1] },
    x,
    { offset: start * inner, strides: [n * inner, inner, 1] },
    [outer, m, inner],
  );
  return y;
}

// y: (..., n, ...), x: (..., m, ...) with the other axes equal; writes x into y[..., start:start+m, ...] in place.
// y and x must be different storage (WebGPU cannot bind one buffer as both source and destination).
export function sliceAssign(y: Tensor, x: Tensor, axis: number, start: number): void {
  const ax = normaliseAxis("sliceAssign", y.shape, axis);
  const [outer, n, inner] = around(y.shape, ax);
  const m = x.shape[ax];
  const fits = x.shape.length === y.shape.length && x.shape.every((d, i) => i === ax || d === y.shape[i]);
  if (!fits || !Number.isInteger(start) || start < 0 || start + m > n) {
    throw new Error(`sliceAssign: expected x (${y.shape.map((d, i) => (i === ax ? "m" : d)).join(", ")}) with ` +
      `0 <= start and start + m <= ${n} on axis ${ax}, got ${x} at start ${start}`);
  }
  copyStrided(
    y,
    { offset: start * inner, strides: [n * inner, inner, 1] },
    x,
    { offset: 0, strides: [m * inner, inner, 1] },
    [outer, m, inner],
  );
}

// dy: (..., m, ...) -> dx: inputShape, zero outside [start, start+m) on the axis.
export function sliceBackward(dy: Tensor, inputShape: Shape, axis: number, start: number): Tensor {
  const dx = Tensor.empty(inputShape, dy.dtype);
  fillInto(dx, 0); // 0.0f and 0i share one bit pattern
  sliceAssign(dx, dy, axis, start);
  return dx;
}

// xs[i]: (..., m_i, ...) with the other axes equal -> (..., sum m_i, ...).
export function concatForward(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error("concat: expected at least one tensor, got none");
  const first = xs[0];
  const ax = normaliseAxis("concat", first.shape, axis);
  for (const x of xs) {
    if (x.dtype !== first.dtype || x.shape.length !== first.shape.length || x.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new Error(`concat: expected tensors that differ only on axis ${ax}, got ${xs.join(", ")}`);
    }
  }
  const total = xs.reduce((s, x) => s + x.shape[ax], 0);
  const y = Tensor.empty(first.shape.map((d, i) => (i === ax ? total : d)), first.dtype);
  let start = 0;
  for (const x of xs) {
    sliceAssign(y, x, ax, start);
    start += x.shape[ax];
  }
  return y;
}

export interface PlacedBlock {
  x: Tensor; // (h, w)
  row: number;
  col: number;
}

// A (rows, cols) matrix of zeros with the blocks written in: one fill and one copy per block, where building it by
// concatenating zeros and blocks row-wise, then column-wise, copied each block twice and filled each gap (LoRA's
// B for q and v: peft/lora.ts). Blocks must lie inside and not overlap.
export function placeBlocks(shape: [number, number], blocks: PlacedBlock[]): Tensor {
  const [R, C] = shape;
  for (const [i, { x, row, col }] of blocks.entries()) {
    const [h, w] = x.shape;
    if (x.shape.length !== 2 || row < 0 || col < 0 || row + h > R || col + w > C || !Number.isInteger(row) || !Number.isInteger(col)) {
      throw new Error(`placeBlocks: expected 2-D blocks inside (${R}, ${C}), got ${x} at (${row}, ${col})`);
    }
    for (const o of blocks.slice(0, i)) {
      if (row < o.row + o.x.shape[0] && o.row < row + h && col < o.col + o.x.shape[1] && o.col < col + w) {
        throw new Error(`placeBlocks: expected blocks that do not overlap, got ${x} at (${row}, ${col}) over ${o.x} at (${o.row}, ${o.col})`);
      }
    }
  }
  const y = Tensor.empty(shape, blocks[0]?.x.dtype ?? "f32");
  fillInto(y, 0);
  for (const { x, row, col } of blocks) {
    const [h, w] = x.shape;
    copyStrided(y, { offset: row * C + col, strides: [C, 1] }, x, { offset: 0, strides: [w, 1] }, [h, w]);
  }
  return y;
}

// x (R, C) -> x[row:row+h, col:col+w].
export function blockOf(x: Tensor, row: number, col: number, h: number, w: number): Tensor {
  const [R, C] = x.shape;
  if (x.shape.length !== 2 || row < 0 || col < 0 || row + h > R || col + w > C) {
    throw new Error(`blockOf: expected a block inside ${x}, got (${h}, ${w}) at (${row}, ${col})`);
  }
  const y = Tensor.empty([h, w], x.dtype);
  copyStrided(y, { offset: 0, strides: [w, 1] }, x, { offset: row * C + col, strides: [C, 1] }, [h, w]);
  return y;
}

