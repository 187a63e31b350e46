// layernormForward / layernormBackward, every version, against test/ref/layernorm.ts (float64) and float64
// central finite differences. Tolerances (atol + rtol*|ref|): y, mean, rstd, dx 2e-5 + 1e-4 (rstd of a row
// with ~zero variance is 1/sqrt(eps) = 1000, so rstd gets rtol only); dgamma, dbeta sum up to 4100 rows of
// O(1) terms: 1e-4 + 1e-4 (on CPU drivers up to 4096 rows in one pass, 4100 in two, kernels/layernorm.ts); finite differences 1e-4 + 1e-3. dx = rstd * (O(1) terms), so their f32 rounding
// comes back times rstd: a width-1 row (rstd 1000, exact dx 0) gave 2.2e-5 on an H200 (most likely its compiler
// contracting g - mean(g) into an fma). dx's atol grows with the largest rstd past 100.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { ROWS } from "../../kernels/registry.js";
import { layernormBackward, layernormForward } from "../../kernels/layernorm.js";
import { dot, expectClose, numericGrad, randn, useEngine, withoutLaneBroadcast } from "../helpers.js";
import { layernorm, layernormBackward as layernormBackwardRef } from "../ref/layernorm.js";

useEngine();

const EPS = 1e-6;
const TOL = { atol: 2e-5, rtol: 1e-4 };
const PARAM_TOL = { atol: 1e-4, rtol: 1e-4 };
const FD_TOL = { atol: 1e-4, rtol: 1e-3 };
const ALL = { dx: true, dgamma: true, dbeta: true };
const SHAPES = [[1, 1], [3, 7], [5, 197], [33, 384], [1030, 65], [2, 3, 1031], [9, 1], [4100, 3]];

const rowsC = (shape: number[]): [number, number] => {
  const C = shape[shape.length - 1];
  return [shape.reduce((a, b) => a * b, 1) / C, C];
};
const f32 = (a: ArrayLike<number>, shape: number[]) => Tensor.fromArray(a, shape);

