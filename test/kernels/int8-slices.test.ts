// kernels/int8-slices.ts: every word against the reference (test/ref/int8-slices.ts), 3 and 2 slices, both stored
// layouts, batched, edges in R and K; and, independently of the reference, the digits reconstruct each value within
// the header's bound 2^(e - 7S) for S slices, each within [-64, 64].
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { int8SliceLayout, int8Slices, sliceChunks } from "../../kernels/int8-slices.js";
import { exponentAbove, int8SlicesRef, roundEven } from "../ref/int8-slices.js";
import { transpose } from "../ref/matmul.js";
import { randn, useEngine } from "../helpers.js";

useEngine();

// (batch, R, K) values whose rows span magnitudes 2^-30 to 2^30, with a zero row, a row whose largest value is a
// power of two, and values that fall on a digit's tie.
function rows(batch: number, R: number, K: number, seed: number): Float32Array {
  const x = randn(batch * R * K, seed);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < R; r++) {
      const row = x.subarray((b * R + r) * K, (b * R + r + 1) * K);
      const scale = 2 ** (((r * 7 + b * 3) % 61) - 30);
      for (let k = 0; k < K; k++) row[k] *= scale;
      if (r === 1) row.fill(0);
      if (r === 2) {
        for (let k = 0; k < K; k++) row[k] = Math.fround(Math.max(-1, Math.min(1, row[k] / scale / 4)));
        row[0] = 1; // e = 1: v = x * 32
        row[1] = 1 / 64; // v = 0.5: d0 = 0 (ties to even), d1 = 64
        row[2] = 3 / 64; // v = 1.5: d0 = 2, d1 = -64
      }
    }
  }
  return x;
}

const words = async (t: Tensor) => Int32Array.from(await t.dataInt());

// The first word where got and want differ, named, or "" (a diff of whole arrays takes the test runner minutes).
function firstDifference(got: Int32Array, want: Int32Array, layout: { R4: number; W: number; R: number }): string {
  if (got.length !== want.length) return `${got.length} words, expected ${want.length}`;
  const i = got.findIndex((v, j) => v !== want[j]);
  if (i < 0) return "";
  const stride = want.length; // per batch entry is enough to name the place
  const j = i % stride;
  const place = j < layout.R4 ? `scale of row ${j}` : `slice ${Math.floor((j - layout.R4) / (layout.R * layout.W))}, row ${Math.floor((j - layout.R4) / layout.W) % layout.R}, word ${(j - layout.R4) % layout.W}`;
  return `word ${i} (${place}): ${got[i].toString(16)}, expected ${want[i].toString(16)}`;
}

