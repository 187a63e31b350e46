// Reverse-mode autograd over elementwise and reduction ops, checked against float64 finite differences of
// the same function computed on the CPU. Tolerance: atol 1e-4 + rtol 1e-3 (float32 forward on the GPU).
import { describe, expect, it } from "vitest";
import { Tensor, tidy } from "../../engine/tensor.js";
import { zeroGrad, backward, noGrad } from "../../autograd/tape.js";
import { runtime } from "../../engine/runtime.js";
import * as ops from "../../autograd/ops.js";
import { expectClose, numericGrad, randn, randu, useEngine } from "../helpers.js";
import { gelu as geluRef } from "../ref/elementwise.js";
import { layernormBackward as layernormBackwardRef } from "../ref/layernorm.js";

useEngine();
const TOL = { atol: 1e-4, rtol: 1e-3 };

// f(a (3,4), b (4)) = sum over rows of mean(gelu(a * b + a) / (1 + b^2)) ... touching broadcast, div, reduce.
function cpuLoss(a: Float64Array, b: Float64Array): number {
  let total = 0;
  for (let i = 0; i < 3; i++) {
    let row = 0;
    for (let j = 0; j < 4; j++) {
      const x = a[i * 4 + j] * b[j] + a[i * 4 + j];
      row += geluRef(x) / (1 + b[j] * b[j]);
    }
    total += row / 4;
  }
  return total;
}

function gpuLoss(a: Tensor, b: Tensor): Tensor {
  const x = ops.add(ops.mul(a, b), a);
  const y = ops.div(ops.gelu(x), ops.addScalar(ops.square(b), 1));
  return ops.sum(ops.mean(y, 1), 0);
}

