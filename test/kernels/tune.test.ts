// kernels/tune.ts: the shapes composed versions run (unfused attention's products and softmax), the candidates
// of a shape (matmul's int8 versions only at products of precision int8), and the timing's bookkeeping on a small
// row shape (the times themselves are noise at this size).
import { describe, expect, it } from "vitest";
import { runtime } from "../../engine/runtime.js";
import { Rng } from "../../util/random.js";
import { MATMUL, ROWS, availableVersions } from "../../kernels/registry.js";
import { candidates, tuneShape, withComposedShapes } from "../../kernels/tune.js";
import { useEngine } from "../helpers.js";

useEngine();

const attention = (B: number, N: number, H: number, D: number) => ({ family: "attention", key: `${B}x${H}x${N}x${D}`, shape: { B, N, H, D }, uses: ["full"] });

describe("withComposedShapes", () => {
  it("adds the products and softmax unfused attention runs, used by it, and dispatches nothing", () => {
    const { batch } = runtime();
    const dispatches = batch.stats.dispatches;
    const shapes = withComposedShapes([attention(2, 17, 2, 32)]);
    expect(batch.stats.dispatches).toBe(dispatches);
    expect(shapes.map((s) => [`${s.family}/${s.key}`, s.uses.join(", ")])).toEqual([
      ["attention/2x2x17x32", "full"],
      ["matmul/17x32x17/nt/b4", "attention/2x2x17x32 unfused"], // q·kᵀ and dP = dO·vᵀ
      ["rows/softmax/68x17", "attention/2x2x17x32 unfused"], // forward and backward
      ["matmul/17x17x32/nn/b4", "attention/2x2x17x32 unfused"], // P·v and dq = dS·k
      ["matmul/17x17x32/tn/b4", "attention/2x2x17x32 unfused"], // dv = Pᵀ·dO and dk = dSᵀ·qs
    ]);
  });

  it("adds nothing where unfused cannot run: its scores would not fit one binding", () => {
    const limit = runtime().gpu.limits.maxStorageBufferBindingSize;
    const big = attention(Math.ceil(limit / (4 * 1024 * 1024)) + 1, 1024, 1, 4);
    expect(candidates(big)).toEqual(["reg", "tiled"]);
    expect(withComposedShapes([big])).toEqual([big]);
  });
});

describe("candidates", () => {
  it("times matmul's int8 versions only at products of precision int8 or int8x2, beside the exact ones, where the adapter can run them", () => {
    const gpu = runtime().gpu;
    const saved = gpu.subgroupMatrixConfigs;
    gpu.subgroupMatrixConfigs = [{ componentType: "i8", resultComponentType: "i32", M: 16, N: 16, K: 32 }];
    try {
      const f32 = { M: 64, K: 64, N: 64, transA: false, transB: false, batch: 1 };
      const at = (shape: object) => candidates({ family: "matmul", key: MATMUL.key(shape as never), shape });
      const exact = at(f32);
      expect(exact).not.toContain("mma64i8");
      expect(at({ ...f32, inputs: "int8" })).toEqual([...exact, "mma64i8", "mma128i8"]);
      expect(at({ ...f32, inputs: "int8x2" })).toEqual([...exact, "mma64i8", "mma128i8"]);
      expect(at({ ...f32, inputs: "f16" })).not.toContain("mma64i8");
    } finally {
      gpu.subgroupMatrixConfigs = saved;
    }
  });
});

describe("tuneShape", () => {
  it("times every version the adapter can run and returns the fastest median", async () => {
    const shape = { family: "rows", key: "softmax/33x65", shape: { op: "softmax", rows: 33, C: 65 } };
    const e = await tuneShape(shape, 2, new Rng(0));
    expect(Object.keys(e.candidates)).toEqual(availableVersions(ROWS, { op: "softmax", rows: 33, C: 65 }));
    expect(e.ms).toBe(Math.min(...Object.values(e.candidates)));
    expect(e.candidates[e.version]).toBe(e.ms);
  });
});
