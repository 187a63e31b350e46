// Optimiser updates against test/ref/optim.ts (PyTorch's update equations in float64) over 5 steps, comparing
// the parameter and every state tensor after each step: atol 1e-6 + rtol 1e-5 (float32 arithmetic on the GPU).
// Sizes cover the scalar path (1, 7, 1031) and the vec4 path (1028). sgdUpdates / adamwUpdates update several
// tensors of mixed sizes (vec4 and scalar groups, more tensors than one dispatch binds, an empty one), each with
// its own weight decay, against the same references tensor by tensor, and in the number of dispatches the binding
// limit allows.
import { describe, expect, it, vi } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { runtime } from "../../engine/runtime.js";
import { adamwUpdate, adamwUpdates, clipCoefficient, clipCoefficients, lossScaleStep, scaleEach, sgdUpdate, sgdUpdates, sumOfSquares, sumsOfSquares } from "../../kernels/optim.js";
import { binaryForward } from "../../kernels/elementwise.js";
import { expectClose, randn, recordKernels, useEngine } from "../helpers.js";
import { adamwStepRef, clipCoefficientRef, sgdStepRef, sumOfSquaresRef, type AdamwOptions, type SgdOptions } from "../ref/optim.js";

useEngine();

const TOL = { atol: 1e-6, rtol: 1e-5 };
const SIZES = [1, 7, 1028, 1031];
const STEPS = 5;
const SCALE = 0.37;

describe("sgdUpdate", () => {
  const configs: [string, SgdOptions][] = [
    ["plain", { lr: 0.1, momentum: 0, weightDecay: 0, dampening: 0, nesterov: false }],
    ["momentum + weight decay", { lr: 0.05, momentum: 0.9, weightDecay: 0.1, dampening: 0, nesterov: false }],
    ["nesterov + weight decay", { lr: 0.05, momentum: 0.9, weightDecay: 0.05, dampening: 0, nesterov: true }],
    ["momentum + dampening (first step undamped)", { lr: 0.1, momentum: 0.8, weightDecay: 0, dampening: 0.3, nesterov: false }],
  ];
  for (const [name, o] of configs) {
    for (const n of SIZES) {
      for (const scaled of [false, true]) {
        it(`${name}, n=${n}${scaled ? ", gradScale" : ""}`, async () => {
          const p0 = randn(n, n);
          const p = Tensor.fromArray(p0, [n]);
          const buf = o.momentum !== 0 ? Tensor.fromArray(new Float32Array(n), [n]) : undefined;
          const gradScale = scaled ? Tensor.fromArray([SCALE], [1]) : undefined;
          const pRef = Float64Array.from(p0);
          let bufRef: Float64Array | null = null;
          for (let step = 1; step <= STEPS; step++) {
            const g = randn(n, 100 * n + step);
            sgdUpdate(p, Tensor.fromArray(g, [n]), buf, { ...o, first: step === 1, gradScale });
            bufRef = sgdStepRef(pRef, g, bufRef, o, scaled ? SCALE : 1);
            expectClose(`param after step ${step}`, await p.data(), pRef, TOL);
            if (buf) expectClose(`momentum buffer after step ${step}`, await buf.data(), bufRef!, TOL);
          }
        });
      }
    }
  }
  it("rejects missing or mismatched state and invalid options", () => {
    const p = Tensor.fromArray([1, 2, 3], [3]);
    const g = Tensor.fromArray([1, 1, 1], [3]);
    const o = { lr: 0.1, momentum: 0.9, weightDecay: 0 };
    expect(() => sgdUpdate(p, g, undefined, o)).toThrow("sgd: expected a momentum buffer for momentum 0.9, got none");
    expect(() => sgdUpdate(p, Tensor.fromArray([1, 1], [2]), Tensor.fromArray([0, 0, 0], [3]), o)).toThrow(
      "sgd: expected grad f32 of 3 elements like Tensor(",
    );
    expect(() => sgdUpdate(p, p, Tensor.fromArray([0, 0, 0], [3]), o)).toThrow("sgd: expected grad Tensor(");
    expect(() => sgdUpdate(p, g, undefined, { ...o, momentum: 0, nesterov: true })).toThrow(
      "sgd: expected momentum > 0 and dampening 0 for nesterov",
    );
    expect(() => sgdUpdate(p, g, Tensor.fromArray([0, 0, 0], [3]), { ...o, dampening: 0.1 })).toThrow(
      "sgd: expected `first` with dampening 0.1",
    );
    expect(() => sgdUpdate(p, g, undefined, { ...o, momentum: 0, gradScale: Tensor.fromArray([1, 2], [2]) })).toThrow(
      "sgd: expected gradScale f32 of 1 element",
    );
  });
});

