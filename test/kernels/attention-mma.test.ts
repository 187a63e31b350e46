// Attention's mma version (kernels/attention-mma.ts: the fused passes on subgroup matrices). The CPU driver has no
// subgroup matrices, so: every pass's WGSL is compiled by Dawn's front end (Tint) on the null backend, which offers
// the feature behind allow_unsafe_apis; and the kernels run on the CPU driver with the subgroup matrices emulated
// (test/subgroup-matrix-emulation.ts), forward and backward against the float64 reference.
// Tolerances: f32 operands as the other versions (test/kernels/attention.test.ts), but 1e-4 relative for the
// products' other order; f16 operands (q, k, v, dO, and P and dS) atol = rtol = 4e-3, about eight f16 roundings
// (2^-11 each) on values of order 1 (inputs of unit variance, S of unit variance).
import { beforeEach, describe, expect, it } from "vitest";
import { SUBGROUP_MATRIX_FEATURE } from "../../engine/device.js";
import { Tensor } from "../../engine/tensor.js";
import { runtime } from "../../engine/runtime.js";
import { attentionBackward, attentionForward, releaseSaved } from "../../kernels/attention.js";
import { MMA_ATTENTION_BLOCK, mmaAttentionBytes, mmaAttentionWgsl } from "../../kernels/attention-mma.js";
import { ATTENTION, mmaAttentionPlan } from "../../kernels/registry.js";
import { expectClose, randn, skipWithoutF16, useEngine } from "../helpers.js";
import { nullBackendCompiler, useEmulatedSubgroupMatrices } from "../subgroup-matrix-emulation.js";
import { type AttentionShape, attentionBackwardRef, attentionRef } from "../ref/attention.js";

useEngine();

describe("attention mma: WGSL", () => {
  it("compiles on Dawn's null backend: every pass, f16 and f32, 16x16x16 and 8x8x8 fragments, 4 and 1 subgroups", async () => {
    const compiler = await nullBackendCompiler();
    const variants: { d: number; f16: boolean; fragment: string; groups: number }[] = [
      { d: 64, f16: true, fragment: "16x16x16/32", groups: 4 },
      { d: 32, f16: true, fragment: "16x16x16/32", groups: 1 },
      { d: 64, f16: false, fragment: "8x8x8/32", groups: 4 },
      { d: 16, f16: true, fragment: "8x8x8/64", groups: 2 },
    ];
    for (const v of variants) {
      for (const pass of ["forward", "dq", "dkdv"] as const) expect(await compiler.errors(mmaAttentionWgsl({ ...v, pass }), `${pass} ${JSON.stringify(v)}`)).toEqual([]);
    }
    compiler.destroy();
  });
});

describe("attention mma: availability", () => {
  const f16 = { componentType: "f16", resultComponentType: "f32", M: 16, N: 16, K: 16 };
  const shape: AttentionShape = { B: 2, N: 197, H: 12, D: 64 };
  const gpuWith = (configs: object[], bytes = 32768) => {
    const real = runtime().gpu;
    const limits = { ...real.limits, maxComputeWorkgroupStorageSize: bytes, maxComputeInvocationsPerWorkgroup: 256 } as GPUSupportedLimits;
    return { ...real, isCpu: false, subgroupMatrixConfigs: configs as (typeof f16)[], subgroupMaxSize: 32, limits };
  };
  it("runs where the adapter has subgroup matrices of the operands' type into f32, the head dim their multiple; not a default", () => {
    const real = runtime().gpu;
    expect(ATTENTION.unavailable!("mma", shape, gpuWith([f16]))).toMatch(/needs subgroup matrices of f32 into f32/);
    expect(ATTENTION.unavailable!("mma", { ...shape, inputs: "f16" }, gpuWith([f16]))).toBeUndefined();
    expect(ATTENTION.unavailable!("mma", { ...shape, inputs: "f16" }, gpuWith([]))).toBe(
      `needs subgroup matrices of f16 into f32 (${SUBGROUP_MATRIX_FEATURE}), which ${real.adapterInfo.description} lacks`,
    );
    expect(ATTENTION.unavailable!("mma", { ...shape, D: 40, inputs: "f16" }, gpuWith([f16]))).toBe("needs the head dim a multiple of the fragment's 16 and 16, got D = 40");
    expect(ATTENTION.defaultVersion({ ...shape, inputs: "f16" }, gpuWith([f16]))).toBe("tiled");
    expect(ATTENTION.key({ ...shape, inputs: "f16" })).toBe("2x12x197x64/f16");
  });

  it("takes in each pass the most subgroups (4, 2, 1) whose staged rows fit the workgroup memory", () => {
    const plan = (bytes: number, D = 64) => mmaAttentionPlan({ ...shape, D, inputs: "f16" }, gpuWith([f16], bytes));
    // dkdv at D = 64, f16, 16-row fragments: K, V owned (W·16 rows of 72 halves each), Q, dO streamed (32 rows),
    // P and dS (W·16 rows of 40 halves), and S, dP in f32 (W·16 x 32 each), lse and delta (32 each).
    expect(mmaAttentionBytes("dkdv", 64, true, 16, 2)).toBe(2 * (2 * 32 * 72 + 2 * 32 * 72 + 2 * 32 * 40) + 4 * (2 * 32 * MMA_ATTENTION_BLOCK + 2 * 32));
    expect(plan(65536)).toMatchObject({ groups: { forward: 4, dq: 4, dkdv: 4 } });
    expect(plan(32768)).toMatchObject({ groups: { forward: 4, dq: 2, dkdv: 2 } });
    expect(plan(24576)).toMatchObject({ groups: { forward: 2, dq: 1, dkdv: 1 } });
    expect(plan(16384)).toBe("needs more workgroup memory at D = 64 than the adapter's 16384 bytes");
    expect(plan(16384, 32)).toMatchObject({ groups: { dkdv: 1 } });
  });
});

