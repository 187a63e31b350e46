// autograd/loss-scale.ts: LossScaler with an optimiser, on forced overflows: a step whose gradients hold an inf or a
// NaN is skipped (parameters and momentum unchanged) and lowers the scale; good steps update with the gradients
// divided by the scale, and `interval` of them in a row raise it; clipping applies to the unscaled norm. Settings
// out of range are refused. The kernel itself: test/kernels/optim.test.ts.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { SGD } from "../../autograd/optim.js";
import { LOSS_SCALE_DEFAULTS, LossScaler } from "../../autograd/loss-scale.js";
import { expectClose, useEngine } from "../helpers.js";

useEngine();

describe("LossScaler", () => {
  it("has GradScaler's defaults", () => {
    expect(LOSS_SCALE_DEFAULTS).toEqual({ init: 65536, backoff: 0.5, growth: 2, interval: 2000 });
  });

  it("skips overflowed steps and lowers the scale; unscales good ones and raises the scale after interval of them", async () => {
    const w = Tensor.fromArray([1, 2], [2]).requireGrad().keep();
    const opt = new SGD([w], { lr: 0.5, momentum: 0.9 });
    const scaler = new LossScaler({ init: 8, backoff: 0.25, growth: 4, interval: 2 });
    const momentum = opt.state().values().next().value!;
    const run = async (grad: number[]) => {
      w.grad = Tensor.fromArray(grad, [2]).keep(); // the gradient a backward seeded with the scale leaves
      opt.step(scaler.unscale(opt.params, undefined), true);
      opt.zeroGrad();
      return { w: Array.from(await w.data()), scale: (await scaler.scale.data())[0], good: (await scaler.goodSteps.data())[0] };
    };
    expect(await run([Infinity, 1])).toEqual({ w: [1, 2], scale: 2, good: 0 });
    expect(await run([NaN, 1])).toEqual({ w: [1, 2], scale: 0.5, good: 0 });
    expect(Array.from(await momentum.data())).toEqual([0, 0]);
    // scale 0.5: the scaled gradient [1, -2] is [2, -4] unscaled; w -= 0.5 * g (first step: momentum = g)
    const first = await run([1, -2]);
    expectClose("w", first.w, [0, 4], { atol: 1e-6, rtol: 0 });
    expect([first.scale, first.good]).toEqual([0.5, 1]);
    const second = await run([0, 0]); // momentum 0.9 * [2, -4]
    expectClose("w", second.w, [-0.9, 5.8], { atol: 1e-6, rtol: 0 });
    expect([second.scale, second.good]).toEqual([2, 0]); // two good steps: x4
    scaler.dispose();
    w.dispose();
  });

  it("clips the unscaled gradient norm", async () => {
    const w = Tensor.fromArray([0, 0], [2]).requireGrad().keep();
    const opt = new SGD([w], { lr: 1, momentum: 0 });
    const scaler = new LossScaler({ ...LOSS_SCALE_DEFAULTS, init: 100 });
    w.grad = Tensor.fromArray([300, 400], [2]).keep(); // unscaled [3, 4], norm 5, clipped to 1
    opt.step(scaler.unscale(opt.params, 1), true);
    expectClose("w", await w.data(), [-0.6, -0.8], { atol: 1e-5, rtol: 0 });
    opt.zeroGrad();
    scaler.dispose();
    w.dispose();
  });

  it("refuses settings out of range", () => {
    const bad = (s: Partial<typeof LOSS_SCALE_DEFAULTS>) => () => new LossScaler({ ...LOSS_SCALE_DEFAULTS, ...s });
    expect(bad({ init: 0 })).toThrow("loss scale: expected init > 0, got 0");
    expect(bad({ backoff: 1 })).toThrow("loss scale: expected backoff in (0, 1), got 1");
    expect(bad({ growth: 1 })).toThrow("loss scale: expected growth > 1, got 1");
    expect(bad({ interval: 0.5 })).toThrow("loss scale: expected interval an integer >= 1, got 0.5");
  });
});
