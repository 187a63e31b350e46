// kernels/tensor-core-check.ts: the device's check of its tensor-core products. With the subgroup matrices emulated
// the versions pass (mma64 with f32 inputs, mma64i8 and mma128i8 in int8 and int8x2); a version made to compute wrong
// (its result scaled, or a digit product's scale doubled) fails, naming the version, layout, precision, element and
// bound, and is unavailable to that precision from then on; an adapter without subgroup matrices has none to check;
// verdicts are remembered. On an adapter that lists them, the check runs on its real subgroup matrices.
import { beforeEach, describe, expect, it } from "vitest";
import { runtime } from "../../engine/runtime.js";
import { Tensor } from "../../engine/tensor.js";
import { matmulForward } from "../../kernels/matmul.js";
import { checkAttention, checkProducts, checkTensorCores, checksFor, int8SelfCheck, tensorCoreVersions } from "../../kernels/tensor-core-check.js";
import { attentionForward } from "../../kernels/attention.js";
import { MATMUL, PRECISIONS, availableVersions, mmaI8Fragment, recordDeviceFault } from "../../kernels/registry.js";
import { skipWithoutF16, useEngine } from "../helpers.js";
import { MATMUL_ARRAYS, useEmulatedSubgroupMatrices } from "../subgroup-matrix-emulation.js";

useEngine();

describe("the tensor-core products' check on this adapter", () => {
  it("finds nothing to check where the adapter lists no subgroup matrix, and no fault where it does", async () => {
    const { gpu } = runtime();
    if (gpu.subgroupMatrixConfigs.length === 0) expect(PRECISIONS.flatMap((p) => tensorCoreVersions(p))).toEqual([]);
    for (const p of PRECISIONS) expect((await checkTensorCores(p)).size, p).toBe(0);
    if (!mmaI8Fragment(gpu)) expect(await int8SelfCheck("int8")).toMatch(/^subgroup matrices of i8 into i32, which .* lacks/);
    else for (const p of ["int8", "int8x2"] as const) expect(await int8SelfCheck(p)).toBeUndefined();
  });
});

