// Matmul kernels (every version, every layout) against the float64 CPU reference in test/ref/matmul.ts.
// Tolerance: atol = rtol = 1e-4 * sqrt(K): f32 rounding error of a K-term dot product of O(1) values grows
// like sqrt(K) (the reference accumulates in float64).
import { beforeEach, describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { gatherOuter, matmulForward, splitK, type MatmulOptions } from "../../kernels/matmul.js";
import { im2colIndex } from "../../kernels/im2col.js";
import { MATMUL, MATMUL_TILINGS, type MatmulShape, type MatmulVersion, type Precision, mmaI8MaxK } from "../../kernels/registry.js";
import { runtime } from "../../engine/runtime.js";
import { sgdUpdates } from "../../kernels/optim.js";
import { traceDry } from "../../engine/trace.js";
import { asGpu, expectClose, randu, recordKernels, skipWithoutF16, useEngine, withoutLaneBroadcast } from "../helpers.js";
import { matmulRef, transpose } from "../ref/matmul.js";
import { gelu, geluGrad } from "../ref/elementwise.js";
import { layernorm as layernormRef } from "../ref/layernorm.js";

useEngine();

const tol = (K: number) => ({ atol: 1e-4 * Math.sqrt(Math.max(K, 1)), rtol: 1e-4 * Math.sqrt(Math.max(K, 1)) });

interface Shape {
  batch: number[]; // batch dims of a (and of b unless shared)
  M: number;
  K: number;
  N: number;
  sharedB: boolean;
}
const shape = (M: number, K: number, N: number, batch: number[] = [], sharedB = true): Shape => ({ batch, M, K, N, sharedB });
const SHAPES: Shape[] = [
  shape(1, 1, 1),
  shape(1, 37, 1),
  shape(1, 5, 70), // M = 1
  shape(70, 5, 1), // N = 1
  shape(13, 1, 9), // K = 1
  shape(3, 0, 5), // K = 0: y = 0
  shape(7, 13, 5),
  shape(65, 127, 33),
  shape(9, 19, 36), // N % 4 == 0 (vec4 loads of b), not a multiple of the tile
  shape(17, 8, 260), // N % 4 == 0 and more than two column tiles
  shape(11, 6, 7, [3]), // 3-D a, 2-D b
  shape(5, 9, 12, [2, 3], false), // 4-D a, 4-D b
  shape(6, 20, 10, [3], false), // 3-D x 3-D
  shape(68, 36, 132, [2], false), // M, K, N % 4 == 0 (tiled*vec and mma load vec4s in every layout), past the tiles
];
// K * N > 2^18: regm packs a transposed b here; below, it reads a batched or skinny (N or K <= 16) b in place and
// packs a shared one (a linear layer's weight)
const LARGE = shape(1030, 257, 1031);
const LAYOUTS = [
  { transA: false, transB: false },
  { transA: true, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: true },
];
const layoutName = (l: MatmulOptions) => (l.transA ? "aT" : "a") + (l.transB ? "·bT" : "·b");

// Logical operands, the float64 reference, and the operands stored in each layout; built once per shape.
interface Data {
  a: Float32Array; // (batch, M, K)
  b: Float32Array; // (bBatch, K, N)
  y: Float64Array; // (batch, M, N)
}
const cache = new Map<Shape, Data>();
function data(s: Shape): Data {
  let d = cache.get(s);
  if (!d) {
    const batch = s.batch.reduce((x, y) => x * y, 1);
    const a = randu(batch * s.M * s.K, s.M * 1000 + s.K);
    const b = randu((s.sharedB ? 1 : batch) * s.K * s.N, s.N * 1000 + s.K + 1);
    d = { a, b, y: matmulRef(a, b, { batch, M: s.M, K: s.K, N: s.N, sharedB: s.sharedB }) };
    cache.set(s, d);
  }
  return d;
}

function operands(s: Shape, l: MatmulOptions): [Tensor, Tensor] {
  const { a, b } = data(s);
  const batch = s.batch.reduce((x, y) => x * y, 1);
  const bBatch = s.sharedB ? [] : s.batch;
  const at = l.transA
    ? Tensor.fromArray(transpose(a, batch, s.M, s.K), [...s.batch, s.K, s.M])
    : Tensor.fromArray(a, [...s.batch, s.M, s.K]);
  const bt = l.transB
    ? Tensor.fromArray(transpose(b, s.sharedB ? 1 : batch, s.K, s.N), [...bBatch, s.N, s.K])
    : Tensor.fromArray(b, [...bBatch, s.K, s.N]);
  return [at, bt];
}

const label = (s: Shape) => `${s.batch.length ? `[${s.batch.join(",")}]x` : ""}${s.M}x${s.K}x${s.N}${s.sharedB ? "" : " (batched b)"}`;

// The mma versions run where the adapter lists f32 x f32 -> f32 subgroup matrices (Apple GPUs), the int8 ones where
// it lists i8 x i8 -> i32 (NVIDIA's through Dawn), and are skipped elsewhere, saying why.
const unavailable = (version: MatmulVersion, inputs: Precision) =>
  MATMUL.unavailable!(version, { M: 1, K: 1, N: 1, transA: false, transB: false, batch: 1, inputs }, runtime().gpu);
describe.each([...MATMUL.versions])("matmul %s", (version) => {
  // The int8 versions multiply only products of precision "int8" (inputs "int8"), within 2^-17 K max|a| max|b|.
  const inputs = MATMUL_TILINGS[version].kind === "mmai8" ? "int8" : "f32";
  beforeEach((ctx) => {
    const why = unavailable(version, inputs);
    ctx.skip(why !== undefined, why);
  });
  for (const l of LAYOUTS) {
    for (const s of [...SHAPES, LARGE]) {
      it(`${layoutName(l)} ${label(s)}`, async () => {
        const [a, b] = operands(s, l);
        const y = matmulForward(a, b, { ...l, version, inputs });
        expect(y.shape).toEqual([...s.batch, s.M, s.N]);
        expectClose(`y (${version} ${layoutName(l)} ${label(s)})`, await y.data(), data(s).y, tol(s.K));
        for (const t of [a, b, y]) t.dispose();
      });
    }
  }

  // rowSums (sum_k op(a)[m, k], a linear layer's bias gradient beside dzᵀ·x): in the kernel for reg* and tiled*, by a
  // reduce for mma*; rows past a tile edge, a batch, an empty k.
  for (const [l, s] of [[LAYOUTS[1], shape(65, 127, 33)], [LAYOUTS[2], shape(11, 6, 7, [3])], [LAYOUTS[0], shape(3, 0, 5)]] as const) {
    it(`rowSums ${layoutName(l)} ${label(s)}`, async () => {
      const [a, b] = operands(s, l);
      const batch = s.batch.reduce((x, y) => x * y, 1);
      const rowSums = Tensor.empty([...s.batch, s.M]);
      const y = matmulForward(a, b, { ...l, version, inputs, rowSums });
      expectClose("y", await y.data(), data(s).y, tol(s.K));
      const logical = data(s).a; // (batch, M, K)
      const want = Array.from({ length: batch * s.M }, (_, r) => logical.slice(r * s.K, (r + 1) * s.K).reduce((x, v) => x + v, 0));
      expectClose("rowSums", await rowSums.data(), want, tol(s.K));
    });
  }

  // Every epilogue combination on small batched shapes, for the first version (reg4x8, the cheapest to compile:
  // each combination is a pipeline); the others get the full combination only, since one generator writes every
  // version's epilogue. Two shapes: N % 4 != 0 (the reg versions store y a column at a time) and N % 4 == 0 (they
  // store y, and read bias, preact and residual, as vec4s).
  const full = version === MATMUL.versions[0];
  for (const E of [shape(7, 13, 9, [2]), shape(7, 13, 12, [2])]) {
    const N = `N=${E.N}`;
    for (const bias of full ? [false, true] : [true]) {
      for (const act of full ? ["none", "gelu", "gelu+preact"] : ["gelu+preact"]) {
        for (const residual of full ? [false, true] : [true]) {
          it(`epilogue ${N} bias=${bias} ${act} residual=${residual}`, async () => {
            const [a, b] = operands(E, {});
            const n = 2 * E.M * E.N;
            const biasData = randu(E.N, 7, -2, 2);
            const resData = randu(n, 8);
            const opts: MatmulOptions = { version, inputs, gelu: act !== "none" };
            if (bias) opts.bias = Tensor.fromArray(biasData, [E.N]);
            if (act === "gelu+preact") opts.preact = Tensor.empty([2, E.M, E.N]);
            if (residual) opts.residual = Tensor.fromArray(resData, [2, E.M, E.N]);
            const y = await matmulForward(a, b, opts).data();
            const z = data(E).y.map((v, i) => v + (bias ? biasData[i % E.N] : 0));
            const want = z.map((v, i) => (act === "none" ? v : gelu(v)) + (residual ? resData[i] : 0));
            expectClose("y", y, want, tol(E.K));
            if (opts.preact) expectClose("preact", await opts.preact.data(), z, tol(E.K));
          });
        }
      }
    }

    // GELU's backward through a saved preactivation (the incoming gradient's product times gelu'), for every version
    // and with a transposed a; preactivations over [-4, 4], where gelu' runs from ~0 past 1 and back.
    for (const l of [LAYOUTS[0], LAYOUTS[1]]) {
      it(`${N}: dgelu ${layoutName(l)}`, async () => {
        const [a, b] = operands(E, l);
        const pre = randu(2 * E.M * E.N, 12, -4, 4);
        const y = matmulForward(a, b, { ...l, version, inputs, dgelu: Tensor.fromArray(pre, [2, E.M, E.N]) });
        expectClose("y", await y.data(), data(E).y.map((v, i) => v * geluGrad(pre[i])), tol(E.K));
      });
    }

    it(`${N}: out + accumulate adds into out; out alone overwrites`, async () => {
      const [a, b] = operands(E, { transB: true });
      const old = randu(2 * E.M * E.N, 9);
      const out = Tensor.fromArray(old, [2, E.M, E.N]);
      expect(matmulForward(a, b, { transB: true, out, accumulate: true, version, inputs })).toBe(out);
      expectClose("out += a·b", await out.data(), data(E).y.map((v, i) => v + old[i]), tol(E.K));
      matmulForward(a, b, { transB: true, out, version, inputs });
      expectClose("out = a·b", await out.data(), data(E).y, tol(E.K));
    });

    if (full) it(`${N}: a residual that is out itself accumulates`, async () => {
      const [a, b] = operands(E, {});
      const old = randu(2 * E.M * E.N, 10);
      const out = Tensor.fromArray(old, [2, E.M, E.N]);
      const biasData = randu(E.N, 11);
      matmulForward(a, b, { out, residual: out, bias: Tensor.fromArray(biasData, [E.N]), version, inputs });
      expectClose("out", await out.data(), data(E).y.map((v, i) => v + biasData[i % E.N] + old[i]), tol(E.K));
    });
  }
});

// Mixed precision (inputs "f16": a and b rounded to f16, products accumulated in f32) against the same float64
// reference of the f32 inputs. Tolerance: atol = rtol = 2e-3 * sqrt(K). WGSL may round an input to either
// neighbouring half (relative error up to 2^-10 each), so a product of O(1) values is off by up to ~2^-9 and K of them
// with random signs by ~2^-9 * sqrt(K); an indexing or conversion error is O(1). Every version, every layout, shapes
// with edges, N % 4 != 0 and == 0, batched and shared b; the epilogue and rowSums on one shape.
const tolF16 = (K: number) => ({ atol: 2e-3 * Math.sqrt(Math.max(K, 1)), rtol: 2e-3 * Math.sqrt(Math.max(K, 1)) });
// Every layout on one shape; the linear layer's (a·bT) on the others (each case a pipeline to compile).
const F16_CASES = [
  ...LAYOUTS.map((l) => [l, shape(65, 127, 33)] as const),
  ...[shape(11, 6, 7, [3]), shape(5, 9, 12, [2, 3], false)].map((s) => [LAYOUTS[2], s] as const),
];
// All skipped where the adapter lacks shader-f16. The mma versions run where the adapter has f16 x f16 -> f32
// subgroup matrices and are skipped elsewhere (the CPU driver); on such adapters they also take a shape of several
// 128 x 128 tiles with K past two slabs.
describe.each([...MATMUL.versions])("matmul %s, f16 inputs", (version) => {
  beforeEach((ctx) => {
    skipWithoutF16(ctx);
    const why = unavailable(version, "f16");
    ctx.skip(why !== undefined, why);
  });
  const cases = MATMUL_TILINGS[version].kind === "mma" ? [...F16_CASES, ...LAYOUTS.map((l) => [l, shape(300, 77, 257, [2])] as const)] : F16_CASES;
  for (const [l, s] of cases) {
    it(`${layoutName(l)} ${label(s)}`, async () => {
      const [a, b] = operands(s, l);
      const y = matmulForward(a, b, { ...l, version, inputs: "f16" });
      expectClose(`y (${version} f16 ${layoutName(l)} ${label(s)})`, await y.data(), data(s).y, tolF16(s.K));
      for (const t of [a, b, y]) t.dispose();
    });
  }
  const E = shape(7, 13, 12, [2]);
  it("epilogue: bias, gelu, preact, residual in f32 after the f16 product; rowSums", async () => {
    const [a, b] = operands(E, { transB: true });
    const biasData = randu(E.N, 7, -2, 2);
    const resData = randu(2 * E.M * E.N, 8);
    const preact = Tensor.empty([2, E.M, E.N]);
    const opts: MatmulOptions = { version, transB: true, inputs: "f16", gelu: true, preact, bias: Tensor.fromArray(biasData, [E.N]) };
    opts.residual = Tensor.fromArray(resData, [2, E.M, E.N]);
    const y = await matmulForward(a, b, opts).data();
    const z = data(E).y.map((v, i) => v + biasData[i % E.N]);
    expectClose("y", y, z.map((v, i) => gelu(v) + resData[i]), tolF16(E.K));
    expectClose("preact", await preact.data(), z, tolF16(E.K));
    const rowSums = Tensor.empty([2, E.M]);
    matmulForward(a, b, { version, transB: true, inputs: "f16", rowSums });
    const want = Array.from({ length: 2 * E.M }, (_, r) => data(E).a.slice(r * E.K, (r + 1) * E.K).reduce((x, v) => x + v, 0));
    expectClose("rowSums", await rowSums.data(), want, tolF16(E.K));
  });
  // The inputs really are halves: 1 + 2^-20 is no f16 (neighbours 1 and 1 + 2^-10), so the product of it and 1
  // comes out as one of those, where f32 inputs keep it.
  it("rounds its inputs to f16", async () => {
    const x = 1 + 2 ** -20;
    const a = Tensor.fromArray([x, x, x, x], [2, 2]);
    const b = Tensor.fromArray([1, 0, 0, 1], [2, 2]);
    const [y16] = await matmulForward(a, b, { version, inputs: "f16" }).data();
    expect([1, 1 + 2 ** -10]).toContain(y16);
    // f32 through the same version where it takes f32 (an mma version may not), else the default.
    const f32Version = unavailable(version, "f32") ? undefined : version;
    expect((await matmulForward(a, b, { version: f32Version }).data())[0]).toBe(Math.fround(x));
  });
  // The reg and tiled versions round by integer operations (kernels/matmul-frame.ts h16), exactly as IEEE's round to
  // nearest, ties to even (f16Round); the mma versions convert as WGSL does, to either neighbour (not tested here).
  const HARD = [1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -12), 65504, 65519, 65520, -70000, 1e-6, -3e-8, 2 ** -25, 3 * 2 ** -25, 6.1e-5, 0.1, -1234.5678, 0];
  it.skipIf(MATMUL_TILINGS[version].kind === "mma")("rounds a and b to the nearest f16, ties to even, subnormals and overflow alike", async () => {
    const column = Tensor.fromArray(HARD, [HARD.length, 1]);
    const row = Tensor.fromArray(HARD, [1, HARD.length]);
    const one = Tensor.fromArray([1], [1, 1]);
    const want = HARD.map((x) => f16Round(Math.fround(x)));
    expect(Array.from(await matmulForward(column, one, { version, inputs: "f16" }).data())).toEqual(want);
    expect(Array.from(await matmulForward(one, row, { version, inputs: "f16" }).data())).toEqual(want);
    for (const t of [column, row, one]) t.dispose();
  });
});

