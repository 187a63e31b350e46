// The per-kernel profiler (engine/profile.ts through Batch.startProfile): every dispatch is timed on its own with
// timestamp queries and summed per label (kernel key and the dispatch's note or grid).
import { describe, expect, it } from "vitest";
import { runtime } from "../../engine/runtime.js";
import { Tensor, tidy } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { matmulForward } from "../../kernels/matmul.js";
import { randn, useEngine } from "../helpers.js";

useEngine();

describe("profile", () => {
  it("sums GPU time per kernel and shape, counting dispatches, until stopped", async () => {
    const { batch, gpu } = runtime();
    if (!gpu.features.has("timestamp-query")) {
      expect(() => batch.startProfile()).toThrow('profile: expected an adapter with the "timestamp-query" feature');
      return;
    }
    const small = [Tensor.fromArray(randn(8 * 8, 1), [8, 8]), Tensor.fromArray(randn(8 * 8, 2), [8, 8])];
    const big = [Tensor.fromArray(randn(256 * 256, 3), [256, 256]), Tensor.fromArray(randn(256 * 256, 4), [256, 256])];
    const profiler = batch.startProfile();
    let totals: string;
    try {
      tidy(() => {
        matmulForward(small[0], small[1]);
        matmulForward(small[0], small[1]);
        matmulForward(big[0], big[1]);
        ops.add(small[0], small[1]);
      });
      await batch.sync();
      const times = profiler.report();
      const find = (part: string) => times.filter((t) => t.label.startsWith("matmul ") && t.label.endsWith(part));
      expect(find(" 8x8x8").map((t) => t.count)).toEqual([2]);
      expect(find(" 256x256x256").map((t) => t.count)).toEqual([1]);
      expect(times.some((t) => t.label.startsWith("elementwise ") && t.label.includes("grid="))).toBe(true);
      // No comparison of durations: a kernel's first dispatch in a process can include its compilation.
      expect(times.every((t) => Number.isFinite(t.ms) && t.ms >= 0)).toBe(true);
      expect(times.reduce((s, t) => s + t.ms, 0)).toBeGreaterThan(0);
      for (let i = 1; i < times.length; i++) expect(times[i - 1].ms).toBeGreaterThanOrEqual(times[i].ms); // slowest first
      totals = JSON.stringify(times);
    } finally {
      await batch.stopProfile();
    }
    // Stopped: the totals stay readable and nothing more is counted.
    tidy(() => void matmulForward(small[0], small[1]));
    await batch.sync();
    expect(JSON.stringify(profiler.report())).toBe(totals);
    for (const t of [...small, ...big]) t.dispose();
  });
});
