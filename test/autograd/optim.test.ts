// End-to-end engine checks: a small MLP learns a separable problem with SGD and with AdamW, and a training
// loop's live GPU memory stays flat. clipGradEach (DINO's per-parameter clipping) scales each gradient in place by
// the coefficient of its own norm, bit for bit as one parameter at a time, with and without a loss scale.
import { describe, expect, it } from "vitest";
import { Tensor, tidy, tidyAsync } from "../../engine/tensor.js";
import { runtime } from "../../engine/runtime.js";
import { Rng } from "../../util/random.js";
import * as ops from "../../autograd/ops.js";
import { AdamW, SGD, type Optimizer, clipGradEach, clipGradNorm, stateStep } from "../../autograd/optim.js";
import { clipCoefficient, sumOfSquares } from "../../kernels/optim.js";
import { binaryForward } from "../../kernels/elementwise.js";
import { randn, useEngine } from "../helpers.js";
import { backward } from "../../autograd/tape.js";

useEngine();

// Three Gaussian blobs in 2-D, well separated: a (2 -> 16 -> 3) MLP must reach 100% training accuracy.
function blobs(n: number, seed: number): { x: Float32Array; y: Int32Array } {
  const rng = new Rng(seed);
  const centres = [[-3, 0], [3, 0], [0, 4]];
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    x[2 * i] = centres[c][0] + rng.normal(0, 0.7);
    x[2 * i + 1] = centres[c][1] + rng.normal(0, 0.7);
  }
  return { x, y };
}

function mlp(seed: number): Tensor[] {
  const rng = new Rng(seed);
  const init = (n: number, fanIn: number) => rng.fill(n, () => rng.normal(0, 1 / Math.sqrt(fanIn)));
  const params = [
    Tensor.fromArray(init(16 * 2, 2), [16, 2]),
    Tensor.fromArray(new Float32Array(16), [16]),
    Tensor.fromArray(init(3 * 16, 16), [3, 16]),
    Tensor.fromArray(new Float32Array(3), [3]),
  ];
  params.forEach((p, i) => (p.requireGrad().keep().name = `p${i}`));
  return params;
}

function logits(params: Tensor[], x: Tensor): Tensor {
  const [w1, b1, w2, b2] = params;
  return ops.linear(ops.linear(x, w1, b1, { gelu: true }), w2, b2);
}

async function accuracy(params: Tensor[], x: Tensor, y: Int32Array): Promise<number> {
  const out = await tidy(() => logits(params, x)).data();
  let correct = 0;
  for (let i = 0; i < y.length; i++) {
    const row = out.subarray(3 * i, 3 * i + 3);
    if (row.indexOf(Math.max(...row)) === y[i]) correct++;
  }
  return correct / y.length;
}

async function train(opt: Optimizer, params: Tensor[], steps: number, clip?: number): Promise<number> {
  const { x, y } = blobs(96, 1);
  const xt = Tensor.fromArray(x, [96, 2]);
  const yt = Tensor.fromArray(y, [96], "i32");
  let loss = Infinity;
  for (let step = 0; step < steps; step++) {
    loss = await tidyAsync(async () => {
      opt.zeroGrad();
      const l = ops.crossEntropy(logits(params, xt), yt);
      backward(l);
      opt.step(clip ? clipGradNorm(params, clip).coefficient : undefined);
      return step % 20 === 19 ? l.item() : NaN;
    });
  }
  expect(await accuracy(params, xt, y)).toBe(1);
  return loss;
}

describe("training a small MLP", () => {
  it("reaches 100% with SGD and momentum", async () => {
    const params = mlp(2);
    const loss = await train(new SGD(params, { lr: 0.1, momentum: 0.9 }), params, 100);
    expect(loss).toBeLessThan(0.1);
  });

  it("reaches 100% with AdamW and gradient clipping", async () => {
    const params = mlp(3);
    const loss = await train(new AdamW(params, { lr: 0.02, weightDecay: 0.01 }), params, 100, 1.0);
    expect(loss).toBeLessThan(0.1);
  });
});

describe("memory", () => {
  it("live pooled bytes stay flat over 200 training steps", async () => {
    const params = mlp(4);
    const opt = new SGD(params, { lr: 0.05, momentum: 0.9 });
    const { x, y } = blobs(64, 5);
    const xt = Tensor.fromArray(x, [64, 2]).keep();
    const live: number[] = [];
    for (let step = 0; step < 200; step++) {
      await tidyAsync(async () => {
        opt.zeroGrad();
        const l = ops.crossEntropy(logits(params, xt), y);
        backward(l);
        opt.step();
        if (step % 10 === 0) await l.item();
      });
      live.push(runtime().pool.getStats().liveBytes);
    }
    // After warm-up (optimiser state, gradients), live bytes must not grow at all.
    expect(Math.max(...live.slice(5))).toBe(live[5]);
    expect(runtime().pool.getStats().buffersCreated).toBeLessThan(200);
  });
});

