// kernels/subgroup-matrix-probe.ts: the 16 readings of an 8-bit fragment load. The emulation implements the int8
// kernels' reading (offsets and strides in 32-bit words), so there the readings in words are exact from storage and
// from workgroup memory, with B row-major or column-major, and those in bytes wrong; the emulation does not tell the
// types' order apart (it takes the fragment's sizes from the configuration). An adapter without i8 subgroup matrices
// has nothing to probe. On the null backend Dawn's compiler accepts the kernels' reading in every space and layout,
// and shows its own: read in bytes, the offsets and strides overrun a workgroup array sized for the operands.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runtime } from "../../engine/runtime.js";
import { I8_READINGS, i8ReadingWgsl, probeI8Readings } from "../../kernels/subgroup-matrix-probe.js";
import { mmaI8Fragment } from "../../kernels/registry.js";
import { skipWithoutF16, useEngine } from "../helpers.js";
import { nullBackendCompiler, useEmulatedSubgroupMatrices } from "../subgroup-matrix-emulation.js";

useEngine();

describe("the 8-bit load probe", () => {
  it("has nothing to probe where the adapter lists no i8 subgroup matrix", async (ctx) => {
    ctx.skip(mmaI8Fragment(runtime().gpu) !== undefined, "the adapter lists i8 subgroup matrices");
    expect(await probeI8Readings()).toEqual([]);
  });

  describe("every reading's WGSL, on the null backend", () => {
    let compiler: Awaited<ReturnType<typeof nullBackendCompiler>>;
    beforeAll(async () => {
      compiler = await nullBackendCompiler();
    });
    afterAll(() => compiler.destroy());
    it("compiles the int8 kernels' reading, and counts offsets and strides in words", async () => {
      for (const [M, N, K] of [[16, 16, 32], [16, 8, 32]]) {
        for (const r of I8_READINGS.filter((r) => r.units === "words" && r.order === "columns first")) {
          expect(await compiler.errors(i8ReadingWgsl(r, M, N, K, 32), JSON.stringify(r))).toEqual([]);
        }
      }
      // A 16 x 32 left fragment at offset 64 with stride 32, read in 4-byte elements: 4 (64 + 15 x 32) + 32 bytes, past
      // the 576 of a workgroup array of 64 + 16 x 32 bytes.
      const bytes = { units: "bytes", order: "columns first", space: "workgroup", right: "row_major" } as const;
      expect((await compiler.errors(i8ReadingWgsl(bytes, 16, 16, 32, 32), "bytes")).join("\n")).toContain("too small (576 bytes) for the matrix access (2208 bytes)");
    });
  });
});

describe("the 8-bit load probe, subgroup matrices emulated", () => {
  useEmulatedSubgroupMatrices({
    "subgroup-matrix-probe": (spec) => (spec.space === "workgroup" ? { left: "WA", right: "WB", uniform: "0u" } : { left: "A", right: "B", uniform: "0u" }),
  });
  beforeEach((ctx) => skipWithoutF16(ctx));

  it("finds the int8 kernels' reading exact and offsets in bytes wrong", async () => {
    const results = await probeI8Readings();
    expect(results).toHaveLength(16);
    for (const r of results) {
      if (r.units === "words") expect(r.verdict, JSON.stringify(r)).toBe("exact");
      else expect(r.verdict, JSON.stringify(r)).toMatch(/^wrong: C\[\d+, \d+\] = -?\d+, expected -?\d+$/);
    }
  }, 120_000);
});
