import { describe, expect, it } from "vitest";
import { meanInterval, meanStd, median, studentTCdf, studentTQuantile } from "../../util/stats.js";

describe("util/stats", () => {
  it("median and meanStd: odd and even counts, the sample deviation, one value", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(meanStd([2, 4, 4, 4, 5, 5, 7, 9])).toEqual([5, Math.sqrt(32 / 7)]);
    expect(meanStd([3])).toEqual([3, 0]);
  });

  it("studentTCdf matches the closed forms for 1 and 2 degrees of freedom within 1e-13", () => {
    for (const t of [-40, -3.2, -1, -0.1, 0, 0.25, 1, 2.5, 12.7, 300]) {
      expect(Math.abs(studentTCdf(t, 1) - (0.5 + Math.atan(t) / Math.PI))).toBeLessThan(1e-13); // Cauchy
      expect(Math.abs(studentTCdf(t, 2) - (0.5 + t / (2 * Math.sqrt(2 + t * t))))).toBeLessThan(1e-13);
    }
  });

  it("studentTQuantile gives the tables' values within 1e-8", () => {
    // Two-sided 95% and 99% critical values (R's qt(0.975, df), qt(0.995, df)).
    const q975: [number, number][] = [[1, 12.706204736], [2, 4.30265273], [3, 3.182446305], [4, 2.776445105], [9, 2.262157163], [19, 2.093024054], [30, 2.042272456], [100, 1.983971519], [1000, 1.962339081]];
    for (const [df, q] of q975) expect(Math.abs(studentTQuantile(0.975, df) - q)).toBeLessThan(1e-8);
    expect(Math.abs(studentTQuantile(0.995, 1) - 63.656741163)).toBeLessThan(1e-7);
    expect(Math.abs(studentTQuantile(0.995, 9) - 3.249835542)).toBeLessThan(1e-8);
    expect(studentTQuantile(0.025, 9)).toBeCloseTo(-2.262157163, 8);
    expect(studentTQuantile(0.5, 4)).toBeCloseTo(0, 10);
    expect(() => studentTQuantile(1, 3)).toThrow("studentTQuantile: expected 0 < p < 1 and df > 0, got p 1, df 3");
    expect(() => studentTQuantile(0.9, 0)).toThrow("got p 0.9, df 0");
  });

  it("meanInterval: mean ± t * s / sqrt(n); no interval from one value", () => {
    const r = meanInterval([1, 2, 3, 4]);
    const half = (3.182446305 * Math.sqrt(5 / 3)) / 2;
    expect(r.mean).toBe(2.5);
    expect(r.n).toBe(4);
    expect(r.lo).toBeCloseTo(2.5 - half, 8);
    expect(r.hi).toBeCloseTo(2.5 + half, 8);
    expect(meanInterval([7, 7, 7])).toEqual({ mean: 7, lo: 7, hi: 7, n: 3 });
    const one = meanInterval([5]);
    expect([one.mean, one.n, one.lo, one.hi]).toEqual([5, 1, NaN, NaN]);
  });
});
