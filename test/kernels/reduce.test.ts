// Reductions along one axis against a float64 CPU reference. Tolerance: atol 1e-5 + rtol 1e-5 scaled by the
// length of the reduced axis for sums (float32 accumulation), exact for max.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { SPREAD, reduceChunk, reduceForward, sumInto } from "../../kernels/reduce.js";
import { fill } from "../../kernels/fill.js";
import { expectClose, randn, useEngine } from "../helpers.js";
import { reduceAxis } from "../ref/reduce.js";

useEngine();

describe("reduce", () => {
  const cases: [number[], number][] = [
    [[1], 0],
    [[7], 0],
    [[3, 5], 0],
    [[3, 5], 1],
    [[2, 13, 7], 1],
    [[2, 13, 7], -1],
    [[1031, 3], 0],
    [[3, 1031], 1],
    [[12608, 5], 0], // bias-gradient shape: many rows, few columns
    [[2, 9000], 1], // few outputs, long axis: the two-pass path
    [[70001], 0],
  ];
  for (const [shape, axis] of cases) {
    for (const op of ["sum", "mean", "max"] as const) {
      it(`${op} over axis ${axis} of (${shape})`, async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = randn(n, n + axis);
        const y = reduceForward(op, Tensor.fromArray(x, shape), axis);
        const ax = axis < 0 ? axis + shape.length : axis;
        expect(y.shape).toEqual(shape.filter((_, i) => i !== ax));
        const len = shape[ax];
        const tol = op === "max" ? { atol: 0, rtol: 0 } : { atol: 1e-5 * Math.sqrt(len), rtol: 1e-5 };
        expectClose(`${op}`, await y.data(), reduceAxis(x, shape, ax, op), tol);
      });
    }
  }
  // Both devices' plans run here, whichever device this is: the GPU's splits a bias gradient into chunks of 32+.
  for (const [device, spread] of Object.entries(SPREAD)) {
    for (const [shape, axis] of [[[6304, 5], 0], [[2, 9000], 1], [[3, 100, 7], 1], [[70001], 0]] as [number[], number][]) {
      it(`sum over axis ${axis} of (${shape}) with the ${device} plan`, async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = randn(n, 7 + axis);
        const y = reduceForward("sum", Tensor.fromArray(x, shape), axis, spread);
        expectClose("sum", await y.data(), reduceAxis(x, shape, axis, "sum"), { atol: 1e-5 * Math.sqrt(shape[axis]), rtol: 1e-5 });
      });
    }
  }

  it("plans one pass where the outputs fill the device, else chunks no shorter than the device's minimum", () => {
    expect(reduceChunk(384, 6304, SPREAD.cpu)).toBe(6304);
    expect(reduceChunk(384, 6304, SPREAD.gpu)).toBe(37); // 171 chunks: 65664 invocations
    expect(reduceChunk(1, 70001, SPREAD.cpu)).toBe(1030); // floor(70001 / 1024) = 68 chunks
    expect(reduceChunk(1, 70001, SPREAD.gpu)).toBe(33); // floor(70001 / 32) = 2187 chunks
    expect(reduceChunk(65536, 6304, SPREAD.gpu)).toBe(6304);
    expect(reduceChunk(2, 63, SPREAD.gpu)).toBe(63);
    expect(reduceChunk(2, 64, SPREAD.gpu)).toBe(32);
  });

  for (const [n, head, tail] of [[1, 5, 3], [3, 67, 13], [8, 12288, 64], [5, 1, 0]]) {
    it(`sumInto: (${n}, ${head + tail}) summed over its first axis into ${head} and ${tail} values`, async () => {
      const x = randn(n * (head + tail), n + head);
      const want = reduceAxis(x, [n, head + tail], 0, "sum");
      const [h, t] = [Tensor.empty([head]), Tensor.empty([tail])];
      sumInto(Tensor.fromArray(x, [n, head + tail]), h, t);
      const tol = { atol: 1e-5 * Math.sqrt(n), rtol: 1e-5 };
      expectClose("head", await h.data(), want.slice(0, head), tol);
      expectClose("tail", await t.data(), want.slice(head), tol);
    });
  }

  it("sumInto rejects an x of another width", () => {
    expect(() => sumInto(Tensor.empty([2, 7]), Tensor.empty([3]), Tensor.empty([3]))).toThrow(
      /^sumInto: expected f32 x \(n >= 1, 6\) for head Tensor\(#\d+, f32, \(3\)\) and tail Tensor\(#\d+, f32, \(3\)\), got Tensor\(#\d+, f32, \(2, 7\)\)$/,
    );
  });

  it("rejects bad axes, empty axes and i32 input", () => {
    const x = Tensor.fromArray([1, 2, 3], [3]);
    expect(() => reduceForward("sum", x, 1)).toThrow(/^sum: expected an axis in \[-1, 1\), got 1 for x Tensor\(#\d+, f32, \(3\)\)$/);
    expect(() => reduceForward("sum", Tensor.empty([2, 0]), 1)).toThrow(/^sum: expected a non-empty axis 1, got x Tensor\(#\d+, f32, \(2, 0\)\)$/);
    expect(() => reduceForward("max", Tensor.fromArray([1], [1], "i32"), 0)).toThrow("max: expected an f32 tensor, got i32");
  });
});

describe("fill", () => {
  it("fills every element, sizes not multiples of the workgroup", async () => {
    for (const n of [1, 255, 257, 100003]) {
      const y = await fill([n], 2.5).data();
      expect(y.every((v) => v === 2.5)).toBe(true);
    }
  });
});