describe("adamwUpdate", () => {
  const configs: [string, AdamwOptions][] = [
    ["no weight decay", { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }],
    ["weight decay, other betas and eps", { lr: 3e-2, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.05 }],
  ];
  for (const [name, o] of configs) {
    for (const n of SIZES) {
      for (const scaled of [false, true]) {
        it(`${name}, n=${n}${scaled ? ", gradScale" : ""}`, async () => {
          const p0 = randn(n, n);
          const [p, m, v] = [p0, new Float32Array(n), new Float32Array(n)].map((a) => Tensor.fromArray(a, [n]));
          const gradScale = scaled ? Tensor.fromArray([SCALE], [1]) : undefined;
          const [pRef, mRef, vRef] = [Float64Array.from(p0), new Float64Array(n), new Float64Array(n)];
          for (let step = 1; step <= STEPS; step++) {
            const g = randn(n, 100 * n + step, 0.5);
            adamwUpdate(p, Tensor.fromArray(g, [n]), m, v, { ...o, step, gradScale });
            adamwStepRef(pRef, g, mRef, vRef, step, o, scaled ? SCALE : 1);
            expectClose(`param after step ${step}`, await p.data(), pRef, TOL);
            expectClose(`exp_avg after step ${step}`, await m.data(), mRef, TOL);
            expectClose(`exp_avg_sq after step ${step}`, await v.data(), vRef, TOL);
          }
        });
      }
    }
  }
  it("rejects a step below 1 and mismatched state", () => {
    const t = () => Tensor.fromArray([0, 0], [2]);
    const o = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
    expect(() => adamwUpdate(t(), t(), t(), t(), { ...o, step: 0 })).toThrow("adamw: expected an integer step >= 1, got 0");
    expect(() => adamwUpdate(t(), t(), Tensor.fromArray([0], [1]), t(), { ...o, step: 1 })).toThrow("adamw: expected m f32 of 2 elements");
  });
});

// The dispatches the binding limit allows for tensors of `sizes`: each group in chunks of as many tensors as fit the
// storage buffers, the vec4 group's last, partial chunk joining the scalars' last where it has room.
function dispatchesFor(sizes: number[], buffersPerTensor: number, scaled: boolean): number {
  const limit = runtime().gpu.limits.maxStorageBuffersPerShaderStage - (scaled ? 1 : 0);
  const per = Math.min(8, Math.floor(limit / buffersPerTensor));
  const nonEmpty = sizes.filter((n) => n > 0);
  let vec4 = nonEmpty.filter((n) => n % 4 === 0).length;
  let scalars = nonEmpty.length - vec4;
  const rest = vec4 % per;
  if (rest > 0 && scalars % per !== 0 && rest <= per - (scalars % per)) [vec4, scalars] = [vec4 - rest, scalars + rest];
  return Math.ceil(vec4 / per) + Math.ceil(scalars / per);
}

