// Reductions along one axis against a float64 CPU reference. Tolerance: atol 1e-5 + rtol 1e-5 scaled by the
// length of the reduced axis for sums (float32 accumulation), exact for max.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { reduceForward } from "../../kernels/reduce.js";
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
  it("rejects bad axes, empty axes and i32 input", () => {
    const x = Tensor.fromArray([1, 2, 3], [3]);
    expect(() => reduceForward("sum", x, 1)).toThrow("sum: axis 1 out of range");
    expect(() => reduceForward("sum", Tensor.empty([2, 0]), 1)).toThrow("cannot reduce over an empty axis");
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