describe("clipGradEach", () => {
  const SIZES = [64, 3, 2048, 1, 257, 16, 9];
  const grads = SIZES.map((n, k) => randn(n, 40 + k, k % 2 ? 5 : 0.01)); // some clipped, some not
  const params = () =>
    SIZES.map((n, k) => {
      const p = Tensor.fromArray(new Float32Array(n), [n]).requireGrad();
      if (k !== 3) p.grad = Tensor.fromArray(grads[k], [n]); // parameter 3 has no gradient
      return p;
    });
  for (const scaled of [false, true]) {
    it(`each gradient times its own clip coefficient, as one parameter at a time${scaled ? ", of the unscaled norms" : ""}`, async () => {
      const scale = scaled ? Tensor.fromArray([0.125], [1]) : undefined;
      const ps = params();
      const want = await Promise.all(
        ps.map(async (p) => (p.grad ? Array.from(await binaryForward("mul", p.grad, clipCoefficient(sumOfSquares([p.grad]), 2, scale)).data()) : undefined)),
      );
      clipGradEach(ps, 2, scale);
      for (const [k, p] of ps.entries()) expect(p.grad && Array.from(await p.grad.data()), `parameter ${k}`).toEqual(want[k]);
      expect(want.filter((w, k) => w && w[0] !== grads[k][0]).length).toBeGreaterThan(0); // some were clipped
    });
  }
});

describe("stateStep", () => {
  // Five steps of real gradients, then one of a zero gradient at rate 1 (no weight decay): the optimiser's kernels move
  // each parameter by what stateStep computes on the host from the state they left.
  const cases: [string, (ps: Tensor[]) => Optimizer, Parameters<typeof stateStep>[0]][] = [
    ["SGD with momentum", (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9 }), { optimizer: "sgd", momentum: 0.9 }],
    ["SGD with Nesterov momentum", (ps) => new SGD(ps, { lr: 0.05, momentum: 0.8, nesterov: true }), { optimizer: "sgd", momentum: 0.8, nesterov: true }],
    ["AdamW", (ps) => new AdamW(ps, { lr: 0.01, weightDecay: 0 }), { optimizer: "adamw" }],
    ["AdamW of other betas", (ps) => new AdamW(ps, { lr: 0.01, weightDecay: 0, beta1: 0.8, beta2: 0.99, eps: 1e-6 }), { optimizer: "adamw", beta1: 0.8, beta2: 0.99, eps: 1e-6 }],
  ];
  for (const [name, make, options] of cases) {
    it(`is the next step with a zero gradient: ${name}`, async () => {
      const params = mlp(6);
      const opt = make(params);
      const { x, y } = blobs(48, 7);
      const xt = Tensor.fromArray(x, [48, 2]).keep();
      for (let step = 0; step < 5; step++) {
        tidy(() => {
          opt.zeroGrad();
          backward(ops.crossEntropy(logits(params, xt), y));
          opt.step();
        });
      }
      const state = new Map(await Promise.all([...opt.state()].map(async ([n, t]): Promise<[string, Float32Array]> => [n, await t.data()])));
      const before = await Promise.all(params.map((p) => p.data()));
      const steps = opt.stepCount;
      opt.zeroGrad();
      for (const p of params) p.grad = Tensor.fromArray(new Float32Array(p.size), p.shape).keep();
      opt.lr = 1;
      opt.step();
      for (const [i, p] of params.entries()) {
        const slots = new Map([...state].filter(([n]) => n.startsWith(`${p.name}.`)).map(([n, t]) => [n.slice(p.name!.length + 1), t]));
        const want = stateStep(options, slots, steps)!;
        const moved = await p.data();
        const scale = Math.max(...want.map(Math.abs));
        expect(scale, p.name).toBeGreaterThan(0);
        for (let j = 0; j < p.size; j++) expect(Math.abs(moved[j] - before[i][j] - want[j]), `${p.name}[${j}]`).toBeLessThan(1e-5 * Math.max(1, scale) + 1e-6 * Math.abs(before[i][j]));
      }
    });
  }

  it("is none for SGD without momentum, and names a missing slot", () => {
    expect(stateStep({ optimizer: "sgd", momentum: 0 }, new Map(), 3)).toBeUndefined();
    expect(() => stateStep({ optimizer: "adamw" }, new Map([["exp_avg", new Float32Array(2)]]), 3)).toThrow(/expected the slot exp_avg_sq of adamw, got exp_avg/);
  });
});
