// Elementwise kernels against CPU references; tolerance atol 1e-6 + rtol 1e-5 for arithmetic, 1e-5/1e-4 for
// transcendental functions (WGSL's exp/log/erf are not correctly rounded).
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { type BinaryOp, binaryForward, unaryForward, broadcastShapes, axpyInPlace, mergeBroadcastAxes } from "../../kernels/elementwise.js";
import { expectClose, randn, randu, useEngine } from "../helpers.js";
import { broadcastIndex, gelu, geluGrad } from "../ref/elementwise.js";

useEngine();

const EXACT = { atol: 1e-6, rtol: 1e-6 };
const TRANSCENDENTAL = { atol: 1e-5, rtol: 1e-4 };

describe("unary", () => {
  const refs: Record<string, (x: number) => number> = {
    neg: (x) => -x,
    exp: Math.exp,
    square: (x) => x * x,
    relu: (x) => Math.max(x, 0),
    tanh: Math.tanh,
    sigmoid: (x) => 1 / (1 + Math.exp(-x)),
    gelu,
  };
  for (const n of [1, 7, 257, 4099]) {
    for (const [op, ref] of Object.entries(refs)) {
      it(`${op} n=${n}`, async () => {
        const x = randn(n, n, 2);
        const y = unaryForward(op as "neg", Tensor.fromArray(x, [n]));
        expectClose(`${op}(x)`, await y.data(), Array.from(x, ref), TRANSCENDENTAL);
      });
    }
  }
  it("log and sqrt of positive values", async () => {
    const x = randu(1000, 3, 0.01, 10);
    const t = Tensor.fromArray(x, [10, 100]);
    expectClose("log", await unaryForward("log", t).data(), Array.from(x, Math.log), TRANSCENDENTAL);
    expectClose("sqrt", await unaryForward("sqrt", t).data(), Array.from(x, Math.sqrt), TRANSCENDENTAL);
  });
  it("scale uses alpha", async () => {
    const x = randn(33, 1);
    expectClose("scale", await unaryForward("scale", Tensor.fromArray(x, [33]), -2.5).data(), Array.from(x, (v) => v * -2.5), EXACT);
  });
  // The rest of UNARY: copy (bit-exact) and addScalar; n = 4099 leaves 3 elements for the last invocation's 4.
  it("copy and addScalar (n = 4099)", async () => {
    const n = 4099;
    const x = randn(n, 17, 2);
    const t = Tensor.fromArray(x, [n]);
    expectClose("addScalar", await unaryForward("addScalar", t, -0.75).data(), Array.from(x, (v) => v - 0.75), EXACT);
    expect(Array.from(await unaryForward("copy", t).data())).toEqual(Array.from(x));
  });
  it("a large tensor spans a folded 2-D grid", async () => {
    const n = 65535 * 256 + 13; // more than 65535 workgroups of 256 elements
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (i % 1000) - 500;
    const y = await unaryForward("neg", Tensor.fromArray(x, [n])).data();
    expect(y[0]).toBe(500);
    expect(y[n - 1]).toBe(-((n - 1) % 1000) + 500);
    expect(y[n - 5000]).toBe(-(((n - 5000) % 1000) - 500));
  });
});

