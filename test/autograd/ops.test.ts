// autograd/ops.ts attention (and, after it, the fused MLP, the products with a layernorm after them, the patch
// embedding, and at the end every other op's gradient against finite differences), forward and backward through
// autograd, against the float64 reference (test/ref/attention.ts) and finite differences: "unfused" (composed of
// matmul and softmax) at awkward shapes; the fused kernels (tested at length in test/kernels/attention.test.ts) at
// one small shape, for the wiring only, since every head dim is a pipeline to compile and reg's take long on llvmpipe.
// Tolerance: atol 2e-5 + rtol 1e-4, as the fused kernels' tests (f32 sums over up to 257 keys).
import { describe, expect, it } from "vitest";
import { Tensor, tidy, tidyAsync } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { runtime } from "../../engine/runtime.js";
import { ATTENTION } from "../../kernels/registry.js";
import { dot, expectClose, numericGrad, randn, randu, recordKernels, useEngine } from "../helpers.js";
import { type AttentionShape, attentionBackwardRef, attentionRef } from "../ref/attention.js";
import { backward, noGrad } from "../../autograd/tape.js";
import { broadcastIndex, gelu as geluRef } from "../ref/elementwise.js";
import { matmulRef } from "../ref/matmul.js";
import { softmax as softmaxRef } from "../ref/softmax.js";
import { crossEntropy as crossEntropyRef } from "../ref/cross-entropy.js";
import { permuteRef } from "../ref/permute.js";
import { concatRef, sliceRef } from "../ref/slice.js";
import { gatherRowsRef } from "../ref/gather.js";
import { broadcastShapes } from "../../kernels/elementwise.js";
import { Rng } from "../../util/random.js";

useEngine();

const TOL = { atol: 2e-5, rtol: 1e-4 };

// o and dqkv of ops.attention (loss = sum(o * dout)) for `version`.
async function run(s: AttentionShape, version: string, qkv: Float32Array, dout: Float32Array, scale?: number) {
  return tidyAsync(async () => {
    const x = Tensor.fromArray(qkv, [s.B, s.N, 3 * s.H * s.D]).requireGrad();
    const o = ops.attention(x, s.H, { version, scale });
    backward(o, Tensor.fromArray(dout, [s.B, s.N, s.H * s.D]));
    const dqkv = await x.grad!.data();
    x.grad!.dispose(); // a leaf's gradient is kept across scopes
    return { o: await o.data(), dqkv };
  });
}

const SHAPES = [
  [1, 1, 1, 4],
  [2, 5, 3, 8],
  [2, 17, 3, 16],
  [3, 65, 2, 12],
  [1, 257, 6, 64],
];

// mma's: test/kernels/attention-mma.test.ts (subgroup matrices emulated on the CPU driver).
for (const version of ATTENTION.versions.filter((v) => v !== "mma")) {
  const unfused = version === "unfused";
  describe(`ops.attention ${version}`, () => {
    for (const [B, N, H, D] of unfused ? SHAPES : [SHAPES[1]]) {
      it(`forward and backward match the reference at (B, N, H, D) = (${B}, ${N}, ${H}, ${D})`, async () => {
        const s = { B, N, H, D };
        const qkv = randn(B * N * 3 * H * D, N + D);
        const dout = randn(B * N * H * D, N + D + 1);
        const got = await run(s, version, qkv, dout);
        expectClose(`o ${version}`, got.o, attentionRef(qkv, s, 1 / Math.sqrt(D)).o, TOL);
        expectClose(`dqkv ${version}`, got.dqkv, attentionBackwardRef(qkv, dout, s, 1 / Math.sqrt(D)), TOL);
      });
    }

    it("under noGrad returns o alone and keeps nothing for backward", async () => {
      const x = Tensor.fromArray(randn(2 * 5 * 24, 1), [2, 5, 24]).requireGrad(); // 2 heads, D = 4
      const o = noGrad(() => ops.attention(x, 2, { version }));
      expect(o.node).toBeUndefined();
      expect(o.shape).toEqual([2, 5, 8]);
      o.dispose();
      x.dispose();
    });
  });
}

