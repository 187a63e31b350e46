// Attention (kernels/attention.ts), every version (the fused reg and tiled, and unfused from matmul and softmax),
// against the CPU reference (test/ref/attention.ts: float64, materialised softmax) and against float64 finite
// differences.
// Tolerance: atol 2e-5 + rtol 1e-4 on o, lse, dqkv and probabilities (f32 sums over up to 1030 keys, WGSL exp).
import { beforeEach, describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { attentionBackward, attentionForward, attentionProbs, releaseSaved } from "../../kernels/attention.js";
import { ATTENTION } from "../../kernels/registry.js";
import { runtime } from "../../engine/runtime.js";
import { expectClose, dot, numericGrad, randn, recordKernels, skipWithoutF16, useEngine, withoutLaneBroadcast } from "../helpers.js";
import { useEmulatedSubgroupMatrices } from "../subgroup-matrix-emulation.js";
import { type AttentionShape, attentionBackwardRef, attentionRef } from "../ref/attention.js";

useEngine();

const TOL = { atol: 2e-5, rtol: 1e-4 };

function inputs(s: AttentionShape, seed: number, std = 1): { qkv: Float32Array; dout: Float32Array } {
  return { qkv: randn(s.B * s.N * 3 * s.H * s.D, seed, std), dout: randn(s.B * s.N * s.H * s.D, seed + 1) };
}

const tensor = (x: Float32Array, s: AttentionShape, parts: number) => Tensor.fromArray(x, [s.B, s.N, parts * s.H * s.D]);

// Runs forward and backward of `version` and compares o, lse (the fused versions') and dqkv with the reference.
async function checkAgainstRef(s: AttentionShape, version: string, seed: number, scale?: number, std = 1): Promise<void> {
  const { qkv, dout } = inputs(s, seed, std);
  const sc = scale ?? 1 / Math.sqrt(s.D);
  const ref = attentionRef(qkv, s, sc);
  const x = tensor(qkv, s, 3);
  const { o, saved } = attentionForward(x, s.H, { version, scale });
  expect(saved.version).toBe(version);
  expect(o.shape).toEqual([s.B, s.N, s.H * s.D]);
  expectClose(`o ${version}`, await o.data(), ref.o, TOL);
  if (saved.version !== "unfused") {
    expect(saved.lse.shape).toEqual([s.B, s.H, s.N]);
    expectClose(`lse ${version}`, await saved.lse.data(), ref.lse, TOL);
  }
  const dqkv = attentionBackward(saved, tensor(dout, s, 1));
  expect(dqkv.shape).toEqual([s.B, s.N, 3 * s.H * s.D]);
  expectClose(`dqkv ${version}`, await dqkv.data(), attentionBackwardRef(qkv, dout, s, sc), TOL);
  releaseSaved(saved);
  for (const t of [x, o, dqkv]) t.dispose();
}

const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 4],
  [2, 5, 3, 8],
  [2, 17, 3, 16],
  [3, 17, 2, 32], // the default study's model: reg's short-sequence rows (3 per invocation, one block per head)
  [1, 197, 6, 64],
  [2, 65, 3, 64],
  [1, 1030, 1, 32],
  // A head dim whose vec4 count is no multiple of reg's 8 lanes: 9, two broadcast loads per streamed row, the second
  // clamped. (D = 96 and 128, where reg owns fewer rows per invocation and tiled stages fewer rows per tile, passed
  // too at (1, 19, 2, 96) and (1, 11, 1, 128), 2026-12-05, commit 3606fc5, lavapipe, but each version's pipelines
  // took 60-90 s to compile there: not part of the suite.)
  [2, 9, 2, 36],
];

// Every version the CPU driver runs; mma's tests, with its subgroup matrices emulated: attention-mma.test.ts.
const VERSIONS = ATTENTION.versions.filter((v) => v !== "mma");