// Precision int8x2: the int8 versions with 2 slices, each result within 2^-11 K max|a[m, :]| max|b[:, n]| of the
// exact product (kernels/int8-slices.ts), which for O(1) values lies within f16 inputs' tolerance (their relative
// error per input is 2^-11, at most 2^-10). Run where the adapter lists i8 x i8 -> i32, skipped elsewhere.
describe.each(MATMUL.versions.filter((v) => MATMUL_TILINGS[v].kind === "mmai8"))("matmul %s, precision int8x2", (version) => {
  beforeEach((ctx) => {
    const why = unavailable(version, "int8x2");
    ctx.skip(why !== undefined, why);
  });
  for (const [l, s] of [...F16_CASES, ...LAYOUTS.map((l) => [l, shape(300, 77, 257, [2])] as const)]) {
    it(`${layoutName(l)} ${label(s)}`, async () => {
      const [a, b] = operands(s, l);
      const y = matmulForward(a, b, { ...l, version, inputs: "int8x2" });
      expectClose(`y (${version} int8x2 ${layoutName(l)} ${label(s)})`, await y.data(), data(s).y, tolF16(s.K));
      for (const t of [a, b, y]) t.dispose();
    });
  }
});

// x rounded to the nearest f16 (to nearest, ties to even), from IEEE 754's definition: 11 significant bits in the
// normal range, multiples of 2^-24 below 2^-14, infinity past 65504 (from 65520 on, which would round to 2^16).
function f16Round(x: number): number {
  const a = Math.abs(x);
  const step = a < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(a)) - 10);
  const q = a / step;
  const even = Math.floor(q) % 2 === 0;
  const r = (q - Math.floor(q) === 0.5 ? (even ? Math.floor(q) : Math.ceil(q)) : Math.round(q)) * step;
  return Math.sign(x) * (r > 65504 ? Infinity : r) || 0;
}

