// The mma matmul versions (subgroup matrices: tensor cores from WGSL). Their numbers are checked against float64 in
// matmul.test.ts ("f16 inputs") on adapters that have f16 x f16 -> f32 subgroup matrices; the CPU driver has none,
// so here every variant's WGSL is compiled by Dawn's front end (Tint) on the null backend, which offers the feature
// behind allow_unsafe_apis: a type, template or builtin misuse fails here, before any GPU sees it.
import { beforeEach, describe, expect, it } from "vitest";
import { SUBGROUP_MATRIX_FEATURE } from "../../engine/device.js";
import { matmulForward, matmulWgsl, splitK, type MatmulOptions } from "../../kernels/matmul.js";
import type { MatmulSpec } from "../../kernels/matmul-frame.js";
import { Tensor } from "../../engine/tensor.js";
import { MATMUL, MATMUL_TILINGS, type MatmulVersion, mmaFragment, mmaI8Fragment, mmaI8MaxK } from "../../kernels/registry.js";
import { SLICE_BOUND, type SliceCount } from "../../kernels/int8-slices.js";
import { runtime } from "../../engine/runtime.js";
import { asGpu, expectClose, randu, recordKernels, skipWithoutF16, useEngine } from "../helpers.js";
import { nullBackendCompiler, useEmulatedSubgroupMatrices } from "../subgroup-matrix-emulation.js";
import { matmulRef, transpose } from "../ref/matmul.js";
import { gelu, geluGrad } from "../ref/elementwise.js";
import { range } from "../../kernels/wgsl.js";

useEngine();

const MMA = MATMUL.versions.filter((v) => MATMUL_TILINGS[v].kind === "mma");
const MMA_I8 = MATMUL.versions.filter((v) => MATMUL_TILINGS[v].kind === "mmai8");
const spec = (version: MatmulVersion, extra: Partial<MatmulSpec>): MatmulSpec => ({
  version,
  transA: false,
  transB: false,
  bias: false,
  gelu: false,
  preact: false,
  residual: false,
  addOut: false,
  vecY: false,
  bScalars: false,
  bPairs: false,
  rowSums: false,
  splitRowSums: false,
  dgelu: false,
  f16: true,
  slices: 0,
  fragment: "16x16x16/32",
  vecA: false,
  vecB: false,
  constSlab: false,
  broadcast: false,
  norm: false,
  gatherA: false,
  ...extra,
});

describe("matmul mma: WGSL", () => {
  it("compiles on Dawn's null backend: every version and layout, scalar and vec4 staging, the epilogues, 16x16x16 and 8x8x8 fragments, f16 and f32", async () => {
    const compiler = await nullBackendCompiler();
    const variants: Partial<MatmulSpec>[] = [];
    for (const transA of [false, true]) {
      for (const transB of [false, true]) for (const vec of [false, true]) variants.push({ transA, transB, vecA: vec, vecB: vec });
    }
    variants.push({ bias: true, gelu: true, preact: true, residual: true }, { dgelu: true }, { addOut: true }, { fragment: "8x8x8/64" });
    variants.push({ f16: false, fragment: "8x8x8/32" }, { f16: false, vecA: true, vecB: true, transA: true }, { f16: false, bias: true, gelu: true, preact: true, residual: true });
    for (const version of MMA) {
      for (const v of variants) expect(await compiler.errors(matmulWgsl(spec(version, v)), `${version} ${JSON.stringify(v)}`)).toEqual([]);
    }
    compiler.destroy();
  });

  it("compiles the int8 versions: 3 and 2 slices, the epilogues, NVIDIA's 16x16x32 and 16x8x32 fragments, subgroups of 32 and 64", async () => {
    const compiler = await nullBackendCompiler();
    const i8 = { f16: false, slices: 3, fragment: "16x16x32/32" };
    const variants: Partial<MatmulSpec>[] = [{}, { bias: true, gelu: true, preact: true, residual: true }, { dgelu: true }, { addOut: true }, { fragment: "16x8x32/32" }, { fragment: "16x16x32/64" }];
    variants.push({ slices: 2 }, { slices: 2, fragment: "16x8x32/64", bias: true, gelu: true, preact: true, residual: true });
    expect(MMA_I8).toEqual(["mma64i8", "mma128i8"]);
    for (const version of MMA_I8) {
      for (const v of variants) expect(await compiler.errors(matmulWgsl(spec(version, { ...i8, ...v })), `${version} ${JSON.stringify(v)}`)).toEqual([]);
    }
    compiler.destroy();
  });
});

