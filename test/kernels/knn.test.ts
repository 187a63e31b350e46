// k-NN kernels against test/ref/knn.ts.
// Exact cases: small-integer features (and +-1 features scaled by powers of two when normalising) make every
// similarity exact in f32 whatever the summation order, and full of ties, so sims and indices must match the
// float64 reference exactly, tie order included. Random cases: sims within atol 1e-5 + rtol 1e-5, and every
// returned index must carry the reference similarity of its rank (within the same tolerance), which allows
// near-ties to swap and nothing else.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { knn } from "../../autograd/ops.js";
import { runtime } from "../../engine/runtime.js";
import { knnSimilarity, knnSlices, knnTopK } from "../../kernels/knn.js";
import { KNN } from "../../kernels/registry.js";
import { Rng } from "../../util/random.js";
import { expectClose, randn, useEngine, withoutLaneBroadcast } from "../helpers.js";
import { normalizeRows, similarityRef, topKRef } from "../ref/knn.js";
import { noGrad } from "../../autograd/tape.js";

useEngine();

const EXACT = { atol: 0, rtol: 0 };
const TOL = { atol: 1e-5, rtol: 1e-5 };

// Integers in [-2, 2]: dot products are exact and collide often.
function ints(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return rng.fill(n, () => rng.int(5) - 2);
}

// Rows of +-s with s a power of two per row: the unit rows are exactly +-1/sqrt(D) for D = 16.
function signs(rows: number, d: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const s = 2 ** (rng.int(5) - 2);
    for (let j = 0; j < d; j++) x[r * d + j] = rng.next() < 0.5 ? -s : s;
  }
  return x;
}

// -Infinity (no neighbour) as a finite stand-in, so that expectClose can compare it.
const finite = (a: ArrayLike<number>) => Array.from(a, (v) => (v === -Infinity ? -1e30 : v));

async function expectTopK(got: { sims: Tensor; indices: Tensor }, want: { sims: Float64Array; indices: Int32Array }): Promise<void> {
  expectClose("sims", finite(await got.sims.data()), finite(want.sims), EXACT);
  expectClose("indices", await got.indices.dataInt(), want.indices, EXACT);
}

