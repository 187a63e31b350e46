// Benchmark plumbing: calls per timed run by work and adapter kind; a case timed in runs of several calls; the
// profile table's product rates: GFLOP/s from a matmul label's size (batched or not) over its summed time, none for
// other kernels, or for a product timed at zero.
import { describe, expect, it } from "vitest";
import { callsPerRun, formatProfile, productGflops, timeCalls } from "../../bench/harness.js";
import { specLabel } from "../../engine/pipeline.js";
import { useEngine } from "../helpers.js";

useEngine();

describe("callsPerRun", () => {
  it("fills a run with 4e11 FLOP (GPUs) or 4e9 (CPU drivers), 4e10 or 1e8 bytes, from 1 to 100 calls", () => {
    expect(callsPerRun(4e9, "FLOP", false)).toBe(100);
    expect(callsPerRun(1e10, "FLOP", false)).toBe(40);
    expect(callsPerRun(1e10, "FLOP", true)).toBe(1);
    expect(callsPerRun(1e9, "FLOP", true)).toBe(4);
    expect(callsPerRun(1e3, "FLOP", true)).toBe(100);
    expect(callsPerRun(1e9, "byte", false)).toBe(40);
    expect(callsPerRun(1e6, "byte", true)).toBe(100);
    expect(callsPerRun(3e7, "byte", true)).toBe(3);
  });
});

describe("timeCalls", () => {
  it("runs the call `calls` times per run, warm-up runs included, and reports ms per call", async () => {
    let n = 0;
    const ms = await timeCalls(() => void n++, 3, { warmup: 2, reps: 4 });
    expect(n).toBe(3 * (2 + 4));
    expect(ms).toBeGreaterThanOrEqual(0);
  });
});

const KEY = specLabel("matmul", { addOut: false, bias: true, fragment: "", transB: true, version: "tiled128vec" });

describe("productGflops", () => {
  it("is 2 M K N per dispatch over the summed time, with a batch as a fourth factor", () => {
    expect(productGflops({ label: `${KEY} 100x200x300`, count: 3, ms: 6 })).toBeCloseTo((3 * 2 * 100 * 200 * 300) / 6e6, 9);
    expect(productGflops({ label: `${KEY} 4x10x20x30`, count: 1, ms: 0.5 })).toBeCloseTo((2 * 4 * 10 * 20 * 30) / 0.5e6, 9);
  });
  it("is undefined for other kernels, sizes it cannot read, and no time", () => {
    expect(productGflops({ label: `${specLabel("attention", { d: 64, pass: "forward" })} grid=64x1x1`, count: 1, ms: 1 })).toBeUndefined();
    expect(productGflops({ label: `${specLabel("matmul-gather", {})} 10x20x30`, count: 1, ms: 1 })).toBeUndefined();
    expect(productGflops({ label: `${KEY} grid=8x1x1`, count: 1, ms: 1 })).toBeUndefined();
    expect(productGflops({ label: `${KEY} 10x20`, count: 1, ms: 1 })).toBeUndefined();
    expect(productGflops({ label: `${KEY} 10x20x30`, count: 1, ms: 0 })).toBeUndefined();
  });
});

describe("formatProfile", () => {
  it("lists the shares by kernel family, then the slowest kernels with their share, count and a product's rate, then the rest", () => {
    const table = formatProfile(
      [
        { label: `${KEY} 1000x1000x1000`, count: 2, ms: 4 },
        { label: "layernorm pass=forward grid=9x1x1", count: 7, ms: 1 },
        { label: "copy per=4 grid=8x1x1", count: 1, ms: 0.3 },
        { label: "layernorm pass=backward grid=9x1x1", count: 7, ms: 0.2 },
      ],
      2,
      "profiled",
    );
    expect(table.split("\n")).toEqual([
      "    profiled: 5.5 ms of GPU time in 17 dispatches",
      "    by kernel: matmul 72.7% (2x), layernorm 21.8% (14x), copy 5.5% (1x)",
      `         4.00 ms  72.7%     2x    1000 GFLOP/s  ${KEY} 1000x1000x1000`,
      "         1.00 ms  18.2%     7x                  layernorm pass=forward grid=9x1x1",
      "         0.50 ms in 2 more kernels",
    ]);
  });
  it("counts a census's buffer copies apart from its dispatches", () => {
    const times = [
      { label: "layernorm pass=forward grid=9x1x1", count: 7, ms: 1 },
      { label: "buffer-copy 256 bytes", count: 3, ms: 0.5 },
    ];
    expect(formatProfile(times, 0, "census").split("\n").slice(0, 2)).toEqual([
      "    census: 1.5 ms of GPU time in 7 dispatches and 3 buffer copies",
      "    by kernel: layernorm 66.7% (7x), buffer-copy 33.3% (3x)",
    ]);
  });
  it("wraps the families' line", () => {
    const times = Array.from({ length: 12 }, (_, i) => ({ label: `family-number-${i} grid=1x1x1`, count: 1, ms: 12 - i }));
    const shares = formatProfile(times, 0, "census").split("\n").slice(1, -1);
    expect(shares.length).toBeGreaterThan(1);
    expect(shares.every((l) => l.length <= 130)).toBe(true);
    expect(shares[0].startsWith("    by kernel: family-number-0 15.4% (1x), family-number-1 14.1% (1x)")).toBe(true);
    expect(shares.slice(1).every((l) => l.startsWith("               family-number-"))).toBe(true);
    expect(shares.join(" ").match(/family-number-\d+/g)).toHaveLength(12);
  });
});