for (const version of ROWS.versions) {
  describe(`layernorm ${version}`, () => {
    for (const shape of SHAPES) {
      it(`forward and backward with gamma and beta (${shape})`, async () => {
        const [rows, C] = rowsC(shape);
        const x = randn(rows * C, rows * 31 + C, 2).map((v, i) => v + (i % 3)); // rows with a nonzero mean
        const gamma = randn(C, 5, 1);
        const beta = randn(C, 6, 1);
        const dy = randn(rows * C, 8, 1);
        const xt = f32(x, shape);
        const gt = f32(gamma, [C]);
        const { y, mean, rstd } = layernormForward(xt, gt, f32(beta, [C]), EPS, version);
        expect(y.shape).toEqual(shape);
        expect(mean.shape).toEqual([rows]);
        const ref = layernorm(x, gamma, beta, rows, C, EPS);
        expectClose("y", await y.data(), ref.y, TOL);
        expectClose("mean", await mean.data(), ref.mean, TOL);
        expectClose("rstd", await rstd.data(), ref.rstd, { atol: 0, rtol: TOL.rtol });
        const g = layernormBackward(f32(dy, shape), xt, gt, mean, rstd, ALL, version);
        const gRef = layernormBackwardRef(dy, x, gamma, rows, C, EPS);
        expect(g.dx!.shape).toEqual(shape);
        const dxTol = { ...TOL, atol: TOL.atol * Math.max(1, ...ref.rstd.map((r) => r / 100)) };
        expectClose("dx", await g.dx!.data(), gRef.dx, dxTol);
        expectClose("dgamma", await g.dgamma!.data(), gRef.dgamma, PARAM_TOL);
        expectClose("dbeta", await g.dbeta!.data(), gRef.dbeta, PARAM_TOL);
      });
    }

    it("adds dxAdd into dx in the same pass (5, 197)", async () => {
      const [rows, C] = [5, 197];
      const x = randn(rows * C, 71, 1.5);
      const gamma = randn(C, 72, 1);
      const dy = randn(rows * C, 73, 1);
      const add = randn(rows * C, 74, 1);
      const xt = f32(x, [rows, C]);
      const gt = f32(gamma, [C]);
      const { mean, rstd } = layernormForward(xt, gt, undefined, EPS, version);
      const g = layernormBackward(f32(dy, [rows, C]), xt, gt, mean, rstd, { ...ALL, dxAdd: f32(add, [rows, C]) }, version);
      const gRef = layernormBackwardRef(dy, x, gamma, rows, C, EPS);
      expectClose("dx + dxAdd", await g.dx!.data(), gRef.dx.map((v, i) => v + add[i]), TOL);
      expectClose("dgamma", await g.dgamma!.data(), gRef.dgamma, PARAM_TOL);
    });

    it("without gamma and beta, and with only one of them", async () => {
      const [rows, C] = [7, 45];
      const x = randn(rows * C, 41, 3);
      const p = randn(C, 42, 1);
      for (const [gamma, beta] of [[undefined, undefined], [p, undefined], [undefined, p]]) {
        const { y, mean, rstd } = layernormForward(f32(x, [rows, C]), gamma && f32(gamma, [C]), beta && f32(beta, [C]), EPS, version);
        expectClose(`y (gamma ${!!gamma}, beta ${!!beta})`, await y.data(), layernorm(x, gamma, beta, rows, C, EPS).y, TOL);
        if (!gamma) {
          const dy = randn(rows * C, 43, 1);
          const g = layernormBackward(f32(dy, [rows, C]), f32(x, [rows, C]), undefined, mean, rstd, { dx: true, dgamma: false, dbeta: true }, version);
          const gRef = layernormBackwardRef(dy, x, undefined, rows, C, EPS);
          expect(g.dgamma).toBeUndefined();
          expectClose("dx (no gamma)", await g.dx!.data(), gRef.dx, TOL);
          expectClose("dbeta (no gamma)", await g.dbeta!.data(), gRef.dbeta, PARAM_TOL);
        }
      }
    });

    it("uses eps: a constant row normalises to beta with rstd 1/sqrt(eps)", async () => {
      const C = 10;
      const beta = randn(C, 3, 1);
      const { y, rstd } = layernormForward(f32(new Float32Array(C).fill(4.5), [1, C]), undefined, f32(beta, [C]), 1e-4, version);
      expectClose("y", await y.data(), beta, { atol: 1e-6, rtol: 0 });
      expectClose("rstd", await rstd.data(), [100], { atol: 0, rtol: 1e-5 });
    });

    // A mean 1e3 times the spread: E[x^2] - E[x]^2 would lose all digits of the variance in f32 (errors ~50%);
    // the two-pass variance keeps y within the rounding of x - mean (~ 1e3 * 2^-24 * sqrt(C) relative).
    it("keeps precision for rows with a large mean", async () => {
      const [rows, C] = [6, 384];
      const x = randn(rows * C, 51, 1).map((v) => 1e3 + v);
      const { y } = layernormForward(f32(x, [rows, C]), undefined, undefined, EPS, version);
      expectClose("y", await y.data(), layernorm(x, undefined, undefined, rows, C, EPS).y, { atol: 2e-3, rtol: 0 });
    });

    it("backward matches finite differences of sum(layernorm(x) * w) in x, gamma and beta", async () => {
      const [rows, C] = [3, 6];
      const x = randn(rows * C, 61, 1.5);
      const gamma = randn(C, 62, 1);
      const beta = randn(C, 63, 1);
      const w = randn(rows * C, 64, 1);
      const loss = (xv: ArrayLike<number>, gv: ArrayLike<number>, bv: ArrayLike<number>) =>
        dot(layernorm(xv, gv, bv, rows, C, EPS).y, w);
      const xt = f32(x, [rows, C]);
      const gt = f32(gamma, [C]);
      const { mean, rstd } = layernormForward(xt, gt, f32(beta, [C]), EPS, version);
      const g = layernormBackward(f32(w, [rows, C]), xt, gt, mean, rstd, ALL, version);
      expectClose("dx", await g.dx!.data(), numericGrad((v) => loss(v, gamma, beta), x), FD_TOL);
      expectClose("dgamma", await g.dgamma!.data(), numericGrad((v) => loss(x, v, beta), gamma), FD_TOL);
      expectClose("dbeta", await g.dbeta!.data(), numericGrad((v) => loss(x, gamma, v), beta), FD_TOL);
    });
  });
}