describe("several tensors per dispatch", () => {
  // 13 tensors: 7 with sizes a multiple of 4 (vec4 group), 6 without (scalar group), one of them empty.
  const SIZES_MANY = [1, 8, 7, 1028, 4, 1031, 0, 12, 5, 2048, 3, 16, 36];
  const decay = (k: number) => (k % 3 === 0 ? 0 : 0.01 * k);
  // AdamW here: 4 dispatches instead of 5 with gradScale, 3 instead of 4 without.
  const expectedDispatches = (buffersPerTensor: number, scaled: boolean) => dispatchesFor(SIZES_MANY, buffersPerTensor, scaled);

  for (const [nesterov, scaled] of [[false, false], [true, true]]) {
    it(`sgdUpdates with momentum${nesterov ? " (nesterov)" : ""}${scaled ? ", gradScale" : ""}`, async () => {
      const o = { lr: 0.05, momentum: 0.9, dampening: 0, nesterov };
      const p0 = SIZES_MANY.map((n, k) => randn(n, 7 * k + 1));
      const params = p0.map((a) => Tensor.fromArray(a, [a.length]));
      const bufs = SIZES_MANY.map((n) => Tensor.fromArray(new Float32Array(n), [n]));
      const gradScale = scaled ? Tensor.fromArray([SCALE], [1]) : undefined;
      const pRef = p0.map((a) => Float64Array.from(a));
      const bufRef: (Float64Array | null)[] = SIZES_MANY.map(() => null);
      for (let step = 1; step <= 2; step++) {
        const g = SIZES_MANY.map((n, k) => randn(n, 1000 * step + k));
        const before = runtime().batch.stats.dispatches;
        sgdUpdates(
          params.map((param, k) => ({ param, grad: Tensor.fromArray(g[k], [g[k].length]), momentumBuf: bufs[k], weightDecay: decay(k) })),
          { ...o, first: step === 1, gradScale },
        );
        expect(runtime().batch.stats.dispatches - before).toBe(expectedDispatches(3, scaled));
        for (let k = 0; k < SIZES_MANY.length; k++) {
          bufRef[k] = sgdStepRef(pRef[k], g[k], bufRef[k], { ...o, weightDecay: decay(k) }, scaled ? SCALE : 1);
          expectClose(`param ${k} after step ${step}`, await params[k].data(), pRef[k], TOL);
          expectClose(`momentum buffer ${k} after step ${step}`, await bufs[k].data(), bufRef[k]!, TOL);
        }
      }
    });
  }

  // With rates: tensor k at lr * RATES[k % 3], as a layer-wise decay gives them (lrScale), each rate's tensors in
  // dispatches of their own, each found again at the next step.
  const RATES = [1, 0.5, 0.125];
  for (const rates of [false, true]) {
    it(`steps over the same tensors keep their dispatches' layout and pack only the uniforms again${rates ? ", with a rate per tensor" : ""}`, async () => {
      const rate = (k: number) => (rates ? RATES[k % 3] : 1);
      const p0 = SIZES_MANY.map((n, k) => randn(n, 11 * k + 3));
      const params = p0.map((a) => Tensor.fromArray(a, [a.length]));
      const bufs = SIZES_MANY.map((n) => Tensor.fromArray(new Float32Array(n), [n]));
      const grads = SIZES_MANY.map((n) => Tensor.fromArray(new Float32Array(n), [n]));
      const pRef = p0.map((a) => Float64Array.from(a));
      const bufRef: (Float64Array | null)[] = SIZES_MANY.map(() => null);
      const lookups = vi.spyOn(runtime().pipelines, "get");
      try {
        for (let step = 1; step <= 3; step++) {
          // Another learning rate and weight decay every step: both are in the uniforms packed again.
          const o = { lr: 0.05 * step, momentum: 0.9, dampening: 0, nesterov: false };
          const wd = (k: number) => decay(k) * step;
          const g = SIZES_MANY.map((n, k) => randn(n, 100 * step + k));
          grads.forEach((t, k) => t.write(g[k]));
          const [before, dispatched] = [lookups.mock.calls.length, runtime().batch.stats.dispatches];
          sgdUpdates(params.map((param, k) => ({ param, grad: grads[k], momentumBuf: bufs[k], weightDecay: wd(k), lrScale: rates ? rate(k) : undefined })), { ...o, first: step === 1 });
          if (step > 1) expect(lookups.mock.calls.length).toBe(before); // no kernel named again
          const groups = rates ? RATES.map((_, j) => SIZES_MANY.filter((_, k) => k % 3 === j)) : [SIZES_MANY];
          expect(runtime().batch.stats.dispatches - dispatched).toBe(groups.reduce((n, sizes) => n + dispatchesFor(sizes, 3, false), 0));
          for (let k = 0; k < SIZES_MANY.length; k++) {
            bufRef[k] = sgdStepRef(pRef[k], g[k], bufRef[k], { ...o, lr: o.lr * rate(k), weightDecay: wd(k) }, 1);
            expectClose(`param ${k} after step ${step}`, await params[k].data(), pRef[k], TOL);
          }
        }
        // Other gradients' buffers: laid out afresh.
        const other = SIZES_MANY.map((n) => Tensor.fromArray(new Float32Array(n), [n]));
        const before = lookups.mock.calls.length;
        sgdUpdates(params.map((param, k) => ({ param, grad: other[k], momentumBuf: bufs[k], weightDecay: 0 })), { lr: 0.1, momentum: 0.9, first: false });
        expect(lookups.mock.calls.length).toBeGreaterThan(before);
      } finally {
        lookups.mockRestore();
      }
    });
  }

  it("a linear probe's head, a weight of 640 beside a bias of 10, in one dispatch", async () => {
    const [w0, b0, gw, gb] = [randn(640, 91), randn(10, 92), randn(640, 93), randn(10, 94)];
    const [w, b] = [Tensor.fromArray(w0, [10, 64]), Tensor.fromArray(b0, [10])];
    const o = { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false };
    const [wBuf, bBuf] = [Tensor.fromArray(new Float32Array(640), [640]), Tensor.fromArray(new Float32Array(10), [10])];
    const before = runtime().batch.stats.dispatches;
    sgdUpdates(
      [
        { param: w, grad: Tensor.fromArray(gw, [10, 64]), momentumBuf: wBuf, weightDecay: 0 },
        { param: b, grad: Tensor.fromArray(gb, [10]), momentumBuf: bBuf, weightDecay: 0 },
      ],
      { ...o, first: true },
    );
    expect(runtime().batch.stats.dispatches - before).toBe(1);
    const [wRef, bRef] = [Float64Array.from(w0), Float64Array.from(b0)];
    sgdStepRef(wRef, gw, null, { ...o, weightDecay: 0 }, 1);
    sgdStepRef(bRef, gb, null, { ...o, weightDecay: 0 }, 1);
    expectClose("weight", await w.data(), wRef, TOL);
    expectClose("bias", await b.data(), bRef, TOL);
  });

  it("sgdUpdates without momentum", async () => {
    const o = { lr: 0.1, momentum: 0, dampening: 0, nesterov: false };
    const p0 = SIZES_MANY.map((n, k) => randn(n, 3 * k + 2));
    const params = p0.map((a) => Tensor.fromArray(a, [a.length]));
    const g = SIZES_MANY.map((n, k) => randn(n, 50 + k));
    const before = runtime().batch.stats.dispatches;
    sgdUpdates(params.map((param, k) => ({ param, grad: Tensor.fromArray(g[k], [g[k].length]), weightDecay: decay(k) })), o);
    expect(runtime().batch.stats.dispatches - before).toBe(expectedDispatches(2, false));
    for (let k = 0; k < SIZES_MANY.length; k++) {
      const ref = Float64Array.from(p0[k]);
      sgdStepRef(ref, g[k], null, { ...o, weightDecay: decay(k) });
      expectClose(`param ${k}`, await params[k].data(), ref, TOL);
    }
  });

  for (const scaled of [false, true]) {
    it(`adamwUpdates${scaled ? ", gradScale" : ""}`, async () => {
      const o = { lr: 3e-2, beta1: 0.8, beta2: 0.95, eps: 1e-6 };
      const p0 = SIZES_MANY.map((n, k) => randn(n, 11 * k + 3));
      const params = p0.map((a) => Tensor.fromArray(a, [a.length]));
      const ms = SIZES_MANY.map((n) => Tensor.fromArray(new Float32Array(n), [n]));
      const vs = SIZES_MANY.map((n) => Tensor.fromArray(new Float32Array(n), [n]));
      const gradScale = scaled ? Tensor.fromArray([SCALE], [1]) : undefined;
      const refs = SIZES_MANY.map((n, k) => ({ p: Float64Array.from(p0[k]), m: new Float64Array(n), v: new Float64Array(n) }));
      for (let step = 1; step <= 2; step++) {
        const g = SIZES_MANY.map((n, k) => randn(n, 2000 * step + k, 0.5));
        const before = runtime().batch.stats.dispatches;
        adamwUpdates(
          params.map((param, k) => ({ param, grad: Tensor.fromArray(g[k], [g[k].length]), m: ms[k], v: vs[k], weightDecay: decay(k) })),
          { ...o, step, gradScale },
        );
        expect(runtime().batch.stats.dispatches - before).toBe(expectedDispatches(4, scaled));
        for (let k = 0; k < SIZES_MANY.length; k++) {
          adamwStepRef(refs[k].p, g[k], refs[k].m, refs[k].v, step, { ...o, weightDecay: decay(k) }, scaled ? SCALE : 1);
          expectClose(`param ${k} after step ${step}`, await params[k].data(), refs[k].p, TOL);
          expectClose(`exp_avg ${k} after step ${step}`, await ms[k].data(), refs[k].m, TOL);
          expectClose(`exp_avg_sq ${k} after step ${step}`, await vs[k].data(), refs[k].v, TOL);
        }
      }
    });
  }

  it("rejects a tensor bound twice in one update", () => {
    const p = Tensor.fromArray([1, 2, 3, 4], [4]);
    const g = () => Tensor.fromArray([1, 1, 1, 1], [4]);
    const o = { lr: 0.1, momentum: 0 };
    expect(() => sgdUpdates([{ param: p, grad: g(), weightDecay: 0 }, { param: p, grad: g(), weightDecay: 0 }], o)).toThrow(
      "sgd: expected param Tensor(",
    );
  });

  it("refuses an adapter with fewer storage buffers per stage than one tensor's and the shared one", () => {
    const { gpu } = runtime();
    const limits = gpu.limits;
    gpu.limits = Object.create(limits, { maxStorageBuffersPerShaderStage: { value: 3 } }) as GPUSupportedLimits;
    try {
      const t = () => Tensor.fromArray([1, 2, 3, 4], [4]);
      const o = { lr: 0.1, momentum: 0.9, gradScale: Tensor.fromArray([1], [1]) };
      expect(() => sgdUpdates([{ param: t(), grad: t(), momentumBuf: t(), weightDecay: 0 }], o)).toThrow(
        "sgd: expected maxStorageBuffersPerShaderStage >= 4 (3 per tensor and 1 shared), got 3",
      );
    } finally {
      gpu.limits = limits;
    }
  });
});

