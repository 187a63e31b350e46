// The census (engine/census.ts): one run's dispatches recorded by the batch, then each replayed on its own and
// timed, summed per label. No comparison of durations (tests never time); what is checked is what was recorded,
// how it is grouped, and that a replay runs the recorded dispatch itself (same kernel, buffers and sizes).
import { describe, expect, it } from "vitest";
import { runtime } from "../../engine/runtime.js";
import { census } from "../../engine/census.js";
import { Tensor, tidy } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { matmulForward } from "../../kernels/matmul.js";
import { fillInto } from "../../kernels/fill.js";
import type { RecordedDispatch } from "../../engine/batch.js";
import { randn, useEngine } from "../helpers.js";

useEngine();

const FAST = { rounds: 1, runMs: 1 };

describe("Batch recording", () => {
  it("keeps the dispatches encoded between start and stop, in order, and not those of a dry run", async () => {
    const { batch } = runtime();
    const a = Tensor.fromArray(randn(6 * 5, 1), [6, 5]);
    const b = Tensor.fromArray(randn(5 * 8, 2), [5, 8]); // N % 4 == 0: no pack before the product
    batch.startRecording();
    let recorded;
    try {
      tidy(() => {
        matmulForward(a, b);
        batch.dryRun(() => void ops.add(a, a));
        ops.add(a, a);
      });
    } finally {
      recorded = batch.stopRecording();
    }
    const dispatches = recorded.filter((c) => c.kind === "dispatch");
    expect(dispatches.map((d) => d.kernel.name)).toEqual(["matmul", "elementwise"]);
    expect(dispatches[0].note).toBe("6x5x8");
    expect(dispatches[0].uniform?.byteLength).toBeGreaterThan(0);
    expect(batch.stopRecording()).toEqual([]); // stopped: nothing more is kept
    batch.startRecording();
    expect(() => batch.startRecording()).toThrow("batch: expected no recording in progress");
    batch.stopRecording();
    await batch.sync();
    a.dispose();
    b.dispose();
  });
});

describe("census", () => {
  it("times every dispatch of the run and sums them per kernel and shape, slowest first", async () => {
    const small = [Tensor.fromArray(randn(8 * 8, 1), [8, 8]), Tensor.fromArray(randn(8 * 8, 2), [8, 8])];
    const big = [Tensor.fromArray(randn(64 * 64, 3), [64, 64]), Tensor.fromArray(randn(64 * 64, 4), [64, 64])];
    const times = await census(
      () =>
        tidy(() => {
          matmulForward(small[0], small[1]);
          matmulForward(small[0], small[1]);
          matmulForward(big[0], big[1]);
          ops.add(small[0], small[1]);
        }),
      FAST,
    );
    const find = (part: string) => times.filter((t) => t.label.startsWith("matmul ") && t.label.endsWith(part));
    expect(find(" 8x8x8").map((t) => t.count)).toEqual([2]);
    expect(find(" 64x64x64").map((t) => t.count)).toEqual([1]);
    expect(times.some((t) => t.label.startsWith("elementwise ") && t.label.includes(" grid="))).toBe(true);
    expect(times.reduce((s, t) => s + t.count, 0)).toBe(4);
    expect(times.every((t) => Number.isFinite(t.ms) && t.ms > 0)).toBe(true);
    for (let i = 1; i < times.length; i++) expect(times[i - 1].ms).toBeGreaterThanOrEqual(times[i].ms);
    for (const t of [...small, ...big]) t.dispose();
  });

  it("times a run's buffer copies too, labelled with their size", async () => {
    const { batch } = runtime();
    const a = Tensor.fromArray(randn(6 * 5, 8), [6, 5]);
    const copy = Tensor.empty([6, 5]);
    const times = await census(() => {
      batch.copy(a.buffer, 0, copy.buffer, 0, 120);
      batch.copy(a.buffer, 0, copy.buffer, 0, 120);
      batch.copy(a.buffer, 0, copy.buffer, 0, 40);
      ops.add(a, a).dispose();
    }, FAST);
    expect(times.filter((t) => t.label.startsWith("buffer-copy ")).map((t) => [t.label, t.count]).sort()).toEqual([
      ["buffer-copy 120 bytes", 2],
      ["buffer-copy 40 bytes", 1],
    ]);
    expect(times.reduce((s, t) => s + t.count, 0)).toBe(4);
    expect(times.every((t) => Number.isFinite(t.ms) && t.ms > 0)).toBe(true);
    a.dispose();
    copy.dispose();
  });

  it("records a dispatch so that encoding the record again writes what the run wrote", async () => {
    const { batch } = runtime();
    const a = Tensor.fromArray(randn(9 * 7, 5), [9, 7]);
    const b = Tensor.fromArray(randn(7 * 8, 6), [7, 8]);
    const bias = Tensor.fromArray(randn(8, 7), [8]);
    const y = Tensor.empty([9, 8]);
    batch.startRecording();
    matmulForward(a, b, { out: y, bias });
    const recorded = batch.stopRecording();
    expect(recorded.map((c) => c.kind)).toEqual(["dispatch"]);
    const d = recorded[0] as RecordedDispatch;
    const want = Array.from(await y.data());
    fillInto(y, 0);
    expect(Array.from(await y.data()).every((v) => v === 0)).toBe(true);
    batch.encode(d);
    expect(Array.from(await y.data())).toEqual(want);
    for (const t of [a, b, bias, y]) t.dispose();
  });

  it("rejects rounds and run lengths that are not positive", async () => {
    await expect(census(() => {}, { rounds: 0 })).rejects.toThrow("census: expected a positive integer of rounds and a positive runMs, got 0 and 20");
    await expect(census(() => {}, { runMs: -1 })).rejects.toThrow("got 5 and -1");
  });
});
