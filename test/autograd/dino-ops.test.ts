// autograd/dino-ops.ts: l2Normalize and softCrossEntropy forward against float64 references written from the math,
// and their backward against the references' analytic gradients and float64 finite differences of those
// references; awkward shapes (1 row, K = 1, rows not a multiple of anything), sharp logits (scaled by 1/0.04, as
// DINO's teacher temperature) and targets that are not normalised. Tolerance atol 1e-5 + rtol 1e-4 (f32 sums over
// at most 257 values).
import { describe, expect, it } from "vitest";
import { Tensor, tidyAsync } from "../../engine/tensor.js";
import { backward, noGrad } from "../../autograd/tape.js";
import { emaInPlace, l2Normalize, softCrossEntropy } from "../../autograd/dino-ops.js";
import { dot, expectClose, numericGrad, randn, randu, useEngine } from "../helpers.js";

useEngine();

const TOL = { atol: 1e-5, rtol: 1e-4 };

function l2NormalizeRef(x: ArrayLike<number>, k: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / k; r++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += x[r * k + j] ** 2;
    const n = Math.max(Math.sqrt(s), 1e-12); // F.normalize
    for (let j = 0; j < k; j++) y[r * k + j] = x[r * k + j] / n;
  }
  return y;
}

function softCrossEntropyRef(z: ArrayLike<number>, q: ArrayLike<number>, k: number): Float64Array {
  const out = new Float64Array(z.length / k);
  for (let r = 0; r < out.length; r++) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, z[r * k + j]);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(z[r * k + j] - max);
    const lse = max + Math.log(s);
    for (let j = 0; j < k; j++) out[r] -= q[r * k + j] * (z[r * k + j] - lse);
  }
  return out;
}

describe("l2Normalize", () => {
  for (const [shape, seed] of [[[1, 1], 1], [[3, 7], 2], [[2, 5, 33], 3], [[4, 257], 4]] as [number[], number][]) {
    it(`(${shape.join(", ")})`, async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const k = shape[shape.length - 1];
      const x0 = randn(n, seed);
      const w = randn(n, seed + 100);
      const { y, dx } = await tidyAsync(async () => {
        const x = Tensor.fromArray(x0, shape).requireGrad();
        const y = l2Normalize(x);
        backward(y, Tensor.fromArray(w, shape));
        const out = { y: await y.data(), dx: await x.grad!.data() };
        x.grad!.dispose();
        return out;
      });
      expectClose("y", y, l2NormalizeRef(x0, k), TOL);
      const fd = numericGrad((x) => dot(l2NormalizeRef(x, k), w), x0, 1e-6);
      expectClose("dx vs finite differences", dx, fd, { atol: 1e-4, rtol: 1e-3 });
    });
  }
});

describe("softCrossEntropy", () => {
  const cases: [string, number[], number, boolean][] = [
    ["one row, one class", [1, 1], 1, true],
    ["(5, 3) probabilities", [5, 3], 1, true],
    ["(2, 3, 17) probabilities, sharp logits", [2, 3, 17], 25, true],
    ["(3, 257) unnormalised weights", [3, 257], 1, false],
  ];
  for (const [name, shape, sharpness, normalised] of cases) {
    it(name, async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const k = shape[shape.length - 1];
      const rowsN = n / k;
      const z0 = Float32Array.from(randn(n, n), (v) => v * sharpness);
      const q0 = randu(n, n + 1, 0, 1);
      if (normalised) {
        for (let r = 0; r < rowsN; r++) {
          let s = 0;
          for (let j = 0; j < k; j++) s += q0[r * k + j];
          for (let j = 0; j < k; j++) q0[r * k + j] /= s;
        }
      }
      const w = randn(rowsN, n + 2);
      const { loss, dz } = await tidyAsync(async () => {
        const z = Tensor.fromArray(z0, shape).requireGrad();
        const l = softCrossEntropy(z, Tensor.fromArray(q0, shape));
        expect(l.shape).toEqual(shape.slice(0, -1));
        backward(l, Tensor.fromArray(w, l.shape));
        const out = { loss: await l.data(), dz: await z.grad!.data() };
        z.grad!.dispose();
        return out;
      });
      expectClose("loss", loss, softCrossEntropyRef(z0, q0, k), { atol: 1e-5 * sharpness, rtol: 1e-4 });
      const fd = numericGrad((z) => dot(softCrossEntropyRef(z, q0, k), w), z0, 1e-6);
      expectClose("dz vs finite differences", dz, fd, { atol: 1e-4, rtol: 1e-3 });
    });
  }

  it("refuses targets of another shape and targets that require grad", () => {
    const z = Tensor.fromArray([1, 2, 3, 4], [2, 2]).requireGrad();
    expect(() => softCrossEntropy(z, Tensor.fromArray([1, 0, 0], [1, 3]))).toThrow("soft_cross_entropy: expected targets shaped like logits");
    expect(() => softCrossEntropy(z, Tensor.fromArray([1, 0, 0, 1], [2, 2]).requireGrad())).toThrow("soft_cross_entropy (targets): has no backward");
    expect(() => noGrad(() => softCrossEntropy(z, Tensor.fromArray([1, 0, 0, 1], [2, 2]).requireGrad()))).not.toThrow();
  });
});

describe("emaInPlace", () => {
  it("moves a tensor towards a parameter that requires grad, recording nothing", async () => {
    const t = Tensor.fromArray([0, 10], [2]);
    const s = Tensor.fromArray([1, 20], [2]).requireGrad();
    emaInPlace([[t, s]], 0.9);
    expect(t.requiresGrad).toBe(false);
    expectClose("t", await t.data(), [0.1, 11], TOL);
  });
});
