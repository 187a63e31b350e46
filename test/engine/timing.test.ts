// engine/timing.ts ownWaitEstimate: each wrapper keeps a wait estimate of its own, starting unknown whatever the
// batch held (an inherited estimate from slower work made bench matmul oversleep its first shape), and gives the
// batch its own back after every call.
import { describe, expect, it } from "vitest";
import { runtime } from "../../engine/runtime.js";
import { ownWaitEstimate } from "../../engine/timing.js";
import { useEngine } from "../helpers.js";

useEngine();

describe("ownWaitEstimate", () => {
  it("starts unknown, keeps what its work learned between calls, and restores the batch's own", async () => {
    const { batch } = runtime();
    const saved = batch.secondsPerUnit;
    try {
      batch.secondsPerUnit = 1e-6; // learned on slower work
      const a = ownWaitEstimate();
      const b = ownWaitEstimate();
      const seen: number[] = [];
      await a(async () => {
        seen.push(batch.secondsPerUnit);
        batch.secondsPerUnit = 3e-12; // what a's work learns
      });
      expect(batch.secondsPerUnit).toBe(1e-6);
      await b(async () => {
        seen.push(batch.secondsPerUnit);
        batch.secondsPerUnit = 5e-12;
      });
      await a(async () => seen.push(batch.secondsPerUnit));
      await b(async () => {
        seen.push(batch.secondsPerUnit);
        throw new Error("work failed");
      }).catch(() => undefined);
      await b(async () => seen.push(batch.secondsPerUnit));
      expect(seen).toEqual([0, 0, 3e-12, 5e-12, 5e-12]);
      expect(batch.secondsPerUnit).toBe(1e-6);
    } finally {
      batch.secondsPerUnit = saved;
    }
  });

  it("keeps the cap on its sleeps (the longest in-flight time learned) with the estimate", async () => {
    const { batch } = runtime();
    const saved = batch.longestMs;
    try {
      batch.longestMs = 900; // learned on long work
      const a = ownWaitEstimate();
      const seen: number[] = [];
      await a(async () => {
        seen.push(batch.longestMs);
        batch.longestMs = 12;
      });
      expect(batch.longestMs).toBe(900);
      await a(async () => seen.push(batch.longestMs));
      expect(seen).toEqual([0, 12]);
    } finally {
      batch.longestMs = saved;
    }
  });
});