for (const version of VERSIONS) {
  describe(`attention ${version}`, () => {
    for (const [B, N, H, D] of SHAPES) {
      it(`forward and backward match the reference at (B, N, H, D) = (${B}, ${N}, ${H}, ${D})`, async () => {
        await checkAgainstRef({ B, N, H, D }, version, B * 1000 + N * 10 + D);
      });
    }

    it("B*H = 66000 (b, h) pairs: more than 65535 workgroups, so the grid is folded", async () => {
      await checkAgainstRef({ B: 2200, N: 2, H: 30, D: 4 }, version, 99);
    });

    it("custom scale", async () => {
      await checkAgainstRef({ B: 2, N: 5, H: 3, D: 8 }, version, 7, 0.7);
    });

    it("large logits (|S| ~ 100): the online softmax neither overflows nor loses rows", async () => {
      // exp(100) overflows f32 without the running max. Tolerance atol 1e-4: f32 scores of size ~100 carry
      // ~1e-5 absolute error, which reaches o through P times |v| ~ 6.
      const s = { B: 1, N: 37, H: 2, D: 16 };
      const { qkv } = inputs(s, 11, 6);
      const ref = attentionRef(qkv, s, 0.25);
      const { o, saved } = attentionForward(tensor(qkv, s, 3), s.H, { version });
      expectClose("o", await o.data(), ref.o, { atol: 1e-4, rtol: 1e-4 });
      if (saved.version !== "unfused") expectClose("lse", await saved.lse.data(), ref.lse, TOL);
    });

    it("backward matches float64 finite differences at (1, 3, 2, 4)", async () => {
      const s = { B: 1, N: 3, H: 2, D: 4 };
      const { qkv, dout } = inputs(s, 5);
      // loss = sum(o * dout), so d loss / d qkv is the backward of dout.
      const loss = (x: Float64Array) => dot(attentionRef(x, s, 0.5).o, dout);
      const { saved } = attentionForward(tensor(qkv, s, 3), s.H, { version });
      const dqkv = attentionBackward(saved, tensor(dout, s, 1));
      expectClose("dqkv", await dqkv.data(), numericGrad(loss, qkv), TOL);
    });
  });
}

// reg shares each streamed row through subgroupBroadcast where the adapter's subgroups are exactly 8 lanes, and
// loads it in every lane elsewhere (kernels/attention.ts): the second way here. D = 4 to 64: one vec4 per row to two
// per lane.
describe("attention reg with every lane loading the streamed rows", () => {
  for (const [B, N, H, D] of [[2, 5, 3, 4], [3, 17, 2, 32], [2, 33, 2, 64]] as const) {
    it(`forward and backward match the reference at (B, N, H, D) = (${B}, ${N}, ${H}, ${D})`, () =>
      withoutLaneBroadcast(() => checkAgainstRef({ B, N, H, D }, "reg", B * 1000 + N * 10 + D)));
  }
});

// reg's backward in one pass (dqkv: dq's, with dk and dv summed over the lanes) where its workgroup is one subgroup
// holding every query of a (b, h); in two (dq, then dk and dv) past that or without subgroups of exactly 8 lanes.
// The values: the tests above, which run both.
describe("attention reg backward: one pass or two", () => {
  const passes = (s: AttentionShape) => {
    const { qkv, dout } = inputs(s, 5);
    const x = tensor(qkv, s, 3);
    const { o, saved } = attentionForward(x, s.H, { version: "reg" });
    const { result: dqkv, kernels } = recordKernels(() => attentionBackward(saved, tensor(dout, s, 1)));
    releaseSaved(saved);
    for (const t of [x, o, dqkv]) t.dispose();
    return kernels.map((k) => k.key.match(/pass=(\w+)/)![1]);
  };
  it("one where the lanes hold every query, two past that or without lane broadcasts", async () => {
    const eight = runtime().gpu.features.has("subgroups") && runtime().gpu.subgroupMinSize === 8 && runtime().gpu.subgroupMaxSize === 8;
    expect(passes({ B: 2, N: 17, H: 2, D: 32 })).toEqual(eight ? ["dqkv"] : ["dq", "dkdv"]);
    expect(passes({ B: 1, N: 65, H: 1, D: 32 })).toEqual(["dq", "dkdv"]);
    await withoutLaneBroadcast(async () => expect(passes({ B: 2, N: 17, H: 2, D: 32 })).toEqual(["dq", "dkdv"]));
  });
});

