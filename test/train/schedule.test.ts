// Warm-up + cosine, and warm-up + constant, against values computed by hand from the formula.
import { describe, expect, it } from "vitest";
import { checkSchedule, learningRate } from "../../train/schedule.js";

describe("learningRate", () => {
  const s = { base: 0.1, warmup: 4, total: 14 };

  it("rises linearly during warm-up, reaching the base rate at its last step", () => {
    [0.025, 0.05, 0.075, 0.1].forEach((want, t) => expect(learningRate(s, t)).toBeCloseTo(want, 15));
  });

  it("then follows half a cosine down to 0 at `total`", () => {
    expect(learningRate(s, 4)).toBeCloseTo(0.1, 15);
    expect(learningRate(s, 9)).toBeCloseTo(0.05, 15); // half-way through the 10 decay steps
    expect(learningRate(s, 6)).toBeCloseTo(0.05 * (1 + Math.cos(Math.PI * 0.2)), 15);
    expect(learningRate(s, 13)).toBeCloseTo(0.05 * (1 + Math.cos(Math.PI * 0.9)), 15);
    expect(learningRate(s, 14)).toBeCloseTo(0, 15);
    for (let t = 4; t < 14; t++) expect(learningRate(s, t + 1)).toBeLessThan(learningRate(s, t));
  });

  it("starts at the base rate without warm-up, and a single-step run uses it", () => {
    expect(learningRate({ base: 0.01, warmup: 0, total: 10 }, 0)).toBe(0.01);
    expect(learningRate({ base: 0.01, warmup: 0, total: 1 }, 0)).toBe(0.01);
  });

  it("with `after: \"constant\"` keeps the base rate from the warm-up's end to the last step", () => {
    const c = { ...s, after: "constant" as const };
    for (let t = 0; t < 4; t++) expect(learningRate(c, t)).toBe(learningRate(s, t));
    for (let t = 3; t < 14; t++) expect(learningRate(c, t)).toBeCloseTo(0.1, 15);
    expect(learningRate({ base: 0.01, warmup: 0, total: 10, after: "constant" }, 9)).toBe(0.01);
  });

  it("rejects impossible schedules", () => {
    expect(() => checkSchedule({ base: 0.1, warmup: 10, total: 10 })).toThrow("expected 0 <= warm-up steps < total steps (10), got 10");
    expect(() => checkSchedule({ base: 0, warmup: 0, total: 10 })).toThrow("expected a positive learning rate, got 0");
    expect(() => checkSchedule({ base: 0.1, warmup: 0, total: 0 })).toThrow("expected total steps >= 1, got 0");
  });
});
