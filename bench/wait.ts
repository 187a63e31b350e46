// `bench wait`: the main thread's CPU time (a) while the device is open and idle, (b) while awaiting a long
// GPU job directly (dawn-node polls while a promise is pending), (c) awaiting it quietly (polls about once a
// millisecond after the first, engine/quiet-await.ts), and (d) through the engine's estimate-then-await
// read-back, which sleeps for most of the expected GPU time first and awaits the rest quietly.
import { type Command, UsageError } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { initEngine, runtime, deviceLine } from "../engine/runtime.js";
import { Tensor, tidy } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { awaitQuietly, quietPolls } from "../engine/quiet-await.js";
import { mainThreadCpuMs } from "../engine/timing.js";
import { checkTensorFits } from "./harness.js";

export const FLAGS = { size: "int", reps: "int", json: "boolean" } as const;

async function cpuFraction(fn: () => Promise<void>): Promise<{ wallMs: number; cpuFraction: number }> {
  const cpu0 = mainThreadCpuMs();
  const t0 = performance.now();
  await fn();
  const wallMs = performance.now() - t0;
  return { wallMs, cpuFraction: (mainThreadCpuMs() - cpu0) / wallMs };
}

export const waitBench: Command = {
  summary: "main-thread CPU time while idle and while waiting on the GPU (busy-wait check)",
  usage: `usage: node dist/run.js bench wait [--size 1024] [--reps 20] [--json]

  --size  the square matmul chained to make a long GPU job (default 1024)
  --reps  matmuls chained per job (default 20: about a second on a 2-core CPU driver, for 10 ms CPU ticks)
  --json  print the timings as JSON`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const n = flags.size ?? 1024;
    const reps = flags.reps ?? 20;
    for (const [flag, v] of [["size", n], ["reps", reps]] as const) if (v < 1) throw new UsageError(`--${flag}: expected an integer >= 1, got ${v}`);
    await initEngine();
    checkTensorFits("--size", `the matrix (${n}, ${n})`, n * n);
    const { batch, gpu } = runtime();
    const a = Tensor.fromArray(new Float32Array(n * n).fill(0.001), [n, n]).keep();
    const job = () => tidy(() => {
      let x = a;
      for (let i = 0; i < reps; i++) x = ops.matmul(x, a);
      return ops.sumAll(x);
    });
    // Warm up (compiles) and teach the estimate the job's length.
    for (let i = 0; i < 3; i++) {
      const s = job();
      await s.item();
      s.dispose();
    }
    const idle = await cpuFraction(() => new Promise((r) => setTimeout(r, 1000)));
    const direct = await cpuFraction(async () => {
      const s = job();
      batch.submit();
      await gpu.device.queue.onSubmittedWorkDone();
      s.dispose();
    });
    const polls0 = quietPolls.count;
    const quiet = await cpuFraction(async () => {
      const s = job();
      batch.submit();
      await awaitQuietly(() => gpu.device.queue.onSubmittedWorkDone());
      s.dispose();
    });
    const quietPollCount = quietPolls.count - polls0;
    const engine = await cpuFraction(async () => {
      const s = job();
      await s.item();
      s.dispose();
    });
    const rows = { idle, directAwait: direct, quietAwait: quiet, estimateThenAwait: engine };
    if (flags.json) {
      console.log(JSON.stringify({ device: deviceLine(), size: n, reps, ...rows, quietPollCount }, null, 2));
      return;
    }
    console.log(deviceLine());
    for (const [name, r] of Object.entries(rows)) {
      console.log(`${name.padEnd(18)} wall ${r.wallMs.toFixed(0).padStart(6)} ms   main-thread CPU ${(r.cpuFraction * 100).toFixed(0).padStart(3)}%`);
    }
    // Zero would mean this dawn-node no longer polls through the global setImmediate, and the quiet await spins.
    console.log(`quiet await: ${quietPollCount} polls, each after a nap of its own`);
  },
};
