// autograd/loss-scale.ts: LossScaler with an optimiser, on forced overflows: a step whose gradients hold an inf or a
// NaN is skipped (parameters and momentum unchanged) and lowers the scale; good steps update with the gradients
// divided by the scale, and `interval` of them in a row raise it; clipping applies to the unscaled norm. Settings
// out of range are refused. A skipped step is not an optimiser step, as with GradScaler: AdamW's parameters, moments
// and step count and SGD's momentum stay as they were, and the steps after it are bit for bit those of a run without
// it. The kernels themselves: test/kernels/optim.test.ts.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { AdamW, type Optimizer, SGD } from "../../autograd/optim.js";
import { LOSS_SCALE_DEFAULTS, LossScaler } from "../../autograd/loss-scale.js";
import { expectClose, useEngine } from "../helpers.js";

useEngine();

describe("LossScaler", () => {
  it("has GradScaler's defaults", () => {
    expect(LOSS_SCALE_DEFAULTS).toEqual({ init: 65536, backoff: 0.5, growth: 2, interval: 2000 });
  });

  it("skips overflowed steps and lowers the scale; unscales good ones and raises the scale after interval of them", async () => {
    const w = Tensor.fromArray([1, 2], [2]).requireGrad().keep();
    const opt = new SGD([w], { lr: 0.5, momentum: 0.9, skipZero: true });
    const scaler = new LossScaler({ init: 8, backoff: 0.25, growth: 4, interval: 2 });
    const momentum = opt.state().values().next().value!;
    const run = async (grad: number[]) => {
      w.grad = Tensor.fromArray(grad, [2]).keep(); // the gradient a backward seeded with the scale leaves
      opt.step(scaler.unscale(opt.params, undefined));
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
    const opt = new SGD([w], { lr: 1, momentum: 0, skipZero: true });
    const scaler = new LossScaler({ ...LOSS_SCALE_DEFAULTS, init: 100 });
    w.grad = Tensor.fromArray([300, 400], [2]).keep(); // unscaled [3, 4], norm 5, clipped to 1
    opt.step(scaler.unscale(opt.params, 1));
    expectClose("w", await w.data(), [-0.6, -0.8], { atol: 1e-5, rtol: 0 });
    opt.zeroGrad();
    scaler.dispose();
    w.dispose();
  });

  // The scaled gradients are the unscaled ones times powers of two and the factors their inverses, so the unscaled
  // gradients, and every update, are the same in both runs to the bit.
  for (const [name, build] of [
    ["AdamW", (w: Tensor) => new AdamW([w], { lr: 0.1, weightDecay: 0.1, skipZero: true })],
    ["SGD with momentum", (w: Tensor) => new SGD([w], { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.1, skipZero: true })],
  ] as const) {
    it(`${name}: a skipped step changes nothing, and the run goes on as one without it`, async () => {
      const grads = [[0.5, -0.25, 2], [-1, 0.75, 0.125], [0.375, 1.5, -0.5]];
      const run = async (overflowFirst: boolean) => {
        const w = Tensor.fromArray([1, -2, 0.5], [3]).requireGrad().keep();
        const opt: Optimizer = build(w);
        // With the overflow the scale starts at 2^10 and is halved by it; without, it starts at 2^9.
        const scaler = new LossScaler({ init: overflowFirst ? 1024 : 512, backoff: 0.5, growth: 2, interval: 1000 });
        const states: Float32Array[][] = [];
        const snapshot = async () => [await w.data(), ...(await Promise.all([...opt.state().values()].map((t) => t.data())))];
        const stepWith = async (grad: number[]) => {
          const scale = (await scaler.scale.data())[0];
          w.grad = Tensor.fromArray(grad.map((g) => g * scale), [3]).keep();
          opt.step(scaler.unscale(opt.params));
          opt.zeroGrad();
          states.push(await snapshot());
        };
        if (overflowFirst) {
          const before = await snapshot();
          await stepWith([Infinity, 1, 1]);
          expect(states.pop(), "after the skipped step").toEqual(before);
          await stepWith(grads[0]);
          await stepWith([NaN, 0, 0]); // and one between good steps
          expect(states.pop(), "after the second skipped step").toEqual(states[states.length - 1]);
          for (const g of grads.slice(1)) await stepWith(g);
        } else {
          for (const g of grads) await stepWith(g);
        }
        scaler.dispose();
        for (const t of opt.state().values()) t.dispose();
        w.dispose();
        return states;
      };
      const skipped = await run(true);
      const clean = await run(false);
      expect(skipped).toEqual(clean);
    });
  }

  it("refuses settings out of range", () => {
    const bad = (s: Partial<typeof LOSS_SCALE_DEFAULTS>) => () => new LossScaler({ ...LOSS_SCALE_DEFAULTS, ...s });
    expect(bad({ init: 0 })).toThrow("loss scale: expected init > 0, got 0");
    expect(bad({ backoff: 1 })).toThrow("loss scale: expected backoff in (0, 1), got 1");
    expect(bad({ growth: 1 })).toThrow("loss scale: expected growth > 1, got 1");
    expect(bad({ interval: 0.5 })).toThrow("loss scale: expected interval an integer >= 1, got 0.5");
  });
});
