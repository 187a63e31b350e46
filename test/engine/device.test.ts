// engine/device.ts: the llvmpipe thread count set before the driver loads (see its header), and the adapter's
// subgroup-matrix configurations.
import { describe, expect, it } from "vitest";
import { SUBGROUP_MATRIX, describeMatrixConfig, llvmpipeThreads } from "../../engine/device.js";
import { initEngine } from "../../engine/runtime.js";

describe("llvmpipeThreads", () => {
  it("sets two threads per core, at most 16, unless the user chose a count", () => {
    expect(llvmpipeThreads(undefined, 2)).toBe("4");
    expect(llvmpipeThreads(undefined, 1)).toBe("2");
    expect(llvmpipeThreads(undefined, 64)).toBe("16");
    expect(llvmpipeThreads("3", 2)).toBeUndefined();
    expect(llvmpipeThreads("0", 2)).toBeUndefined(); // 0: llvmpipe's single-threaded mode
  });
});

describe("subgroup matrices", () => {
  it("are requested only where the adapter has them, with the adapter's configurations (none on CPU drivers)", async () => {
    const { gpu } = await initEngine();
    if (!gpu.features.has(SUBGROUP_MATRIX)) {
      expect(gpu.subgroupMatrixConfigs).toEqual([]);
      expect(gpu.isCpu, "lavapipe has no cooperative matrices").toBe(true);
    } else {
      expect(gpu.subgroupMatrixConfigs.length).toBeGreaterThan(0);
      for (const c of gpu.subgroupMatrixConfigs) expect(c.M * c.N * c.K).toBeGreaterThan(0);
    }
  });

  it("names a configuration as info prints it", () => {
    expect(describeMatrixConfig({ componentType: "f16", resultComponentType: "f32", M: 16, N: 16, K: 16 })).toBe("f16 x f16 -> f32, 16x16x16");
  });
});
