// Benchmark plumbing: a timed case of a benchmark that takes turns between cases, and the per-kernel profile as a
// table. Timing itself is engine/timing.ts.
import type { KernelTime } from "../engine/profile.js";

// One timed case of a benchmark that takes turns between cases (bench matmul: our versions and TF.js).
export interface TimedCase {
  once(): Promise<number>; // one timed run; resolves with its milliseconds (per product, for bench matmul)
  dispose(): void;
}

// A product's rate, GFLOP/s over its summed time, from its label, which ends with its size ("[batch x ]M x K x N",
// kernels/matmul.ts's note); undefined for other kernels.
export function productGflops(t: KernelTime): number | undefined {
  const size = /^matmul\/\S* (\d+(?:x\d+){2,3})$/.exec(t.label);
  if (!size || !(t.ms > 0)) return undefined;
  const flop = 2 * size[1].split("x").reduce((p, d) => p * Number(d), 1);
  return (t.count * flop) / (t.ms * 1e6);
}

// The `top` slowest kernels as a table: GPU ms, share of the total, dispatch count, a product's GFLOP/s, label;
// `how` names the measurement (a profile's timestamps, a census's replays).
export function formatProfile(times: KernelTime[], top: number, how: "profiled" | "census"): string {
  const total = times.reduce((s, t) => s + t.ms, 0);
  const rate = (t: KernelTime) => {
    const g = productGflops(t);
    return g === undefined ? " ".repeat(15) : `${g.toFixed(0).padStart(7)} GFLOP/s`;
  };
  const lines = times.slice(0, top).map(
    (t) => `    ${t.ms.toFixed(2).padStart(9)} ms ${((100 * t.ms) / total).toFixed(1).padStart(5)}% ${String(t.count).padStart(5)}x ${rate(t)}  ${t.label}`,
  );
  const rest = times.slice(top);
  if (rest.length) lines.push(`    ${rest.reduce((s, t) => s + t.ms, 0).toFixed(2).padStart(9)} ms in ${rest.length} more kernels`);
  return [`    ${how}: ${total.toFixed(1)} ms of GPU time in ${times.reduce((s, t) => s + t.count, 0)} dispatches`, ...lines].join("\n");
}