describe("a rate per tensor (lrScale)", () => {
  // SIZES_MANY's tensors at three rates, as a layer-wise decay gives them: tensor k at lr * SCALES[k % 3] (sgdUpdates:
  // with the dispatches' layout above).
  const SIZES_MANY = [1, 8, 7, 1028, 4, 1031, 0, 12, 5, 2048, 3, 16, 36];
  const SCALES = [1, 0.5, 0.125];
  const scaleOf = (k: number) => SCALES[k % 3];
  const decay = (k: number) => 0.01 * (k % 4);
  const dispatches = (buffersPerTensor: number, scaled: boolean) =>
    SCALES.reduce((n, _, j) => n + dispatchesFor(SIZES_MANY.filter((_, k) => k % 3 === j), buffersPerTensor, scaled), 0);

  it("adamwUpdates counted on the device: one count per step whatever the rates, each tensor's decay at its own rate", async () => {
    const o = { lr: 3e-2, beta1: 0.8, beta2: 0.95, eps: 1e-6 };
    const p0 = SIZES_MANY.map((n, k) => randn(n, 13 * k + 4));
    const params = p0.map((a) => Tensor.fromArray(a, [a.length]));
    const ms = SIZES_MANY.map((n) => Tensor.fromArray(new Float32Array(n), [n]));
    const vs = SIZES_MANY.map((n) => Tensor.fromArray(new Float32Array(n), [n]));
    const counter = Tensor.fromArray([0], [1]);
    const refs = SIZES_MANY.map((n, k) => ({ p: Float64Array.from(p0[k]), m: new Float64Array(n), v: new Float64Array(n) }));
    for (let step = 1; step <= 2; step++) {
      const g = SIZES_MANY.map((n, k) => randn(n, 4000 * step + k, 0.5));
      const before = runtime().batch.stats.dispatches;
      adamwUpdates(
        params.map((param, k) => ({ param, grad: Tensor.fromArray(g[k], [g[k].length]), m: ms[k], v: vs[k], weightDecay: decay(k), lrScale: scaleOf(k) })),
        { ...o, counter, gradScale: Tensor.fromArray([SCALE], [1]), skipZero: true },
      );
      expect(runtime().batch.stats.dispatches - before).toBe(1 + dispatches(4, true)); // the count, then the updates
      expect((await counter.data())[0], `count after step ${step}`).toBe(step);
      for (let k = 0; k < SIZES_MANY.length; k++) {
        adamwStepRef(refs[k].p, g[k], refs[k].m, refs[k].v, step, { ...o, lr: o.lr * scaleOf(k), weightDecay: decay(k) }, SCALE);
        expectClose(`param ${k} after step ${step}`, await params[k].data(), refs[k].p, TOL);
        expectClose(`exp_avg ${k} after step ${step}`, await ms[k].data(), refs[k].m, TOL);
      }
    }
  });

  it("refuses a scale that is not a finite number > 0, naming its tensor, before any dispatch", async () => {
    const t = (name: string) => Object.assign(Tensor.fromArray([1, 2, 3, 4], [4]), { name });
    for (const bad of [0, -0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const [a, b] = [t("blocks.0.norm1.weight"), t("patch_embed.proj.weight")];
      const before = runtime().batch.stats.dispatches;
      expect(() =>
        sgdUpdates(
          [
            { param: a, grad: t("ga"), weightDecay: 0, lrScale: 1 },
            { param: b, grad: t("gb"), weightDecay: 0, lrScale: bad },
          ],
          { lr: 0.1, momentum: 0 },
        ),
      ).toThrow(`sgd: expected Tensor(patch_embed.proj.weight`);
      const m = () => Tensor.fromArray(new Float32Array(4), [4]);
      expect(() => adamwUpdates([{ param: b, grad: t("gb"), m: m(), v: m(), weightDecay: 0, lrScale: bad }], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 })).toThrow(
        `'s lrScale to be a finite number > 0, got ${bad}`,
      );
      expect(runtime().batch.stats.dispatches, `dispatches after lrScale ${bad}`).toBe(before);
      expect(await a.data()).toEqual(new Float32Array([1, 2, 3, 4]));
    }
  });
});

