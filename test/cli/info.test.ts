// `info`: the adapter's subgroup-matrix configurations (tensor cores from WGSL), requested only where the adapter has
// chromium-experimental-subgroup-matrix; on the CPU driver (lavapipe), which lacks it, reported absent, and nothing to
// check on the device; the check's line (kernels/tensor-core-check.ts runs it: test/kernels/tensor-core-check.test.ts).
import { afterEach, describe, expect, it, vi } from "vitest";
import { info, int8ProductsLine, mixedPrecisionLine, subgroupMatrixLine, tensorCoreCheckLine } from "../../cli/info.js";
import { SUBGROUP_MATRIX_FEATURE } from "../../engine/device.js";
import { runtime } from "../../engine/runtime.js";
import { useEngine } from "../helpers.js";

useEngine();
afterEach(() => vi.restoreAllMocks());

describe("info: subgroup matrices", () => {
  it("lists each configuration, or says why there is none", () => {
    const f16 = { componentType: "f16", resultComponentType: "f32", M: 8, N: 8, K: 8 };
    const i8 = { componentType: "i8", resultComponentType: "i32", M: 16, N: 8, K: 32 };
    const has = new Set([SUBGROUP_MATRIX_FEATURE]);
    expect(subgroupMatrixLine(has, [f16, i8])).toBe("f16 x f16 -> f32 8x8x8, i8 x i8 -> i32 16x8x32");
    expect(subgroupMatrixLine(has, [])).toBe("none (the feature lists no configuration)");
    expect(subgroupMatrixLine(new Set(["shader-f16"]), [f16])).toBe(`none (no ${SUBGROUP_MATRIX_FEATURE})`);
  });

  it("says what mixed precision can use: f16 products with shader-f16, the mma versions with an f16 -> f32 fragment", () => {
    const gpu = runtime().gpu;
    const f16 = { componentType: "f16", resultComponentType: "f32", M: 16, N: 16, K: 16 };
    const i8 = { componentType: "i8", resultComponentType: "i32", M: 16, N: 16, K: 32 };
    const at = (features: string[], configs: (typeof f16)[]) => mixedPrecisionLine({ ...gpu, features: new Set(features), subgroupMatrixConfigs: configs });
    expect(at(["shader-f16"], [f16])).toBe("f16 products; tensor-core products and attention (mma versions) with f16 x f16 -> f32 16x16x16");
    expect(at(["shader-f16"], [])).toBe("f16 products; no subgroup matrix of f16 into f32 for the mma versions");
    expect(at([SUBGROUP_MATRIX_FEATURE], [i8])).toBe('no (no shader-f16: training.precision "f16" and the f16 mma versions need it)'); // the H200 through Dawn
  });

  it("says whether the products can run on 8-bit tensor cores (precision int8): the int8 versions with an i8 -> i32 fragment", () => {
    const gpu = runtime().gpu;
    const i8 = { componentType: "i8", resultComponentType: "i32", M: 16, N: 16, K: 32 };
    const u8 = { ...i8, componentType: "u8", resultComponentType: "u32" };
    const at = (configs: (typeof i8)[]) => int8ProductsLine({ ...gpu, subgroupMatrixConfigs: configs });
    expect(at([u8, i8, { ...i8, N: 8 }])).toBe('precision "int8" (within 2^-17 K max|a| max|b|), "int8x2" (2^-11): mma64i8, mma128i8 with i8 x i8 -> i32 16x16x32'); // the H200 through Dawn
    expect(at([u8])).toBe('no (no subgroup matrix of i8 into i32: training.precision "int8" and "int8x2" need one)');
    expect(at([])).not.toMatch(/i8 x i8 -> i32/); // the lease greps info for that phrase
  });

  it("says how a precision's tensor-core products did in their check on the device, naming each failure", () => {
    expect(tensorCoreCheckLine(["mma64i8", "mma128i8"], new Map())).toBe("mma64i8, mma128i8 passed");
    const fault = "mma64i8 (nn, int8) at 37x100x45: y[0, 1] = 2, expected 1 within 1.00e-5";
    expect(tensorCoreCheckLine(["mma64i8", "mma128i8"], new Map([["mma64i8", fault]]))).toBe(`mma128i8 passed; FAILED, so unavailable: ${fault}`);
    expect(tensorCoreCheckLine(["mma64"], new Map([["mma64", "x"]]))).toBe("FAILED, so unavailable: x");
  });

  it("reports the feature absent on lavapipe (skipped on other adapters)", async (ctx) => {
    const { gpu } = runtime();
    if (!/llvmpipe|lavapipe/i.test(gpu.adapterInfo.description)) ctx.skip();
    expect(gpu.features.has(SUBGROUP_MATRIX_FEATURE)).toBe(false);
    expect(gpu.subgroupMatrixConfigs).toEqual([]);
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await info.run(["--json"]);
    const report = JSON.parse(String(log.mock.calls[0][0]));
    expect(report.features).not.toContain(SUBGROUP_MATRIX_FEATURE);
    expect(report.subgroupMatrixConfigs).toEqual([]);
    log.mockClear();
    await info.run([]);
    expect(log.mock.calls.map((c) => String(c[0]))).toContain(`subgroup matrices  none (no ${SUBGROUP_MATRIX_FEATURE})`);
    expect(log.mock.calls.map((c) => String(c[0]))).toContain('int8 products      no (no subgroup matrix of i8 into i32: training.precision "int8" and "int8x2" need one)');
    log.mockClear();
    await info.run(["--check", "--probe"]); // no subgroup matrices: nothing to check or probe
    expect(log.mock.calls.some((c) => /^(check|probe) /.test(String(c[0])))).toBe(false);
    log.mockClear();
    await info.run(["--probe", "--json"]);
    expect(JSON.parse(String(log.mock.calls[0][0])).i8Readings).toEqual([]);
    expect(report.tensorCoreCheck).toBeUndefined();
  });
});