describe("binary with broadcasting", () => {
  const cases: [number[], number[]][] = [
    [[5], [5]],
    [[1], [13]],
    [[3, 1], [1, 7]],
    [[2, 3, 5], [5]],
    [[2, 1, 5], [3, 1]],
    [[197, 384], [384]],
    [[1031, 3], [1031, 1]],
    [[], [4]],
    // merged axes and 4 elements per invocation: ViT's + pos_embed, rank 4 unmerged, a last axis b does not step
    [[3, 17, 8], [1, 17, 8]],
    [[4, 1, 6, 4], [1, 5, 1, 4]],
    [[2, 3, 4, 5], [3, 1, 1]],
    [[6, 8], [6, 1]],
    [[1, 1, 4], [2, 1, 1]],
  ];
  const refs: Record<string, (a: number, b: number) => number> = {
    add: (a, b) => a + b,
    sub: (a, b) => a - b,
    mul: (a, b) => a * b,
    div: (a, b) => a / b,
    max: Math.max,
  };
  for (const [sa, sb] of cases) {
    for (const [op, ref] of Object.entries(refs)) {
      it(`${op} (${sa}) x (${sb})`, async () => {
        const na = sa.reduce((x, y) => x * y, 1);
        const nb = sb.reduce((x, y) => x * y, 1);
        const a = randn(na, 1);
        const b = op === "div" ? randu(nb, 2, 0.5, 2) : randn(nb, 2);
        const y = binaryForward(op as "add", Tensor.fromArray(a, sa), Tensor.fromArray(b, sb));
        const out = broadcastShapes(op, sa, sb);
        expect(y.shape).toEqual(out);
        const want = new Float32Array(y.size);
        for (let i = 0; i < y.size; i++) want[i] = ref(a[broadcastIndex(i, out, sa)], b[broadcastIndex(i, out, sb)]);
        expectClose(`${op}`, await y.data(), want, EXACT);
      });
    }
  }
  // Rank 8 with no two neighbouring axes mergeable (a and b broadcast on alternate axes, neither on the last): the
  // axes past the fourth come from the uniform's second vec4 of extents and strides. Last axis 3 (one element per
  // invocation) and 4 (four per invocation, group4).
  for (const last of [3, 4]) {
    it(`rank 8 after merging, last axis ${last}`, async () => {
      const sa = [2, 1, 3, 1, 2, 1, 3, last];
      const sb = [1, 3, 1, 2, 1, 3, 1, last];
      const out = broadcastShapes("add", sa, sb);
      // Row-major strides, 0 on the broadcast (extent-1) axes.
      const strides = (shape: number[]) => shape.map((d, i) => (d === 1 ? 0 : shape.slice(i + 1).reduce((x, y) => x * y, 1)));
      expect(mergeBroadcastAxes(out, strides(sa), strides(sb)).shape).toEqual(out);
      const a = randn(sa.reduce((x, y) => x * y, 1), 31);
      const b = randn(sb.reduce((x, y) => x * y, 1), 32);
      const y = binaryForward("sub", Tensor.fromArray(a, sa), Tensor.fromArray(b, sb));
      expect(y.shape).toEqual(out);
      const want = Array.from({ length: y.size }, (_, i) => a[broadcastIndex(i, out, sa)] - b[broadcastIndex(i, out, sb)]);
      expectClose("a - b", await y.data(), want, EXACT);
    });
  }
  it("merges the axes both operands step over contiguously, and drops extent-1 axes", () => {
    // (B, N, C) + (1, N, C): one (B, N*C) pass; b's zero stride merges with its contiguous inner axes.
    expect(mergeBroadcastAxes([32, 17, 64], [1088, 64, 1], [0, 64, 1])).toEqual({ shape: [32, 1088], sa: [1088, 1], sb: [0, 1] });
    expect(mergeBroadcastAxes([4, 5, 6, 4], [24, 0, 4, 1], [0, 4, 0, 1])).toEqual({ shape: [4, 5, 6, 4], sa: [24, 0, 4, 1], sb: [0, 4, 0, 1] });
    expect(mergeBroadcastAxes([4, 1, 6, 4], [24, 0, 4, 1], [0, 4, 0, 1])).toEqual({ shape: [24, 4], sa: [4, 1], sb: [0, 1] });
    expect(mergeBroadcastAxes([2, 3, 4], [0, 0, 0], [12, 4, 1])).toEqual({ shape: [24], sa: [0], sb: [1] });
    expect(mergeBroadcastAxes([1, 1], [0, 0], [0, 0])).toEqual({ shape: [1], sa: [0], sb: [0] });
  });
  it("rejects shapes that do not broadcast, naming the op and both shapes", () => {
    expect(() => binaryForward("add", Tensor.fromArray(new Float32Array(6), [2, 3]), Tensor.fromArray(new Float32Array(4), [4]))).toThrow(
      "add: expected a and b shapes that broadcast (each axis equal or 1), got a (2, 3) and b (4)",
    );
  });
  it("rejects an output of rank past 8, naming its shape", () => {
    const x = Tensor.fromArray([1], [1, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(() => unaryForward("exp", x)).toThrow("elementwise: expected an output of rank <= 8, got (1, 1, 1, 1, 1, 1, 1, 1, 1)");
  });
  it("rejects i32 tensors", () => {
    expect(() => unaryForward("exp", Tensor.fromArray([1, 2], [2], "i32"))).toThrow("exp: expected an f32 tensor, got i32");
  });
  it("axpyInPlace accumulates in place", async () => {
    const y = Tensor.fromArray([1, 2, 3], [3]);
    axpyInPlace(y, Tensor.fromArray([10, 20, 30], [3]), 0.5);
    expectClose("y", await y.data(), [6, 12, 18], EXACT);
  });
  it("axpyInPlace rejects an a of another size, naming a, y and y's size", () => {
    const y = Tensor.fromArray([1, 2, 3], [3]);
    expect(() => axpyInPlace(y, Tensor.fromArray([1, 2], [2]), 1)).toThrow(
      /^axpy: expected a with y's 3 elements, got a Tensor\(#\d+, f32, \(2\)\) for y Tensor\(#\d+, f32, \(3\)\)$/,
    );
  });
});

// The derivative ops (autograd/ops.ts's backward passes: a the forward's input, or its output for tanh and sigmoid; b
// the incoming gradient) and eq, against the derivatives written from the math in float64 at the forward's input x:
// relu' = [x > 0], gelu' = Phi(x) + x phi(x), tanh' = 1 - tanh(x)^2, sigmoid' = s(x)(1 - s(x)). n = 1031 (not a
// multiple of 4); x over [-5, 5] and exact zeros (relu' is 0 there, as PyTorch's).
describe("derivative ops and eq", () => {
  const n = 1031;
  const x = randu(n, 41, -5, 5).map((v, i) => (i % 97 === 0 ? 0 : v));
  const dy = randn(n, 42);
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
  const cases: [BinaryOp, (v: number) => number, (v: number) => number][] = [
    ["reluGrad", (v) => v, (v) => (v > 0 ? 1 : 0)],
    ["geluGrad", (v) => v, geluGrad],
    ["tanhGrad", Math.tanh, (v) => 1 - Math.tanh(v) ** 2],
    ["sigmoidGrad", sigmoid, (v) => sigmoid(v) * (1 - sigmoid(v))],
  ];
  for (const [op, saved, derivative] of cases) {
    it(`${op} (n = ${n})`, async () => {
      const a = Tensor.fromArray(Array.from(x, saved), [n]);
      const y = binaryForward(op, a, Tensor.fromArray(dy, [n]));
      expectClose(op, await y.data(), Array.from(x, (v, i) => dy[i] * derivative(v)), TRANSCENDENTAL);
    });
  }
  it("eq: 1 where equal, else 0, broadcast over rows (7, 5) x (5)", async () => {
    const a = Float32Array.from({ length: 35 }, (_, i) => i % 3);
    const b = Float32Array.from([0, 1, 2, 1, 0]);
    const y = await binaryForward("eq", Tensor.fromArray(a, [7, 5]), Tensor.fromArray(b, [5])).data();
    expect(Array.from(y)).toEqual(Array.from(a, (v, i) => (v === b[i % 5] ? 1 : 0)));
  });
});