// The reg versions share what their 8 lanes would load alike through subgroupBroadcast where the adapter's
// subgroups are all 8 wide (llvmpipe), and load it in every lane elsewhere: both ways, every layout, a's rows and
// b's columns past the tile edges, bScalars (regm reading a small transposed b in place), rowSums and f16 inputs.
describe("matmul reg: values shared by subgroupBroadcast, or loaded by every lane", () => {
  const REG = MATMUL.versions.filter((v) => MATMUL_TILINGS[v].kind === "reg");
  const keys = (run: () => void) => recordKernels(run).kernels.flatMap((k) => (k.name === "matmul" ? [k.key] : []));
  for (const broadcast of [true, false]) {
    const name = broadcast ? "broadcast" : "every lane";
    const withLanes = (run: () => Promise<void>) => (broadcast ? run() : withoutLaneBroadcast(run));
    beforeEach((ctx) => {
      const { gpu } = runtime();
      const why = broadcast && !(gpu.features.has("subgroups") && gpu.subgroupMinSize === 8 && gpu.subgroupMaxSize === 8) ? `${gpu.adapterInfo.description} has no subgroups of exactly 8 lanes` : undefined;
      ctx.skip(why !== undefined, why);
    });
    for (const version of REG) {
      for (const l of LAYOUTS) {
        const s = shape(65, 127, 33);
        it(`${name}: ${version} ${layoutName(l)} ${label(s)}, rowSums`, () =>
          withLanes(async () => {
            const [a, b] = operands(s, l);
            const rowSums = Tensor.empty([s.M]);
            let y: Tensor | undefined;
            expect(keys(() => void (y = matmulForward(a, b, { ...l, version, rowSums }))).every((k) => k.includes(`broadcast=${broadcast}`))).toBe(true);
            expectClose("y", await y!.data(), data(s).y, tol(s.K));
            const want = Array.from({ length: s.M }, (_, r) => data(s).a.slice(r * s.K, (r + 1) * s.K).reduce((x, v) => x + v, 0));
            expectClose("rowSums", await rowSums.data(), want, tol(s.K));
            for (const t of [a, b, y!, rowSums]) t.dispose();
          }));
      }
      it(`${name}: ${version} batched transposed b (bScalars for regm), f16 inputs`, (ctx) =>
        withLanes(async () => {
          const s = shape(6, 20, 10, [3], false);
          const [a, b] = operands(s, LAYOUTS[2]);
          const y = matmulForward(a, b, { ...LAYOUTS[2], version });
          expectClose("y", await y.data(), data(s).y, tol(s.K));
          if (runtime().gpu.features.has("shader-f16")) {
            const y16 = matmulForward(a, b, { ...LAYOUTS[2], version, inputs: "f16" });
            expectClose("y (f16 inputs)", await y16.data(), data(s).y, { atol: 2e-3 * Math.sqrt(s.K), rtol: 2e-3 * Math.sqrt(s.K) });
            y16.dispose();
          } else ctx.annotate("no shader-f16: f16 inputs not checked");
          for (const t of [a, b, y]) t.dispose();
        }));
    }
  }
});