describe("the tensor-core products' check, subgroup matrices emulated", () => {
  useEmulatedSubgroupMatrices({ matmul: MATMUL_ARRAYS, "attention-mma": { left: "Ws", right: "Ws", uniform: "p.n" } });
  beforeEach((ctx) => skipWithoutF16(ctx));

  // Runs `check` with the WGSL of the kernels `which` picks edited by `edit` (kernels of their own: the spec gains
  // `wrong`).
  async function withWrongKernel<T>(which: (name: string, spec: Record<string, unknown>) => boolean, edit: (code: string) => string, check: () => Promise<T>): Promise<T> {
    const rt = runtime();
    const get = rt.pipelines.get;
    rt.pipelines.get = ((name, spec, wgsl) =>
      which(name, spec)
        ? get(name, { ...spec, wrong: true }, (s) => {
            const code = wgsl(s);
            const edited = edit(code);
            expect(edited).not.toBe(code);
            return edited;
          })
        : get(name, spec, wgsl)) as typeof get;
    try {
      return await check();
    } finally {
      rt.pipelines.get = get;
    }
  }
  const matmulVersion = (version: string) => (name: string, spec: Record<string, unknown>) => name === "matmul" && spec.version === version;

  it("passes every version in its precisions, and remembers each precision's verdict", async () => {
    expect(tensorCoreVersions("f32")).toEqual(["mma64", "mma128", "attention mma"]);
    expect(tensorCoreVersions("f16")).toEqual(["mma64", "mma128", "attention mma"]);
    expect(tensorCoreVersions("int8")).toEqual(["mma64i8", "mma128i8"]);
    // mma64 alone of the mma versions, in f32 alone: llvmpipe compiles each emulated kernel in seconds, and their
    // numbers are matmul-mma.test.ts's.
    expect(await checkProducts(["mma64"], "f32")).toEqual(new Map());
    expect(await checkAttention("f32")).toBeUndefined();
    for (const p of ["int8", "int8x2"] as const) expect(await checkProducts(["mma64i8", "mma128i8"], p), p).toEqual(new Map());
    const first = checkTensorCores("int8x2");
    expect(checkTensorCores("int8x2")).toBe(first);
    expect(await int8SelfCheck("int8x2")).toBeUndefined();
  }, 300_000);

  it("fails a version that computes wrong, which is unavailable to that precision from then on", async () => {
    // mma64's results scaled by 1.01 as they leave the fragments.
    const f32 = await withWrongKernel(matmulVersion("mma64"), (code) => code.replace(/Cs\[sub \* (\d+)u \+ e\]\)/g, "Cs[sub * $1u + e] * 1.01)"), () => checkProducts(["mma64"], "f32"));
    expect(f32.get("mma64")).toMatch(/^mma64 \(nn, f32\) at 37x100x45: y\[\d+, \d+\] = \S+, expected \S+ within \S+$/);
    // mma64i8's first digit product scaled by 2^-11 instead of 2^-12, through the remembered check.
    const int8 = await withWrongKernel(matmulVersion("mma64i8"), (code) => code.replaceAll("* 0.000244140625", "* 0.00048828125"), () => checkTensorCores("int8"));
    expect([...int8.keys()]).toEqual(["mma64i8"]);
    expect(int8.get("mma64i8")).toMatch(/^mma64i8 \(nn, int8\) at 37x100x45: y\[/);
    expect(await int8SelfCheck("int8")).toBe(int8.get("mma64i8"));
    expect(tensorCoreVersions("int8")).toEqual(["mma128i8"]);
    expect(tensorCoreVersions("int8x2")).toEqual(["mma64i8", "mma128i8"]); // another precision's products: unaffected
    const a = Tensor.empty([4, 4]);
    expect(() => matmulForward(a, a, { version: "mma64i8", inputs: "int8" })).toThrow(/^matmul: "mma64i8" failed its check on this device \(mma64i8 \(nn, int8\)/);
    a.dispose();
  }, 300_000);

  it("fails attention's mma where it computes wrong; a recorded fault makes it unavailable to that precision", async () => {
    // The forward's o scaled by 1.01 as it leaves the fragments.
    const edit = (code: string) => code.replace(/(\{ o\[[^\]]*\] = Ss\[[^\]]*\]);/g, "$1 * 1.01;");
    const fault = await withWrongKernel((name, spec) => name === "attention-mma" && spec.pass === "forward", edit, () => checkAttention("f32"));
    expect(fault).toMatch(/^attention mma \(f32\) at \(B, N, H, D\) = \(1, 37, 2, 32\): o\[\d+\] = \S+, expected \S+ \(reg\) within \S+$/);
    recordDeviceFault("attention", "mma", "f16", "a fault");
    const qkv = Tensor.empty([1, 37, 3 * 2 * 32]);
    expect(() => attentionForward(qkv, 2, { version: "mma", inputs: "f16" })).toThrow('attention: "mma" failed its check on this device (a fault)');
    expect(tensorCoreVersions("f16")).toEqual(["mma64", "mma128"]);
    expect(tensorCoreVersions("f32")).toEqual(["mma64", "mma128", "attention mma"]);
    qkv.dispose();
    // The mma versions multiply an int8 precision's products in f32: an f32 fault takes them from those too.
    expect(checksFor("int8x2")).toEqual(["int8x2", "f32"]);
    recordDeviceFault("matmul", "mma128", "f32", "another fault");
    const at = (inputs: "f16" | "int8") => availableVersions(MATMUL, { M: 64, K: 64, N: 64, transA: false, transB: false, batch: 1, gelu: false, inputs });
    expect(at("int8")).toContain("mma64");
    expect(at("int8")).not.toContain("mma128");
    expect(at("f16")).toContain("mma128");
  }, 300_000);
});
