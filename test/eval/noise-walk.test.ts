// eval/noise-walk.ts: its recurrences against the walk's closed form (the change sum_k c_k e_k with c_k = sum over s
// from k of lr_s mu^(s - k), the buffer sum_k mu^(t - 1 - k) e_k; 1e-12) on a warm-up and cosine schedule with a
// spread that moves between kept steps; and against the walk itself: the engine's SGD with momentum stepping 16,384
// coordinates of independent normal noise (no mean gradient) for 40 steps, its change, its memory
// (autograd/optim.ts stateStep) and their cosine as the walk gives them (sizes within 3 %, the cosine within 0.03:
// a sum over N coordinates strays by about sqrt(2 / N) of itself). Without momentum no memory; refused without a spread
// or past the schedule's end.
import { describe, expect, it } from "vitest";
import { SGD, stateStep } from "../../autograd/optim.js";
import { Tensor, readTensors } from "../../engine/tensor.js";
import { noiseWalk } from "../../eval/noise-walk.js";
import { type Schedule, learningRate } from "../../train/schedule.js";
import { randn, useEngine } from "../helpers.js";

useEngine();

const SCHEDULE: Schedule = { base: 0.05, warmup: 5, total: 40 };
const SPREADS: [number, number][] = [
  [2, 3],
  [5, 1.5],
  [12, 2],
  [30, 0.5],
];
// The spread a step's noise has, as noiseWalk reads the kept steps': linear between them, the nearest outside.
const sigma = (s: number) => (s <= 2 ? 3 : s <= 5 ? 3 - (1.5 * (s - 2)) / 3 : s <= 12 ? 1.5 + (0.5 * (s - 5)) / 7 : s <= 30 ? 2 - (1.5 * (s - 12)) / 18 : 0.5);

describe("noiseWalk", () => {
  it("is the walk's closed form: its change, its memory's size and their cosine", () => {
    const mu = 0.9;
    const at = [0, 1, 3, 12, 25, 40];
    const got = noiseWalk(SCHEDULE, mu, SPREADS, at);
    expect(got[0]).toEqual({ change: 0, memory: 0, turn: NaN });
    at.slice(1).forEach((t, j) => {
      const lr = (s: number) => learningRate(SCHEDULE, s);
      let [change, buffer, dot] = [0, 0, 0];
      for (let k = 0; k < t; k++) {
        let c = 0;
        for (let s = k; s < t; s++) c += lr(s) * mu ** (s - k);
        const a = mu ** (t - 1 - k);
        change += c * c * sigma(k) ** 2;
        buffer += a * a * sigma(k) ** 2;
        dot += a * c * sigma(k) ** 2;
      }
      const want = { change: Math.sqrt(change), memory: mu * Math.sqrt(buffer), turn: dot / Math.sqrt(change * buffer) };
      for (const key of ["change", "memory", "turn"] as const) expect(Math.abs(got[j + 1][key] - want[key]) / want[key], `step ${t} ${key}`).toBeLessThan(1e-12);
    });
  });

  it("is what the engine's SGD with momentum makes of independent noise", async () => {
    const [n, mu, steps] = [16384, 0.9, 40];
    const p = Tensor.fromArray(new Float32Array(n), [n]).requireGrad().keep();
    p.name = "p";
    const opt = new SGD([p], { lr: SCHEDULE.base, momentum: mu });
    for (let s = 0; s < steps; s++) {
      opt.lr = learningRate(SCHEDULE, s);
      opt.zeroGrad();
      p.grad = Tensor.fromArray(randn(n, 1000 + s, sigma(s) / Math.sqrt(n)), [n]);
      opt.step();
    }
    const [change, buffer] = await readTensors([p, opt.state().get("p.momentum")!]);
    const memory = stateStep({ optimizer: "sgd", momentum: mu }, new Map([["momentum", buffer]]), steps)!;
    let [dd, mm, md] = [0, 0, 0];
    change.forEach((d, i) => {
      dd += d * d;
      mm += memory[i] * memory[i];
      md += memory[i] * d;
    });
    const [want] = noiseWalk(SCHEDULE, mu, SPREADS, [steps]);
    expect(Math.abs(Math.sqrt(dd) / want.change - 1)).toBeLessThan(0.03);
    expect(Math.abs(Math.sqrt(mm) / want.memory - 1)).toBeLessThan(0.03);
    expect(Math.abs(md / Math.sqrt(mm * dd) - want.turn)).toBeLessThan(0.03);
    expect(want.turn).toBeGreaterThan(0.1); // the memory points along the walk's change, as a random walk's does
    opt.zeroGrad();
    for (const t of [p, ...opt.state().values()]) t.dispose();
  });

  it("has no memory without momentum; refuses no spread, and a step past the schedule's end", () => {
    const [walk] = noiseWalk(SCHEDULE, 0, [[0, 2]], [10]);
    let sum = 0;
    for (let s = 0; s < 10; s++) sum += (learningRate(SCHEDULE, s) * 2) ** 2;
    expect(Math.abs(walk.change - Math.sqrt(sum))).toBeLessThan(1e-14);
    expect([walk.memory, walk.turn]).toEqual([0, NaN]);
    expect(() => noiseWalk(SCHEDULE, 0.9, [], [3])).toThrow("noise walk: expected the spread at one kept step at least, got none");
    expect(() => noiseWalk(SCHEDULE, 0.9, SPREADS, [41])).toThrow("noise walk: expected steps up to the schedule's 40, got 41");
  });
});