// Fewer queries (the first NQ tokens of each sequence, over every key): o and lse the reference's first NQ rows,
// dqkv the reference's for dO zero past them (so dq is zero there, and dk and dv sum over the queries alone). Every
// version; reg also in two passes (without lane broadcasts).
describe("attention with fewer queries", () => {
  const check = async (s: AttentionShape, queries: number, version: string) => {
    const { qkv, dout } = inputs(s, 31 + queries);
    const sc = 1 / Math.sqrt(s.D);
    const ref = attentionRef(qkv, s, sc);
    const C = s.H * s.D;
    const rows = (x: ArrayLike<number>, width: number, per: number) =>
      Array.from({ length: s.B * per }, (_, r) => Array.from(x).slice((Math.floor(r / per) * s.N + (r % per)) * width, (Math.floor(r / per) * s.N + (r % per) + 1) * width)).flat();
    const doutQ = Float32Array.from(rows(dout, C, queries));
    const padded = new Float32Array(dout.length);
    for (let b = 0; b < s.B; b++) padded.set(doutQ.subarray(b * queries * C, (b + 1) * queries * C), b * s.N * C);
    const x = tensor(qkv, s, 3);
    const { o, saved } = attentionForward(x, s.H, { version, queries });
    expect(o.shape).toEqual([s.B, queries, C]);
    expectClose(`o ${version}`, await o.data(), rows(ref.o, C, queries), TOL);
    if (saved.version !== "unfused") {
      const lseRows = Array.from({ length: s.B * s.H * queries }, (_, r) => ref.lse[Math.floor(r / queries) * s.N + (r % queries)]);
      expectClose(`lse ${version}`, await saved.lse.data(), lseRows, TOL);
    }
    const dqkv = attentionBackward(saved, Tensor.fromArray(doutQ, [s.B, queries, C]));
    expectClose(`dqkv ${version}`, await dqkv.data(), attentionBackwardRef(qkv, padded, s, sc), TOL);
    releaseSaved(saved);
    for (const t of [x, o, dqkv]) t.dispose();
  };
  for (const version of VERSIONS) {
    it(`${version}: one query of 17 (a ViT's CLS token), 3 of 5, 5 of 65`, async () => {
      await check({ B: 2, N: 17, H: 2, D: 32 }, 1, version);
      await check({ B: 2, N: 5, H: 3, D: 8 }, 3, version);
      await check({ B: 1, N: 65, H: 2, D: 16 }, 5, version);
    });
  }
  it("reg in two passes, without lane broadcasts", () => withoutLaneBroadcast(() => check({ B: 2, N: 17, H: 2, D: 32 }, 1, "reg")));
  it("rejects queries outside [1, N]", () => {
    const x = Tensor.empty([1, 4, 24]);
    expect(() => attentionForward(x, 2, { queries: 5 })).toThrow("attention: expected queries an integer in [1, 4], got 5");
    expect(() => attentionForward(x, 2, { queries: 0 })).toThrow("got 0");
  });
});

describe("attentionProbs", () => {
  for (const [B, N, H, D] of [
    [2, 17, 3, 16],
  [3, 17, 2, 32], // the default study's model: reg's short-sequence rows (3 per invocation, one block per head)
    [2, 65, 3, 64],
  ]) {
    it(`rows sum to 1 and match the reference at (${B}, ${N}, ${H}, ${D}), custom scale`, async () => {
      const s = { B, N, H, D };
      const { qkv } = inputs(s, 3);
      const p = attentionProbs(tensor(qkv, s, 3), H, { scale: 0.3 });
      expect(p.shape).toEqual([B, H, N, N]);
      const got = await p.data();
      expectClose("probs", got, attentionRef(qkv, s, 0.3).probs, TOL);
      const sums = Array.from({ length: B * H * N }, (_, r) => got.subarray(r * N, (r + 1) * N).reduce((a, v) => a + v, 0));
      expectClose("row sums", sums, new Array(B * H * N).fill(1), { atol: 1e-5, rtol: 0 });
    });
  }
});