describe("knnTopK (fused)", () => {
  for (const version of KNN.versions) {
    it(`${version}: exact with ties, Q=37 N=101 D=5 k=10`, async () => {
      const [q, n, d, k] = [37, 101, 5, 10];
      const x = ints(q * d, 1);
      const b = ints(n * d, 2);
      const got = knnTopK(Tensor.fromArray(x, [q, d]), Tensor.fromArray(b, [n, d]), k, { version });
      await expectTopK(got, topKRef(similarityRef(x, b, d), q, n, k));
    });
  }

  it("one query, one bank row, D=1", async () => {
    const got = knnTopK(Tensor.fromArray([3], [1, 1]), Tensor.fromArray([-2], [1, 1]), 1);
    await expectTopK(got, { sims: Float64Array.from([-6]), indices: Int32Array.from([0]) });
  });

  it("k > N leaves -Infinity and index -1 past the bank", async () => {
    const [q, n, d, k] = [5, 3, 4, 8];
    const x = ints(q * d, 3);
    const b = ints(n * d, 4);
    const got = knnTopK(Tensor.fromArray(x, [q, d]), Tensor.fromArray(b, [n, d]), k);
    const want = topKRef(similarityRef(x, b, d), q, n, k);
    expect(want.indices[k - 1]).toBe(-1);
    await expectTopK(got, want);
  });

  it("an empty bank gives only empty entries", async () => {
    const got = knnTopK(Tensor.fromArray([1, 2], [1, 2]), [Tensor.empty([0, 2])], 3);
    await expectTopK(got, { sims: new Float64Array(3).fill(-Infinity), indices: new Int32Array(3).fill(-1) });
  });

  it("all-equal similarities keep bank order (lower index first), across chunks", async () => {
    const [q, n, d, k] = [3, 40, 2, 17];
    const b = new Float32Array(n * d).fill(1);
    const got = knnTopK(Tensor.fromArray(new Float32Array(q * d).fill(1), [q, d]), Tensor.fromArray(b, [n, d]), k, { maxBindingBytes: 48 });
    const idx = await got.indices.dataInt();
    for (let i = 0; i < q; i++) expect(Array.from(idx.subarray(i * k, i * k + k))).toEqual(Array.from({ length: k }, (_, j) => j));
  });

  // maxBindingBytes 364: pieces of 256 bytes (9 rows); the 1-row part fits as it is, the others are copied.
  it("chunked banks (a list of tensors, copied in pieces) equal one pass; Q=130 k=256", async () => {
    const [q, d, k] = [130, 7, 256];
    const sizes = [50, 1, 263];
    const n = sizes.reduce((a, b) => a + b, 0);
    const x = ints(q * d, 5);
    const b = ints(n * d, 6);
    const parts: Tensor[] = [];
    let r0 = 0;
    for (const rows of sizes) {
      parts.push(Tensor.fromArray(b.subarray(r0 * d, (r0 + rows) * d), [rows, d]));
      r0 += rows;
    }
    const want = topKRef(similarityRef(x, b, d), q, n, k);
    const queries = Tensor.fromArray(x, [q, d]);
    await expectTopK(knnTopK(queries, parts, k, { maxBindingBytes: 364 }), want);
    await expectTopK(knnTopK(queries, Tensor.fromArray(b, [n, d]), k), want);
  });

  // Slices (the GPU plan; here forced): 5 slices of 21 rows, and 30 of 4 rows, shorter than the lists (k = 10),
  // so the merge meets empty entries; slices past the bank's end scan nothing.
  for (const [version, slices] of [["wide4x1", 5], ["reg16x4", 30], ["reg8x1", 200]] as [string, number][]) {
    it(`${version} in ${slices} slices: exact with ties, Q=37 N=101 D=5 k=10`, async () => {
      const [q, n, d, k] = [37, 101, 5, 10];
      const x = ints(q * d, 1);
      const b = ints(n * d, 2);
      const got = knnTopK(Tensor.fromArray(x, [q, d]), Tensor.fromArray(b, [n, d]), k, { version, slices });
      await expectTopK(got, topKRef(similarityRef(x, b, d), q, n, k));
    });
  }

  it("slices of chunked banks keep bank order on ties and equal one pass; Q=130 k=256", async () => {
    const [q, n, d] = [3, 40, 2];
    const ones = new Float32Array(n * d).fill(1);
    const equal = knnTopK(Tensor.fromArray(new Float32Array(q * d).fill(1), [q, d]), Tensor.fromArray(ones, [n, d]), 17, { maxBindingBytes: 48, slices: 3 });
    const idx = await equal.indices.dataInt();
    for (let i = 0; i < q; i++) expect(Array.from(idx.subarray(i * 17, i * 17 + 17))).toEqual(Array.from({ length: 17 }, (_, j) => j));
    const [q2, n2, d2, k2] = [130, 314, 7, 256];
    const x = ints(q2 * d2, 5);
    const b = ints(n2 * d2, 6);
    const got = knnTopK(Tensor.fromArray(x, [q2, d2]), [Tensor.fromArray(b.subarray(0, 50 * d2), [50, d2]), Tensor.fromArray(b.subarray(50 * d2), [n2 - 50, d2])], k2, {
      maxBindingBytes: 364,
      slices: 4,
    });
    await expectTopK(got, topKRef(similarityRef(x, b, d2), q2, n2, k2));
  });

  it("plans one slice on CPU drivers, and on GPUs enough to fill the device with slices of >= max(8K, 256) rows", () => {
    expect(knnSlices(256, 100, 200, "reg16x4")).toBe(1);
    expect(knnSlices(256, 1599, 200, "wide4x1")).toBe(1);
    if (runtime().gpu.isCpu) expect(knnSlices(256, 100_000, 200, "reg16x4")).toBe(1);
    else expect(knnSlices(256, 100_000, 200, "wide4x1")).toBe(62); // 100000 / 1600 rows
    expect(() => knnTopK(Tensor.fromArray([1], [1, 1]), Tensor.fromArray([1], [1, 1]), 1, { slices: 0 })).toThrow("knnTopK: expected slices >= 1, got 0");
  });

  it("normalize: +-1 features scaled by powers of two, exact with ties, D=16", async () => {
    const [q, n, d, k] = [29, 211, 16, 20];
    const x = signs(q, d, 8);
    const b = signs(n, d, 9);
    const got = knnTopK(Tensor.fromArray(x, [q, d]), Tensor.fromArray(b, [n, d]), k, { normalize: true, maxBindingBytes: 3200 });
    await expectTopK(got, topKRef(similarityRef(normalizeRows(x, d), normalizeRows(b, d), d), q, n, k));
  });

  for (const version of ["reg4x2", "reg8x1", "reg16x4"]) {
    it(`${version} normalize: random features, Q=70 N=1030 D=33 k=256, zero rows stay finite`, async () => {
      const [q, n, d, k] = [70, 1030, 33, 256];
      const x = randn(q * d, 10, 3);
      const b = randn(n * d, 11, 0.1);
      b.fill(0, 17 * d, 18 * d); // a zero row: norm clamped, similarity 0
      const got = knnTopK(Tensor.fromArray(x, [q, d]), Tensor.fromArray(b, [n, d]), k, { normalize: true, version });
      const s = similarityRef(normalizeRows(x, d), normalizeRows(b, d), d);
      const want = topKRef(s, q, n, k);
      const idx = await got.indices.dataInt();
      expectClose("sims", await got.sims.data(), want.sims, TOL);
      // The reference similarity of each returned index must be the reference similarity of its rank.
      const simOfIdx = Array.from(idx, (r, i) => (r < 0 ? NaN : s[Math.floor(i / k) * n + r]));
      expectClose("sim of returned index", simOfIdx, want.sims, TOL);
      for (let i = 0; i < q; i++) expect(new Set(idx.subarray(i * k, i * k + k)).size).toBe(k);
    });
  }

  it("rejects mismatched shapes and bad k, naming them", () => {
    const x = Tensor.fromArray(new Float32Array(6), [2, 3]);
    expect(() => knnTopK(x, Tensor.fromArray(new Float32Array(8), [2, 4]), 1)).toThrow(
      "knnTopK: expected bank (N, 3) f32 to match queries (2, 3), got f32 (2, 4)",
    );
    expect(() => knnTopK(x, x, 0)).toThrow("knnTopK: expected k >= 1, got 0");
    expect(() => knnTopK(x, x, 1, { version: "r4v2" })).toThrow('knn: expected one of reg4x2, reg8x1, reg2x4, wide4x1, reg16x4, got "r4v2"');
  });

  it("engine/ops knn has no backward: it refuses inputs that require grad, unless under noGrad", async () => {
    const x = Tensor.fromArray([1, 0, 0, 1], [2, 2]).requireGrad();
    const bank = Tensor.fromArray([0, 2, 3, 0, 1, 1], [3, 2]);
    expect(() => knn(x, bank, 1)).toThrow("knn: has no backward");
    const { indices } = noGrad(() => knn(x, [bank], 2, { normalize: true }));
    expect(Array.from(await indices.dataInt())).toEqual([1, 2, 0, 2]);
  });
});