describe("unfused attention", () => {
  it("custom scale, and large logits (|S| ~ 100) that overflow exp without a row max", async () => {
    const s = { B: 1, N: 37, H: 2, D: 16 };
    const qkv = randn(37 * 3 * 32, 11, 6);
    const dout = randn(37 * 32, 12);
    const got = await run(s, "unfused", qkv, dout, 0.25);
    // atol 1e-4: f32 scores of size ~100 carry ~1e-5 absolute error, which reaches o through P times |v| ~ 6.
    expectClose("o", got.o, attentionRef(qkv, s, 0.25).o, { atol: 1e-4, rtol: 1e-4 });
  });

  it("backward matches float64 finite differences at (1, 3, 2, 4)", async () => {
    const s = { B: 1, N: 3, H: 2, D: 4 };
    const qkv = randn(3 * 3 * 8, 5);
    const dout = randn(3 * 8, 6);
    const loss = (x: Float64Array) => dot(attentionRef(x, s, 0.5).o, dout);
    expectClose("dqkv", (await run(s, "unfused", qkv, dout, 0.5)).dqkv, numericGrad(loss, qkv), TOL);
  });

  it("leaves nothing behind: repeated forward + backward steps hold the pool's live memory flat", async () => {
    const s = { B: 2, N: 65, H: 2, D: 8 };
    const qkv = randn(2 * 65 * 48, 21);
    const dout = randn(2 * 65 * 16, 22);
    const live: number[] = [];
    for (let i = 0; i < 4; i++) {
      await run(s, "unfused", qkv, dout);
      live.push(runtime().pool.getStats().liveBytes);
    }
    expect(new Set(live).size).toBe(1);
  });

  it("runs the matmul and softmax kernels, forward and backward, and no attention kernel", () => {
    const x = Tensor.empty([2, 5, 24]).requireGrad();
    const lines: string[] = [];
    runtime().batch.log = (line) => lines.push(line);
    try {
      tidy(() => backward(ops.attention(x, 2, { version: "unfused" }), Tensor.empty([2, 5, 8])));
    } finally {
      runtime().batch.log = undefined;
    }
    x.grad!.dispose(); // a leaf's gradient is kept across scopes
    x.dispose();
    const kernels = lines.map((l) => l.split(" ")[1].split("/")[0]);
    expect(kernels.filter((k) => k === "softmax")).toHaveLength(2); // forward and backward
    expect(kernels.filter((k) => k === "matmul").length).toBeGreaterThanOrEqual(6); // q·kᵀ, P·v; dv, dP, dq, dk
    expect(kernels.some((k) => k.startsWith("attention"))).toBe(false);
  });
});

