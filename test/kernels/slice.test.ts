// slice, sliceAssign, concat, placeBlocks and blockOf, and their backward, against test/ref/slice.ts and a float64
// placement. Data movement is exact (atol 0, rtol 0); the backward is also checked against float64 central
// differences (atol 1e-6, rtol 1e-5: the loss is linear, so the differences are exact up to rounding). Every copy here
// is the strided copy of kernels/permute.ts, whose folded grid (> 65535 workgroups) test/kernels/permute.test.ts
// covers.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { blockOf, concatForward, placeBlocks, sliceAssign, sliceBackward, sliceForward } from "../../kernels/slice.js";
import * as ops from "../../autograd/ops.js";
import { backward } from "../../autograd/tape.js";
import { dot, expectClose, numericGrad, randn, useEngine } from "../helpers.js";
import { concatRef, sliceAssignRef, sliceRef } from "../ref/slice.js";

useEngine();

const EXACT = { atol: 0, rtol: 0 };
const FD = { atol: 1e-6, rtol: 1e-5 };
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
const withAxis = (shape: number[], axis: number, n: number) => shape.map((d, i) => (i === axis ? n : d));

describe("sliceForward", () => {
  const shape = [3, 5, 7];
  for (const axis of [0, 1, 2]) {
    const n = shape[axis];
    for (const [start, end] of [[0, n], [1, 2], [n - 1, n], [1, n - 1], [2, 2]]) {
      it(`(${shape}) axis ${axis} [${start}, ${end})`, async () => {
        const x = randn(numel(shape), axis);
        const y = sliceForward(Tensor.fromArray(x, shape), axis, start, end);
        expect(y.shape).toEqual(withAxis(shape, axis, end - start));
        expectClose("y", await y.data(), sliceRef(x, shape, axis, start, end), EXACT);
      });
    }
  }
  const more: [number[], number, number, number][] = [
    [[4, 8, 12], 2, 4, 8], // vec4-aligned runs
    [[4, 8, 12], 1, 0, 4],
    [[1031, 33], 1, 5, 20], // large, odd widths
    [[2, 1500], 0, 1, 2],
    [[2, 3, 2, 5, 3], -2, 1, 4], // negative axis, rank 5
  ];
  for (const [shp, axis, start, end] of more) {
    it(`(${shp}) axis ${axis} [${start}, ${end})`, async () => {
      const x = randn(numel(shp), 7);
      const ax = axis < 0 ? axis + shp.length : axis;
      const y = sliceForward(Tensor.fromArray(x, shp), axis, start, end);
      expectClose("y", await y.data(), sliceRef(x, shp, ax, start, end), EXACT);
    });
  }
  it("moves i32 values bit-exactly", async () => {
    const x = Int32Array.from({ length: 30 }, (_, i) => (i * 2654435761) | 0);
    const y = sliceForward(Tensor.fromArray(x, [5, 6], "i32"), 1, 2, 5);
    expect(Array.from(await y.dataInt())).toEqual(Array.from(sliceRef(x, [5, 6], 1, 2, 5)));
  });
  it("rejects bad bounds and axes", () => {
    const x = Tensor.fromArray(new Float32Array(6), [2, 3]);
    expect(() => sliceForward(x, 1, 2, 4)).toThrow("slice: expected 0 <= start <= end <= 3 on axis 1 of Tensor(");
    expect(() => sliceForward(x, 1, 2, 1)).toThrow("got [2, 1)");
    expect(() => sliceForward(x, 2, 0, 1)).toThrow("slice: expected an axis in [-2, 2), got 2 for (2, 3)");
  });
});

describe("sliceAssign", () => {
  it("writes into a preallocated tensor and leaves the rest", async () => {
    const yShape = [3, 9, 5];
    const y0 = randn(numel(yShape), 1);
    const x = randn(3 * 4 * 5, 2);
    const y = Tensor.fromArray(y0, yShape);
    sliceAssign(y, Tensor.fromArray(x, [3, 4, 5]), 1, 3);
    expectClose("y", await y.data(), sliceAssignRef(y0, yShape, x, 1, 3), EXACT);
  });
  it("rejects a mismatched shape, an overflowing start and shared storage", () => {
    const y = Tensor.fromArray(new Float32Array(12), [3, 4]);
    expect(() => sliceAssign(y, Tensor.fromArray(new Float32Array(4), [2, 2]), 1, 0)).toThrow("sliceAssign: expected x (3, m)");
    expect(() => sliceAssign(y, Tensor.fromArray(new Float32Array(6), [3, 2]), 1, 3)).toThrow("start + m <= 4");
    expect(() => sliceAssign(y, y.reshape([3, 4]), 0, 0)).toThrow("in different storage");
  });
});

describe("concatForward", () => {
  const base = [2, 3, 5];
  const extents = [1, 4, 7];
  for (const axis of [0, 1, 2]) {
    it(`3 tensors of extents ${extents} on axis ${axis}`, async () => {
      const xs = extents.map((m, k) => ({ data: randn(numel(withAxis(base, axis, m)), k), shape: withAxis(base, axis, m) }));
      const y = concatForward(xs.map((x) => Tensor.fromArray(x.data, x.shape)), axis);
      expect(y.shape).toEqual(withAxis(base, axis, 12));
      expectClose("y", await y.data(), concatRef(xs, axis), EXACT);
    });
  }
  it("accepts an empty input and rejects mismatched shapes", async () => {
    const a = Tensor.fromArray([1, 2], [1, 2]);
    const y = concatForward([a, Tensor.fromArray([], [0, 2]), Tensor.fromArray([3, 4], [1, 2])], 0);
    expect(Array.from(await y.data())).toEqual([1, 2, 3, 4]);
    expect(() => concatForward([a, Tensor.fromArray([1, 2, 3], [1, 3])], 0)).toThrow("concat: expected tensors that differ only on axis 0");
  });
});

