// Benchmark plumbing: the sizes a benchmark's flags may ask for, how many calls a timed run holds, a case timed with
// its own wait estimate, a timed case of a benchmark that takes turns between cases, and the per-kernel profile as a
// table. Timing itself is engine/timing.ts.
import { totalmem } from "node:os";
import type { KernelTime } from "../engine/profile.js";
import { BUFFER_COPY } from "../engine/census.js";
import { maxTensorBytes, runtime } from "../engine/runtime.js";
import { ownWaitEstimate, timeGpu } from "../engine/timing.js";
import { UsageError } from "../util/command.js";

// Refuses `flag`'s value where it asks for a tensor (`what`, of `values` f32 values) larger than one storage
// binding on this device (engine/runtime.ts maxTensorBytes), before anything that large is made.
export function checkTensorFits(flag: string, what: string, values: number): void {
  const limit = maxTensorBytes();
  if (4 * values > limit) throw new UsageError(`${flag}: expected ${what} within one storage binding, ${limit} bytes on this device, got ${4 * values} bytes`);
}

// Refuses `flag`'s value where what a run holds at once (`what`, `bytes`) exceeds half this machine's memory: a sane
// bound, since WebGPU tells no device's memory, and on a CPU driver the device's memory is this machine's.
export function checkMemoryFits(flag: string, what: string, bytes: number): void {
  const limit = totalmem() / 2;
  if (bytes > limit) throw new UsageError(`${flag}: expected ${what} within half this machine's memory, ${gib(limit)}, got ${gib(bytes)}`);
}
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

// Work per timed run, enough to amortise the submit and the wake-up. On lavapipe, interleaved: at 3200x192x576
// one product per sync ran at 32.4 GFLOP/s and five at 34.6; at 256^3 one at 19.7 and twenty at 30.4. A GPU does
// 4 GFLOP in well under a millisecond, and on an H200 a run of one such product was timed at a third to a quarter
// of its kernels' speed (bench vit's timestamps: 21 TFLOP/s at 6304x384x1152; bench matmul: 6.2 at 12608x384x1152
// with tiled128), and `bench attention`, a call per run, at 1.4-1.7 TFLOP/s at ViT-S's shape where ViT-B/16's
// steps ran its dK/dV pass, ~15 GFLOP, in 1.9 ms (timestamps): there a run holds a hundred times the work. Bytes
// for the memory-bound row kernels: ~10 ms of traffic at 10 GB/s (lavapipe) and at 4 TB/s.
const RUN_WORK = { FLOP: { cpu: 4e9, gpu: 4e11 }, byte: { cpu: 1e8, gpu: 4e10 } };
const RUN_MAX_CALLS = 100;

// Calls per timed run for a call of `work` units: RUN_WORK's worth, at least 1, at most RUN_MAX_CALLS.
export function callsPerRun(work: number, unit: "FLOP" | "byte", isCpu = runtime().gpu.isCpu): number {
  const target = RUN_WORK[unit][isCpu ? "cpu" : "gpu"];
  return Math.max(1, Math.min(RUN_MAX_CALLS, Math.floor(target / work)));
}

// The median milliseconds of one call, timed in runs of `calls` calls each ending with the GPU idle, after `warmup`
// untimed runs, with a wait estimate of the case's own (ownWaitEstimate: one learned on a slower case oversleeps).
export async function timeCalls(call: () => void, calls: number, opts: { warmup: number; reps: number }): Promise<number> {
  const paced = ownWaitEstimate();
  const { medianMs } = await paced(() => timeGpu(() => { for (let i = 0; i < calls; i++) call(); }, opts));
  return medianMs / calls;
}

// One timed case of a benchmark that takes turns between cases (bench matmul: our versions and TF.js).
export interface TimedCase {
  once(): Promise<number>; // one timed run; resolves with its milliseconds (per product, for bench matmul)
  dispose(): void;
}

// A product's rate, GFLOP/s over its summed time, from its label, which ends with its size ("[batch x ]M x K x N",
// kernels/matmul.ts's note); undefined for other kernels.
export function productGflops(t: KernelTime): number | undefined {
  const size = /^matmul .* (\d+(?:x\d+){2,3})$/.exec(t.label);
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
  const count = (copies: boolean) => times.filter((t) => t.label.startsWith(`${BUFFER_COPY} `) === copies).reduce((s, t) => s + t.count, 0);
  const copies = count(true);
  const commands = `${count(false)} dispatches${copies > 0 ? ` and ${copies} buffer copies` : ""}`;
  return [`    ${how}: ${total.toFixed(1)} ms of GPU time in ${commands}`, ...familyShares(times, total), ...lines].join("\n");
}

// The time's shares by kernel family (a label's first word, engine/pipeline.ts specLabel), largest first, with
// their dispatch counts: where a step's time goes at a glance, e.g. products against their int8 slicing.
function familyShares(times: KernelTime[], total: number): string[] {
  const families = new Map<string, { ms: number; count: number }>();
  for (const t of times) {
    const name = t.label.split(" ")[0];
    const f = families.get(name) ?? { ms: 0, count: 0 };
    f.ms += t.ms;
    f.count += t.count;
    families.set(name, f);
  }
  const parts = [...families].sort((a, b) => b[1].ms - a[1].ms).map(([name, f]) => `${name} ${((100 * f.ms) / total).toFixed(1)}% (${f.count}x)`);
  const lines: string[] = [];
  for (const part of parts) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + part.length < 112) lines[last] += `, ${part}`;
    else lines.push(`${last < 0 ? "    by kernel: " : "               "}${part}`);
  }
  return lines;
}