// The workgroups of 8 (reg*) share each step's bank values through subgroupBroadcast where the adapter's subgroups
// are exactly 8 lanes, and load them in every lane elsewhere: the second way here. Exact cases, fused and
// full-matrix, normalized.
describe("knn with every lane loading the bank", () => {
  for (const version of KNN.versions) {
    it(`${version}: fused and full-matrix, exact with ties, Q=37 N=101 D=5 k=10`, () =>
      withoutLaneBroadcast(async () => {
        const [q, n, d, k] = [37, 101, 5, 10];
        const x = ints(q * d, 1);
        const b = ints(n * d, 2);
        const [xt, bt] = [Tensor.fromArray(x, [q, d]), Tensor.fromArray(b, [n, d])];
        await expectTopK(knnTopK(xt, bt, k, { version }), topKRef(similarityRef(x, b, d), q, n, k));
        expectClose("sims", await knnSimilarity(xt, bt, { version }).data(), similarityRef(x, b, d), EXACT);
      }));
  }
  it("normalize: +-1 features scaled by powers of two, exact with ties, D=16", () =>
    withoutLaneBroadcast(async () => {
      const [q, n, d, k] = [29, 211, 16, 20];
      const x = signs(q, d, 8);
      const b = signs(n, d, 9);
      const got = knnTopK(Tensor.fromArray(x, [q, d]), Tensor.fromArray(b, [n, d]), k, { normalize: true });
      await expectTopK(got, topKRef(similarityRef(normalizeRows(x, d), normalizeRows(b, d), d), q, n, k));
    }));
});

describe("knnSimilarity (the full matrix)", () => {
  for (const version of KNN.versions) {
    it(`${version}: exact, Q=67 N=101 D=9 in chunks of 7 rows`, async () => {
      const [q, n, d] = [67, 101, 9];
      const x = ints(q * d, 12);
      const b = ints(n * d, 13);
      const got = knnSimilarity(Tensor.fromArray(x, [q, d]), Tensor.fromArray(b, [n, d]), { version, maxBindingBytes: 360 });
      expect(got.shape).toEqual([q, n]);
      expectClose("sims", await got.data(), similarityRef(x, b, d), EXACT);
    });
  }

  it("refuses a matrix larger than one storage binding, asking to split the queries", () => {
    const n = Math.floor(runtime().gpu.limits.maxStorageBufferBindingSize / (8192 * 4)) + 1; // 4097 for 128 MiB
    const queries = Tensor.fromArray(new Float32Array(8192), [8192, 1]);
    const bank = Tensor.fromArray(new Float32Array(n), [n, 1]);
    expect(() => knnSimilarity(queries, bank)).toThrow(
      "knn: expected the similarity matrix (Q, N); split the queries to fit one storage binding",
    );
  });

  it("refuses a bank row wider than a copied piece, naming D and the piece", () => {
    const bank = Tensor.fromArray(new Float32Array(10), [2, 5]); // 40 bytes, over the limit: copied in pieces of 16
    expect(() => knnSimilarity(Tensor.fromArray(new Float32Array(5), [1, 5]), bank, { maxBindingBytes: 24 })).toThrow(
      "knn: expected a bank row within a copied piece of 16 bytes (the binding limit 24 rounded down to a power of 2), got D = 5, 20 bytes",
    );
  });

  it("normalize: cosine similarities, Q=1 N=1031 D=3", async () => {
    const [q, n, d] = [1, 1031, 3];
    const x = randn(q * d, 14);
    const b = randn(n * d, 15);
    const got = knnSimilarity(Tensor.fromArray(x, [q, d]), Tensor.fromArray(b, [n, d]), { normalize: true });
    expectClose("cosine", await got.data(), similarityRef(normalizeRows(x, d), normalizeRows(b, d), d), TOL);
  });
});