// ops.mlp: fc2(gelu(fc1(x))) + residual as one node, GELU's backward in fc2's input-gradient product. Against
// float64 finite differences of the same function on the CPU (every input), and against the two ops.linear calls it
// replaces when only some inputs take gradients. Tolerance: atol 1e-4 + rtol 1e-3 (f32 forward, sums of <= 7 terms,
// central differences with eps 1e-4 in float64).
describe("mlp", () => {
  const [B, T, K, H, N] = [2, 3, 5, 7, 6];
  const MLP_TOL = { atol: 1e-4, rtol: 1e-3 };
  const values = { x: randn(B * T * K, 31), w1: randn(H * K, 32), b1: randn(H, 33), w2: randn(N * H, 34), b2: randn(N, 35), r: randn(B * T * N, 36) };
  const dout = randn(B * T * N, 37);
  const shapes = { x: [B, T, K], w1: [H, K], b1: [H], w2: [N, H], b2: [N], r: [B, T, N] };
  type Name = keyof typeof values;
  const NAMES = Object.keys(values) as Name[];

  // y = gelu(x·w1ᵀ + b1)·w2ᵀ + b2 + r, in float64; loss = sum(y * dout).
  function cpuLoss(v: Record<Name, ArrayLike<number>>): number {
    let loss = 0;
    for (let row = 0; row < B * T; row++) {
      const hidden = Array.from({ length: H }, (_, h) => {
        let z = v.b1[h];
        for (let k = 0; k < K; k++) z += v.x[row * K + k] * v.w1[h * K + k];
        return geluRef(z);
      });
      for (let n = 0; n < N; n++) {
        let y = v.b2[n] + v.r[row * N + n];
        for (let h = 0; h < H; h++) y += hidden[h] * v.w2[n * H + h];
        loss += y * dout[row * N + n];
      }
    }
    return loss;
  }

  // y and the gradients of the inputs named in `trained`, by ops.mlp (fused) or two ops.linear (composed).
  async function runMlp(fused: boolean, trained: Name[]) {
    return tidyAsync(async () => {
      const t = Object.fromEntries(NAMES.map((n) => [n, Tensor.fromArray(values[n], shapes[n]).requireGrad(trained.includes(n))])) as Record<Name, Tensor>;
      const y = fused
        ? ops.mlp(t.x, { w1: t.w1, b1: t.b1, w2: t.w2, b2: t.b2 }, t.r)
        : ops.linear(ops.linear(t.x, t.w1, t.b1, { gelu: true }), t.w2, t.b2, { residual: t.r });
      backward(y, Tensor.fromArray(dout, [B, T, N]));
      const grads: Partial<Record<Name, Float32Array>> = {};
      for (const n of trained) {
        grads[n] = await t[n].grad!.data();
        t[n].grad!.dispose();
      }
      return { y: await y.data(), grads };
    });
  }

  it("matches float64 finite differences for every input", async () => {
    const got = await runMlp(true, NAMES);
    for (const n of NAMES) {
      const f = (x: Float64Array) => cpuLoss({ ...values, [n]: x });
      expectClose(`d${n}`, got.grads[n]!, numericGrad(f, values[n]), MLP_TOL);
    }
  });

  it("matches the two linear ops it replaces, with some inputs frozen", async () => {
    for (const trained of [["x", "r"], ["w1", "w2"], ["b1"], ["w2", "b2"]] as Name[][]) {
      const [fused, composed] = [await runMlp(true, trained), await runMlp(false, trained)];
      expectClose("y", fused.y, composed.y, MLP_TOL);
      for (const n of trained) expectClose(`d${n} (${trained.join(", ")} trained)`, fused.grads[n]!, composed.grads[n]!, MLP_TOL);
    }
  });

  it("names the weights' shapes when they do not fit", () => {
    const t = (shape: number[]) => Tensor.empty(shape);
    expect(() => ops.mlp(t([2, 5]), { w1: t([7, 4]), w2: t([6, 7]) })).toThrow("mlp: expected w1 (H, 5) and w2 (N, H) for input (2, 5), got (7, 4) and (6, 7)");
  });
});