// unfused in another precision: its products are matmul's in it (f16 operands, or int8 slices on the i8 subgroup
// matrices, emulated here), so the results come out within f16 inputs' tolerance of the reference (atol = rtol =
// 4e-3, as test/kernels/attention-mma.test.ts's for f16) and differ from f32's; every product dispatched says so.
describe("attention unfused in precisions f16, int8 and int8x2", () => {
  useEmulatedSubgroupMatrices({ matmul: { left: "Ws", right: "Ws", uniform: "p.M" } });
  beforeEach((ctx) => skipWithoutF16(ctx));
  const s = { B: 2, N: 65, H: 3, D: 64 };
  const { qkv, dout } = inputs(s, 21);
  const run = (precision: "f32" | "f16" | "int8" | "int8x2") => {
    const x = tensor(qkv, s, 3);
    const dy = tensor(dout, s, 1);
    const { result, kernels } = recordKernels(() => {
      const { o, saved } = attentionForward(x, s.H, { version: "unfused", inputs: precision });
      return { o, dqkv: attentionBackward(saved, dy), saved };
    });
    return { ...result, products: kernels.filter((k) => k.name === "matmul").map((k) => k.key), inputs: [x, dy] };
  };
  for (const precision of ["f16", "int8", "int8x2"] as const) {
    it(`${precision}: each of the 6 products in ${precision}, o and dqkv within f16's tolerance of the reference, not f32's results`, async () => {
      const r = run(precision);
      expect(r.products).toHaveLength(6);
      for (const key of r.products) {
        if (precision === "f16") expect(key).toMatch(/\bf16=true\b/);
        else expect([key.match(/\bversion=(\w+)/)?.[1], key.match(/\bslices=(\d)/)?.[1]]).toEqual(["mma64i8", precision === "int8" ? "3" : "2"]);
      }
      const sc = 1 / Math.sqrt(s.D);
      const tol = { atol: 4e-3, rtol: 4e-3 };
      const [o, dqkv] = [await r.o.data(), await r.dqkv.data()];
      expectClose(`o ${precision}`, o, attentionRef(qkv, s, sc).o, tol);
      expectClose(`dqkv ${precision}`, dqkv, attentionBackwardRef(qkv, dout, s, sc), tol);
      const f32 = run("f32");
      expect(Array.from(o)).not.toEqual(Array.from(await f32.o.data()));
      for (const x of [r, f32]) {
        releaseSaved(x.saved);
        for (const t of [x.o, x.dqkv, ...x.inputs]) t.dispose();
      }
    });
  }
});

describe("attention errors", () => {
  const qkv = (shape: number[]) => Tensor.fromArray(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  it("rejects a last axis not divisible by 3*heads", () => {
    expect(() => attentionForward(qkv([2, 5, 40]), 3)).toThrow("attention: expected qkv's last axis divisible by 3*heads = 9, got qkv (2, 5, 40)");
    expect(() => attentionProbs(qkv([2, 5, 40]), 3)).toThrow("divisible by 3*heads = 9");
  });
  it("rejects a head dim that is not a multiple of 4", () => {
    expect(() => attentionForward(qkv([1, 2, 36]), 2)).toThrow("attention: expected head dim D a positive multiple of 4, got D = 6");
  });
  it("rejects a qkv that is not (B, N, 3*H*D), an unknown version and mismatched backward inputs", () => {
    expect(() => attentionForward(qkv([5, 24]), 2)).toThrow("attention: expected an f32 qkv (B, N, 3*H*D), got f32 (5, 24)");
    expect(() => attentionForward(qkv([1, 2, 24]), 2, { version: "v9" })).toThrow('attention: expected one of reg, tiled, mma, unfused, got "v9"');
    expect(() => attentionForward(qkv([1, 2, 24]), 2, { inputs: "f8" as never })).toThrow('attention: expected inputs "f32", "f16", "int8", "int8x2", got "f8"');
    expect(() => attentionForward(qkv([1, 2, 24]), 2, { version: "mma" })).toThrow(/attention: "mma" needs subgroup matrices of f32 into f32/);
    const { saved } = attentionForward(qkv([1, 2, 24]), 2);
    expect(() => attentionBackward(saved, qkv([1, 3, 8]))).toThrow("attention: expected dout f32 (1, 2, 8), got f32 (1, 3, 8)");
    expect(() => attentionBackward(saved, qkv([1, 2, 24]))).toThrow("attention: expected dout f32 (1, 2, 8), got f32 (1, 2, 24)");
  });
});
