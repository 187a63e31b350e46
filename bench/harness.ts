// Shared benchmark plumbing: the device line every benchmark prints, and timing of GPU work as the median of
// repeated runs after warm-up, each run ending with the GPU idle (batch.sync), plus the main thread's CPU time
// as a fraction of wall time (to see busy-waiting).
import { readFileSync } from "node:fs";
import { runtime } from "../engine/runtime.js";
import type { KernelTime } from "../engine/profile.js";

export function deviceLine(): string {
  const { gpu } = runtime();
  return `device: ${gpu.adapterInfo.description} (${gpu.isCpu ? "CPU driver" : "GPU"}, backend ${gpu.backend})`;
}

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

// One timed case of a benchmark that takes turns between cases (bench matmul: our versions and TF.js).
export interface TimedCase {
  once(): Promise<number>; // one timed run; resolves with its milliseconds (per product, for bench matmul)
  dispose(): void;
}

// A wrapper that runs GPU work with its own wait estimate (Batch.secondsPerUnit), kept between calls: cases that
// take turns would otherwise share one, and a faster case would oversleep on the estimate of a slower one.
export function ownWaitEstimate(): <T>(work: () => Promise<T>) => Promise<T> {
  const { batch } = runtime();
  let estimate: number | undefined;
  return async (work) => {
    if (estimate !== undefined) batch.secondsPerUnit = estimate;
    try {
      return await work();
    } finally {
      estimate = batch.secondsPerUnit;
    }
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
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

// The `top` slowest kernels as a table: GPU ms, share of the profiled total, dispatch count, label.
export function formatProfile(times: KernelTime[], top: number): string {
  const total = times.reduce((s, t) => s + t.ms, 0);
  const lines = times.slice(0, top).map(
    (t) => `    ${t.ms.toFixed(2).padStart(9)} ms ${((100 * t.ms) / total).toFixed(1).padStart(5)}% ${String(t.count).padStart(5)}x  ${t.label}`,
  );
  const rest = times.slice(top);
  if (rest.length) lines.push(`    ${rest.reduce((s, t) => s + t.ms, 0).toFixed(2).padStart(9)} ms in ${rest.length} more kernels`);
  return [`    profiled: ${total.toFixed(1)} ms of GPU time in ${times.reduce((s, t) => s + t.count, 0)} dispatches`, ...lines].join("\n");
}