// On CPU drivers (version lane), where the adapter's subgroups are exactly 8 lanes, gamma and beta come 8 columns at
// a time by subgroupShuffle in the forward and backward passes, and the rows' mean and rstd 8 rows at a time in the
// dgamma/dbeta pass; elsewhere every lane loads them. Both ways: columns and rows past a run of 8, one column, rows
// past the workgroup's 64, with gamma and beta, dxAdd.
describe("layernorm lane, with subgroup shuffles or every lane loading", () => {
  for (const shuffled of [true, false]) {
    for (const shape of [[1, 1], [3, 7], [37, 13], [1030, 65]]) {
      const check = async () => {
        const [rows, C] = rowsC(shape);
        const x = randn(rows * C, rows + C, 2);
        const [gamma, beta] = [randn(C, 5, 1), randn(C, 6, 1)];
        const [dy, add] = [randn(rows * C, 8, 1), randn(rows * C, 9, 1)];
        const xt = f32(x, shape);
        const { y, mean, rstd } = layernormForward(xt, f32(gamma, [C]), f32(beta, [C]), EPS, "lane");
        const ref = layernorm(x, gamma, beta, rows, C, EPS);
        expectClose("y", await y.data(), ref.y, TOL);
        const g = layernormBackward(f32(dy, shape), xt, f32(gamma, [C]), mean, rstd, { ...ALL, dxAdd: f32(add, shape) }, "lane");
        const gRef = layernormBackwardRef(dy, x, gamma, rows, C, EPS);
        const dxTol = { ...TOL, atol: TOL.atol * Math.max(1, ...ref.rstd.map((r) => r / 100)) };
        expectClose("dx", await g.dx!.data(), gRef.dx.map((v, i) => v + add[i]), dxTol);
        expectClose("dgamma", await g.dgamma!.data(), gRef.dgamma, PARAM_TOL);
        expectClose("dbeta", await g.dbeta!.data(), gRef.dbeta, PARAM_TOL);
      };
      it(`${shuffled ? "shuffled" : "every lane"} (${shape})`, () => (shuffled ? check() : withoutLaneBroadcast(check)));
    }
  }
});

// Where subgroups are exactly 8 lanes and C % 4 == 0 up to 128 columns, the lane kernels hold their rows in
// registers (layernorm.ts registerRow): the forward's values are the loop version's to the bit, the backward's
// within rounding (atol 1e-6, rtol 1e-6 against it; observed: an ulp or two), with and without gamma and beta (and
// dxAdd); C / 4 below, at and past the 8 lanes that share gamma's and beta's loads; rows past the workgroup's 64.
describe("layernorm lane with its rows in registers", () => {
  for (const shape of [[1, 4], [3, 12], [37, 32], [70, 64], [9, 36], [5, 128]]) {
    for (const params of ["both", "gamma", "none"] as const) {
      it(`equals the loop versions and the reference (${shape}, ${params})`, async () => {
        const [rows, C] = rowsC(shape);
        const x = randn(rows * C, rows + C, 2).map((v, i) => v + (i % 5));
        const [dy, add] = [randn(rows * C, 8, 1), randn(rows * C, 9, 1)];
        const gamma = params !== "none" ? randn(C, 5, 1) : undefined;
        const beta = params === "both" ? randn(C, 6, 1) : undefined;
        const run = async () => {
          const xt = f32(x, shape);
          const gt = gamma && f32(gamma, [C]);
          const out = layernormForward(xt, gt, beta && f32(beta, [C]), EPS, "lane");
          const need = { dx: true, dgamma: false, dbeta: false };
          const g = layernormBackward(f32(dy, shape), xt, gt, out.mean, out.rstd, need, "lane");
          const gAdd = layernormBackward(f32(dy, shape), xt, gt, out.mean, out.rstd, { ...need, dxAdd: f32(add, shape) }, "lane");
          return [out.y, out.mean, out.rstd, g.dx!, gAdd.dx!].map((t) => t.data());
        };
        const registers = await Promise.all(await run());
        let loops = registers;
        await withoutLaneBroadcast(async () => void (loops = await Promise.all(await run())));
        for (let i = 0; i < 3; i++) expect(registers[i]).toEqual(loops[i]); // y, mean, rstd
        for (let i = 3; i < 5; i++) expectClose("dx against the loops", registers[i], loops[i], { atol: 1e-6, rtol: 1e-6 });
        const [g1, b0] = [gamma ?? new Array(C).fill(1), beta ?? new Array(C).fill(0)];
        const ref = layernorm(x, g1, b0, rows, C, EPS);
        expectClose("y", registers[0], ref.y, TOL);
        const dxTol = { ...TOL, atol: TOL.atol * Math.max(1, ...ref.rstd.map((r) => r / 100)) };
        expectClose("dx", registers[3], layernormBackwardRef(dy, x, g1, rows, C, EPS).dx, dxTol);
      });
    }
  }
});