describe("gradient-norm clipping", () => {
  it("sumOfSquares over several tensors, one large (several reduction levels)", async () => {
    const sizes = [1, 7, 300, 70001, 1_000_003, 0];
    const xs = sizes.map((n, k) => randn(n, k + 1));
    const s = sumOfSquares(xs.map((x, k) => Tensor.fromArray(x, [sizes[k]])));
    expect(s.shape).toEqual([1]);
    expectClose("sum of squares", await s.data(), [sumOfSquaresRef(xs)], TOL);
  });
  it("sumOfSquares of 20 tensors: several tensors per dispatch, then the levels", async () => {
    const sizes = Array.from({ length: 20 }, (_, k) => [3, 256, 257, 1000, 5][k % 5] * (k + 1));
    const xs = sizes.map((n, k) => randn(n, 40 + k));
    const tensors = xs.map((x, k) => Tensor.fromArray(x, [sizes[k]]));
    const { result: s, kernels } = recordKernels(() => sumOfSquares(tensors));
    const perDispatch = Math.min(8, runtime().gpu.limits.maxStorageBuffersPerShaderStage - 1);
    const partials = sizes.reduce((n, size) => n + Math.ceil(size / 256), 0);
    expect(kernels.length).toBe(Math.ceil(20 / perDispatch) + Math.ceil(Math.log(partials) / Math.log(256)));
    expectClose("sum of squares", await s.data(), [sumOfSquaresRef(xs)], TOL);
  });
  it("sumOfSquares of one element, and of nothing", async () => {
    expectClose("one", await sumOfSquares([Tensor.fromArray([-3], [1])]).data(), [9], TOL);
    expectClose("none", await sumOfSquares([]).data(), [0], TOL);
  });
  it("clipCoefficient below and above maxNorm", async () => {
    for (const [sumSq, maxNorm] of [[25, 1], [25, 10], [25, 5], [0, 1], [1e6, 0.5]]) {
      const c = clipCoefficient(Tensor.fromArray([sumSq], [1]), maxNorm);
      expectClose(`coefficient for norm^2 ${sumSq}, maxNorm ${maxNorm}`, await c.data(), [clipCoefficientRef(sumSq, maxNorm)], TOL);
    }
    expect(() => clipCoefficient(Tensor.fromArray([1, 2], [2]), 1)).toThrow("clipCoefficient: expected sumSq f32 of 1 element");
  });
  it("the clip coefficient feeds an update as gradScale without a read-back", async () => {
    const g = randn(1031, 5, 3);
    const p0 = randn(1031, 6);
    const p = Tensor.fromArray(p0, [1031]);
    const grad = Tensor.fromArray(g, [1031]);
    const coefficient = clipCoefficient(sumOfSquares([grad]), 1);
    const o: SgdOptions = { lr: 0.1, momentum: 0, weightDecay: 0.01, dampening: 0, nesterov: false };
    sgdUpdate(p, grad, undefined, { ...o, gradScale: coefficient });
    const pRef = Float64Array.from(p0);
    const scale = clipCoefficientRef(sumOfSquaresRef([g]), 1);
    expect(scale).toBeLessThan(0.1); // the clip is active
    sgdStepRef(pRef, g, null, o, scale);
    expectClose("param", await p.data(), pRef, TOL);
  });
});

