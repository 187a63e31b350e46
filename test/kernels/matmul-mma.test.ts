// The mma matmul versions (subgroup matrices: tensor cores from WGSL). Their numbers are checked against float64 in
// matmul.test.ts ("f16 inputs") on adapters that have f16 x f16 -> f32 subgroup matrices; the CPU driver has none,
// so here every variant's WGSL is compiled by Dawn's front end (Tint) on the null backend, which offers the feature
// behind allow_unsafe_apis: a type, template or builtin misuse fails here, before any GPU sees it.
import { describe, expect, it } from "vitest";
import { create } from "webgpu";
import { SUBGROUP_MATRIX_FEATURE } from "../../engine/device.js";
import { matmulWgsl, type MatmulSpec } from "../../kernels/matmul.js";
import { MATMUL, MATMUL_TILINGS, mmaFragment, type MatmulVersion } from "../../kernels/registry.js";
import { runtime } from "../../engine/runtime.js";
import { useEngine } from "../helpers.js";

useEngine();

const MMA = MATMUL.versions.filter((v) => MATMUL_TILINGS[v].kind === "mma");
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
  rowSums: false,
  dgelu: false,
  f16: true,
  fragment: "16x16x16/32",
  ...extra,
});

describe("matmul mma: WGSL", () => {
  it("compiles on Dawn's null backend: every version and layout, both epilogues, 16x16x16 and 8x8x8 fragments", async () => {
    const gpu = create(["backend=null", "enable-dawn-features=allow_unsafe_apis"]);
    const adapter = await gpu.requestAdapter();
    expect(adapter?.features.has(SUBGROUP_MATRIX_FEATURE)).toBe(true);
    const device = await adapter!.requestDevice({ requiredFeatures: [SUBGROUP_MATRIX_FEATURE, "shader-f16", "subgroups"] as GPUFeatureName[] });
    const variants: Partial<MatmulSpec>[] = [];
    for (const transA of [false, true]) for (const transB of [false, true]) variants.push({ transA, transB });
    variants.push({ bias: true, gelu: true, preact: true, residual: true }, { dgelu: true }, { addOut: true }, { fragment: "8x8x8/64" });
    for (const version of MMA) {
      for (const v of variants) {
        const code = matmulWgsl(spec(version, v));
        const messages = (await device.createShaderModule({ code }).getCompilationInfo()).messages.filter((m) => m.type === "error");
        expect(messages.map((m) => `${version} ${JSON.stringify(v)}: ${m.lineNum}:${m.linePos} ${m.message}`)).toEqual([]);
      }
    }
    device.destroy();
  });
});

describe("matmul mma: availability", () => {
  const shape = { M: 64, K: 64, N: 64, transA: false, transB: false, batch: 1 };
  const f16 = { componentType: "f16", resultComponentType: "f32", M: 16, N: 16, K: 16 };
  it("multiplies f16 inputs only, where the adapter has f16 x f16 -> f32 subgroup matrices; the default there", () => {
    const real = runtime().gpu;
    const gpu = { ...real, isCpu: false, subgroupMatrixConfigs: [f16], subgroupMaxSize: 32 };
    expect(MATMUL.unavailable!("mma64", shape, gpu)).toMatch(/f16 inputs only/);
    expect(MATMUL.unavailable!("mma64", { ...shape, f16: true }, gpu)).toBeUndefined();
    expect(MATMUL.unavailable!("mma128", { ...shape, f16: true }, { ...gpu, subgroupMatrixConfigs: [] })).toBe(
      `needs subgroup matrices of f16 into f32 (${SUBGROUP_MATRIX_FEATURE}), which ${real.adapterInfo.description} lacks`,
    );
    expect(MATMUL.defaultVersion({ ...shape, f16: true }, gpu)).toBe("mma64");
    expect(MATMUL.defaultVersion({ ...shape, M: 12608, N: 2304, f16: true }, gpu)).toBe("mma128");
    expect(MATMUL.defaultVersion(shape, gpu)).toBe("tiled"); // f32 inputs
    expect(MATMUL.defaultVersion({ ...shape, f16: true }, { ...gpu, isCpu: true })).toMatch(/^reg/);
  });

  it("takes 16x16x16 where listed, else the largest fragment that divides a subgroup's block", () => {
    const gpu = (configs: object[]) => ({ ...runtime().gpu, subgroupMatrixConfigs: configs as typeof f16[] });
    const c = (M: number, N: number, K: number, componentType = "f16", resultComponentType = "f32") => ({ componentType, resultComponentType, M, N, K });
    expect(mmaFragment(gpu([c(8, 8, 8), c(16, 16, 16), c(16, 8, 16)]))).toEqual(c(16, 16, 16));
    expect(mmaFragment(gpu([c(8, 8, 8), c(16, 8, 16)]))).toEqual(c(16, 8, 16));
    expect(mmaFragment(gpu([c(16, 16, 16, "f16", "f16"), c(16, 16, 16, "i8", "i32")]))).toBeUndefined();
    expect(mmaFragment(gpu([c(24, 8, 8)]))).toBeUndefined(); // 24 does not divide 32 rows
  });
});
