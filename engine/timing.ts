// Timing GPU work from the host: the median of repeated runs after warm-up, each run ending with the GPU idle
// (batch.sync); a wait estimate of one's own for work that takes turns with other work; the main thread's CPU time
// (to see busy-waiting); and one profiled run. The benchmarks and the autotuner share these.
import { readFileSync } from "node:fs";
import { runtime } from "./runtime.js";
import type { KernelTime } from "./profile.js";
import { median } from "../util/stats.js";

export interface Timing {
  medianMs: number;
  runsMs: number[];
  cpuFraction: number; // main-thread CPU time / wall time over the timed runs
}

export async function timeGpu(run: () => void | Promise<void>, opts: { warmup?: number; reps?: number } = {}): Promise<Timing> {
  const { batch } = runtime();
  for (let i = 0; i < (opts.warmup ?? 1); i++) {
    await run();
    await batch.sync();
  }
  const runsMs: number[] = [];
  const cpu0 = mainThreadCpuMs();
  const wall0 = performance.now();
  for (let i = 0; i < (opts.reps ?? 5); i++) {
    const t0 = performance.now();
    await run();
    await batch.sync();
    runsMs.push(performance.now() - t0);
  }
  const wall = performance.now() - wall0;
  return { medianMs: median(runsMs), runsMs, cpuFraction: (mainThreadCpuMs() - cpu0) / wall };
}

// A wrapper that runs GPU work with its own wait estimate (Batch.secondsPerUnit), kept between calls: cases that
// take turns would otherwise share one, and a faster case would oversleep on the estimate of a slower one. It
// starts unknown (0: the first wait does not sleep and learns the time as measured), not at the estimate the
// batch holds, and the batch gets its own back after each call. An inherited estimate oversleeps by however much
// slower per unit the earlier work was, and an oversleep only halves it: on a GPU, where small validation
// products cost some hundred times more per FLOP than a large product, bench matmul's first shape was timed at 1-3 % of its
// speed (12608x768x2304 at 0.2-0.4 TFLOP/s on the H200, 2026-12-04, while every later shape was right).
// The cap on its sleeps (Batch.longestMs) goes with it.
export function ownWaitEstimate(): <T>(work: () => Promise<T>) => Promise<T> {
  const { batch } = runtime();
  let estimate = 0;
  let longest = 0;
  return async (work) => {
    const outer = [batch.secondsPerUnit, batch.longestMs];
    [batch.secondsPerUnit, batch.longestMs] = [estimate, longest];
    try {
      return await work();
    } finally {
      [estimate, longest] = [batch.secondsPerUnit, batch.longestMs];
      [batch.secondsPerUnit, batch.longestMs] = outer;
    }
  };
}

// CPU time of the main JS thread alone (lavapipe's worker threads live in the same process, so
// process.cpuUsage() would count the "GPU" work too). Linux only: /proc, in clock ticks of 10 ms; NaN elsewhere.
export function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, at USER_HZ = 100
  } catch {
    return NaN;
  }
}

// Runs `run` once more with every dispatch timed on its own (engine/profile.ts); returns the per-kernel totals.
export async function profileOnce(run: () => void | Promise<void>): Promise<KernelTime[]> {
  const { batch } = runtime();
  const profiler = batch.startProfile();
  try {
    await run();
    await batch.sync();
    return profiler.report();
  } finally {
    await batch.stopProfile();
  }
}