// Per-parameter clipping (DINO's clip_gradients) in few dispatches: every tensor's sum of squares, clip
// coefficient and scaled values bit for bit those of one tensor at a time (sumOfSquares, clipCoefficient, a
// multiply by a 1-element tensor): sizes of one, two and three reduction levels (1 to 65539 elements), vec4 and
// scalar groups, more tensors than a dispatch takes.
describe("per-tensor clipping", () => {
  const SIZES_EACH = [1, 5, 256, 257, 1028, 65539, 16384, 3, 12, 1031, 64, 7];
  const data = SIZES_EACH.map((n, k) => randn(n, 300 + k, k % 3 === 0 ? 0.01 : 3));
  const tensors = () => data.map((x, k) => Tensor.fromArray(x, [SIZES_EACH[k]]));
  const bits = async (t: Tensor) => Array.from(new Uint32Array((await t.data()).buffer.slice(0)));

  it("sumsOfSquares: each tensor's sumOfSquares, bit for bit, in fewer dispatches", async () => {
    const ts = tensors();
    const { result: sums, kernels } = recordKernels(() => sumsOfSquares(ts));
    const alone = recordKernels(() => ts.map((t) => sumOfSquares([t])));
    expect(kernels.length).toBeLessThanOrEqual(alone.kernels.length / 3); // 6 against 18 here
    const want = await Promise.all(alone.result.map(async (s) => (await s.data())[0]));
    expect(Array.from(await sums.data())).toEqual(want);
    expectClose("sums", await sums.data(), data.map((x) => sumOfSquaresRef([x])), TOL);
  });

  it("clipCoefficients: clipCoefficient of each sum, with and without a loss scale, bit for bit", async () => {
    const sums = [0, 1e-8, 0.25, 1, 4, 1e6, 37.5];
    const scale = Tensor.fromArray([1024], [1]);
    for (const s of [undefined, scale]) {
      const all = await clipCoefficients(Tensor.fromArray(sums, [sums.length]), 1.5, s).data();
      const each = await Promise.all(sums.map(async (x) => (await clipCoefficient(Tensor.fromArray([x], [1]), 1.5, s).data())[0]));
      expect(Array.from(all)).toEqual(each);
    }
    expect(() => clipCoefficients(Tensor.fromArray([1, 2], [2]), 0)).toThrow("clipCoefficients: expected maxNorm > 0, got 0");
  });

  it("scaleEach: each tensor times its factor in place, as a multiply by a 1-element tensor", async () => {
    const ts = tensors();
    const factors = data.map((_, k) => 0.1 + 0.07 * k);
    const want = await Promise.all(ts.map((t, k) => bits(binaryForward("mul", t, Tensor.fromArray([factors[k]], [1])))));
    const { kernels } = recordKernels(() => scaleEach(ts, Tensor.fromArray(factors, [factors.length])));
    expect(kernels.length).toBeLessThanOrEqual(3);
    for (const [k, t] of ts.entries()) expect(await bits(t), `tensor ${k}`).toEqual(want[k]);
    expect(() => scaleEach(ts, Tensor.fromArray([1], [1]))).toThrow(`scaleEach: expected factors f32 of ${ts.length} elements`);
    expect(() => scaleEach([ts[0], ts[0].reshape([1])], Tensor.fromArray([1, 2], [2]))).toThrow("scaleEach: expected Tensor(");
  });
});

