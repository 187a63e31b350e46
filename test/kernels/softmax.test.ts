// softmaxForward / softmaxBackward, every version, against test/ref/softmax.ts (float64) and float64 central
// finite differences. Tolerances (atol + rtol*|ref|): forward and backward 1e-6 + 2e-5 (WGSL's exp is not
// correctly rounded and a row sum of 1031 terms rounds ~sqrt(1031) times); finite differences 1e-5 + 1e-4.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { softmaxBackward, softmaxForward } from "../../kernels/softmax.js";
import { ROW_LAYOUT } from "../../kernels/rows.js";
import { ROWS, availableVersions } from "../../kernels/registry.js";
import { runtime } from "../../engine/runtime.js";
import { dot, expectClose, numericGrad, randn, useEngine } from "../helpers.js";
import { softmax, softmaxBackward as softmaxBackwardRef } from "../ref/softmax.js";

useEngine();

const TOL = { atol: 1e-6, rtol: 2e-5 };
const FD_TOL = { atol: 1e-5, rtol: 1e-4 };
// Not multiples of either version's rows per workgroup (64) or lanes (128); a row of length 1; C >= 1024.
const SHAPES = [[1, 1], [3, 7], [5, 197], [33, 384], [1030, 65], [2, 3, 1031], [9, 1]];

const rowsC = (shape: number[]): [number, number] => {
  const C = shape[shape.length - 1];
  return [shape.reduce((a, b) => a * b, 1) / C, C];
};

for (const version of ROWS.versions) {
  describe(`softmax ${version}`, () => {
    for (const shape of SHAPES) {
      it(`forward and backward (${shape})`, async () => {
        const [rows, C] = rowsC(shape);
        const x = randn(rows * C, rows + C, 3);
        const y = softmaxForward(Tensor.fromArray(x, shape), version);
        expect(y.shape).toEqual(shape);
        const yRef = softmax(x, rows, C);
        expectClose("y", await y.data(), yRef, TOL);
        // Backward from the same y on both sides, so only backward's error is measured.
        const yIn = Float32Array.from(yRef);
        const dy = randn(rows * C, 7, 1);
        const dx = softmaxBackward(Tensor.fromArray(yIn, shape), Tensor.fromArray(dy, shape), version);
        expect(dx.shape).toEqual(shape);
        expectClose("dx", await dx.data(), softmaxBackwardRef(yIn, dy, rows, C), TOL);
      });
    }

    it("stays finite for logits of magnitude 1e3 and 1e30", async () => {
      const [rows, C] = [4, 300];
      const x = randn(rows * C, 11, 1).map((v, i) => (i < C ? 1e3 + v : i < 2 * C ? -1e3 + 50 * v : i < 3 * C ? 1e30 * v : 1e3 * v));
      const y = await softmaxForward(Tensor.fromArray(x, [rows, C]), version).data();
      expect(y.every(Number.isFinite)).toBe(true);
      expectClose("y", y, softmax(x, rows, C), TOL);
    });

    // The row frame (shared with layernorm and cross-entropy) folds grids past 65535 workgroups into (x, y).
    // Cheap integer logits keep the 4M-row case of v1 fast; a skipped row would keep the buffer's zeros.
    it("covers every row of a folded grid", async () => {
      const rowsPerGroup = ROW_LAYOUT[version].wg / ROW_LAYOUT[version].lanes;
      const [rows, C] = [65535 * rowsPerGroup + 3 * rowsPerGroup + 1, 2];
      const x = new Float32Array(rows * C);
      for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 13) - 6;
      const y = softmaxForward(Tensor.fromArray(x, [rows, C]), version);
      expectClose("y", await y.data(), softmax(x, rows, C), TOL);
    });

    it("backward matches finite differences of sum(softmax(x) * w)", async () => {
      const [rows, C] = [3, 5];
      const x = randn(rows * C, 21, 2);
      const w = randn(rows * C, 22, 1);
      const fd = numericGrad((x64) => dot(softmax(x64, rows, C), w), x);
      const y = softmaxForward(Tensor.fromArray(x, [rows, C]), version);
      const dx = softmaxBackward(y, Tensor.fromArray(w, [rows, C]), version);
      expectClose("dx vs finite differences", await dx.data(), fd, FD_TOL);
    });
  });
}

describe("softmax errors", () => {
  it("rejects i32 input, rank 0, an empty axis and mismatched shapes, naming the op and shapes", () => {
    expect(() => softmaxForward(Tensor.fromArray([1, 2], [2], "i32"))).toThrow("softmax: expected x f32, got i32");
    expect(() => softmaxForward(Tensor.scalar(1))).toThrow("softmax: expected x with at least one axis, got shape ()");
    expect(() => softmaxForward(Tensor.empty([3, 0]))).toThrow("softmax: expected a non-empty last axis, got x (3, 0)");
    const y = Tensor.fromArray(new Float32Array(6), [2, 3]);
    expect(() => softmaxBackward(y, Tensor.fromArray(new Float32Array(6), [3, 2]))).toThrow(
      "softmax backward: expected dy of y's shape (2, 3), got (3, 2)",
    );
    expect(() => softmaxBackward(y, Tensor.fromArray(new Int32Array(6), [2, 3], "i32"))).toThrow(
      "softmax backward: expected dy f32, got i32",
    );
  });
  it("rejects an x past the storage binding limit, naming x, the limit and its bytes", () => {
    const { gpu } = runtime();
    const limits = gpu.limits;
    gpu.limits = Object.create(limits, { maxStorageBufferBindingSize: { value: 16 } }) as GPUSupportedLimits;
    try {
      expect(() => softmaxForward(Tensor.fromArray(new Float32Array(6), [2, 3]))).toThrow(
        /^softmax: expected Tensor\(#\d+, f32, \(2, 3\)\) within maxStorageBufferBindingSize 16 bytes, got 24 bytes$/,
      );
    } finally {
      gpu.limits = limits;
    }
  });
});

describe("softmax subgroup without subgroups", () => {
  it("is refused naming the feature and the adapter, and left out of the versions tune times", async () => {
    const { gpu } = runtime();
    const had = gpu.features.delete("subgroups");
    try {
      expect(availableVersions(ROWS, { op: "softmax", rows: 1, C: 2 })).toEqual(["lane", "tree"]);
      expect(() => softmaxForward(Tensor.fromArray([1, 2], [1, 2]), "subgroup")).toThrow(
        /rows: "subgroup" needs the adapter's "subgroups" feature, which .* lacks/,
      );
    } finally {
      if (had) gpu.features.add("subgroups");
    }
  });
});
