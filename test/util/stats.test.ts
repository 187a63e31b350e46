import { describe, expect, it } from "vitest";
import { crossedMeanInterval, crossedMeanInterval3, meanInterval, meanStd, median, studentTCdf, studentTQuantile } from "../../util/stats.js";
import { Rng } from "../../util/random.js";

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

  it("crossedMeanInterval: rows plus columns without residual, by hand", () => {
    // x = a_s + b_i with a = (0, 2), b = (0, 3, 6): MS_rows = 3 * 2 / 1 = 6, MS_columns = 2 * 18 / 2 = 18, no
    // residual, so Var(mean) = (6 + 18) / 6 = 4 (= var(a) / 2 + var(b) / 3 = 1 + 3), Satterthwaite df 24^2 / (6^2 / 1
    // + 18^2 / 2) = 576 / 198.
    const r = crossedMeanInterval([[0, 3, 6], [2, 5, 8]]);
    const half = studentTQuantile(0.975, 576 / 198) * 2;
    expect(r.mean).toBe(4);
    expect(r.n).toBe(2);
    expect(r.lo).toBeCloseTo(4 - half, 10);
    expect(r.hi).toBeCloseTo(4 + half, 10);
  });

  it("crossedMeanInterval: where the columns vary no more than the residual, the interval over the row means", () => {
    // Every column has the same mean (2.5): the columns' part is 0.
    const x = [[1, 4, 2, 3], [3, 2, 4, 1], [4, 1, 3, 2]].map((row, s) => row.map((v) => v + s));
    const r = crossedMeanInterval(x);
    const rows = meanInterval(x.map((row) => row.reduce((a, b) => a + b) / row.length));
    expect(r.mean).toBeCloseTo(rows.mean, 12);
    expect(r.lo).toBeCloseTo(rows.lo, 10);
    expect(r.hi).toBeCloseTo(rows.hi, 10);
    expect(crossedMeanInterval([[1, 1], [1, 1]])).toEqual({ mean: 1, lo: 1, hi: 1, n: 2 });
    const one = crossedMeanInterval([[1, 0, 1]]);
    expect([one.mean, one.lo, one.hi]).toEqual([2 / 3, NaN, NaN]);
    expect(() => crossedMeanInterval([[1, 2], [1]])).toThrow("crossedMeanInterval: expected rows of one length, got lengths 2, 1");
  });

  it("crossedMeanInterval: seeds whose means agree by chance still carry the residual's uncertainty", () => {
    // Row means 0.25 and 0.25: MS_rows = 0 < MS_residual = 1 / 3 (total 1.5, columns 0.5 over 3 df, residual 1.0
    // over 3), and MS_columns = 1 / 6 adds nothing: Var(mean) = MS_residual / (S Q) = 1 / 24, with the rows' 1 df.
    const r = crossedMeanInterval([[1, 0, 0, 0], [0, 1, 0, 0]]);
    const half = studentTQuantile(0.975, 1) * Math.sqrt(1 / 24);
    expect(r.mean).toBe(0.25);
    expect(r.lo).toBeCloseTo(0.25 - half, 10);
    expect(r.hi).toBeCloseTo(0.25 + half, 10);
    // Continuous where MS_rows crosses MS_residual: rows a hair apart give nearly the same interval.
    const near = crossedMeanInterval([[1, 0, 0, 0], [0, 1, 0, 0.0001]]);
    expect(near.hi - near.lo).toBeCloseTo(2 * half, 3);
    // Three-way too: every seed's mean 0.5, the banks and queries crossing.
    const three = crossedMeanInterval3([[[1, 0], [0, 1]], [[0, 1], [1, 0]]]);
    expect(three.mean).toBe(0.5);
    expect(three.hi - three.lo).toBeGreaterThan(0);
    expect(Number.isFinite(three.hi)).toBe(true);
  });

  // What the interval is for: a paired difference of 0/1 outcomes (two strategies right or wrong on each test image)
  // where some images favour one strategy in every seed. Drawn many times with a true mean difference of 0, the crossed
  // interval holds 0 about 95% of the time; the interval over seeds alone, blind to which images were drawn, far less.
  it("crossedMeanInterval covers a true difference of 0 about 95% of the time where seeds alone do not", () => {
    const rng = new Rng(7);
    const [seeds, images, trials] = [10, 200, 1000];
    let crossed = 0;
    let bySeeds = 0;
    for (let t = 0; t < trials; t++) {
      // Each image's lean towards A or B (mean 0 over images), each seed's small shift, then -1, 0 or +1 per cell.
      const lean = Array.from({ length: images }, () => rng.normal(0, 0.25));
      const shift = Array.from({ length: seeds }, () => rng.normal(0, 0.005));
      const x = shift.map((sh) => lean.map((l): number => {
        const p = Math.min(0.45, Math.max(-0.45, l + sh));
        const u = rng.next();
        return u < 0.05 + Math.max(0, p) ? 1 : u > 0.95 + Math.min(0, p) ? -1 : 0;
      }));
      const r = crossedMeanInterval(x);
      if (r.lo <= 0 && 0 <= r.hi) crossed++;
      const s = meanInterval(x.map((row) => row.reduce((a, b) => a + b) / images));
      if (s.lo <= 0 && 0 <= s.hi) bySeeds++;
    }
    expect(crossed / trials).toBeGreaterThan(0.93); // 0.950 here, 1,000 trials: a binomial SE of 0.007
    expect(crossed / trials).toBeLessThan(0.97);
    expect(bySeeds / trials).toBeLessThan(0.85); // 0.78 here
  });

  it("crossedMeanInterval3: one bank is crossedMeanInterval of that bank", () => {
    const rng = new Rng(3);
    const x = Array.from({ length: 4 }, () => [Array.from({ length: 9 }, () => rng.normal(0, 1))]);
    expect(crossedMeanInterval3(x)).toEqual(crossedMeanInterval(x.map((seed) => seed[0])));
    expect(crossedMeanInterval3(x, 0.9)).toEqual(crossedMeanInterval(x.map((seed) => seed[0]), 0.9));
  });

  it("crossedMeanInterval3: seeds plus banks plus queries without interactions, by hand", () => {
    // x = a_s + c_b + d_i with a = (0, 2), c = (0, 4), d = (0, 3, 6): MS_S = 6 * 2 / 1 = 12, MS_B = 6 * 8 / 1 = 48,
    // MS_Q = 4 * 18 / 2 = 36, every interaction 0, so Var(mean) = (12 + 36 + 48) / 12 = 8 (= var(a) / 2 + var(c) / 2
    // + var(d) / 3 = 1 + 4 + 3), Satterthwaite df 96^2 / (12^2 / 1 + 48^2 / 1 + 36^2 / 2) = 9216 / 3096.
    const x = [0, 2].map((a) => [0, 4].map((c) => [0, 3, 6].map((d) => a + c + d)));
    const r = crossedMeanInterval3(x);
    const half = studentTQuantile(0.975, 9216 / 3096) * Math.sqrt(8);
    expect(r.mean).toBe(6);
    expect(r.n).toBe(2);
    expect(r.lo).toBeCloseTo(6 - half, 10);
    expect(r.hi).toBeCloseTo(6 + half, 10);
  });

  it("crossedMeanInterval3: unchanged by reordering the banks or the queries", () => {
    const rng = new Rng(5);
    const x = Array.from({ length: 3 }, () => Array.from({ length: 4 }, () => Array.from({ length: 6 }, () => rng.int(3) - 1 + rng.normal(0, 0.3))));
    const r = crossedMeanInterval3(x);
    const banks = [2, 0, 3, 1];
    const queries = [5, 1, 4, 0, 3, 2];
    for (const y of [x.map((seed) => banks.map((j) => seed[j])), x.map((seed) => seed.map((bank) => queries.map((i) => bank[i])))]) {
      const p = crossedMeanInterval3(y);
      expect(p.mean).toBeCloseTo(r.mean, 12);
      expect(p.lo).toBeCloseTo(r.lo, 10);
      expect(p.hi).toBeCloseTo(r.hi, 10);
    }
  });

  it("crossedMeanInterval3: ragged tables are errors; no interval from one seed or one query", () => {
    expect(() => crossedMeanInterval3([[[1, 2], [3, 4]], [[1, 2]]])).toThrow("crossedMeanInterval3: expected seeds with one number of banks, got 2, 1");
    expect(() => crossedMeanInterval3([[[1, 2], [3, 4]], [[1, 2], [3]]])).toThrow("crossedMeanInterval3: expected banks with one number of queries, got [2, 2], [2, 1]");
    const one = crossedMeanInterval3([[[1, 0, 1], [0, 0, 1]]]);
    expect([one.mean, one.lo, one.hi, one.n]).toEqual([0.5, NaN, NaN, 1]);
    const query = crossedMeanInterval3([[[1], [0]], [[1], [1]]]);
    expect([query.mean, query.lo, query.hi, query.n]).toEqual([0.75, NaN, NaN, 2]);
    expect(crossedMeanInterval3([[[1, 1], [1, 1]], [[1, 1], [1, 1]]])).toEqual({ mean: 1, lo: 1, hi: 1, n: 2 });
  });

  // The same for k-NN accuracy, where the bank the neighbours come from is a sample too: each bank shifts the
  // difference a little and decides, query by query, which strategy's neighbours happen to be right. The three-way
  // interval holds 0 about 95% of the time; crossedMeanInterval on one bank, blind to which bank was drawn, less.
  it("crossedMeanInterval3 covers a true difference of 0 about 95% of the time where one bank does not", () => {
    const rng = new Rng(8);
    const [seeds, banks, images, trials] = [5, 4, 200, 1000];
    let crossed = 0;
    let oneBank = 0;
    for (let t = 0; t < trials; t++) {
      // Each image's lean, each (bank, image) pair's and each bank's (all mean 0), each seed's small shift, then -1, 0
      // or +1 per cell.
      const lean = Array.from({ length: images }, () => rng.normal(0, 0.25));
      const bankLean = Array.from({ length: banks }, () => lean.map(() => rng.normal(0, 0.2)));
      const bankShift = Array.from({ length: banks }, () => rng.normal(0, 0.04));
      const shift = Array.from({ length: seeds }, () => rng.normal(0, 0.005));
      const x = shift.map((sh) => bankLean.map((bl, b) => lean.map((l, i): number => {
        const p = Math.min(0.45, Math.max(-0.45, l + bl[i] + bankShift[b] + sh));
        const u = rng.next();
        return u < 0.05 + Math.max(0, p) ? 1 : u > 0.95 + Math.min(0, p) ? -1 : 0;
      })));
      const r = crossedMeanInterval3(x);
      if (r.lo <= 0 && 0 <= r.hi) crossed++;
      const o = crossedMeanInterval(x.map((seed) => seed[0]));
      if (o.lo <= 0 && 0 <= o.hi) oneBank++;
    }
    expect(crossed / trials).toBeGreaterThan(0.93); // 0.948 here, 1,000 trials: a binomial SE of 0.007
    expect(crossed / trials).toBeLessThan(0.97);
    expect(oneBank / trials).toBeLessThan(0.85); // 0.797 here
  });
});