// Dynamic loss scaling on the device (lossScaleStep) and the updates' skipZero: the overflow test on inf and NaN
// sums of squares (forced), the backoff, the count of good steps and the growth after `interval`, the factor with
// and without clipping, and updates that leave param and state untouched where the factor is 0.
describe("loss scaling", () => {
  const o = { backoff: 0.5, growth: 2, interval: 3 };
  const step = async (sumSq: number, scale: Tensor, goodSteps: Tensor, maxNorm?: number) => {
    const factor = lossScaleStep(Tensor.fromArray([sumSq], [1]), scale, goodSteps, { ...o, maxNorm });
    return { factor: (await factor.data())[0], scale: (await scale.data())[0], good: (await goodSteps.data())[0] };
  };

  it("lowers the scale and zeroes the factor on inf or NaN; raises it after interval good steps", async () => {
    const scale = Tensor.fromArray([1024], [1]);
    const good = Tensor.fromArray([0], [1]);
    expect(await step(Infinity, scale, good)).toEqual({ factor: 0, scale: 512, good: 0 });
    expect(await step(NaN, scale, good)).toEqual({ factor: 0, scale: 256, good: 0 });
    expect(await step(4, scale, good)).toEqual({ factor: 1 / 256, scale: 256, good: 1 });
    expect(await step(4, scale, good)).toEqual({ factor: 1 / 256, scale: 256, good: 2 });
    expect(await step(4, scale, good)).toEqual({ factor: 1 / 256, scale: 512, good: 0 }); // the third: growth
    expect(await step(4, scale, good)).toEqual({ factor: 1 / 512, scale: 512, good: 1 });
    expect(await step(Infinity, scale, good)).toEqual({ factor: 0, scale: 256, good: 0 }); // an overflow resets the count
    // Squares past f32's range count as an overflow too (the norm of gradients that large is one).
    expect((await step(3e38 * 10, scale, good)).factor).toBe(0);
  });

  it("clips the unscaled norm: factor = min(1, maxNorm / (sqrt(sumSq) / scale + 1e-6)) / scale", async () => {
    const scale = Tensor.fromArray([64], [1]);
    const good = Tensor.fromArray([0], [1]);
    // scaled norm 640 = unscaled 10, maxNorm 2: coefficient ~0.2
    expectClose("factor", [(await step(640 * 640, scale, good, 2)).factor], [clipCoefficientRef(100, 2) / 64], TOL);
    expectClose("factor", [(await step(64 * 64 * 0.25, scale, good, 2)).factor], [1 / 64], TOL); // norm 0.5: no clip
  });

  it("clipCoefficient of gradients scaled by a scale tensor: that of the unscaled norm", async () => {
    // scaled norm 640 at scale 64 = unscaled 10, maxNorm 2
    const coefficient = clipCoefficient(Tensor.fromArray([640 * 640], [1]), 2, Tensor.fromArray([64], [1]));
    expectClose("coefficient", await coefficient.data(), [clipCoefficientRef(100, 2)], TOL);
    expect(() => clipCoefficient(Tensor.fromArray([1], [1]), 2, Tensor.fromArray([1, 2], [2]))).toThrow("clipCoefficient: expected scale f32 of 1 element");
  });

  it("sgd and adamw with skipZero leave param and state as they are where the factor is 0, and update where not", async () => {
    const n = 1031;
    const [p0, g] = [randn(n, 1), randn(n, 2)];
    const p = Tensor.fromArray(p0, [n]);
    const buf = Tensor.fromArray(randn(n, 3), [n]);
    const [m, v] = [Tensor.fromArray(randn(n, 4), [n]), Tensor.fromArray(randn(n, 5).map(Math.abs), [n])];
    const [buf0, m0, v0] = [await buf.data(), await m.data(), await v.data()];
    const grad = Tensor.fromArray(g, [n]);
    const zero = Tensor.fromArray([0], [1]);
    sgdUpdates([{ param: p, grad, momentumBuf: buf, weightDecay: 0.1 }], { lr: 0.1, momentum: 0.9, gradScale: zero, skipZero: true });
    adamwUpdates([{ param: p, grad, m, v, weightDecay: 0.1 }], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 3, gradScale: zero, skipZero: true });
    expect(await p.data()).toEqual(p0);
    expect(await buf.data()).toEqual(buf0);
    expect(await m.data()).toEqual(m0);
    expect(await v.data()).toEqual(v0);
    const half = Tensor.fromArray([0.5], [1]);
    const so: SgdOptions = { lr: 0.1, momentum: 0.9, weightDecay: 0.1, dampening: 0, nesterov: false };
    sgdUpdates([{ param: p, grad, momentumBuf: buf, weightDecay: 0.1 }], { ...so, first: false, gradScale: half, skipZero: true });
    const [pRef, bufRef] = [Float64Array.from(p0), Float64Array.from(buf0)];
    sgdStepRef(pRef, g, bufRef, so, 0.5);
    expectClose("param", await p.data(), pRef, TOL);
    expect(() => sgdUpdates([{ param: p, grad, momentumBuf: buf, weightDecay: 0 }], { lr: 0.1, momentum: 0.9, skipZero: true })).toThrow(
      "sgd: expected gradScale with skipZero, got none",
    );
  });
});