describe("layernorm outputs and errors", () => {
  it("computes only the gradients asked for", async () => {
    const [rows, C] = [4, 3];
    const x = f32(randn(rows * C, 1), [rows, C]);
    const gamma = f32(randn(C, 2), [C]);
    const { mean, rstd } = layernormForward(x, gamma, undefined);
    const g = layernormBackward(f32(randn(rows * C, 3), [rows, C]), x, gamma, mean, rstd, { dx: false, dgamma: true, dbeta: false });
    expect(g.dx).toBeUndefined();
    expect(g.dbeta).toBeUndefined();
    expect(g.dgamma!.shape).toEqual([C]);
  });

  it("refuses dxAdd of another size or without dx", () => {
    const x = f32(randn(12, 1), [4, 3]);
    const { mean, rstd } = layernormForward(x, undefined, undefined);
    const need = { dx: true, dgamma: false, dbeta: false };
    expect(() => layernormBackward(x, x, undefined, mean, rstd, { ...need, dxAdd: f32(randn(11, 2), [11]) })).toThrow(
      "layernorm backward: expected dxAdd f32 of 12 elements with dx needed, got Tensor(",
    );
    expect(() => layernormBackward(x, x, undefined, mean, rstd, { ...need, dx: false, dxAdd: x })).toThrow("without dx");
  });

  it("gives zero dgamma and dbeta over zero rows", async () => {
    const x = f32([], [0, 4]);
    const gamma = f32([1, 2, 3, 4], [4]);
    const { y, mean, rstd } = layernormForward(x, gamma, undefined);
    expect(y.shape).toEqual([0, 4]);
    expect(mean.shape).toEqual([0]);
    const g = layernormBackward(x, x, gamma, mean, rstd, ALL);
    expect(g.dx!.shape).toEqual([0, 4]);
    expect(Array.from(await g.dgamma!.data())).toEqual([0, 0, 0, 0]);
    expect(Array.from(await g.dbeta!.data())).toEqual([0, 0, 0, 0]);
  });

  it("rejects bad dtypes and shapes, naming the op and shapes", () => {
    const x = f32(new Float32Array(24), [2, 3, 4]);
    const stat = f32(new Float32Array(6), [6]);
    expect(() => layernormForward(Tensor.fromArray(new Int32Array(4), [4], "i32"), undefined, undefined)).toThrow(
      "layernorm: expected x f32, got i32",
    );
    expect(() => layernormForward(x, f32(new Float32Array(3), [3]), undefined)).toThrow("layernorm: expected gamma (4), got (3)");
    expect(() => layernormForward(x, undefined, Tensor.fromArray(new Int32Array(4), [4], "i32"))).toThrow(
      "layernorm: expected beta f32, got i32",
    );
    expect(() => layernormBackward(f32(new Float32Array(24), [6, 4]), x, undefined, stat, stat, ALL)).toThrow(
      "layernorm backward: expected dy of x's shape (2, 3, 4), got (6, 4)",
    );
    expect(() => layernormBackward(x, x, undefined, f32(new Float32Array(2), [2]), stat, ALL)).toThrow(
      "layernorm backward: expected mean f32 (6), got f32 (2)",
    );
    expect(() => layernormBackward(x, x, undefined, stat, stat, ALL)).toThrow(
      "layernorm backward: expected gamma when dgamma is needed, got none",
    );
  });
});
