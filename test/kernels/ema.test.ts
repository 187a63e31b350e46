// emaUpdates of one pair against the float64 reference m * t + (1 - m) * s over 3 steps of changing momentum, on the
// scalar path (sizes 1, 7, 1031) and the vec4 path (1028): atol 1e-6 + rtol 1e-5 (one f32 multiply-add per step).
// Many pairs of mixed sizes (vec4 and scalar, more than a dispatch holds) in few dispatches, each target exactly as
// it moves alone.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { emaUpdates } from "../../kernels/ema.js";
import { expectClose, randn, recordKernels, useEngine } from "../helpers.js";

useEngine();

const TOL = { atol: 1e-6, rtol: 1e-5 };

describe("emaUpdates", () => {
  for (const n of [1, 7, 1028, 1031]) {
    it(`n=${n}`, async () => {
      const t0 = randn(n, n);
      const target = Tensor.fromArray(t0, [n]);
      const ref = Float64Array.from(t0);
      for (const [step, m] of [0.996, 0.5, 1, 0].entries()) {
        const s = randn(n, 1000 + 10 * n + step);
        emaUpdates([[target, Tensor.fromArray(s, [n])]], m);
        for (let i = 0; i < n; i++) ref[i] = m * ref[i] + (1 - m) * s[i];
        expectClose(`target after momentum ${m}`, await target.data(), ref, TOL);
      }
    });
  }

  it("updates tensors of other shapes but the same size", async () => {
    const target = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
    emaUpdates([[target, Tensor.fromArray([7, 8, 9, 10, 11, 12], [6])]], 0.75);
    expectClose("target", await target.data(), [2.5, 3.5, 4.5, 5.5, 6.5, 7.5], TOL);
  });

  it("updates many pairs in a few dispatches, each as it does alone", async () => {
    const sizes = [64, 3, 1028, 1, 16, 7, 4096, 12, 5, 2048, 33, 8];
    const targets = sizes.map((n, i) => randn(n, 7 + i));
    const sources = sizes.map((n, i) => randn(n, 70 + i));
    const together = targets.map((t, i) => Tensor.fromArray(t, [sizes[i]]));
    const alone = targets.map((t, i) => Tensor.fromArray(t, [sizes[i]]));
    const src = sources.map((s, i) => Tensor.fromArray(s, [sizes[i]]));
    const { kernels } = recordKernels(() => emaUpdates(together.map((t, i) => [t, src[i]]), 0.996));
    expect(kernels.length).toBeLessThanOrEqual(3); // 7 vec4 pairs, 5 scalar ones, at most 8 per dispatch
    alone.forEach((t, i) => emaUpdates([[t, src[i]]], 0.996));
    for (const [i, t] of together.entries()) expect(Array.from(await t.data())).toEqual(Array.from(await alone[i].data()));
    const ref = Float64Array.from(targets[2]).map((v, j) => 0.996 * v + (1 - 0.996) * sources[2][j]);
    expectClose("pair 2", await together[2].data(), ref, TOL);
  });

  it("refuses mismatched sizes, shared storage and momenta outside [0, 1]", () => {
    const t = Tensor.fromArray([1, 2, 3], [3]);
    expect(() => emaUpdates([[t, Tensor.fromArray([1, 2], [2])]], 0.9)).toThrow("ema: expected target and source f32 of the same size");
    expect(() => emaUpdates([[t, t.reshape([3])]], 0.9)).toThrow(
      /^ema: expected source Tensor\(#\d+, f32, \(3\)\) in storage of its own, got target Tensor\(#\d+, f32, \(3\)\)'s$/,
    );
    expect(() => emaUpdates([[t, Tensor.fromArray([1, 2, 3], [3])]], 1.5)).toThrow("ema: expected a momentum in [0, 1], got 1.5");
    expect(() => emaUpdates([[t, Tensor.fromArray([1, 2, 3], [3])]], NaN)).toThrow("ema: expected a momentum in [0, 1], got NaN");
    const s = Tensor.fromArray([1, 2, 3], [3]);
    expect(() => emaUpdates([[t, s], [t.reshape([3]), Tensor.fromArray([4, 5, 6], [3])]], 0.9)).toThrow("ema: expected target Tensor(");
  });
});