const TOL = { f32: { atol: 2e-5, rtol: 1e-4 }, f16: { atol: 4e-3, rtol: 4e-3 } };

// Forward and backward of the first `queries` tokens as queries (default all) against float64.
async function check(s: AttentionShape, inputs: "f16" | "f32", queries = s.N): Promise<void> {
  const C = s.H * s.D;
  const qkv = randn(s.B * s.N * 3 * C, s.N + s.D);
  const dout = randn(s.B * queries * C, s.N + s.D + 1);
  const scale = 1 / Math.sqrt(s.D);
  const ref = attentionRef(qkv, s, scale);
  const rowsOf = (x: ArrayLike<number>, width: number, per: number, stride: number) =>
    Array.from({ length: s.B * per }, (_, r) => Array.from(x).slice((Math.floor(r / per) * stride + (r % per)) * width, (Math.floor(r / per) * stride + (r % per) + 1) * width)).flat();
  const padded = new Float32Array(s.B * s.N * C); // dO zero past the queries
  for (let b = 0; b < s.B; b++) padded.set(dout.subarray(b * queries * C, (b + 1) * queries * C), b * s.N * C);
  const x = Tensor.fromArray(qkv, [s.B, s.N, 3 * C]);
  const { o, saved } = attentionForward(x, s.H, { version: "mma", inputs, queries });
  expect(saved.version).toBe("mma");
  const tol = TOL[inputs];
  expectClose(`o (${inputs})`, await o.data(), rowsOf(ref.o, C, queries, s.N), tol);
  const lse = Array.from({ length: s.B * s.H * queries }, (_, r) => ref.lse[Math.floor(r / queries) * s.N + (r % queries)]);
  if (saved.version !== "unfused") expectClose(`lse (${inputs})`, await saved.lse.data(), lse, tol);
  const dqkv = attentionBackward(saved, Tensor.fromArray(dout, [s.B, queries, C]));
  expectClose(`dqkv (${inputs})`, await dqkv.data(), attentionBackwardRef(qkv, padded, s, scale), tol);
  releaseSaved(saved);
  for (const t of [x, o, dqkv]) t.dispose();
}

describe("attention mma: on the adapter's subgroup matrices", () => {
  for (const inputs of ["f16", "f32"] as const) {
    it(`${inputs} at (B, N, H, D) = (2, 197, 3, 64), and 1 query of 17 at D = 32`, async (ctx) => {
      const why = [64, 32].map((D) => mmaAttentionPlan({ B: 2, N: 197, H: 3, D, inputs }, runtime().gpu)).find((p) => typeof p === "string");
      ctx.skip(why !== undefined, why as string);
      await check({ B: 2, N: 197, H: 3, D: 64 }, inputs);
      await check({ B: 2, N: 17, H: 2, D: 32 }, inputs, 1);
    });
  }
});

describe("attention mma: emulated on the CPU driver", () => {
  useEmulatedSubgroupMatrices({ "attention-mma": { left: "Ws", right: "Ws", uniform: "p.n" } });
  beforeEach((ctx) => skipWithoutF16(ctx));

  // Edges: N a multiple neither of the 32 streamed rows per block nor of a workgroup's 64 owned rows (4 subgroups
  // of 16), so several blocks and workgroups per (b, h) with partial ones; D = 32 for several fragments across D.
  it("f16 at (B, N, H, D) = (2, 37, 3, 16) and (1, 70, 2, 32)", async () => {
    await check({ B: 2, N: 37, H: 3, D: 16 }, "f16");
    await check({ B: 1, N: 70, H: 2, D: 32 }, "f16");
  });
  it("f32 operands (an f32 configuration, as Apple GPUs list) at (2, 37, 3, 16)", () => check({ B: 2, N: 37, H: 3, D: 16 }, "f32"));
  // One token: every block and fragment but its first row padding (the pipelines of the D = 16 case above).
  it("f16 at (B, N, H, D) = (3, 1, 2, 16)", () => check({ B: 3, N: 1, H: 2, D: 16 }, "f16"));
  it("fewer queries: 1 of 17 (a ViT's CLS token), 40 of 70", async () => {
    await check({ B: 2, N: 17, H: 2, D: 32 }, "f16", 1);
    await check({ B: 1, N: 70, H: 1, D: 16 }, "f16", 40);
  });
});