// ops.linearThenNorm and ops.mlpThenNorm: the product and the layernorm of its output, the norm in the product's
// epilogue where the kernel can, against the ops they replace (linear or mlp, then layernorm), forward and every
// gradient, with both outputs in the loss (a pre-norm block uses y as the next residual and the norm's output as
// the next input). N = 32: on llvmpipe the default version holds whole rows, so the fused epilogue runs there
// (checked by the kernels dispatched). Tolerance as the mlp's.
describe("linearThenNorm and mlpThenNorm", () => {
  const [B, T, K, H, N] = [2, 9, 12, 20, 32];
  const NORM_TOL = { atol: 1e-4, rtol: 1e-3 };
  const values = {
    x: randn(B * T * K, 41),
    w: randn(N * K, 42),
    b: randn(N, 43),
    w1: randn(H * K, 44),
    b1: randn(H, 45),
    w2: randn(N * H, 46),
    r: randn(B * T * N, 47),
    gamma: randn(N, 48),
    beta: randn(N, 49),
  };
  const shapes = { x: [B, T, K], w: [N, K], b: [N], w1: [H, K], b1: [H], w2: [N, H], r: [B, T, N], gamma: [N], beta: [N] };
  type Name = keyof typeof values;
  const NAMES = Object.keys(values) as Name[];
  const [dy, dn] = [randn(B * T * N, 50), randn(B * T * N, 51)];

  async function run(op: "linear" | "mlp", fused: boolean) {
    const kernels: string[] = [];
    return tidyAsync(async () => {
      const t = Object.fromEntries(NAMES.map((n) => [n, Tensor.fromArray(values[n], shapes[n]).requireGrad()])) as Record<Name, Tensor>;
      const norm = { gamma: t.gamma, beta: t.beta, eps: 1e-6 };
      const forward = (): [Tensor, Tensor] => {
        const weights = { w1: t.w1, b1: t.b1, w2: t.w2, b2: t.b };
        if (fused) return op === "linear" ? ops.linearThenNorm(t.x, t.w, t.b, { residual: t.r }, norm) : ops.mlpThenNorm(t.x, weights, t.r, norm);
        const y = op === "linear" ? ops.linear(t.x, t.w, t.b, { residual: t.r }) : ops.mlp(t.x, weights, t.r);
        return [y, ops.layernorm(y, t.gamma, t.beta, 1e-6)];
      };
      const { result: outputs, kernels: dispatched } = recordKernels(forward);
      kernels.push(...dispatched.map((k) => k.name));
      const [y, normed] = outputs;
      const weighted = (a: Tensor, w: Float32Array) => ops.sumAll(ops.mul(a, Tensor.fromArray(w, [B, T, N])));
      const loss = ops.add(weighted(y, dy), weighted(normed, dn));
      backward(loss);
      const used: Name[] = op === "linear" ? ["x", "w", "b", "r", "gamma", "beta"] : ["x", "w1", "b1", "w2", "b", "r", "gamma", "beta"];
      const grads: Partial<Record<Name, Float32Array>> = {};
      for (const n of used) {
        grads[n] = await t[n].grad!.data();
        t[n].grad!.dispose();
      }
      return { y: await y.data(), normed: await normed.data(), grads, kernels };
    });
  }

  for (const op of ["linear", "mlp"] as const) {
    it(`${op}ThenNorm matches ${op}, then layernorm`, async () => {
      const [fused, composed] = [await run(op, true), await run(op, false)];
      expectClose("y", fused.y, composed.y, NORM_TOL);
      expectClose("normed", fused.normed, composed.normed, NORM_TOL);
      for (const [n, g] of Object.entries(composed.grads)) expectClose(`d${n}`, fused.grads[n as Name]!, g, NORM_TOL);
      const { gpu } = runtime();
      if (gpu.isCpu && gpu.features.has("subgroups") && gpu.subgroupMinSize === 8 && gpu.subgroupMaxSize === 8) {
        expect(fused.kernels).not.toContain("layernorm");
        expect(composed.kernels).toContain("layernorm");
      }
    });
  }
});

// ops.patchEmbed: the patch embedding's product reading the patches from the images in place, against the
// composition it replaces (ops.im2col, then ops.linear): forward, the weight's and bias's gradients, and with
// images that need a gradient (which take the composition). Tolerance as the mlp's.
describe("patchEmbed", () => {
  const [B, ch, Hh, W, P, N] = [2, 3, 8, 12, 4, 10];
  const TOL_P = { atol: 1e-4, rtol: 1e-3 };
  const img = randn(B * ch * Hh * W, 61);
  const wv = randn(N * ch * P * P, 62);
  const bv = randn(N, 63);
  const G = (Hh / P) * (W / P);
  const dout = randn(B * G * N, 64);

  async function run(inPlace: boolean, imagesGrad: boolean) {
    return tidyAsync(async () => {
      const images = Tensor.fromArray(img, [B, ch, Hh, W]).requireGrad(imagesGrad);
      const w = Tensor.fromArray(wv, [N, ch * P * P]).requireGrad();
      const b = Tensor.fromArray(bv, [N]).requireGrad();
      const y = inPlace ? ops.patchEmbed(images, w, b, P) : ops.linear(ops.im2col(images, P), w, b);
      expect(y.shape).toEqual([B, G, N]);
      backward(y, Tensor.fromArray(dout, [B, G, N]));
      const out = { y: await y.data(), dw: await w.grad!.data(), db: await b.grad!.data(), dimages: imagesGrad ? await images.grad!.data() : undefined };
      for (const t of [w, b, ...(imagesGrad ? [images] : [])]) t.grad!.dispose();
      return out;
    });
  }

  it("matches im2col, then linear, with and without the images' gradient", async () => {
    for (const imagesGrad of [false, true]) {
      const [got, want] = [await run(true, imagesGrad), await run(false, imagesGrad)];
      expectClose("y", got.y, want.y, TOL_P);
      expectClose("dw", got.dw, want.dw, TOL_P);
      expectClose("db", got.db, want.db, TOL_P);
      if (imagesGrad) expectClose("dimages", got.dimages!, want.dimages!, TOL_P);
    }
  });

  it("names the shapes that do not fit", () => {
    expect(() => ops.patchEmbed(Tensor.empty([1, 3, 8, 10]), Tensor.empty([4, 48]), undefined, 4)).toThrow("patchEmbed: expected images (B, ch, H, W) with H and W multiples of 4");
  });
});