describe("matmul mma: availability", () => {
  const shape = { M: 64, K: 64, N: 64, transA: false, transB: false, batch: 1 };
  const f16 = { componentType: "f16", resultComponentType: "f32", M: 16, N: 16, K: 16 };
  it("runs where the adapter has subgroup matrices of the inputs' type into f32; not a default", () => {
    const real = runtime().gpu;
    const gpu = { ...real, isCpu: false, subgroupMatrixConfigs: [f16], subgroupMaxSize: 32 };
    expect(MATMUL.unavailable!("mma64", shape, gpu)).toMatch(/needs subgroup matrices of f32 into f32/);
    expect(MATMUL.unavailable!("mma64", shape, { ...gpu, subgroupMatrixConfigs: [{ ...f16, componentType: "f32" }] })).toBeUndefined();
    expect(MATMUL.unavailable!("mma64", { ...shape, inputs: "f16" }, gpu)).toBeUndefined();
    expect(MATMUL.unavailable!("mma128", { ...shape, inputs: "f16" }, { ...gpu, subgroupMatrixConfigs: [] })).toBe(
      `needs subgroup matrices of f16 into f32 (${SUBGROUP_MATRIX_FEATURE}), which ${real.adapterInfo.description} lacks`,
    );
    expect(MATMUL.defaultVersion({ ...shape, inputs: "f16" }, gpu)).toBe("tiled");
    expect(MATMUL.defaultVersion({ ...shape, M: 12608, N: 2304, inputs: "f16" }, gpu)).toBe("tiled128");
  });

  it("int8 versions: where the adapter has i8 x i8 -> i32 subgroup matrices, at products of precision int8 or int8x2, K within an i32's reach", () => {
    const real = runtime().gpu;
    const i8 = { componentType: "i8", resultComponentType: "i32", M: 16, N: 16, K: 32 };
    const gpu = { ...real, isCpu: false, subgroupMatrixConfigs: [i8, { ...i8, N: 8 }], subgroupMaxSize: 32 };
    const int8 = { ...shape, inputs: "int8" } as const;
    expect(MATMUL.unavailable!("mma64i8", int8, gpu)).toBeUndefined();
    expect(MATMUL.unavailable!("mma64i8", { ...shape, inputs: "int8x2" }, gpu)).toBeUndefined();
    expect(MATMUL.unavailable!("mma64i8", shape, gpu)).toBe(`multiplies as int8 slices, within a bound rather than f32's rounding: only products of precision "int8" or "int8x2"`);
    expect(mmaI8Fragment(gpu)).toEqual(i8);
    expect(mmaI8Fragment({ ...gpu, subgroupMatrixConfigs: [{ ...i8, N: 8 }] })).toEqual({ ...i8, N: 8 });
    expect([mmaI8MaxK(3), mmaI8MaxK(2)]).toEqual([174762, 262143]);
    expect(MATMUL.unavailable!("mma128i8", { ...int8, K: 174762 }, gpu)).toBeUndefined();
    expect(MATMUL.unavailable!("mma128i8", { ...int8, K: 174763 }, gpu)).toBe("needs K at most 174762, whose digit products an i32 holds, got K = 174763");
    expect(MATMUL.unavailable!("mma128i8", { ...shape, inputs: "int8x2", K: 174763 }, gpu)).toBeUndefined();
    expect(MATMUL.unavailable!("mma64i8", { ...shape, inputs: "f16" }, gpu)).toMatch(/rather than f16 inputs' rounding/);
    expect(MATMUL.unavailable!("mma64i8", int8, { ...gpu, subgroupMatrixConfigs: [f16] })).toBe(
      `needs subgroup matrices of i8 into i32 (${SUBGROUP_MATRIX_FEATURE}), which ${real.adapterInfo.description} lacks`,
    );
    expect(MATMUL.unavailable!("mma64i8", int8, { ...gpu, subgroupMatrixConfigs: [{ ...i8, K: 64 }] })).toMatch(/needs subgroup matrices of i8/);
    expect(MATMUL.defaultVersion({ ...shape, M: 12608, N: 2304 }, gpu)).toBe("tiled128");
    expect(MATMUL.defaultVersion({ ...int8, M: 12608, N: 2304 }, gpu)).toBe("mma128i8");
    for (const S of [2, 3] as const) expect((mmaI8MaxK(S) + 1) * S * 64 * 64).toBeGreaterThan(2 ** 31 - 1);
    for (const S of [2, 3] as const) expect(mmaI8MaxK(S) * S * 64 * 64).toBeLessThanOrEqual(2 ** 31 - 1);
  });

  it("takes 16x16x16 where listed, else the largest fragment that divides a subgroup's block", () => {
    const gpu = (configs: object[]) => ({ ...runtime().gpu, subgroupMatrixConfigs: configs as typeof f16[] });
    const c = (M: number, N: number, K: number, componentType = "f16", resultComponentType = "f32") => ({ componentType, resultComponentType, M, N, K });
    expect(mmaFragment(gpu([c(8, 8, 8), c(16, 16, 16), c(16, 8, 16)]), "f16")).toEqual(c(16, 16, 16));
    expect(mmaFragment(gpu([c(8, 8, 8), c(16, 8, 16)]), "f16")).toEqual(c(16, 8, 16));
    expect(mmaFragment(gpu([c(16, 16, 16, "f16", "f16"), c(16, 16, 16, "i8", "i32")]), "f16")).toBeUndefined();
    expect(mmaFragment(gpu([c(24, 8, 8)]), "f16")).toBeUndefined(); // 24 does not divide 32 rows
    // f32 inputs: an f32 configuration (Apple GPUs: 8 x 8 x 8) whose K divides the f32 slab of 16.
    expect(mmaFragment(gpu([c(8, 8, 8, "f32", "f32"), c(16, 16, 16)]), "f32")).toEqual(c(8, 8, 8, "f32", "f32"));
    expect(mmaFragment(gpu([c(16, 16, 32, "f32", "f32")]), "f32")).toBeUndefined();
    expect(mmaFragment(gpu([c(16, 16, 16)]), "f32")).toBeUndefined();
  });
});

const LAYOUTS = [
  { transA: false, transB: false },
  { transA: true, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: true },
];
// Shapes the emulated cases share: edges in every dimension with K past two slabs, and a batched b.
const EDGES = { batch: 2, M: 70, K: 77, N: 67, shared: true };
const BATCHED_B = { batch: 3, M: 20, K: 36, N: 12, shared: false };
// One row, K within one slab, N = 3: a single tile that is nearly all padding (the same pipelines as EDGES's a·b).
const TINY = { batch: 1, M: 1, K: 5, N: 3, shared: true };
type Case = { batch: number; M: number; K: number; N: number; shared: boolean };

// op(a) (batch, M, K) and op(b) ((batch,) K, N) as the tensors of layout l stores them.
// A product case's title: version, precision, layout and [batch]xMxKxN.
const caseTitle = (version: string, inputs: string, l: { transA: boolean; transB: boolean }, s: Case) =>
  `${version} ${inputs} ${l.transA ? "aT" : "a"}·${l.transB ? "bT" : "b"} [${s.batch}]x${s.M}x${s.K}x${s.N}${s.shared ? "" : " (batched b)"}`;

function stored(a: Float32Array, b: Float32Array, l: { transA: boolean; transB: boolean }, s: Case): [Tensor, Tensor] {
  const bBatch = s.shared ? [] : [s.batch];
  const bs = s.shared ? 1 : s.batch;
  return [
    l.transA ? Tensor.fromArray(transpose(a, s.batch, s.M, s.K), [s.batch, s.K, s.M]) : Tensor.fromArray(a, [s.batch, s.M, s.K]),
    l.transB ? Tensor.fromArray(transpose(b, bs, s.K, s.N), [...bBatch, s.N, s.K]) : Tensor.fromArray(b, [...bBatch, s.K, s.N]),
  ];
}

// The mma versions' data movement (staging, tiling, fragment placement, epilogue, edges, layouts, vec4 staging) on
// the CPU driver, with the subgroup matrices emulated (test/subgroup-matrix-emulation.ts); the numbers must match
// float64 as the f16 (or f32) tests do.
describe("matmul mma: emulated on the CPU driver", () => {
  useEmulatedSubgroupMatrices({ matmul: { left: "As", right: "Bs", uniform: "p.M" } });
  const tolF16 = (K: number) => ({ atol: 2e-3 * Math.sqrt(K), rtol: 2e-3 * Math.sqrt(K) });
  beforeEach((ctx) => skipWithoutF16(ctx));

  // Each case is a pipeline that takes llvmpipe 2-10 s to compile (with Mesa's shader cache off), so: mma64 on every
  // layout with edges in every dimension and K past two slabs (scalar staging), and on two layouts with the
  // dimensions multiples of 4 (vec4 staging) and a batched b; mma128 (four subgroups across n) on one of each; the
  // epilogue on mma64.
  const ALIGNED = { batch: 2, M: 68, K: 76, N: 132, shared: true };
  // f32 inputs (an f32 configuration, as Apple GPUs list): slabs of 16, staged as f32; two cases.
  const CASES = [
    ...LAYOUTS.map((l) => ["mma64", l, EDGES, "f16"] as const),
    ["mma64", LAYOUTS[0], TINY, "f16"] as const,
    ...[LAYOUTS[0], LAYOUTS[3]].flatMap((l) => [["mma64", l, ALIGNED, "f16"] as const, ["mma64", l, BATCHED_B, "f16"] as const]),
    ["mma128", LAYOUTS[0], EDGES, "f16"] as const,
    ["mma128", LAYOUTS[3], ALIGNED, "f16"] as const,
    ["mma64", LAYOUTS[1], EDGES, "f32"] as const,
    ["mma128", LAYOUTS[2], ALIGNED, "f32"] as const,
  ];
  for (const [version, l, s, inputs] of CASES) {
    it(caseTitle(version, inputs, l, s), async () => {
      const a = randu(s.batch * s.M * s.K, s.M + s.K);
      const b = randu((s.shared ? 1 : s.batch) * s.K * s.N, s.N + s.K + 1);
      const want = matmulRef(a, b, { batch: s.batch, M: s.M, K: s.K, N: s.N, sharedB: s.shared });
      const [at, bt] = stored(a, b, l, s);
      const y = matmulForward(at, bt, { ...l, version, inputs });
      const tol = inputs === "f16" ? tolF16(s.K) : { atol: 1e-4 * Math.sqrt(s.K), rtol: 1e-4 * Math.sqrt(s.K) };
      expectClose(`y (${version} ${inputs})`, await y.data(), want, tol);
      for (const t of [at, bt, y]) t.dispose();
    });
  }
  {
    const version = "mma64";
    it(`${version} epilogue: bias, gelu, preact, residual; dgelu; accumulate`, async () => {
      const [B, M, K, N] = [2, 33, 40, 36];
      const a = randu(B * M * K, 1);
      const b = randu(N * K, 2);
      const z0 = matmulRef(a, transpose(b, 1, N, K), { batch: B, M, K, N, sharedB: true });
      const at = Tensor.fromArray(a, [B, M, K]);
      const bt = Tensor.fromArray(b, [N, K]);
      const biasData = randu(N, 3, -2, 2);
      const resData = randu(B * M * N, 4);
      const preact = Tensor.empty([B, M, N]);
      const opts: MatmulOptions = { version, transB: true, inputs: "f16", gelu: true, preact, bias: Tensor.fromArray(biasData, [N]) };
      opts.residual = Tensor.fromArray(resData, [B, M, N]);
      const z = z0.map((v, i) => v + biasData[i % N]);
      expectClose("y", await matmulForward(at, bt, opts).data(), z.map((v, i) => gelu(v) + resData[i]), tolF16(K));
      expectClose("preact", await preact.data(), z, tolF16(K));
      const pre = randu(B * M * N, 5, -4, 4);
      const dg = matmulForward(at, bt, { version, transB: true, inputs: "f16", dgelu: Tensor.fromArray(pre, [B, M, N]) });
      expectClose("dgelu", await dg.data(), z0.map((v, i) => v * geluGrad(pre[i])), tolF16(K));
      const out = Tensor.fromArray(resData, [B, M, N]);
      matmulForward(at, bt, { version, transB: true, inputs: "f16", out, accumulate: true });
      expectClose("accumulate", await out.data(), z0.map((v, i) => v + resData[i]), tolF16(K));
    });
  }
});

// The int8 versions emulated on the CPU driver: each y[m, n] within twice the bound of kernels/int8-slices.ts,
// 2 * 2^-17 K max_k |a[m, k]| max_k |b[k, n]| with 3 slices, 2 * 2^-11 with 2 (the bound, plus the f32 roundings of
// the digit sums and the epilogue), of float64. Every layout (the slices take each operand's stored layout), edges in
// every dimension with K past two slabs and a last slab of half its words, a batched b, both tiles, the epilogues;
// values that are not finite. Precision int8x2 (2 slices) on the edges in two layouts and the larger tile.
describe("matmul mma int8: emulated on the CPU driver", () => {
  useEmulatedSubgroupMatrices({ matmul: { left: "Ws", right: "Ws", uniform: "p.M" } });
  beforeEach((ctx) => skipWithoutF16(ctx));
  // |y - want| <= 2 * 2^-SLICE_BOUND K max|a[m, :]| max|b[:, n]| for every element, op(a) (batch, M, K) and op(b)
  // (bBatch, K, N).
  function expectWithinSliceBound(name: string, got: Float32Array, want: ArrayLike<number>, a: Float32Array, b: Float32Array, s: Case, extra = 0, slices: SliceCount = 3) {
    const bs = s.shared ? 1 : s.batch;
    const maxA = range(s.batch * s.M).map((r) => a.subarray(r * s.K, (r + 1) * s.K).reduce((x, v) => Math.max(x, Math.abs(v)), 0));
    const maxB = range(bs * s.N).map((c) => range(s.K).reduce((x, k) => Math.max(x, Math.abs(b[(Math.floor(c / s.N) * s.K + k) * s.N + (c % s.N)])), 0));
    let worst = 0;
    for (let e = 0; e < s.batch; e++) {
      for (let m = 0; m < s.M; m++) {
        for (let n = 0; n < s.N; n++) {
          const i = (e * s.M + m) * s.N + n;
          const bound = 2 ** (1 - SLICE_BOUND[slices]) * s.K * maxA[e * s.M + m] * maxB[(s.shared ? 0 : e) * s.N + n] + extra * Math.abs(want[i]);
          const err = Math.abs(got[i] - want[i]);
          if (!(err <= bound)) throw new Error(`${name}: y[${e}, ${m}, ${n}] = ${got[i]}, expected ${want[i]} within ${bound}`);
          worst = Math.max(worst, err / bound);
        }
      }
    }
    return worst;
  }
  const ALIGNED = { batch: 1, M: 68, K: 96, N: 132, shared: true };
  const CASES = [
    ...LAYOUTS.map((l) => ["mma64i8", l, EDGES, "int8"] as const),
    ["mma64i8", LAYOUTS[0], TINY, "int8"] as const,
    ["mma64i8", LAYOUTS[0], BATCHED_B, "int8"] as const,
    ["mma128i8", LAYOUTS[3], ALIGNED, "int8"] as const,
    ["mma64i8", LAYOUTS[0], EDGES, "int8x2"] as const,
    ["mma64i8", LAYOUTS[2], EDGES, "int8x2"] as const,
    ["mma128i8", LAYOUTS[1], ALIGNED, "int8x2"] as const,
  ];
  for (const [version, l, s, inputs] of CASES) {
    it(caseTitle(version, inputs, l, s), async () => {
      // Rows of a and columns of b of different magnitudes, so that each row's and column's scale counts.
      const a = randu(s.batch * s.M * s.K, s.M + s.K).map((v, i) => v * 2 ** ((Math.floor(i / s.K) % 9) - 4));
      const b = randu((s.shared ? 1 : s.batch) * s.K * s.N, s.N + s.K + 1).map((v, i) => v * 2 ** ((i % s.N) % 7 - 3));
      const want = matmulRef(a, b, { batch: s.batch, M: s.M, K: s.K, N: s.N, sharedB: s.shared });
      const [at, bt] = stored(a, b, l, s);
      const y = matmulForward(at, bt, { ...l, version, inputs });
      const worst = expectWithinSliceBound(`y (${version} ${inputs})`, await y.data(), want, a, b, s, 0, inputs === "int8" ? 3 : 2);
      expect(worst).toBeGreaterThan(0); // not an f32 product's result by accident of the data
      for (const t of [at, bt, y]) t.dispose();
    });
  }

  // A weight gradient's layout (a transposed) with rows long enough that a GPU slices both operands in chunks of k
  // (kernels/int8-slices.ts sliceChunks: here 3 chunks, the last of 52 k); the adapter taken for a GPU to plan so.
  it("mma64i8 aT·b with both operands sliced in chunks of k, as GPUs slice a weight gradient's", async () => {
    const s = { batch: 1, M: 20, K: 2100, N: 24, shared: true };
    const a = randu(s.M * s.K, 31);
    const b = randu(s.K * s.N, 32);
    const [at, bt] = stored(a, b, LAYOUTS[1], s);
    await asGpu(async () => {
      const { result: y, kernels } = recordKernels(() => matmulForward(at, bt, { transA: true, version: "mma64i8", inputs: "int8" }));
      expect(kernels.map((k) => k.key.match(/phase=(\w+)/)?.[1]).filter(Boolean)).toEqual(["max", "digits", "max", "digits"]);
      expectWithinSliceBound("y", await y.data(), matmulRef(a, b, { batch: 1, M: s.M, K: s.K, N: s.N, sharedB: true }), a, b, s);
    });
  });

  // Split along k, as tiled is where y is a few tiles (kernels/matmul.ts splitK): forced to 3 splits of 64 k (the
  // third empty) with rowSums, and the plan's 8 on an adapter taken for a GPU; the splits' f32 partial products summed.
  it("mma64i8 split along k: forced, and as planned for a GPU", async () => {
    const s = { batch: 1, M: 20, K: 100, N: 24, shared: true };
    const a = randu(s.M * s.K, 33);
    const b = randu(s.K * s.N, 34);
    const want = matmulRef(a, b, { batch: 1, M: s.M, K: s.K, N: s.N, sharedB: true });
    const [at, bt] = stored(a, b, LAYOUTS[2], s);
    const rowSums = Tensor.empty([s.batch, s.M]);
    const forced = recordKernels(() => matmulForward(at, bt, { transB: true, version: "mma64i8", inputs: "int8", splitK: 3, rowSums }));
    expect(forced.kernels.filter((k) => k.name === "matmul")).toHaveLength(1);
    expectWithinSliceBound("y (3 splits)", await forced.result.data(), want, a, b, s, 1e-6);
    expectClose("rowSums", await rowSums.data(), range(s.M).map((m) => a.subarray(m * s.K, (m + 1) * s.K).reduce((x, v) => x + v, 0)), { atol: 1e-5, rtol: 1e-5 });
    const long = { ...s, K: 2100 };
    const la = randu(long.M * long.K, 35);
    const lb = randu(long.K * long.N, 36);
    const [lat, lbt] = stored(la, lb, LAYOUTS[0], long);
    await asGpu(async () => {
      expect(splitK({ M: 20, K: 2100, N: 24, transA: false, transB: false, batch: 1 }, 1)).toBe(8);
      const y = matmulForward(lat, lbt, { version: "mma64i8", inputs: "int8" });
      expectWithinSliceBound("y (8 splits)", await y.data(), matmulRef(la, lb, { batch: 1, M: long.M, K: long.K, N: long.N, sharedB: true }), la, lb, long, 1e-6);
    });
  });

  it("mma64i8 epilogue: bias, gelu, preact, residual; dgelu; accumulate; rowSums", async () => {
    const version = "mma64i8";
    const s = { batch: 2, M: 33, K: 40, N: 36, shared: true };
    const { batch: B, M, K, N } = s;
    const a = randu(B * M * K, 1);
    const b = randu(N * K, 2);
    const bKN = transpose(b, 1, N, K);
    const z0 = matmulRef(a, bKN, { batch: B, M, K, N, sharedB: true });
    const at = Tensor.fromArray(a, [B, M, K]);
    const bt = Tensor.fromArray(b, [N, K]);
    const biasData = randu(N, 3, -2, 2);
    const resData = randu(B * M * N, 4);
    const preact = Tensor.empty([B, M, N]);
    const rowSums = Tensor.empty([B, M]);
    const opts: MatmulOptions = { version, inputs: "int8", transB: true, gelu: true, preact, bias: Tensor.fromArray(biasData, [N]), residual: Tensor.fromArray(resData, [B, M, N]), rowSums };
    const z = z0.map((v, i) => v + biasData[i % N]);
    const y = await matmulForward(at, bt, opts).data();
    // gelu' <= 1.13 and the bias and residual add f32 roundings: the bound's margin covers them.
    expectWithinSliceBound("y", y, z.map((v, i) => gelu(v) + resData[i]), a, bKN, s, 1e-6);
    expectWithinSliceBound("preact", await preact.data(), z, a, bKN, s, 1e-6);
    expectClose("rowSums", await rowSums.data(), range(B * M).map((r) => a.subarray(r * K, (r + 1) * K).reduce((x, v) => x + v, 0)), { atol: 1e-5, rtol: 1e-5 });
    const pre = randu(B * M * N, 5, -4, 4);
    const dg = matmulForward(at, bt, { version, inputs: "int8", transB: true, dgelu: Tensor.fromArray(pre, [B, M, N]) });
    expectWithinSliceBound("dgelu", await dg.data(), z0.map((v, i) => v * geluGrad(pre[i])), a, bKN, s, 1e-6);
    const out = Tensor.fromArray(resData, [B, M, N]);
    matmulForward(at, bt, { version, inputs: "int8", transB: true, out, accumulate: true });
    expectWithinSliceBound("accumulate", await out.data(), z0.map((v, i) => v + resData[i]), a, bKN, s, 1e-6);
  });

  // As a frozen weight's pack (matmul.test.ts): its slices made once while it is unchanged, again after a write.
  it("mma64i8: a frozen shared b sliced once until written; a trained b for every product", async () => {
    const s = { batch: 1, M: 20, K: 24, N: 18, shared: true };
    const aData = randu(s.M * s.K, 5);
    let bData = randu(s.N * s.K, 6);
    const a = Tensor.fromArray(aData, [s.M, s.K]);
    const b = Tensor.fromArray(bData, [s.N, s.K]);
    const check = async (label: string, dispatches: number) => {
      const before = runtime().batch.stats.dispatches;
      const y = matmulForward(a, b, { transB: true, version: "mma64i8", inputs: "int8" });
      expect(runtime().batch.stats.dispatches - before, label).toBe(dispatches);
      const bKN = transpose(bData, 1, s.N, s.K);
      expectWithinSliceBound(label, await y.data(), matmulRef(aData, bKN, { batch: 1, M: s.M, K: s.K, N: s.N }), aData, bKN, s);
      y.dispose();
    };
    runtime().batch.dryRun(() => matmulForward(a, b, { transB: true, version: "mma64i8", inputs: "int8" }).dispose());
    await check("first product (the dry run kept nothing)", 3);
    await check("b unchanged", 2);
    bData = randu(s.N * s.K, 7);
    b.write(bData);
    await check("after a write", 3);
    await check("written b unchanged", 2);
    b.requireGrad();
    await check("trained b", 3);
    await check("trained b again", 3);
    for (const t of [a, b]) t.dispose();
  });

  it("mma64i8: a row of a or a column of b holding NaN or infinity comes out NaN; the others are finite and close", async () => {
    const s = { batch: 1, M: 20, K: 24, N: 18, shared: true };
    const a = randu(s.M * s.K, 7);
    const b = randu(s.K * s.N, 8);
    a[3 * s.K + 5] = NaN;
    b[4 * s.N + 9] = -Infinity;
    const y = await matmulForward(Tensor.fromArray(a, [s.M, s.K]), Tensor.fromArray(b, [s.K, s.N]), { version: "mma64i8", inputs: "int8" }).data();
    for (let m = 0; m < s.M; m++) {
      for (let n = 0; n < s.N; n++) expect(Number.isNaN(y[m * s.N + n])).toBe(m === 3 || n === 9);
    }
    const clean = (x: Float32Array) => x.map((v) => (Number.isFinite(v) ? v : 0));
    const want = matmulRef(clean(a), clean(b), { batch: 1, M: s.M, K: s.K, N: s.N, sharedB: true });
    const finite = y.map((v, i) => (Number.isNaN(v) ? want[i] : v));
    expectWithinSliceBound("the finite rows and columns", finite, want, clean(a), clean(b), s);
  });
});
