// Per-kernel device time by replay: the dispatches and buffer copies of one run are recorded
// (Batch.startRecording), then each is encoded again on its own, n times back to back between two syncs, and its
// time is the median over `rounds` such runs divided by n; the times are summed per label (kernel key and note or
// grid), as engine/profile.ts sums its timestamps. n makes a run last about `runMs`: the wait for a run ends late
// (the quiet wait polled once a millisecond when this was written, every 0.25 ms since: engine/quiet-await.ts), so
// ten 20-us dispatches per run were timed at 200 us each. A dispatch's time so includes what the device spends on a
// dispatch beside its work (~60 us on lavapipe), and the sum over a step is the device's share of the step's wall
// time. A buffer copy (copyBufferToBuffer: a gradient that a leaf shares with another tensor, a replay's input or
// output) is labelled `buffer-copy` with its size.
//
// Why beside the profile: on lavapipe the per-pass timestamps are ~65 us apart at best and a pass can be charged
// for what ran before it. In one profile of the default model's full fine-tuning step (2026-12-04) the passes
// summed to 66 ms while the profiled step took 59 ms, and the trained weights' 13 packs were charged 12 ms; timed
// back to back, the same packs took ~2 ms (docs/PERFORMANCE.md).
//
// Replaying runs the kernels again on the buffers they last used, in the order recorded but each many times over:
// kernels that update a buffer in place (an optimiser step, a gradient accumulated into `out`) leave it changed, so
// after a census the state of the run's model is not what a run would leave. Benchmarks take it after their timed
// runs. What the recorded dispatches bound must stay alive until the census ends: the buffer pool never destroys
// a buffer during a run (engine/pool.ts), and the kernels are cached for the process.
import { runtime } from "./runtime.js";
import { type RecordedCopy, type RecordedDispatch, dispatchLabel } from "./batch.js";
import type { KernelTime } from "./profile.js";
import { ownWaitEstimate } from "./timing.js";
import { median } from "../util/stats.js";

export interface CensusOptions {
  rounds?: number; // timed runs per dispatch (default 5), after one untimed
  runMs?: number; // the length of a run that n is chosen for (default 20)
}

const MAX_REPEATS = 1000; // n at most
export const BUFFER_COPY = "buffer-copy"; // a copy's label, before its size

// Runs `run` once with its commands recorded, then times each dispatch and copy on its own. Returns the totals per
// label, slowest first.
export async function census(run: () => void | Promise<void>, opts: CensusOptions = {}): Promise<KernelTime[]> {
  const { batch } = runtime();
  const rounds = opts.rounds ?? 5;
  const runMs = opts.runMs ?? 20;
  if (!Number.isInteger(rounds) || rounds < 1 || !(runMs > 0)) {
    throw new Error(`census: expected a positive integer of rounds and a positive runMs, got ${rounds} and ${runMs}`);
  }
  const recorded = await batch.record(run);
  const commands = recorded.filter((c): c is RecordedDispatch | RecordedCopy => c.kind === "dispatch" || c.kind === "copy");
  const totals = new Map<string, KernelTime>();
  for (const d of commands) {
    const paced = ownWaitEstimate(); // each dispatch's own: they differ by orders of magnitude
    const once = (n: number) =>
      paced(async () => {
        const t0 = performance.now();
        for (let i = 0; i < n; i++) batch.encode(d);
        await batch.sync();
        return (performance.now() - t0) / n;
      });
    const n = Math.min(MAX_REPEATS, Math.ceil(runMs / (await once(10)))); // the untimed run, overestimating
    const ms: number[] = [];
    for (let r = 0; r < rounds; r++) ms.push(await once(n));
    const label = d.kind === "copy" ? `${BUFFER_COPY} ${d.bytes} bytes` : dispatchLabel(d.kernel.label, d.grid, d.note);
    const t = totals.get(label) ?? { label, count: 0, ms: 0 };
    t.count++;
    t.ms += median(ms);
    totals.set(label, t);
  }
  return [...totals.values()].sort((a, b) => b.ms - a.ms);
}