// (R, C) zeros with each (h, w) block written at (row, col), in float64.
function placedRef(R: number, C: number, blocks: { data: ArrayLike<number>; h: number; w: number; row: number; col: number }[]): Float64Array {
  const y = new Float64Array(R * C);
  for (const b of blocks) for (let i = 0; i < b.h; i++) for (let j = 0; j < b.w; j++) y[(b.row + i) * C + b.col + j] = b.data[i * b.w + j];
  return y;
}

describe("placeBlocks and blockOf", () => {
  // LoRA's B for q and v of a 3C-wide qkv (C = 5, r = 3), a block touching the last row and column, one of a row.
  const R = 15;
  const C = 7;
  const blocks = [
    { h: 5, w: 3, row: 0, col: 0 },
    { h: 5, w: 3, row: 10, col: 3 },
    { h: 1, w: 1, row: 14, col: 6 },
    { h: 2, w: 7, row: 6, col: 0 },
  ].map((b, k) => ({ ...b, data: randn(b.h * b.w, 20 + k) }));

  it("writes each block at its place, zeros elsewhere; blockOf reads it back", async () => {
    const y = placeBlocks([R, C], blocks.map((b) => ({ x: Tensor.fromArray(b.data, [b.h, b.w]), row: b.row, col: b.col })));
    expect(y.shape).toEqual([R, C]);
    const got = await y.data();
    expectClose("y", got, placedRef(R, C, blocks), EXACT);
    for (const b of blocks) expectClose(`block at (${b.row}, ${b.col})`, await blockOf(y, b.row, b.col, b.h, b.w).data(), b.data, EXACT);
  });

  it("rejects blocks outside or overlapping", () => {
    const x = Tensor.fromArray(new Float32Array(6), [2, 3]);
    expect(() => placeBlocks([4, 4], [{ x, row: 3, col: 0 }])).toThrow("placeBlocks: expected 2-D blocks inside (4, 4), got Tensor(");
    expect(() => placeBlocks([4, 4], [{ x, row: 0, col: 0 }, { x: Tensor.fromArray([1], [1, 1]), row: 1, col: 2 }])).toThrow("placeBlocks: expected blocks that do not overlap");
    expect(() => blockOf(x, 1, 1, 2, 2)).toThrow("blockOf: expected a block inside Tensor(");
  });

  it("ops.placeBlocks' gradients are the blocks of dy = d sum(placeBlocks(xs) * w)/dxs", async () => {
    const w = randn(R * C, 30);
    const xs = blocks.map((b) => Tensor.fromArray(b.data, [b.h, b.w]).requireGrad());
    const y = ops.placeBlocks([R, C], blocks.map((b, k) => ({ x: xs[k], row: b.row, col: b.col })));
    backward(y, Tensor.fromArray(w, [R, C]));
    for (const [k, b] of blocks.entries()) {
      const loss = (v: Float64Array) => dot(placedRef(R, C, blocks.map((o, j) => (j === k ? { ...o, data: v } : o))), w);
      expectClose(`dx${k}`, await xs[k].grad!.data(), numericGrad(loss, b.data), FD);
      xs[k].grad!.dispose();
    }
  });
});

describe("backward", () => {
  it("sliceBackward puts dy in place and zeros elsewhere, = d sum(slice(x) * w)/dx", async () => {
    const shape = [2, 5, 3];
    const [axis, start, end] = [1, 1, 4];
    const w = randn(2 * 3 * 3, 3);
    const dx = sliceBackward(Tensor.fromArray(w, [2, 3, 3]), shape, axis, start);
    expect(dx.shape).toEqual(shape);
    const got = await dx.data();
    expectClose("dx", got, sliceAssignRef(new Float64Array(numel(shape)), shape, w, axis, start), EXACT);
    const x = randn(numel(shape), 4);
    expectClose("dx (finite differences)", got, numericGrad((v) => dot(sliceRef(v, shape, axis, start, end), w), x), FD);
  });
  it("concat backward (one slice of dy per input, as autograd/ops.ts) = d sum(concat(xs) * w)/dxs", async () => {
    const shapes = [[2, 1, 3], [2, 2, 3], [2, 4, 3]];
    const xs = shapes.map((s, k) => randn(numel(s), 10 + k));
    const w = randn(2 * 7 * 3, 5);
    const dy = Tensor.fromArray(w, [2, 7, 3]);
    let start = 0;
    for (let k = 0; k < shapes.length; k++) {
      const m = shapes[k][1];
      const dx = await sliceForward(dy, 1, start, start + m).data();
      start += m;
      const loss = (v: Float64Array) => dot(concatRef(shapes.map((s, j) => ({ data: j === k ? v : xs[j], shape: s })), 1), w);
      expectClose(`dx${k}`, dx, numericGrad(loss, xs[k]), FD);
    }
  });
});