// norm: the layernorm of y's rows beside y, in the epilogue of a reg version with lanes along n that holds whole
// rows, where its lanes are one subgroup; else by a layernorm dispatch after the product. y against the float64
// product (tol(K)); out, mean and rstd against the reference layernorm of the y the kernel wrote, with
// kernels/layernorm.ts's tolerance (test/kernels/layernorm.test.ts), so that they measure the norm alone.
describe("matmul norm: the layernorm of y's rows", () => {
  const NORM_TOL = { atol: 2e-5, rtol: 1e-4 };
  const eightLanes = () => {
    const { gpu } = runtime();
    return gpu.features.has("subgroups") && gpu.subgroupMinSize === 8 && gpu.subgroupMaxSize === 8;
  };
  // Runs the product (a linear layer's: b transposed) with a norm; returns the kernels it dispatched besides b's pack
  // (name and, for the matmul, whether its spec fused the norm) after checking every output.
  const check = async (s: Shape, version: MatmulVersion | undefined, extra: { bias?: boolean; gelu?: boolean; residual?: boolean }) => {
    const [a, b] = operands(s, LAYOUTS[2]);
    const batch = s.batch.reduce((x, y) => x * y, 1);
    const rows = batch * s.M;
    const biasData = randu(s.N, 21, -2, 2);
    const resData = randu(rows * s.N, 22, -3, 3);
    const gammaData = randu(s.N, 23, 0.5, 1.5);
    const betaData = randu(s.N, 24);
    const eps = 1e-6;
    const yShape = [...s.batch, s.M, s.N];
    const norm = {
      out: Tensor.empty(yShape),
      mean: Tensor.empty([...s.batch, s.M]),
      rstd: Tensor.empty([...s.batch, s.M]),
      gamma: Tensor.fromArray(gammaData, [s.N]),
      beta: Tensor.fromArray(betaData, [s.N]),
      eps,
    };
    const opts: MatmulOptions = { ...LAYOUTS[2], version, norm, gelu: extra.gelu };
    if (extra.bias) opts.bias = Tensor.fromArray(biasData, [s.N]);
    if (extra.residual) opts.residual = Tensor.fromArray(resData, yShape);
    const { result: y, kernels: dispatched } = recordKernels(() => matmulForward(a, b, opts));
    const z = data(s).y.map((v, i) => v + (extra.bias ? biasData[i % s.N] : 0));
    const want = z.map((v, i) => (extra.gelu ? gelu(v) : v) + (extra.residual ? resData[i] : 0));
    const got = await y.data();
    expectClose("y", got, want, tol(s.K));
    const ref = layernormRef(got, gammaData, betaData, rows, s.N, eps);
    expectClose("out", await norm.out.data(), ref.y, NORM_TOL);
    expectClose("mean", await norm.mean.data(), ref.mean, NORM_TOL);
    expectClose("rstd", await norm.rstd.data(), ref.rstd, { atol: 0, rtol: NORM_TOL.rtol });
    for (const t of [a, b, y, opts.bias, opts.residual, ...Object.values(norm)]) if (t instanceof Tensor) t.dispose();
    const kernels = dispatched.filter((k) => k.name !== "matmul-pack");
    return kernels.map((k) => (k.name === "matmul" ? `matmul norm=${k.key.includes("norm=true")}` : k.name));
  };
  const fused = ["matmul norm=true"];
  const after = ["matmul norm=false", "layernorm"];

  for (const version of ["reg4x8", "reg32x8"] as const) {
    it(`${version}, lanes one subgroup: in the epilogue, rows past the tile edge, a batch, bias and residual; N = 40 (lanes past N)`, async (ctx) => {
      ctx.skip(!eightLanes(), "no subgroups of exactly 8 lanes");
      expect(await check(shape(37, 13, 64, [2]), version, { bias: true, residual: true })).toEqual(fused);
      expect(await check(shape(9, 7, 40), version, { bias: true, gelu: true })).toEqual(fused);
    });
  }

  it("elsewhere by a layernorm after the product: N past the tile, N % 4 != 0, lanes along m, a tiled version, no subgroup broadcast", async () => {
    const s = shape(37, 13, 64, [2]);
    expect(await check(shape(9, 7, 72), "reg4x8", { bias: true })).toEqual(after);
    expect(await check(shape(9, 7, 10), "reg4x8", { residual: true })).toEqual(after);
    expect(await check(s, "regm8x16", { bias: true, residual: true })).toEqual(after);
    expect(await check(s, "tiled", { bias: true, residual: true })).toEqual(after);
    await withoutLaneBroadcast(async () => expect(await check(s, "reg4x8", { bias: true, residual: true })).toEqual(after));
  });

  it("rejects a norm whose tensors do not fit y, or with dgelu", () => {
    const a = Tensor.empty([5, 3]);
    const b = Tensor.empty([3, 8]);
    const norm = { out: Tensor.empty([5, 8]), mean: Tensor.empty([5]), rstd: Tensor.empty([4]), gamma: Tensor.empty([8]), beta: Tensor.empty([8]), eps: 1e-6 };
    expect(() => matmulForward(a, b, { norm })).toThrow("matmul: expected norm rstd f32 (5), got f32 (4)");
    norm.rstd = Tensor.empty([5]);
    expect(() => matmulForward(a, b, { norm, dgelu: Tensor.empty([5, 8]) })).toThrow("matmul: expected norm without dgelu");
    expect(() => matmulForward(a, b, { norm: { ...norm, out: b } })).toThrow("norm out f32 (5, 8), got f32 (3, 8)");
  });
});