describe("autograd", () => {
  it("matches finite differences through broadcast, div, gelu, mean and sum", async () => {
    const av = randn(12, 1);
    const bv = randn(4, 2);
    const a = Tensor.fromArray(av, [3, 4]).requireGrad();
    const b = Tensor.fromArray(bv, [4]).requireGrad();
    const loss = gpuLoss(a, b);
    expect(loss.shape).toEqual([]);
    backward(loss);
    expectClose("loss", [await loss.item()], [cpuLoss(Float64Array.from(av), Float64Array.from(bv))], TOL);
    const da = numericGrad((x) => cpuLoss(x, Float64Array.from(bv)), av);
    const db = numericGrad((x) => cpuLoss(Float64Array.from(av), x), bv);
    expectClose("da", await a.grad!.data(), da, TOL);
    expectClose("db", await b.grad!.data(), db, TOL);
  });

  it("max routes the gradient to the maxima, ties share it", async () => {
    const x = Tensor.fromArray([1, 5, 5, 2, 0, -1], [2, 3]).requireGrad();
    backward(ops.sumAll(ops.max(x, 1)));
    expect(Array.from(await x.grad!.data())).toEqual([0, 0.5, 0.5, 1, 0, 0]);
  });

  it("accumulates gradients across backward calls until zeroGrad", async () => {
    const w = Tensor.fromArray([1, 2, 3], [3]).requireGrad();
    for (let i = 0; i < 3; i++) tidy(() => backward(ops.sumAll(ops.scale(w, 2))));
    expect(Array.from(await w.grad!.data())).toEqual([6, 6, 6]);
    zeroGrad([w]);
    expect(w.grad).toBeUndefined();
  });

  it("a tensor used twice gets the sum of both paths", async () => {
    const w = Tensor.fromArray([3], [1]).requireGrad();
    backward(ops.sumAll(ops.mul(w, w))); // d(w^2) = 2w
    expect(Array.from(await w.grad!.data())).toEqual([6]);
  });

  it("a summing node (layernorm) folds the gradient of its input's other use into its own pass", async () => {
    // loss = sum(w * (layernorm(x) + x)), a pre-norm residual: dx = layernorm's dx of w, plus w.
    const [rows, C] = [4, 6];
    const xv = randn(rows * C, 81, 1.5);
    const gv = randn(C, 82, 1);
    const wv = randn(rows * C, 83, 1);
    const x = Tensor.fromArray(xv, [rows, C]).requireGrad();
    const gamma = Tensor.fromArray(gv, [C]).requireGrad();
    const lines: string[] = [];
    tidy(() => {
      const loss = ops.sumAll(ops.mul(ops.add(ops.layernorm(x, gamma, undefined, 1e-6), x), Tensor.fromArray(wv, [rows, C])));
      runtime().batch.log = (line) => lines.push(line);
      try {
        backward(loss);
      } finally {
        runtime().batch.log = undefined;
      }
    });
    const ref = layernormBackwardRef(wv, xv, gv, rows, C, 1e-6);
    expectClose("dx", await x.grad!.data(), ref.dx.map((v, i) => v + wv[i]), TOL);
    expectClose("dgamma", await gamma.grad!.data(), ref.dgamma, TOL);
    // The residual's gradient and layernorm's dx meet in the layernorm kernel, not in an add of two gradients
    // (sumAll's backward broadcasts with an add of its own).
    expect(lines.filter((l) => l.includes("broadcast=false,expr=a + b"))).toEqual([]);
    expect(lines.some((l) => l.includes("layernorm/addDx=true"))).toBe(true);
  });

  it("a summing node's other inputs used elsewhere too get both gradients (gamma in layernorm and a product)", async () => {
    // loss = sum(w * layernorm(x; gamma)) + sum(gamma * v): dgamma = layernorm's dgamma + v.
    const [rows, C] = [3, 5];
    const [xv, gv, wv, vv] = [randn(rows * C, 91, 1.5), randn(C, 92, 1), randn(rows * C, 93, 1), randn(C, 94, 1)];
    const x = Tensor.fromArray(xv, [rows, C]).requireGrad();
    const gamma = Tensor.fromArray(gv, [C]).requireGrad();
    tidy(() => {
      const normed = ops.sumAll(ops.mul(ops.layernorm(x, gamma, undefined, 1e-6), Tensor.fromArray(wv, [rows, C])));
      backward(ops.add(normed, ops.sumAll(ops.mul(gamma, Tensor.fromArray(vv, [C])))));
    });
    const ref = layernormBackwardRef(wv, xv, gv, rows, C, 1e-6);
    expectClose("dgamma", await gamma.grad!.data(), ref.dgamma.map((v, i) => v + vv[i]), TOL);
    expectClose("dx", await x.grad!.data(), ref.dx, TOL);
  });

  it("does no gradient work for tensors that do not require it", () => {
    const { batch } = runtime();
    const frozen = Tensor.fromArray(randu(64, 3), [8, 8]);
    const w = Tensor.fromArray(randu(8, 4), [8]).requireGrad();
    const loss = ops.sumAll(ops.mul(ops.gelu(frozen), w));
    const before = batch.stats.dispatches;
    backward(loss);
    const backwardDispatches = batch.stats.dispatches - before;
    // seed, sum/mean broadcast (2), mul's dw (1), sumTo over rows (1): nothing for gelu(frozen)
    expect(backwardDispatches).toBeLessThanOrEqual(6);
    const none = noGrad(() => ops.gelu(frozen));
    expect(none.requiresGrad).toBe(false);
  });

  it("ops.reshape carries the gradient back to the input's shape; Tensor.reshape is a view outside the graph", async () => {
    const w = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3]).requireGrad();
    const y = ops.reshape(w, [3, 2]);
    expect(y.requiresGrad).toBe(true);
    backward(ops.sumAll(ops.mul(y, Tensor.fromArray([1, 2, 3, 4, 5, 6], [3, 2]))));
    expect(w.grad!.shape).toEqual([2, 3]);
    expect(Array.from(await w.grad!.data())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(w.reshape([6]).requiresGrad).toBe(false);
    zeroGrad([w]);
  });

  it("a leaf keeps a gradient nothing else holds without a copy, and copies one that is shared", async () => {
    const { batch } = runtime();
    const copies = (f: () => void) => {
      batch.startRecording();
      f();
      return batch.stopRecording().filter((c) => c.kind === "copy").length;
    };
    // w's gradient is the product's own output: kept as w.grad (in a scope that ends, it outlives the scope).
    const w = Tensor.fromArray([1, 2, 3], [3]).requireGrad();
    expect(copies(() => tidy(() => backward(ops.sumAll(ops.mul(w, Tensor.fromArray([4, 5, 6], [3]))))))).toBe(0);
    expect(Array.from(await w.grad!.data())).toEqual([4, 5, 6]);
    // add hands its dout to both inputs: each leaf gets a copy of its own, so that accumulating into one (a second
    // backward, a clip in place) leaves the other as it is.
    const a = Tensor.fromArray([1, 2], [2]).requireGrad();
    const b = Tensor.fromArray([3, 4], [2]).requireGrad();
    const loss = () => ops.sumAll(ops.mul(ops.add(a, b), Tensor.fromArray([2, 3], [2])));
    expect(copies(() => tidy(() => backward(loss())))).toBe(2);
    tidy(() => backward(ops.sumAll(ops.scale(a, 10))));
    expect(Array.from(await a.grad!.data())).toEqual([12, 13]);
    expect(Array.from(await b.grad!.data())).toEqual([2, 3]);
    // The caller's output gradient stays the caller's.
    const x = Tensor.fromArray([1, 1], [2]).requireGrad();
    const dout = Tensor.fromArray([7, 8], [2]);
    expect(copies(() => backward(x, dout))).toBe(1);
    dout.dispose();
    expect(Array.from(await x.grad!.data())).toEqual([7, 8]);
    zeroGrad([w, a, b, x]);
  });

  it("detach cuts the graph", async () => {
    const w = Tensor.fromArray([2], [1]).requireGrad();
    const y = ops.mul(w, ops.scale(w, 3).detach()); // d/dw (w * const 6) = 6
    backward(ops.sumAll(y));
    expect(Array.from(await w.grad!.data())).toEqual([6]);
  });

  it("explains a backward from a tensor without grad and a non-scalar root", () => {
    const x = Tensor.fromArray([1, 2], [2]);
    expect(() => backward(x)).toThrow("does not require grad");
    const w = Tensor.fromArray([1, 2], [2]).requireGrad();
    expect(() => backward(ops.scale(w, 2))).toThrow("is not a scalar");
  });
});
