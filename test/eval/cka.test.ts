// Linear CKA: its invariances in the float64 reference (test/ref/cka.ts, the kernel form), then the streamed
// device accumulator (eval/cka.ts, the feature form) against that reference, in batches that do not divide n and
// on features far from centred.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { CkaAccumulator, ckaFromMoments } from "../../eval/cka.js";
import { Rng } from "../../util/random.js";
import { ckaReference } from "../ref/cka.js";
import { randn, useEngine } from "../helpers.js";

useEngine();

// a (n, k) · b (k, m) in float64.
function matmul(a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) for (let j = 0; j < m; j++) out[i * m + j] += a[i * k + c] * b[c * m + j];
  return out;
}

// A random orthogonal (d, d) matrix: Gram-Schmidt on Gaussian columns.
function orthogonal(d: number, seed: number): Float64Array {
  const g = Float64Array.from(randn(d * d, seed));
  const q = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    const v = Array.from({ length: d }, (_, i) => g[i * d + j]);
    for (let k = 0; k < j; k++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += v[i] * q[i * d + k];
      for (let i = 0; i < d; i++) v[i] -= dot * q[i * d + k];
    }
    const norm = Math.hypot(...v);
    for (let i = 0; i < d; i++) q[i * d + j] = v[i] / norm;
  }
  return q;
}

// Representations with structure: Y = X·A + noise, so CKA is neither 0 nor 1.
function related(n: number, p: number, q: number, seed: number): { x: Float32Array; y: Float32Array } {
  const x = randn(n * p, seed);
  const a = randn(p * q, seed + 1);
  const noise = randn(n * q, seed + 2, 2);
  const y = Float32Array.from(matmul(x, a, n, p, q), (v, i) => v + noise[i]);
  return { x, y };
}

async function deviceCka(x: Float32Array, y: Float32Array, n: number, batch: number): Promise<number> {
  const p = x.length / n;
  const q = y.length / n;
  const acc = new CkaAccumulator(p, q);
  try {
    for (let r = 0; r < n; r += batch) {
      const b = Math.min(batch, n - r);
      const xt = Tensor.fromArray(x.subarray(r * p, (r + b) * p), [b, p]);
      const yt = Tensor.fromArray(y.subarray(r * q, (r + b) * q), [b, q]);
      acc.add(xt, yt);
      xt.dispose();
      yt.dispose();
    }
    return await acc.value();
  } finally {
    acc.dispose();
  }
}

describe("linear CKA, float64 reference", () => {
  const n = 60;
  const p = 10;
  const { x, y } = related(n, p, 7, 1);

  it("is 1 for identical representations, and symmetric", () => {
    expect(ckaReference(x, x, n)).toBeCloseTo(1, 12);
    expect(ckaReference(x, y, n)).toBeCloseTo(ckaReference(y, x, n), 12);
  });

  it("is invariant to an orthogonal transform and to isotropic scaling, not to anisotropic scaling", () => {
    const base = ckaReference(x, y, n);
    expect(base).toBeGreaterThan(0.2);
    expect(base).toBeLessThan(0.95);
    expect(ckaReference(matmul(x, orthogonal(p, 3), n, p, p), y, n)).toBeCloseTo(base, 10);
    expect(ckaReference(Float64Array.from(x, (v) => 7.5 * v), y, n)).toBeCloseTo(base, 10);
    expect(ckaReference(x, Float64Array.from(x, (v) => -0.01 * v), n)).toBeCloseTo(1, 10);
    // Stretching one axis 10x is an invertible map CKA does see: the check above can fail.
    expect(Math.abs(ckaReference(Float64Array.from(x, (v, i) => (i % p === 0 ? 10 * v : v)), y, n) - base)).toBeGreaterThan(0.05);
  });

  it("is near 0 for independent random features: below 2·sqrt(p·q)/n", () => {
    // For independent isotropic Gaussian X (n, p) and Y (n, q), E||YcᵀXc||² ≈ n·p·q and ||XcᵀXc||_F ≈ n·sqrt(p),
    // so CKA ≈ sqrt(p·q)/n (0.016 here), with a relative spread of about sqrt(2/(p·q)) (0.18): twice the
    // expectation is some five standard deviations away.
    const [m, d] = [500, 8];
    for (const seed of [11, 12, 13]) {
      const v = ckaReference(randn(m * d, seed), randn(m * d, seed + 100), m);
      expect(v).toBeGreaterThan(0);
      expect(v).toBeLessThan((2 * Math.sqrt(d * d)) / m);
    }
  });
});

describe("linear CKA on the device", () => {
  it("matches the float64 reference, streamed in batches that do not divide n, on features far from centred", async () => {
    const n = 157;
    const { x, y } = related(n, 24, 12, 5);
    // A large common offset per column: the first batch's shift keeps the centring exact.
    const rng = new Rng(9);
    const offsets = Array.from({ length: 24 }, () => rng.uniform(-300, 300));
    const shifted = x.map((v, i) => v + offsets[i % 24]);
    const want = ckaReference(x, y, n);
    expect(await deviceCka(shifted, y, n, 40)).toBeCloseTo(want, 4);
    expect(await deviceCka(x, y, n, 157)).toBeCloseTo(want, 5);
  });

  it("keeps the invariances: identical 1, orthogonal transform and isotropic scaling unchanged, independent near 0", async () => {
    const n = 130;
    const p = 16;
    const { x, y } = related(n, p, 9, 21);
    const base = await deviceCka(x, y, n, 32);
    expect(await deviceCka(x, x, n, 32)).toBeCloseTo(1, 6);
    expect(await deviceCka(Float32Array.from(matmul(x, orthogonal(p, 4), n, p, p)), y, n, 32)).toBeCloseTo(base, 4);
    expect(await deviceCka(x.map((v) => 3 * v), y.map((v) => 0.2 * v), n, 32)).toBeCloseTo(base, 4);
    const m = 400;
    expect(await deviceCka(randn(m * 8, 31), randn(m * 8, 32), m, 64)).toBeLessThan((2 * 8) / m);
  });

  it("names bad shapes, too few rows and moments of the wrong size", async () => {
    const acc = new CkaAccumulator(3, 2);
    await expect(acc.value()).rejects.toThrow("cka: expected at least 2 rows, got 0");
    const x = Tensor.fromArray(new Float32Array(8), [2, 4]);
    const y = Tensor.fromArray(new Float32Array(4), [2, 2]);
    expect(() => acc.add(x, y)).toThrow("cka: expected x (B, 3) and y (B, 2) with the same B");
    x.dispose();
    y.dispose();
    acc.dispose();
    expect(() => ckaFromMoments(new Float64Array(24), new Float64Array(5), 10, 3, 2)).toThrow("cka: expected moments (5, 5) and sums (5)");
  });
});
