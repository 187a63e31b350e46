// autograd/precision.ts: inside withPrecision("f16") the products of matmul, linear and mlp round their inputs to f16,
// forward and backward (the backward taking the forward's precision even when it runs outside), and the scope
// ends with fn, also when fn throws. The probe: 1 + 2^-20 is no f16 (neighbours 1 and 1 + 2^-10), so a product that
// reads it in f16 gives one of those where f32 keeps it.
import { describe, expect, it } from "vitest";
import { Tensor, tidyAsync } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { backward } from "../../autograd/tape.js";
import { matmulPrecision, withPrecision } from "../../autograd/precision.js";
import { skipWithoutF16, useEngine } from "../helpers.js";

useEngine();

const X = 1 + 2 ** -20;
const HALVES = [1, 1 + 2 ** -10];

describe("withPrecision", () => {
  it("sets the products' precision for fn only, also when fn throws", () => {
    expect(matmulPrecision()).toBe("f32");
    expect(withPrecision("f16", () => withPrecision("f32", matmulPrecision))).toBe("f32");
    expect(withPrecision("int8", matmulPrecision)).toBe("int8"); // its products: test/train/train.test.ts (precision int8)
    expect(() => withPrecision("f16", () => { throw new Error("inside"); })).toThrow("inside");
    expect(matmulPrecision()).toBe("f32");
  });

  for (const op of ["matmul", "linear", "mlp"] as const) {
    it(`${op}: f16 inputs forward and in a backward run after the scope; f32 outside it`, async (ctx) => {
      skipWithoutF16(ctx);
      const run = (precision: "f32" | "f16") =>
        tidyAsync(async () => {
          const x = Tensor.fromArray([X], [1, 1]).requireGrad();
          const w = Tensor.fromArray([1], [1, 1]).requireGrad();
          const y = withPrecision(precision, () =>
            op === "matmul" ? ops.matmul(x, w) : op === "linear" ? ops.linear(x, w) : ops.mlp(x, { w1: w, w2: Tensor.fromArray([1], [1, 1]) }),
          );
          backward(y, Tensor.fromArray([1], [1, 1]));
          const out = { y: (await y.data())[0], dw: (await w.grad!.data())[0] };
          x.grad!.dispose();
          w.grad!.dispose();
          return out;
        });
      const f16 = await run("f16");
      const f32 = await run("f32");
      if (op === "mlp") {
        // y = gelu(x·w1)·w2: gelu's output is no half either, so only the difference from f32 is certain.
        expect(f16.y).not.toBe(f32.y);
      } else {
        expect(HALVES).toContain(f16.y);
        expect(HALVES).toContain(f16.dw); // dw = xᵀ·dy, read in f16
        expect(f32.y).toBe(Math.fround(X));
        expect(f32.dw).toBe(Math.fround(X));
      }
    });
  }
});