// AdamW with its step count on the device (`counter`): a step whose factor is 0 leaves param, moments and the count
// as they were; the others count from 1 and update as the float64 reference of that count. The bias corrections
// come from the device's count, at small counts (the series branch of 1 - beta^t) and large ones (1 - exp).
describe("adamw counted on the device", () => {
  const o: AdamwOptions = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 };
  const n = 1031;

  it("skips where the factor is 0, not counting the step, and updates as the reference of the count otherwise", async () => {
    const p0 = randn(n, 11);
    const [p, m, v] = [p0, new Float32Array(n), new Float32Array(n)].map((a) => Tensor.fromArray(a, [n]));
    const counter = Tensor.fromArray([0], [1]);
    const [pRef, mRef, vRef] = [Float64Array.from(p0), new Float64Array(n), new Float64Array(n)];
    let t = 0;
    for (const [k, factor] of [0, SCALE, 0, 0, SCALE, SCALE].entries()) {
      const g = randn(n, 300 + k, 0.5);
      const before = [await p.data(), await m.data(), await v.data()];
      adamwUpdates([{ param: p, grad: Tensor.fromArray(g, [n]), m, v, weightDecay: o.weightDecay }], { ...o, counter, gradScale: Tensor.fromArray([factor], [1]), skipZero: true });
      if (factor === 0) {
        expect([await p.data(), await m.data(), await v.data()], `step ${k}`).toEqual(before);
      } else {
        adamwStepRef(pRef, g, mRef, vRef, ++t, o, factor);
        expectClose(`param after step ${k} (count ${t})`, await p.data(), pRef, TOL);
        expectClose(`exp_avg after step ${k}`, await m.data(), mRef, TOL);
        expectClose(`exp_avg_sq after step ${k}`, await v.data(), vRef, TOL);
      }
      expect((await counter.data())[0], `count after step ${k}`).toBe(t);
    }
  });

  for (const count of [99, 2500, 40000]) {
    it(`applies the bias corrections of a count of ${count + 1}`, async () => {
      const [p0, m0, v0] = [randn(n, 21), randn(n, 22, 0.1), randn(n, 23, 0.01).map(Math.abs)];
      const [p, m, v] = [p0, m0, v0].map((a) => Tensor.fromArray(a, [n]));
      const g = randn(n, 24, 0.5);
      adamwUpdates([{ param: p, grad: Tensor.fromArray(g, [n]), m, v, weightDecay: o.weightDecay }], {
        ...o,
        counter: Tensor.fromArray([count], [1]),
        gradScale: Tensor.fromArray([1], [1]),
        skipZero: true,
      });
      const [pRef, mRef, vRef] = [p0, m0, v0].map((a) => Float64Array.from(a));
      adamwStepRef(pRef, g, mRef, vRef, count + 1, o);
      expectClose("param", await p.data(), pRef, TOL);
    });
  }

  it("refuses a counter without skipZero, with a step, or of another size", () => {
    const t = () => Tensor.fromArray([0, 0], [2]);
    const base = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, gradScale: Tensor.fromArray([1], [1]) };
    const update = (extra: object) => () => adamwUpdate(t(), t(), t(), t(), { ...base, ...extra });
    expect(update({ counter: Tensor.fromArray([0], [1]) })).toThrow("adamw: expected skipZero with a counter");
    expect(update({ counter: Tensor.fromArray([0], [1]), skipZero: true, step: 2 })).toThrow("adamw: expected either step or counter, got both (step 2)");
    expect(update({ counter: t(), skipZero: true })).toThrow("adamw: expected counter f32 of 1 element");
  });
});
