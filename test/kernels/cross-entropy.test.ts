// crossEntropyForward / crossEntropyBackward, every version, against test/ref/cross-entropy.ts (float64) and
// float64 central finite differences, with label smoothing 0 and 0.1. Tolerances (atol + rtol*|ref|): loss and
// lse 1e-5 + 1e-5 (lse = max + log(sum of C exps)); dlogits 1e-7 + 1e-4 (values are O(1/B)); finite
// differences 1e-5 + 1e-3.
import { describe, expect, it } from "vitest";
import { Rng } from "../../util/random.js";
import { Tensor } from "../../engine/tensor.js";
import { ROWS } from "../../kernels/registry.js";
import { checkLabels, crossEntropyBackward, crossEntropyForward } from "../../kernels/cross-entropy.js";
import { expectClose, numericGrad, randn, recordKernels, useEngine } from "../helpers.js";
import { crossEntropy, crossEntropyBackward as crossEntropyBackwardRef } from "../ref/cross-entropy.js";

useEngine();

const TOL = { atol: 1e-5, rtol: 1e-5 };
const GRAD_TOL = { atol: 1e-7, rtol: 1e-4 };
const FD_TOL = { atol: 1e-5, rtol: 1e-3 };
const SHAPES = [[1, 1], [3, 7], [5, 197], [33, 384], [1030, 65], [1, 1000], [6, 1031]];

function randomLabels(B: number, C: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: B }, () => rng.int(C));
}

const tensors = (logits: Float32Array, labels: Int32Array, B: number, C: number) => ({
  x: Tensor.fromArray(logits, [B, C]),
  l: Tensor.fromArray(labels, [B], "i32"),
});

for (const version of ROWS.versions) {
  describe(`cross-entropy ${version}`, () => {
    for (const [B, C] of SHAPES) {
      for (const labelSmoothing of [0, 0.1]) {
        it(`forward and backward (${B}, ${C}), smoothing ${labelSmoothing}`, async () => {
          const logits = randn(B * C, B * 7 + C, 3);
          const labels = randomLabels(B, C, B + C);
          const { x, l } = tensors(logits, labels, B, C);
          const opts = { labelSmoothing, version };
          const { loss, lse } = crossEntropyForward(x, l, opts);
          expect(loss.shape).toEqual([]);
          const ref = crossEntropy(logits, labels, B, C, labelSmoothing);
          expectClose("loss", await loss.data(), [ref.loss], TOL);
          expectClose("lse", await lse.data(), ref.lse, TOL);
          const dloss = 1.7;
          const dx = crossEntropyBackward(x, l, lse, Tensor.scalar(dloss), opts);
          expect(dx.shape).toEqual([B, C]);
          expectClose("dlogits", await dx.data(), crossEntropyBackwardRef(logits, labels, B, C, labelSmoothing, dloss), GRAD_TOL);
        });
      }
    }

    it("stays finite for logits of magnitude 1e3", async () => {
      const [B, C] = [4, 100];
      const logits = randn(B * C, 71, 1e3);
      const labels = randomLabels(B, C, 72);
      const { x, l } = tensors(logits, labels, B, C);
      const { loss, lse } = crossEntropyForward(x, l, { version });
      const ref = crossEntropy(logits, labels, B, C);
      expect(Number.isFinite(await loss.item())).toBe(true);
      // Rows this peaked give losses ~1e3: compare relatively.
      expectClose("loss", await loss.data(), [ref.loss], { atol: 1e-3, rtol: 1e-5 });
      expectClose("lse", await lse.data(), ref.lse, { atol: 1e-3, rtol: 1e-5 });
    });

    it("backward matches finite differences of the loss, smoothing 0.1", async () => {
      const [B, C] = [3, 5];
      const logits = randn(B * C, 81, 2);
      const labels = Int32Array.from([4, 0, 2]);
      const fd = numericGrad((v) => crossEntropy(v, labels, B, C, 0.1).loss, logits);
      const { x, l } = tensors(logits, labels, B, C);
      const { lse } = crossEntropyForward(x, l, { labelSmoothing: 0.1, version });
      const dx = crossEntropyBackward(x, l, lse, Tensor.scalar(1), { labelSmoothing: 0.1, version });
      expectClose("dlogits vs finite differences", await dx.data(), fd, FD_TOL);
    });

    it("gives a NaN loss and NaN gradients of that row for a label outside [0, C)", async () => {
      for (const bad of [-1, 5]) {
        const [B, C] = [3, 5];
        const logits = randn(B * C, 91, 1);
        const { x, l } = tensors(logits, Int32Array.from([1, bad, 0]), B, C);
        const { loss, lse } = crossEntropyForward(x, l, { version });
        expect(await loss.item()).toBeNaN();
        const dx = await crossEntropyBackward(x, l, lse, Tensor.scalar(1), { version }).data();
        expect(dx.slice(C, 2 * C).every(Number.isNaN)).toBe(true);
        expect(dx.slice(0, C).every(Number.isFinite) && dx.slice(2 * C).every(Number.isFinite)).toBe(true);
      }
    });
  });
}