// gatherA: a read through an outer index, a[m, k] = src[rows[m] + cols[k]] (here the patch matrix of images, as
// kernels/im2col.ts builds it, and a hand-made index with repeated and descending offsets), against the float64
// product of the materialised matrix: in place by the reg versions (lanes along n with and without subgroup
// broadcasts, lanes along m), materialised by gatherOuter for the tiled one. With bias and rowSums.
describe("matmul gatherA: a read through an outer index", () => {
  const [B, ch, H, W, P, N] = [2, 3, 8, 12, 4, 20];
  const images = randu(B * ch * H * W, 71);
  const index = () => im2colIndex(B, ch, H, W, P);
  const [M, K] = [B * (H / P) * (W / P), ch * P * P];
  // The patch matrix from the layout's definition, not from the index.
  const patches = new Float32Array(M * K);
  for (let b = 0, m = 0; b < B; b++)
    for (let py = 0; py < H / P; py++)
      for (let px = 0; px < W / P; px++, m++)
        for (let c = 0, k = 0; c < ch; c++)
          for (let ky = 0; ky < P; ky++) for (let kx = 0; kx < P; kx++, k++) patches[m * K + k] = images[((b * ch + c) * H + py * P + ky) * W + px * P + kx];
  const weight = randu(N * K, 72); // (N, K): a linear layer's, b transposed
  const bias = randu(N, 73);
  const want = matmulRef(patches, transpose(weight, 1, N, K), { batch: 1, M, K, N, sharedB: true }).map((v, i) => v + bias[i % N]);
  const sums = Array.from({ length: M }, (_, m) => patches.slice(m * K, (m + 1) * K).reduce((x, v) => x + v, 0));

  const check = async (version: MatmulVersion) => {
    const src = Tensor.fromArray(images, [B, ch, H, W]);
    const w = Tensor.fromArray(weight, [N, K]);
    const rowSums = Tensor.empty([M]);
    const { result: y, kernels } = recordKernels(() => matmulForward(src, w, { transB: true, bias: Tensor.fromArray(bias, [N]), rowSums, gatherA: index(), version }));
    const materialised = kernels.some((k) => k.name === "matmul-gather");
    expect(materialised).toBe(MATMUL_TILINGS[version].kind !== "reg");
    expect(y.shape).toEqual([M, N]);
    expectClose(`y (${version})`, await y.data(), want, tol(K));
    expectClose(`rowSums (${version})`, await rowSums.data(), sums, tol(K));
  };
  for (const version of ["reg4x8", "regm8x16", "tiled"] as const) it(`${version}`, () => check(version));
  it("reg4x8 without subgroup broadcasts", () => withoutLaneBroadcast(() => check("reg4x8")));

  it("gatherOuter materialises any outer index; i32 1-D tables, no transA, a 2-D b", async () => {
    const src = Tensor.fromArray([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [10]);
    const rows = Tensor.fromArray([6, 0, 0], [3], "i32");
    const cols = Tensor.fromArray([3, 1, 0, 2], [4], "i32");
    expect(Array.from(await gatherOuter(src, { rows, cols }).data())).toEqual([9, 7, 6, 8, 3, 1, 0, 2, 3, 1, 0, 2]);
    const b = Tensor.empty([4, 2]);
    expect(() => matmulForward(src, b, { gatherA: { rows: src, cols } })).toThrow("matmul: expected gatherA rows i32 1-D, got f32 (10)");
    expect(() => matmulForward(src, b, { gatherA: { rows, cols }, transA: true })).toThrow("matmul: expected gatherA without transA and with a 2-D b, got transA b (4, 2)");
  });
});

// bPairs: a trained weight (shared b, transposed, requiring grad) with K even is read in place by the reg versions
// with lanes along n, two k per vec2 load, instead of being packed before the product; K odd, a frozen weight and
// lanes along m pack. Rows and columns past the tile edges, N % 4 != 0 (scalar stores) and == 0, bias, with and
// without subgroup broadcasts of a; against the float64 reference (tol(K)).
describe("matmul reg: a trained weight read in place", () => {
  const run = async (s: Shape, version: MatmulVersion, trained: boolean) => {
    const [a, b] = operands(s, LAYOUTS[2]);
    b.requireGrad(trained);
    const bias = randu(s.N, 81);
    const { result: y, kernels } = recordKernels(() => matmulForward(a, b, { transB: true, bias: Tensor.fromArray(bias, [s.N]), version }));
    expectClose(`y (${version} ${label(s)})`, await y.data(), data(s).y.map((v, i) => v + bias[i % s.N]), tol(s.K));
    for (const t of [a, b, y]) t.dispose();
    return { packed: kernels.some((k) => k.name === "matmul-pack"), pairs: kernels.some((k) => k.key.includes("bPairs=true")) };
  };
  const inPlace = { packed: false, pairs: true };
  const packed = { packed: true, pairs: false };
  for (const version of ["reg4x8", "reg32x8"] as const) {
    it(`${version}: in place with K even, packed with K odd or frozen`, async () => {
      expect(await run(shape(37, 70, 36), version, true)).toEqual(inPlace);
      expect(await run(shape(37, 70, 33), version, true)).toEqual(inPlace);
      expect(await run(shape(9, 13, 36), version, true)).toEqual(packed);
      expect(await run(shape(37, 70, 36), version, false)).toEqual(packed);
    });
  }
  it("reg4x8 without subgroup broadcasts; regm16x16 packs", () =>
    withoutLaneBroadcast(async () => {
      expect(await run(shape(37, 70, 36), "reg4x8", true)).toEqual(inPlace);
      expect(await run(shape(37, 70, 36), "regm16x16", true)).toEqual(packed);
    }));
});

describe("matmul regm: transposed b read in place or packed", () => {
  // Which kernels a product dispatches, from the DEBUG log.
  const kernels = (run: () => void) => {
    const lines: string[] = [];
    runtime().batch.log = (line) => lines.push(line);
    try {
      run();
    } finally {
      runtime().batch.log = undefined;
    }
    return lines.map((l) => l.split(" ")[1].split("/")[0]);
  };
  const t = (shape: number[]) => Tensor.empty(shape);
  it("packs a shared weight first, reads a skinny or batched b in place", () => {
    const nt = (a: Tensor, b: Tensor) => kernels(() => matmulForward(a, b, { transB: true, version: "regm16x16" }));
    expect(nt(t([40, 64]), t([33, 64]))).toEqual(["matmul-pack", "matmul"]); // a linear layer's weight (33, 64)
    expect(nt(t([40, 64]), t([8, 64]))).toEqual(["matmul"]); // N = 8: LoRA's A
    expect(nt(t([40, 8]), t([33, 8]))).toEqual(["matmul"]); // K = 8: LoRA's B
    expect(nt(t([2, 40, 64]), t([2, 33, 64]))).toEqual(["matmul"]); // batched b (attention's q·kᵀ)
  });
});

// A frozen shared weight's pack is kept until the weight is written (engine/derived.ts): it is packed once. The
// update here stands for any kernel that writes a frozen weight (DINO's EMA teacher).
// Each product is checked against the reference for the weight's values at that point (tolerance as above).
describe("matmul regm: a shared weight's pack kept until the weight is written", () => {
  const dispatched = () => runtime().batch.stats.dispatches;
  it("packs a frozen b once while unchanged, again after an update, a copy or a write; not in a dry run; a trained b every time", async () => {
    const [M, K, N] = [21, 70, 33];
    const aData = randu(M * K, 1);
    let bData = randu(N * K, 2);
    const a = Tensor.fromArray(aData, [M, K]);
    const b = Tensor.fromArray(bData, [N, K]);
    const check = async (label: string, dispatches: number) => {
      const before = dispatched();
      const y = matmulForward(a, b, { transB: true, version: "regm16x16" });
      expect(dispatched() - before, label).toBe(dispatches);
      expectClose(label, await y.data(), matmulRef(aData, transpose(bData, 1, N, K), { batch: 1, M, K, N }), tol(K));
      y.dispose();
    };
    runtime().batch.dryRun(() => matmulForward(a, b, { transB: true, version: "regm16x16" }).dispose());
    await check("first product (the dry run kept nothing)", 2);
    await check("b unchanged", 1);
    const grad = Tensor.fromArray(randu(N * K, 3), [N, K]);
    sgdUpdates([{ param: b, grad, weightDecay: 0 }], { lr: 0.5, momentum: 0 });
    bData = Float32Array.from(await b.data());
    await check("after an update", 2);
    await check("updated b unchanged", 1);
    runtime().batch.copy(grad.buffer, 0, b.buffer, 0, N * K * 4);
    bData = Float32Array.from(await grad.data());
    await check("after a copy into b", 2);
    bData = randu(N * K, 4);
    b.write(bData);
    await check("after a write", 2);
    await check("written b unchanged", 1);
    b.requireGrad(); // a trained weight: packed for every product, nothing kept
    await check("trained b", 2);
    await check("trained b again", 2);
    for (const t of [a, b, grad]) t.dispose();
  });
});

describe("matmul errors", () => {
  const t = (shape: number[], dtype: "f32" | "i32" = "f32") => Tensor.empty(shape, dtype);
  it("names both shapes when the inner dimensions differ", () => {
    expect(() => matmulForward(t([4, 5]), t([6, 3]))).toThrow("matmul: expected matching inner dimensions, got a (4, 5) and b (6, 3)");
    expect(() => matmulForward(t([2, 4, 5]), t([3, 4]), { transB: true })).toThrow("got a (2, 4, 5) and b (3, 4) transB (K 5 vs 4)");
  });
  it("rejects an unknown inputs precision, int8 inputs without i8 subgroup matrices and f16 inputs without shader-f16, naming the adapter", () => {
    const a = Tensor.fromArray([1, 2, 3, 4], [2, 2]);
    expect(() => matmulForward(a, a, { inputs: "bf16" as "f16" })).toThrow('matmul: expected inputs "f32", "f16", "int8", "int8x2", got "bf16"');
    const { gpu } = runtime();
    const configs = gpu.subgroupMatrixConfigs;
    gpu.subgroupMatrixConfigs = configs.filter((c) => c.componentType !== "i8");
    try {
      expect(() => matmulForward(a, a, { inputs: "int8" })).toThrow(`matmul: int8 inputs need subgroup matrices of i8 into i32, which ${gpu.adapterInfo.description} lacks`);
      expect(() => matmulForward(a, a, { inputs: "int8x2" })).toThrow("matmul: int8x2 inputs need subgroup matrices of i8 into i32");
    } finally {
      gpu.subgroupMatrixConfigs = configs;
    }
    const had = gpu.features.has("shader-f16");
    gpu.features.delete("shader-f16");
    try {
      expect(() => matmulForward(a, a, { inputs: "f16" })).toThrow(`f16 inputs need the adapter's shader-f16 feature, which ${gpu.adapterInfo.description} lacks`);
    } finally {
      if (had) gpu.features.add("shader-f16");
    }
  });

  it("rejects a y past one binding, naming the limit", () => {
    const max = runtime().gpu.limits.maxStorageBufferBindingSize;
    const a = t([65536, 1]); // y (65536, 65536): 16 GiB of f32, past any adapter's binding
    expect(() => matmulForward(a, t([1, 65536]))).toThrow(`matmul: expected y within maxStorageBufferBindingSize ${max} bytes, got (65536, 65536)`);
  });

  it("rejects i32 inputs", () => {
    expect(() => matmulForward(t([4, 5], "i32"), t([5, 3]))).toThrow("matmul: expected a to be f32, got i32 (4, 5)");
    expect(() => matmulForward(t([4, 5]), t([5, 3], "i32"))).toThrow("matmul: expected b to be f32, got i32 (5, 3)");
  });
  it("rejects mismatched batch dims, bias, out and option combinations", () => {
    expect(() => matmulForward(t([2, 4, 5]), t([3, 5, 3]))).toThrow("matmul: expected b 2-D or with the batch dims of a (2, 4, 5), got b (3, 5, 3)");
    expect(() => matmulForward(t([4, 5]), t([5, 3]), { bias: t([4]) })).toThrow("matmul: expected bias (3), got (4)");
    expect(() => matmulForward(t([4, 5]), t([5, 3]), { out: t([3, 4]) })).toThrow("matmul: expected out (4, 3), got (3, 4)");
    expect(() => matmulForward(t([4, 5]), t([5, 3]), { accumulate: true })).toThrow("expected accumulate with out");
    expect(() => matmulForward(t([4, 5]), t([5, 3]), { preact: t([4, 3]) })).toThrow("expected gelu with preact");
    expect(() => matmulForward(t([4, 5]), t([5, 3]), { dgelu: t([4, 3]), bias: t([3]) })).toThrow("matmul: expected dgelu without bias");
    expect(() => matmulForward(t([4, 5]), t([5, 3]), { dgelu: t([3, 4]) })).toThrow("matmul: expected dgelu (4, 3), got (3, 4)");
    expect(() => matmulForward(t([2, 4, 5]), t([5, 3]), { rowSums: t([4]) })).toThrow("matmul: expected rowSums f32 (2, 4), got f32 (4)");
    const a = t([4, 1]);
    expect(() => matmulForward(a, t([1, 3]), { rowSums: a.reshape([4]) })).toThrow("matmul: expected rowSums not to share storage with a");
    expect(() => matmulForward(t([4, 5]), t([5, 3]), { version: "nope" })).toThrow(
      `matmul: expected one of ${MATMUL.versions.join(", ")}, got "nope"`,
    );
  });
});

// More than 65535 workgroups: a batch of 70001 products of one tile each (a batched b, N = 3), so the grid is folded
// into (x, y) and one group past the last returns at once. The workgroup-to-tile map is one (kernels/matmul-frame.ts
// TILE_COORDS): a reg version with lanes along n, one along m, and tiled. Every batch entry is checked.
describe("matmul with a folded grid", () => {
  const s = shape(1, 4, 3, [70001], false);
  for (const version of ["reg4x8", "regm8x16", "tiled"] as const) {
    it(`${version} ${label(s)}`, async () => {
      const [a, b] = operands(s, LAYOUTS[0]);
      const y = matmulForward(a, b, { version });
      expectClose(`y (${version})`, await y.data(), data(s).y, tol(s.K));
      for (const t of [a, b, y]) t.dispose();
    });
  }
});

// tiledvec and tiled128vec as they run on GPUs (constSlab): a full slab's k loop has a constant bound, the last partial
// slab a variable one; K = 36 is two full slabs and 4 more, K = 1031 (one split of a GPU's split-K plan, 16x1031x9, and
// a row of tiles for tiled128vec) ends in 7. On the CPU driver with the adapter taken for a GPU.
describe("matmul tiled*vec with the GPUs' constant-bound slab loop", () => {
  const CASES = [
    ...LAYOUTS.map((l) => ["tiledvec", l, shape(68, 36, 132, [2], false)] as const),
    ["tiledvec", LAYOUTS[1], shape(16, 1031, 9)] as const,
    ["tiled128vec", LAYOUTS[2], shape(130, 1031, 260)] as const,
  ];
  for (const [version, l, s] of CASES) {
    it(`${version} ${layoutName(l)} ${label(s)}`, async () => {
      const [a, b] = operands(s, l);
      await asGpu(async () => {
        const { result: y, kernels } = recordKernels(() => matmulForward(a, b, { ...l, version }));
        expect(kernels.filter((k) => k.name === "matmul").every((k) => k.key.includes("constSlab=true"))).toBe(true);
        expectClose("y", await y.data(), data(s).y, tol(s.K));
        y.dispose();
      });
      for (const t of [a, b]) t.dispose();
    });
  }
});

// Split-K (the GPU plan for few tiles and a long k; forced here): k cut unevenly (K=1031 in 7 splits of 148), into
// splits shorter than a slab of 16 (K=9 in 6 splits of 2: the last is empty), batched, every layout; without and
// with rowSums (each split's partial row sums stored after its partial product, summed by the same reduce).
describe("matmul split-K", () => {
  for (const version of MATMUL.versions.filter((v) => MATMUL_TILINGS[v].kind === "tiled")) {
    for (const l of LAYOUTS) {
      for (const [s, splits] of [[shape(17, 1031, 9), 7], [shape(33, 9, 70, [3]), 6], [shape(1, 300, 1), 2], [shape(70, 40, 3, [2]), 3]] as [Shape, number][]) {
        for (const sums of [false, true]) {
          it(`${version} ${layoutName(l)} ${label(s)} in ${splits} splits${sums ? ", rowSums" : ""}`, async () => {
            const [a, b] = operands(s, l);
            const batch = s.batch.reduce((x, y) => x * y, 1);
            const rowSums = sums ? Tensor.empty([...s.batch, s.M]) : undefined;
            const y = matmulForward(a, b, { ...l, version, splitK: splits, rowSums });
            expect(y.shape).toEqual([...s.batch, s.M, s.N]);
            expectClose("y", await y.data(), data(s).y, tol(s.K));
            if (rowSums) {
              const logical = data(s).a; // (batch, M, K)
              const want = Array.from({ length: batch * s.M }, (_, r) => logical.slice(r * s.K, (r + 1) * s.K).reduce((x, v) => x + v, 0));
              expectClose("rowSums", await rowSums.data(), want, tol(s.K));
            }
            for (const t of [a, b, y, ...(rowSums ? [rowSums] : [])]) t.dispose();
          });
        }
      }
    }
  }

  // A weight gradient with its bias gradient (rowSums), as planned on a GPU: few tiles and a long k are split, and
  // one reduce sums the partial products and the partial row sums; many tiles are not, and the kernel sums the rows.
  it("with rowSums: a split product's rows summed with its partial products, an unsplit one's in the kernel", async () => {
    for (const [s, split] of [[shape(16, 1031, 9), true], [shape(600, 300, 1100), false]] as [Shape, boolean][]) {
      const l = LAYOUTS[1];
      const [a, b] = operands(s, l);
      const sums = Array.from({ length: s.M }, (_, r) => data(s).a.slice(r * s.K, (r + 1) * s.K).reduce((x, v) => x + v, 0));
      const rowSums = Tensor.empty([s.M]);
      await asGpu(async () => {
        const { result: y, kernels } = recordKernels(() => matmulForward(a, b, { ...l, version: "tiled", rowSums }));
        y.dispose();
        const got = kernels.map((k) => k.name);
        expect(got.filter((k) => k === "matmul")).toHaveLength(1);
        expect(got.filter((k) => k === "reduce").length, got.join(", ")).toBe(split ? 1 : 0);
      });
      expectClose(`rowSums ${label(s)}`, await rowSums.data(), sums, tol(s.K));
    }
  });

  it("is planned on GPUs only, for fewer than 128 workgroups, with >= 256 of k per split", () => {
    const dims = (M: number, K: number, N: number) => ({ M, K, N, transA: true, transB: false, batch: 1 });
    expect(splitK(dims(16, 6304, 384), 6, false)).toBe(24); // floor(6304 / 256)
    expect(splitK(dims(1152, 6304, 16), 18, false)).toBe(15); // ceil(256 / 18)
    expect(splitK(dims(16, 6304, 384), 6, true)).toBe(1);
    expect(splitK(dims(1536, 6304, 384), 144, false)).toBe(1);
    expect(splitK(dims(64, 300, 64), 1, false)).toBe(1);
  });

  it("refuses a split with an epilogue or a reg version", () => {
    const [a, b] = operands(shape(4, 40, 4), {});
    const refused = "matmul: expected split-K only with a tiled or int8 version and no bias, gelu, residual, out or dgelu, got splitK 2 with";
    expect(() => matmulForward(a, b, { version: "reg4x8", splitK: 2 })).toThrow(`${refused} reg4x8`);
    expect(() => matmulForward(a, b, { version: "tiled", splitK: 2, bias: Tensor.fromArray([1, 2, 3, 4], [4]) })).toThrow(`${refused} tiled, bias`);
    expect(() => matmulForward(a, b, { version: "tiled", splitK: 2, dgelu: Tensor.empty([4, 4]) })).toThrow(`${refused} tiled, dgelu`);
  });
});

describe("matmul default version", () => {
  const dims = (M: number, N: number): MatmulShape => ({ M, K: 384, N, transA: false, transB: true, batch: 1 });
  const defaultVersion = (shape: MatmulShape, isCpu: boolean) => MATMUL.defaultVersion(shape, { ...runtime().gpu, isCpu });
  it("on CPU drivers takes whichever of reg16x16 (16 x 128 tiles) and regm16x16 (128 x 16) pads y less", () => {
    const noBroadcast = { ...runtime().gpu, isCpu: true, subgroupMinSize: 4 }; // reg16x8 only for a transposed a
    expect(MATMUL.defaultVersion(dims(1576, 16), noBroadcast)).toBe("regm16x16"); // LoRA rank 8 on q and v: reg16x16 pads 16 to 128
    expect(MATMUL.defaultVersion(dims(3200, 576), noBroadcast)).toBe("regm16x16"); // 576 = 4.5 x 128
    expect(MATMUL.defaultVersion(dims(1576, 1152), noBroadcast)).toBe("reg16x16"); // 1152 = 9 x 128; 1576 pads to 1584 rows, not 1664
    expect(MATMUL.defaultVersion(dims(1024, 1024), noBroadcast)).toBe("reg16x16"); // a tie keeps reg16x16
  });

  it("on CPU drivers takes reg16x8 (16 x 64) for a transposed a where it pads y at least 10% less", () => {
    const tn = (M: number, N: number): MatmulShape => ({ M, K: 544, N, transA: true, transB: false, batch: 1 });
    const lanes4 = { ...runtime().gpu, isCpu: true, features: new Set(["subgroups"]), subgroupMinSize: 4, subgroupMaxSize: 8 };
    expect(MATMUL.defaultVersion(tn(192, 64), lanes4)).toBe("reg16x8"); // a weight gradient: regm16x16 pads 192 rows to 256
    expect(MATMUL.defaultVersion(tn(64, 64), lanes4)).toBe("reg16x8"); // reg16x16 pads 64 columns to 128, regm16x16 64 rows
    expect(MATMUL.defaultVersion(tn(1576, 16), lanes4)).toBe("regm16x16"); // LoRA's rank: reg16x8 pads 16 columns to 64
    expect(MATMUL.defaultVersion(tn(256, 64), lanes4)).toBe("regm16x16"); // a tie with regm16x16 goes to it
    expect(MATMUL.defaultVersion(tn(3200, 576), lanes4)).toBe("regm16x16"); // 576 = 9 x 64
    expect(MATMUL.defaultVersion({ ...tn(544, 64), transA: false }, lanes4)).toBe("regm16x16"); // a as stored
  });

  it("on CPU drivers with lane broadcasts takes reg32x8 (32 x 64) where it pads y at most 11% more than the choice without it", () => {
    const lanes8 = { ...runtime().gpu, isCpu: true, features: new Set(["subgroups"]), subgroupMinSize: 8, subgroupMaxSize: 8 };
    const shape = (M: number, K: number, N: number, transA = false): MatmulShape => ({ M, K, N, transA, transB: false, batch: 1 });
    expect(MATMUL.defaultVersion(shape(544, 64, 256), lanes8)).toBe("reg32x8"); // the default model's fc1 at batch 32 (reg16x16 pads as much)
    expect(MATMUL.defaultVersion(shape(192, 544, 64, true), lanes8)).toBe("reg32x8"); // a weight gradient
    expect(MATMUL.defaultVersion(shape(3200, 192, 576), lanes8)).toBe("reg32x8"); // 3200 = 100 x 32
    expect(MATMUL.defaultVersion(shape(197, 197, 64), lanes8)).toBe("reg32x8"); // 224 rows against reg16x8's 208: 8% more
    expect(MATMUL.defaultVersion(shape(8, 544, 64), lanes8)).toBe("reg16x8"); // reg32x8 would pad 8 rows to 32
    expect(MATMUL.defaultVersion(shape(1576, 384, 16), lanes8)).toBe("regm16x16"); // LoRA's rank 8 on q and v: 16 columns
    expect(MATMUL.defaultVersion(shape(256, 544, 64, true), lanes8)).toBe("reg32x8");
  });

  it("on GPUs takes tiled128 once its 128 x 128 tiles are 256 workgroups and there is no GELU, else tiled", () => {
    expect(defaultVersion(dims(1576, 16), false)).toBe("tiled");
    expect(defaultVersion(dims(2048, 2048), false)).toBe("tiled128"); // 16 x 16 tiles
    expect(defaultVersion({ ...dims(2048, 2048), gelu: true }, false)).toBe("tiled");
    expect(defaultVersion(dims(2048, 1920), false)).toBe("tiled"); // 16 x 15
    expect(defaultVersion({ ...dims(197, 197), batch: 192 }, false)).toBe("tiled128"); // attention: 2 x 2 x 192
  });

  it("at products of precision int8 or int8x2 takes the int8 version of that tile size (on CPU drivers too), an exact one where it cannot run", () => {
    const i8 = { componentType: "i8", resultComponentType: "i32", M: 16, N: 16, K: 32 } as const;
    const gpu = (isCpu: boolean) => ({ ...runtime().gpu, isCpu, subgroupMatrixConfigs: [i8] });
    const int8 = (M: number, N: number): MatmulShape => ({ ...dims(M, N), inputs: "int8" });
    expect(MATMUL.defaultVersion(int8(2048, 2048), gpu(false))).toBe("mma128i8");
    expect(MATMUL.defaultVersion({ ...int8(2048, 2048), gelu: true }, gpu(false))).toBe("mma64i8");
    expect(MATMUL.defaultVersion(int8(1576, 16), gpu(false))).toBe("mma64i8");
    expect(MATMUL.defaultVersion(int8(1576, 16), gpu(true))).toBe("mma64i8");
    expect(MATMUL.defaultVersion({ ...int8(2048, 2048), K: mmaI8MaxK(3) + 1 }, gpu(false))).toBe("tiled128");
    expect(MATMUL.defaultVersion({ ...int8(2048, 2048), inputs: "int8x2", K: mmaI8MaxK(3) + 1 }, gpu(false))).toBe("mma128i8");
    expect(MATMUL.defaultVersion(dims(2048, 2048), gpu(false))).toBe("tiled128"); // an f32 product: never int8
  });

  it("counts GELU's backward (dgelu) as a GELU epilogue: the product a traced step looks up says gelu", () => {
    const [dy, w] = [Tensor.empty([64, 32]), Tensor.empty([32, 48])];
    const seen = traceDry(() => matmulForward(dy, w, { dgelu: Tensor.empty([64, 48]) }).dispose());
    expect(seen.map((s) => s.key)).toEqual(["64x32x48/nn/b1/gelu"]);
    for (const t of [dy, w]) t.dispose();
  });
});