describe("int8 slices", () => {
  const CASES = [
    { batch: 2, R: 37, K: 53 },
    { batch: 1, R: 16, K: 64 },
    { batch: 3, R: 5, K: 3 },
  ];
  for (const S of [3, 2] as const) {
    for (const { batch, R, K } of S === 3 ? CASES : CASES.slice(0, 1)) {
      it(`every word as the reference: ${S} slices, [${batch}]x${R}x${K}, rows along k and transposed`, async () => {
        const x = rows(batch, R, K, R + K);
        const want = int8SlicesRef(x, batch, R, K, true, S);
        const layout = { ...int8SliceLayout(R, K, S), R };
        const along = int8Slices(Tensor.fromArray(x, [batch, R, K]), batch, R, K, true, S);
        expect(firstDifference(await words(along), want, layout)).toBe("");
        const across = int8Slices(Tensor.fromArray(transpose(x, batch, R, K), [batch, K, R]), batch, R, K, false, S);
        expect(firstDifference(await words(across), want, layout)).toBe("");
        expect(firstDifference(int8SlicesRef(transpose(x, batch, R, K), batch, R, K, false, S), want, layout)).toBe("");
      });
    }
  }

  // Long rows in chunks of k (GPUs, few row blocks): the chunks' maxima first, then each chunk's digits from its
  // row's; forced here at 64 k per chunk, the last chunk short, a value that is not finite in a later chunk.
  it.each([3, 2] as const)("%i slices in chunks of k: every word as the reference, rows along k and transposed", async (S) => {
    const [batch, R, K] = [2, 37, 300];
    const x = rows(batch, R, K, 5);
    const want = int8SlicesRef(x, batch, R, K, true, S);
    const layout = { ...int8SliceLayout(R, K, S), R };
    expect(firstDifference(await words(int8Slices(Tensor.fromArray(x, [batch, R, K]), batch, R, K, true, S, 64)), want, layout)).toBe("");
    const across = int8Slices(Tensor.fromArray(transpose(x, batch, R, K), [batch, K, R]), batch, R, K, false, S, 128);
    expect(firstDifference(await words(across), want, layout)).toBe("");
  });

  it("plans chunks on GPUs for few row blocks of long rows: a weight gradient's operand of ViT-B/16 at batch 64", () => {
    expect(sliceChunks(48, 12608, false)).toBe(13); // 768 rows of 12608 k: 48 row blocks -> 624 workgroups
    expect(sliceChunks(48, 12608, true)).toBe(1); // CPU drivers: one pass
    expect(sliceChunks(788, 768, false)).toBe(1); // a forward product's activations: enough row blocks
    expect(sliceChunks(48, 2047, false)).toBe(1); // under two chunks of k
    expect(() => int8Slices(Tensor.empty([4, 4]), 1, 4, 4, true, 3, 48)).toThrow("int8 slices: expected chunkK a positive multiple of 64, got 48");
  });

  it.each([3, 2] as const)("%i slices: the digits reconstruct each value within 2^(e - 7 slices), each within [-64, 64]", async (S) => {
    const [R, K] = [29, 45];
    const x = rows(1, R, K, 9);
    const got = await words(int8Slices(Tensor.fromArray(x, [R, K]), 1, R, K, true, S));
    const { R4, W } = int8SliceLayout(R, K, S);
    const f32 = new Float32Array(Int32Array.from(got.subarray(0, R)).buffer);
    let worst = 0;
    for (let r = 0; r < R; r++) {
      const row = x.subarray(r * K, (r + 1) * K);
      const max = row.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const e = Math.log2(f32[r]);
      expect(e).toBe(exponentAbove(max));
      for (let k = 0; k < K; k++) {
        const digits = Array.from({ length: S }, (_, s) => (got[R4 + (s * R + r) * W + (k >> 2)] << (24 - 8 * (k % 4))) >> 24);
        for (const d of digits) expect(Math.abs(d)).toBeLessThanOrEqual(64);
        const value = f32[r] * digits.reduce((sum, d, s) => sum + d * 2 ** (-6 - 7 * s), 0);
        const err = Math.abs(value - row[k]) / 2 ** (e - 7 * S);
        expect(err).toBeLessThanOrEqual(1);
        worst = Math.max(worst, err);
      }
    }
    expect(worst).toBeGreaterThan(0.1); // the digits are truncated, not the values copied
  });

  // In one pass, and in chunks of 64 k with the values in the third chunk and the first.
  it.each([
    { K: 20, chunkK: undefined, inf: 5, nan: 19 },
    { K: 200, chunkK: 64, inf: 150, nan: 10 },
  ])("a row with a value that is not finite gets the scale NaN; the other rows are the reference's (K = $K, chunks of $chunkK)", async ({ K, chunkK, inf, nan }) => {
    const R = 6;
    const x = rows(1, R, K, 3);
    x[2 * K + inf] = Infinity;
    x[4 * K + nan] = NaN;
    const got = await words(int8Slices(Tensor.fromArray(x, [R, K]), 1, R, K, true, 3, chunkK));
    const want = int8SlicesRef(x, 1, R, K, true, 3);
    expect([got[2], got[4]]).toEqual([0x7fc00000, 0x7fc00000]);
    const { R4, W } = int8SliceLayout(R, K, 3);
    for (const r of [0, 1, 3, 5]) {
      expect(got[r]).toBe(want[r]);
      for (let s = 0; s < 3; s++) expect(got.subarray(R4 + (s * R + r) * W, R4 + (s * R + r + 1) * W)).toEqual(want.subarray(R4 + (s * R + r) * W, R4 + (s * R + r + 1) * W));
    }
  });

  it("K = 0: scales of 1 and no digits; R = 0: nothing", async () => {
    expect(await words(int8Slices(Tensor.empty([3, 0]), 1, 3, 0, true, 3))).toEqual(Int32Array.from([0x3f800000, 0x3f800000, 0x3f800000, 0]));
    expect(int8Slices(Tensor.empty([0, 5]), 1, 0, 5, true, 2).size).toBe(0);
  });

  it("rejects an input that is not f32 or not the size it is said to be, and slice counts other than 2 and 3", () => {
    expect(() => int8Slices(Tensor.empty([4, 4], "i32"), 1, 4, 4, true, 3)).toThrow(/int8 slices: expected an f32 matrix/);
    expect(() => int8Slices(Tensor.empty([4, 4]), 1, 4, 5, true, 3)).toThrow(/expected 1 x 4 x 5 elements/);
    expect(() => int8Slices(Tensor.empty([4, 4]), 1, 4, 4, true, 4 as 3)).toThrow("int8 slices: expected 2 or 3 slices, got 4");
  });

  it("the reference's rounding ties to even and its exponent is frexp's", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 0.49, 63.5].map(roundEven)).toEqual([0, 2, 2, 0, -2, 0, 64]);
    expect([1, 0.75, 0.5, 2 ** -30, 3].map(exponentAbove)).toEqual([1, 0, 0, -29, 2]);
  });
});
