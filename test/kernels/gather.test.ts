// gatherRows and scatterAddRows against test/ref/gather.ts. The gather moves words: exact (atol 0, rtol 0).
// The scatter sums in float32 in ascending m, as the reference does: exact too. The scatter is also checked as
// the gradient of sum(gather(x) * w) against float64 central differences (atol 1e-5, rtol 1e-5: sums of a few
// float32 values of w).
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { gatherRows, scatterAddRows } from "../../kernels/gather.js";
import { dot, expectClose, numericGrad, randn, useEngine } from "../helpers.js";
import { gatherRowsRef, scatterAddRowsRef } from "../ref/gather.js";

useEngine();

const EXACT = { atol: 0, rtol: 0 };
// Duplicates (5 three times, 12 twice) and unused rows (1, 2, 4, 6-11) of a 13-row table.
const INDEX = [12, 0, 5, 5, 12, 3, 5];
const R = 13;

describe("gatherRows", () => {
  for (const C of [1, 3, 4, 7, 64, 1030]) {
    for (const kind of ["Int32Array", "tensor"] as const) {
      it(`(${R}, ${C}) by ${kind} index`, async () => {
        const x = randn(R * C, C);
        const index = kind === "tensor" ? Tensor.fromArray(INDEX, [INDEX.length], "i32") : Int32Array.from(INDEX);
        const y = gatherRows(Tensor.fromArray(x, [R, C]), index);
        expect(y.shape).toEqual([INDEX.length, C]);
        expectClose("y", await y.data(), gatherRowsRef(x, C, INDEX), EXACT);
      });
    }
  }
  it("takes an index of any shape and gathers i32 tables", async () => {
    const x = Int32Array.from({ length: R * 3 }, (_, i) => (i * 2654435761) | 0);
    const y = gatherRows(Tensor.fromArray(x, [R, 3], "i32"), Tensor.fromArray([1, 12, 0, 7, 7, 3], [2, 3], "i32"));
    expect(y.shape).toEqual([2, 3, 3]);
    expect(y.dtype).toBe("i32");
    expect(Array.from(await y.dataInt())).toEqual(Array.from(gatherRowsRef(x, 3, [1, 12, 0, 7, 7, 3])));
  });
  it("an out-of-range Int32Array index throws; an out-of-range tensor index gathers zeros", async () => {
    const x = Tensor.fromArray(randn(R * 5, 1), [R, 5]);
    expect(() => gatherRows(x, Int32Array.from([0, 13]))).toThrow("gatherRows: expected indices in [0, 13), got index[1] = 13");
    expect(() => gatherRows(x, Int32Array.from([-1]))).toThrow("got index[0] = -1");
    const y = await gatherRows(x, Tensor.fromArray([13, -1, 2], [3], "i32")).data();
    expect(Array.from(y.subarray(0, 10))).toEqual(new Array(10).fill(0));
    expect(Array.from(y.subarray(10))).toEqual(Array.from((await x.data()).subarray(10, 15)));
  });
  it("handles an empty index", async () => {
    expect(gatherRows(Tensor.fromArray(randn(6, 1), [3, 2]), new Int32Array(0)).shape).toEqual([0, 2]);
  });
  it("spans a folded 2-D grid (more than 65535 workgroups)", async () => {
    const M = 4194400; // M rows of one word: 65538 workgroups
    const index = new Int32Array(M);
    for (let m = 0; m < M; m++) index[m] = (m * 7) % 3;
    const y = await gatherRows(Tensor.fromArray([10, 20, 30], [3, 1]), index).data();
    const want = new Float32Array(M);
    for (let m = 0; m < M; m++) want[m] = 10 * (index[m] + 1);
    expectClose("y", y, want, EXACT);
  });
});

describe("scatterAddRows", () => {
  for (const C of [1, 3, 4, 7, 64, 1030]) {
    it(`(${INDEX.length}, ${C}) into ${R} rows, duplicates summed, unused rows zero`, async () => {
      const dy = randn(INDEX.length * C, C + 100);
      const dx = scatterAddRows(Tensor.fromArray(dy, [INDEX.length, C]), Tensor.fromArray(INDEX, [INDEX.length], "i32"), R);
      expect(dx.shape).toEqual([R, C]);
      expectClose("dx", await dx.data(), scatterAddRowsRef(dy, C, INDEX, R), EXACT);
    });
  }
  it("many duplicates, large: 1500 positions into 1100 rows, deterministic", async () => {
    const M = 1500;
    const C = 5;
    const index = Int32Array.from({ length: M }, (_, m) => (m * m * 31 + 7) % 1100);
    const dy = randn(M * C, 42);
    const dyT = Tensor.fromArray(dy, [M, C]);
    const first = await scatterAddRows(dyT, index, 1100).data();
    expectClose("dx", first, scatterAddRowsRef(dy, C, index, 1100), EXACT);
    expectClose("dx again", await scatterAddRows(dyT, index, 1100).data(), first, EXACT);
  });
  it("is the gradient of sum(gatherRows(x) * w) (finite differences)", async () => {
    const C = 3;
    const x = randn(R * C, 1);
    const w = randn(INDEX.length * C, 2);
    const dx = await scatterAddRows(Tensor.fromArray(w, [INDEX.length, C]), Int32Array.from(INDEX), R).data();
    expectClose("dx", dx, numericGrad((v) => dot(gatherRowsRef(v, C, INDEX), w), x), { atol: 1e-5, rtol: 1e-5 });
  });
  it("takes an index of any shape; out-of-range tensor indices contribute nothing", async () => {
    const dy = randn(2 * 2 * 3, 3);
    const index = [4, -1, 9, 4];
    const dx = scatterAddRows(Tensor.fromArray(dy, [2, 2, 3]), Tensor.fromArray(index, [2, 2], "i32"), 5);
    expectClose("dx", await dx.data(), scatterAddRowsRef(dy, 3, index, 5), EXACT);
    expect(() => scatterAddRows(Tensor.fromArray(dy, [4, 3]), Int32Array.from([0, 5, 1, 2]), 5)).toThrow(
      "scatterAddRows: expected indices in [0, 5), got index[1] = 5",
    );
    expect(() => scatterAddRows(Tensor.fromArray(dy, [3, 4]), Int32Array.from([0, 1, 2, 3]), 5)).toThrow(
      "scatterAddRows: expected dy (4, C)",
    );
  });
  it("an empty index gives zeros", async () => {
    const dx = await scatterAddRows(Tensor.fromArray([], [0, 3]), new Int32Array(0), 2).data();
    expect(Array.from(dx)).toEqual([0, 0, 0, 0, 0, 0]);
  });
  it("spans a folded 2-D grid (more than 65535 workgroups)", async () => {
    const rows = 4194400; // rows of one column: 65538 workgroups
    const index = Int32Array.from([rows - 1, 0, 123456, rows - 1]);
    const dx = await scatterAddRows(Tensor.fromArray([1, 2, 3, 4], [4, 1]), index, rows).data();
    const want = new Float32Array(rows);
    want[0] = 2;
    want[123456] = 3;
    want[rows - 1] = 5;
    expectClose("dx", dx, want, EXACT);
  });
});
