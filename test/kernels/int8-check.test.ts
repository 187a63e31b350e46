// kernels/int8-check.ts: the device's check of its int8 products. With the subgroup matrices emulated it passes in
// both precisions; with mma64i8's first digit scaled wrong (2^-11 for 2^-12) it fails, naming the version,
// the layout, the element and the bound; an adapter without i8 subgroup matrices gets that said; the verdict is
// remembered. On an adapter that lists i8 x i8 -> i32, the check runs on its real subgroup matrices.
import { beforeEach, describe, expect, it } from "vitest";
import { runtime } from "../../engine/runtime.js";
import { checkInt8Products, int8SelfCheck } from "../../kernels/int8-check.js";
import { mmaI8Fragment } from "../../kernels/registry.js";
import { skipWithoutF16, useEngine } from "../helpers.js";
import { useEmulatedSubgroupMatrices } from "../subgroup-matrix-emulation.js";

useEngine();

describe("the int8 products' check on this adapter", () => {
  it("says that an adapter without i8 subgroup matrices has none, or passes where it lists them", async () => {
    const { gpu } = runtime();
    if (!mmaI8Fragment(gpu)) expect(await int8SelfCheck("int8")).toBe("the adapter lists no subgroup matrix of i8 into i32");
    else for (const p of ["int8", "int8x2"] as const) expect(await int8SelfCheck(p)).toBeUndefined();
  });
});

describe("the int8 products' check, subgroup matrices emulated", () => {
  useEmulatedSubgroupMatrices({ matmul: { left: "Ws", right: "Ws", uniform: "p.M" } });
  beforeEach((ctx) => skipWithoutF16(ctx));

  it("passes in both precisions, and remembers its verdict", async () => {
    expect(await checkInt8Products("int8")).toBeUndefined();
    expect(await checkInt8Products("int8x2")).toBeUndefined();
    const first = int8SelfCheck("int8x2");
    expect(int8SelfCheck("int8x2")).toBe(first);
    expect(await first).toBeUndefined();
  }, 120_000);

  it("fails where the kernel computes wrong, naming the version, layout, element and bound", async () => {
    const rt = runtime();
    const get = rt.pipelines.get;
    // The first digit product's scale, 2^-12, doubled in mma64i8's WGSL.
    rt.pipelines.get = ((name, spec, wgsl) =>
      name === "matmul" && spec.version === "mma64i8"
        ? get(name, { ...spec, wrong: true }, (s) => {
            const code = wgsl(s);
            expect(code).toContain("* 0.000244140625");
            return code.replaceAll("* 0.000244140625", "* 0.00048828125");
          })
        : get(name, spec, wgsl)) as typeof get;
    try {
      const fault = await checkInt8Products("int8");
      expect(fault).toMatch(/^mma64i8 \(nn\) at 37x100x45: y\[\d+, \d+\] = \S+, expected \S+ within \S+$/);
    } finally {
      rt.pipelines.get = get;
    }
  }, 120_000);
});