// lane's forward in one pass (rowsMean) for a batch of up to one workgroup (64 rows), two past it; both against the
// reference at the edge.
describe("cross-entropy lane forward: one pass or two", () => {
  for (const [B, passes] of [[64, ["rowsMean"]], [65, ["rows", "mean"]]] as const) {
    it(`${B} rows: ${passes.join(", ")}`, async () => {
      const C = 10;
      const logits = randn(B * C, B, 3);
      const labels = randomLabels(B, C, B);
      const { x, l } = tensors(logits, labels, B, C);
      const { result: out, kernels } = recordKernels(() => crossEntropyForward(x, l, { version: "lane" }));
      expect(kernels.map((k) => k.key.match(/pass=(\w+)/)![1])).toEqual([...passes]);
      const ref = crossEntropy(logits, labels, B, C, 0);
      expectClose("loss", await out.loss.data(), [ref.loss], TOL);
      expectClose("lse", await out.lse.data(), ref.lse, TOL);
    });
  }
});

describe("cross-entropy checks and errors", () => {
  it("checkLabels accepts labels in range and names index, value and range otherwise", () => {
    expect(() => checkLabels(Int32Array.from([0, 9, 3]), 10, "train")).not.toThrow();
    expect(() => checkLabels(Int32Array.from([0, 10, 3]), 10, "train")).toThrow("train: expected labels in [0, 10), got 10 at index 1");
    expect(() => checkLabels(Int32Array.from([2, 1, -1]), 10, "eval")).toThrow("eval: expected labels in [0, 10), got -1 at index 2");
  });

  it("rejects i32/f32 mix-ups and mismatched shapes, naming the op, dtypes and shapes", () => {
    const x = Tensor.fromArray(new Float32Array(12), [3, 4]);
    const labels = Tensor.fromArray([0, 1, 2], [3], "i32");
    expect(() => crossEntropyForward(x, Tensor.fromArray([0, 1, 2], [3]))).toThrow("crossEntropy: expected labels i32, got f32");
    expect(() => crossEntropyForward(Tensor.fromArray(new Int32Array(12), [3, 4], "i32"), labels)).toThrow(
      "crossEntropy: expected logits f32, got i32",
    );
    expect(() => crossEntropyForward(x, Tensor.fromArray([0, 1], [2], "i32"))).toThrow(
      "crossEntropy: expected labels (3) for logits (3, 4), got (2)",
    );
    expect(() => crossEntropyForward(Tensor.fromArray(new Float32Array(12), [1, 3, 4]), labels)).toThrow(
      "crossEntropy: expected logits (B, C) with C >= 1, got (1, 3, 4)",
    );
    expect(() => crossEntropyForward(x, labels, { labelSmoothing: 1.5 })).toThrow("crossEntropy: expected labelSmoothing in [0, 1], got 1.5");
    const { lse } = crossEntropyForward(x, labels);
    expect(() => crossEntropyBackward(x, labels, lse, Tensor.fromArray([1], [1]))).toThrow(
      "crossEntropy backward: expected dloss f32 of shape (), got f32 (1)",
    );
    expect(() => crossEntropyBackward(x, labels, Tensor.fromArray([1, 2], [2]), Tensor.scalar(1))).toThrow(
      "crossEntropy backward: expected lse f32 (3), got f32 (2)",
    );
    expect(() => crossEntropyBackward(x, Tensor.fromArray([0, 1, 2], [3]), lse, Tensor.scalar(1))).toThrow(
      "crossEntropy backward: expected labels i32, got f32",
    );
  });
});