// The elementwise, reduction, product, loss and layout ops, each through the tape: forward against a float64
// reference written from the math, every input's gradient against float64 central differences of sum(ref(inputs) *
// w). Awkward shapes: a second operand broadcast along a middle and a leading axis (its gradient summed back by
// sumTo), extents 1, 3, 5 and 7, K = 1, a batched and a shared b. Tolerance atol 1e-4 + rtol 1e-3, as tape.test.ts's
// (f32 on the GPU against differences with eps 1e-4 of O(1) values).
describe("op gradients against finite differences", () => {
  const FD_TOL = { atol: 1e-4, rtol: 1e-3 };
  interface Input {
    data: Float32Array;
    shape: number[];
  }
  const input = (shape: number[], seed: number, lo = -2, hi = 2): Input => ({ data: randu(shape.reduce((a, b) => a * b, 1), seed, lo, hi), shape });
  type Ref = (xs: ArrayLike<number>[]) => ArrayLike<number>;

  async function check(name: string, inputs: Input[], op: (ts: Tensor[]) => Tensor, ref: Ref): Promise<void> {
    const want = ref(inputs.map((x) => x.data));
    const w = randn(want.length, 99);
    const got = await tidyAsync(async () => {
      const ts = inputs.map((x) => Tensor.fromArray(x.data, x.shape).requireGrad());
      const y = op(ts);
      backward(y, Tensor.fromArray(w, y.shape));
      const grads: Float32Array[] = [];
      for (const t of ts) {
        grads.push(await t.grad!.data());
        t.grad!.dispose(); // a leaf's gradient is kept across scopes
      }
      return { y: await y.data(), grads };
    });
    expectClose(`${name}: y`, got.y, want, FD_TOL);
    inputs.forEach((x, k) => {
      const fd = numericGrad((v) => dot(ref(inputs.map((o, j) => (j === k ? v : o.data))), w), x.data);
      expectClose(`${name}: d(input ${k})`, got.grads[k], fd, FD_TOL);
    });
  }

  const map = (x: ArrayLike<number>, f: (v: number) => number) => Array.from(x, f);
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
  const UNARY: [string, (t: Tensor) => Tensor, (v: number) => number, lo?: number][] = [
    ["neg", ops.neg, (v) => -v],
    ["exp", ops.exp, Math.exp],
    ["log", ops.log, Math.log, 0.5],
    ["sqrt", ops.sqrt, Math.sqrt, 0.5],
    ["square", ops.square, (v) => v * v],
    ["relu", ops.relu, (v) => Math.max(v, 0)],
    ["gelu", ops.gelu, geluRef],
    ["tanh", ops.tanh, Math.tanh],
    ["sigmoid", ops.sigmoid, sigmoid],
    ["scale", (t) => ops.scale(t, -1.5), (v) => -1.5 * v],
    ["addScalar", (t) => ops.addScalar(t, 0.25), (v) => v + 0.25],
  ];
  for (const [name, op, f, lo] of UNARY) {
    it(`${name} (3, 1, 7)`, async () => {
      // relu: no value within the differences' reach of its kink at 0.
      const x = input([3, 1, 7], 11, lo ?? -2);
      if (name === "relu") x.data = x.data.map((v) => (Math.abs(v) < 0.05 ? 0.5 : v));
      await check(name, [x], ([t]) => op(t), ([v]) => map(v, f));
    });
  }

  const BINARY: [string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number][] = [
    ["add", ops.add, (a, b) => a + b],
    ["sub", ops.sub, (a, b) => a - b],
    ["mul", ops.mul, (a, b) => a * b],
    ["div", ops.div, (a, b) => a / b],
  ];
  const PAIRS: [number[], number[]][] = [
    [[2, 3, 5], [3, 1]], // b along a middle and the leading axis
    [[3, 1], [2, 1, 5]], // both broadcast
  ];
  for (const [name, op, f] of BINARY) {
    for (const [sa, sb] of PAIRS) {
      it(`${name} (${sa}) x (${sb})`, async () => {
        const out = broadcastShapes(name, sa, sb);
        const size = out.reduce((x, y) => x * y, 1);
        const b = name === "div" ? input(sb, 22, 0.5, 2) : input(sb, 22);
        const ref: Ref = ([av, bv]) => Array.from({ length: size }, (_, i) => f(av[broadcastIndex(i, out, sa)], bv[broadcastIndex(i, out, sb)]));
        await check(name, [input(sa, 21), b], ([x, y]) => op(x, y), ref);
      });
    }
  }

  // One tensor as both operands: the node lists it twice, and its gradient is the sum of both.
  it("mul and sub of a tensor with itself (3, 5)", async () => {
    await check("x * x", [input([3, 5], 25)], ([t]) => ops.mul(t, t), ([x]) => map(x, (v) => v * v));
    await check("x - x", [input([3, 5], 26)], ([t]) => ops.sub(t, t), ([x]) => map(x, () => 0));
  });

  // sum, mean and max over an axis of (2, 3, 5) (random values: no ties), as (outer, n, inner).
  const reduceRef = (x: ArrayLike<number>, shape: number[], axis: number, f: (v: number[]) => number) => {
    const [outer, n, inner] = [shape.slice(0, axis).reduce((a, b) => a * b, 1), shape[axis], shape.slice(axis + 1).reduce((a, b) => a * b, 1)];
    return Array.from({ length: outer * inner }, (_, r) => f(Array.from({ length: n }, (_, j) => x[(Math.floor(r / inner) * n + j) * inner + (r % inner)])));
  };
  const total = (v: number[]) => v.reduce((a, b) => a + b, 0);
  const REDUCTIONS: [string, (t: Tensor, axis: number) => Tensor, (v: number[]) => number, number][] = [
    ["sum keepdim", (t, axis) => ops.sum(t, axis, true), total, 1],
    ["mean", ops.mean, (v) => total(v) / v.length, 0],
    ["max", ops.max, (v) => Math.max(...v), 2],
  ];
  for (const [name, op, f, axis] of REDUCTIONS) {
    it(`${name} over axis ${axis} of (2, 3, 5)`, async () => {
      const shape = [2, 3, 5];
      await check(name, [input(shape, 31)], ([t]) => op(t, axis), ([x]) => reduceRef(x, shape, axis, f));
    });
  }

  // a (..., M, K) · b: shared (K, N) over a batch of 2 x 3, batched, K = 1.
  const PRODUCTS: [number[], number[], { batch: number; M: number; K: number; N: number; sharedB: boolean }][] = [
    [[2, 3, 5, 4], [4, 6], { batch: 6, M: 5, K: 4, N: 6, sharedB: true }],
    [[2, 5, 3], [2, 3, 7], { batch: 2, M: 5, K: 3, N: 7, sharedB: false }],
    [[7, 1], [1, 3], { batch: 1, M: 7, K: 1, N: 3, sharedB: true }],
  ];
  for (const [sa, sb, s] of PRODUCTS) {
    it(`matmul (${sa}) · (${sb})`, async () => {
      await check("matmul", [input(sa, 41), input(sb, 42)], ([a, b]) => ops.matmul(a, b), ([a, b]) => matmulRef(a, b, s));
    });
  }

  it("linear with GELU and a residual, (2, 3, 5) by (4, 5)", async () => {
    const [M, K, N] = [6, 5, 4];
    const ref: Ref = ([x, w, b, r]) => Array.from(matmulRef(x, w, { batch: 1, M, K, N, transB: true }), (v, i) => geluRef(v + b[i % N]) + r[i]);
    const inputs = [input([2, 3, K], 51), input([N, K], 52), input([N], 53), input([2, 3, N], 54)];
    await check("linear", inputs, ([x, w, b, r]) => ops.linear(x, w, b, { gelu: true, residual: r }), ref);
  });

  it("softmax (3, 7)", async () => {
    await check("softmax", [input([3, 7], 61)], ([t]) => ops.softmax(t), ([x]) => softmaxRef(x, 3, 7));
  });

  it("crossEntropy with Int32Array labels and smoothing 0.1, (5, 3)", async () => {
    const labels = Int32Array.from([2, 0, 1, 2, 2]);
    const ref: Ref = ([x]) => [crossEntropyRef(x, labels, 5, 3, 0.1).loss];
    await check("crossEntropy", [input([5, 3], 71)], ([t]) => ops.crossEntropy(t, labels, { labelSmoothing: 0.1 }), ref);
  });

  it("permute (2, 3, 4) by [2, 0, 1], and reshape", async () => {
    const ref: Ref = ([x]) => permuteRef(x, [2, 3, 4], [2, 0, 1]).y;
    await check("permute", [input([2, 3, 4], 81)], ([t]) => ops.reshape(ops.permute(ops.reshape(ops.reshape(t, [6, 4]), [2, 3, 4]), [2, 0, 1]), [4, 6]), ref);
  });

  it("slice (3, 7, 2) along axis 1 [2, 6); concat of (2, 3), (2, 1), (2, 4) along axis 1", async () => {
    await check("slice", [input([3, 7, 2], 91)], ([t]) => ops.slice(t, 1, 2, 6), ([x]) => sliceRef(x, [3, 7, 2], 1, 2, 6));
    const shapes = [[2, 3], [2, 1], [2, 4]];
    const ref: Ref = (xs) => concatRef(xs.map((data, i) => ({ data, shape: shapes[i] })), 1);
    await check("concat", shapes.map((s, i) => input(s, 92 + i)), (ts) => ops.concat(ts, 1), ref);
  });

  // Patches of P x P from images (B, ch, H, W), each flattened as (ch, P, P), in row-major patch order.
  it("im2col of (2, 2, 4, 6) in patches of 2", async () => {
    const [B, ch, H, W, P] = [2, 2, 4, 6, 2];
    const ref: Ref = ([x]) => {
      const y: number[] = [];
      for (let b = 0; b < B; b++)
        for (let py = 0; py < H / P; py++)
          for (let px = 0; px < W / P; px++)
            for (let c = 0; c < ch; c++) for (let ky = 0; ky < P; ky++) for (let kx = 0; kx < P; kx++) y.push(x[((b * ch + c) * H + py * P + ky) * W + px * P + kx]);
      return y;
    };
    await check("im2col", [input([B, ch, H, W], 105)], ([t]) => ops.im2col(t, P), ref);
  });

  it("gatherRows of (5, 3) by an index with repeats and a row never taken", async () => {
    const index = [4, 0, 4, 2, 1, 4];
    const op = ([t]: Tensor[]) => ops.gatherRows(t, Tensor.fromArray(index, [index.length], "i32"));
    await check("gatherRows", [input([5, 3], 101)], op, ([x]) => gatherRowsRef(x, 3, index));
  });

  // Inverted dropout: each element 0 or x / (1 - p), and the gradient the same mask times w.
  it("dropout p = 0.3: y is x masked and scaled by 1 / (1 - p), its gradient the same mask", async () => {
    const [n, p] = [4099, 0.3];
    const x = randu(n, 111, 0.5, 2);
    const w = randn(n, 112);
    const { y, dx } = await tidyAsync(async () => {
      const t = Tensor.fromArray(x, [n]).requireGrad();
      const out = ops.dropout(t, p, new Rng(7));
      backward(out, Tensor.fromArray(w, [n]));
      const result = { y: await out.data(), dx: await t.grad!.data() };
      t.grad!.dispose();
      return result;
    });
    const mask = Array.from(y, (v, i) => v / x[i]);
    for (const m of mask) expect([0, 1 / (1 - p)].some((k) => Math.abs(m - k) < 1e-6)).toBe(true);
    const dropped = mask.filter((m) => m === 0).length / n;
    expect(dropped).toBeGreaterThan(0.25);
    expect(dropped).toBeLessThan(0.35);
    expectClose("dx", dx, Array.from(w, (v, i) => v * mask[i]), { atol: 1e-6, rtol: 1e-5 });
  });
});
