// Command batching: dispatches share one submit, and WebGPU errors surface as thrown errors carrying Dawn's
// message and the kernel's name.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { runtime, getKernel } from "../../engine/runtime.js";
import { quietPolls } from "../../engine/quiet-await.js";
import * as ops from "../../autograd/ops.js";
import { useEngine } from "../helpers.js";

useEngine();

describe("batch", () => {
  it("encodes many ops into one submit and submits only on read-back", async () => {
    const { batch } = runtime();
    batch.submit();
    const before = { ...batch.stats };
    let x = Tensor.fromArray([1, 2, 3], [3]);
    for (let i = 0; i < 20; i++) x = ops.addScalar(x, 1);
    expect(batch.stats.submits).toBe(before.submits);
    expect(batch.stats.dispatches - before.dispatches).toBe(20);
    expect(Array.from(await x.data())).toEqual([21, 22, 23]);
    expect(batch.stats.submits).toBe(before.submits + 1);
  });

  it("a validation error names the kernel and carries Dawn's message", async () => {
    const kernel = getKernel("broken-binding", { n: 1 }, () => `
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = x[0]; }`);
    const y = Tensor.empty([1]);
    // Binding 2 is missing: the bind group does not match the pipeline's layout.
    runtime().batch.dispatch(kernel, [y.buffer], undefined, [1]);
    await expect(y.data()).rejects.toThrow(/WebGPU error during kernels broken-binding\/n=1[\s\S]*BindGroup/);
  });

  // A shader that does not compile, one pipeline per n.
  const brokenWgsl = (n: number) =>
    getKernel("broken-wgsl", { n }, () => `
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = undefined_name; }`);

  it("a read-back that failed leaves its staging buffer unmapped, so the next read of that size works", async () => {
    // A compile error can surface only after the read-back's mapAsync resolved, with the staging buffer mapped.
    const y = Tensor.empty([1]);
    runtime().batch.dispatch(brokenWgsl(3), [y.buffer], undefined, [1]);
    const errors = [await y.data().then(() => "", (e: Error) => e.message)];
    errors.push(await Tensor.fromArray([1], [1]).data().then(() => "", (e: Error) => e.message));
    expect(errors.join("\n")).toMatch(/undefined_name/);
    expect(Array.from(await Tensor.fromArray([7], [1]).data())).toEqual([7]);
  });

  it("a shader that does not compile is reported with line:column and its WGSL", async () => {
    const y = Tensor.empty([1]);
    runtime().batch.dispatch(brokenWgsl(2), [y.buffer], undefined, [1]);
    const err = await y.data().then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/broken-wgsl\/n=2/);
    // The compiler's messages arrive asynchronously: they are thrown at the latest by the next read-back.
    const later = await Tensor.fromArray([1], [1]).data().then(() => "", (e: Error) => e.message);
    expect(`${err?.message}\n${later}`).toMatch(/broken-wgsl\/n=2 3:\d+: .*undefined_name[\s\S]*--- WGSL of broken-wgsl/);
  });

  it("a dry run drops dispatches and copies, refuses read-backs and promises, and always ends", async () => {
    const { batch } = runtime();
    const x = Tensor.fromArray([1, 2, 3], [3]);
    const before = { ...batch.stats };
    let read: Promise<Float32Array> | undefined;
    const y = batch.dryRun(() => {
      const z = ops.addScalar(x, 1);
      batch.copy(x.buffer, 0, z.buffer, 0, 12);
      read = z.data();
      return z;
    });
    expect(batch.stats).toEqual(before);
    await expect(read).rejects.toThrow("batch: expected no read-back in a dry run, which computes nothing, got one");
    expect(() => batch.dryRun(() => { throw new Error("boom"); })).toThrow("boom");
    expect(() => batch.dryRun(async () => {})).toThrow("batch: expected a synchronous function for a dry run, got one returning a promise");
    // Wet again after each: the same op now runs and reads back.
    expect(Array.from(await ops.addScalar(x, 1).data())).toEqual([2, 3, 4]);
    expect(batch.stats.dispatches).toBe(before.dispatches + 1);
    y.dispose();
  });

  // One invocation looping `iterations` times: a GPU job of a few ms on any device, its length chosen by the test.
  const spinning = (iterations: number) =>
    getKernel("spinning-probe", { iterations }, () => `
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() {
  var s = 0.0;
  for (var i = 0u; i < ${iterations}u; i++) { s = s * 0.999 + f32(i & 7u); }
  y[0] = s;
}`);

  describe("wait estimate", () => {
    // `work` is the estimate's unit count. 10^7 iterations, ~10 ms on lavapipe: a wait learns only from work still
    // running after 2 ms, and 2 * 10^6 (~2 ms) sometimes ended before it under a loaded test run.
    const busy = () => spinning(10_000_000);
    const job = async (kernel = busy()) => {
      const y = Tensor.empty([1]);
      runtime().batch.dispatch(kernel, [y.buffer], undefined, [1], 1e7);
      await runtime().batch.sync();
      y.dispose();
    };

    it("learns nothing from a kernel's first dispatch, then learns from the next", async () => {
      const { batch } = runtime();
      const fresh = spinning(10_000_001); // a kernel no other test dispatches, whatever their order
      const before = batch.secondsPerUnit;
      await job(fresh); // its first dispatch: its time includes the shader compile on llvmpipe
      expect(batch.secondsPerUnit).toBe(before);
      batch.secondsPerUnit = 0; // unknown: the next wait does not sleep, and takes the measurement as it is
      await job(fresh);
      expect(batch.secondsPerUnit).toBeGreaterThan(0);
    });

    it("learns nothing from a wait that found the work done, however long ago it was submitted", async () => {
      const { batch } = runtime();
      await job();
      const estimate = 1e-12; // far too low to sleep on
      batch.secondsPerUnit = estimate;
      const y = Tensor.empty([1]);
      batch.dispatch(busy(), [y.buffer], undefined, [1], 1e7);
      batch.submit();
      await new Promise((r) => setTimeout(r, 300)); // the host busy elsewhere (the analysis's CKA), the work done
      await batch.sync();
      expect(batch.secondsPerUnit).toBe(estimate); // not 300 ms of the host's per 1e7 units
      y.dispose();
    });

    it("sleeps at most twice the longest in-flight time it learned from, whatever the estimate", async () => {
      const { batch } = runtime();
      await job();
      const longest = batch.longestMs;
      expect(longest).toBeGreaterThan(0);
      batch.secondsPerUnit = 1e-4; // 1000 s for the job's 1e7 units: an estimate learned on other work
      batch.stats.sleptMs = 0; // so that the total is this wait's sleep, not a difference of rounded sums
      await job();
      const sleptNow = batch.stats.sleptMs;
      expect(sleptNow).toBeGreaterThan(0);
      expect(sleptNow).toBeLessThanOrEqual(2 * longest);
    });

    it("never sleeps on Dawn's null backend, which does no work to sleep through", async () => {
      const { batch, gpu } = runtime();
      await job();
      const backend = gpu.backend;
      const longest = batch.longestMs;
      batch.longestMs = 1e6; // as if long work had been learned from: no cap on the sleep
      batch.secondsPerUnit = 1e-8; // 100 ms for the job's 1e7 units: this wait would sleep 80 ms on a device
      batch.stats.sleptMs = 0;
      gpu.backend = "null";
      try {
        await job();
        expect(batch.stats.sleptMs).toBe(0);
      } finally {
        gpu.backend = backend;
        batch.longestMs = longest;
        batch.secondsPerUnit = 0;
      }
      batch.secondsPerUnit = 1e-8; // the same estimate on the adapter's own backend sleeps
      batch.longestMs = 1e6;
      try {
        await job();
        expect(batch.stats.sleptMs).toBeGreaterThan(0);
      } finally {
        batch.longestMs = longest;
        batch.secondsPerUnit = 0;
      }
    });

    it("moves an estimate at most four times up in one wait: one slow batch does not make every later wait oversleep", async () => {
      const { batch } = runtime();
      await job();
      await job(); // compiled, and learned from
      const low = batch.secondsPerUnit / 1e4; // far too low to sleep on: the wait finds the device busy
      batch.secondsPerUnit = low;
      await job();
      expect(batch.secondsPerUnit).toBe(4 * low);
    });

    it("halves an estimate it overslept on for a kernel's first dispatch, and for a batch too small to learn from", async () => {
      const { batch } = runtime();
      await job();
      const longest = batch.longestMs;
      batch.longestMs = 1e6; // as if long work had been learned from: no cap on the sleep
      try {
        // A kernel no other test dispatches (its compile and run take well under the 1.6 s asleep), then 10^5 units.
        for (const [kernel, work] of [[spinning(10_000_002), 1e7], [busy(), 1e5]] as const) {
          const tooHigh = 2 / work; // 2 s for a job of a few ms: it sleeps 1.6 s, and finds the work done
          batch.secondsPerUnit = tooHigh;
          const y = Tensor.empty([1]);
          batch.dispatch(kernel, [y.buffer], undefined, [1], work);
          await batch.sync();
          y.dispose();
          expect(batch.secondsPerUnit, `${work} units`).toBe(tooHigh / 2);
        }
      } finally {
        batch.longestMs = longest;
        batch.secondsPerUnit = 0;
      }
    });

    it("halves an estimate it overslept on, even when the finished work is noticed late", async () => {
      const { batch, gpu } = runtime();
      await job();
      const t0 = performance.now();
      await job();
      const jobMs = performance.now() - t0;
      const tooHigh = (20 * jobMs + 100) / 1000 / 1e7; // seconds per unit: ~20x the job, so it sleeps ~16x
      batch.secondsPerUnit = tooHigh;
      const longest = batch.longestMs;
      batch.longestMs = 1e6; // as if long work had been learned from: no cap on the sleep
      const y = Tensor.empty([1]);
      batch.dispatch(busy(), [y.buffer], undefined, [1], 1e7);
      batch.submit();
      // The work is long done when the sleep ends; the promise still takes 8 ms, as dawn-node's notice sometimes does.
      const lateNotice = () => gpu.device.queue.onSubmittedWorkDone().then(() => new Promise((r) => setTimeout(r, 8)));
      await batch.wait(lateNotice);
      batch.longestMs = longest;
      expect(batch.secondsPerUnit).toBe(tooHigh / 2);
      y.dispose();
    });
  });

  describe("wait policy (PEFT_WAIT)", () => {
    it("busy neither sleeps nor throttles; spin sleeps but does not throttle; quiet does both", async () => {
      const { batch, gpu } = runtime();
      // Tens of ms: a GPU promise stays pending (and dawn-node polls) that long, well past quiet's 1 ms of spinning
      // (8M iterations, a few ms, once let the quiet await end before its first throttled poll in a loaded run).
      const slowKernel = spinning(40_000_000);
      const y = Tensor.empty([1]);
      const longest = batch.longestMs;
      batch.longestMs = 1e6; // as if long work had been learned from: no cap on the sleep
      const waitWith = async (policy: typeof batch.policy, secondsPerUnit: number) => {
        batch.policy = policy;
        batch.secondsPerUnit = secondsPerUnit;
        batch.dispatch(slowKernel, [y.buffer], undefined, [1], 1e7);
        batch.submit();
        const [polls, slept] = [quietPolls.count, batch.stats.sleptMs];
        await batch.wait(() => gpu.device.queue.onSubmittedWorkDone());
        return { sleptMs: batch.stats.sleptMs - slept, throttled: quietPolls.count > polls };
      };
      const policy = batch.policy;
      try {
        await waitWith("busy", 0); // compiles the probe
        // An estimate of 1.5 s for a job of a few ms: only policies that sleep sleep on it (what they slept, not the
        // wall time, which a loaded machine stretches).
        expect((await waitWith("busy", 1.5 / 1e7)).sleptMs).toBe(0);
        expect((await waitWith("spin", 1.5 / 1e7)).sleptMs).toBeGreaterThan(1000); // 80% of 1.5 s asleep
        // No estimate, no sleep: the await itself, polled quietly only under quiet.
        expect((await waitWith("busy", 0)).throttled).toBe(false);
        expect((await waitWith("spin", 0)).throttled).toBe(false);
        expect((await waitWith("quiet", 0)).throttled).toBe(true);
      } finally {
        batch.policy = policy;
        batch.secondsPerUnit = 0;
        batch.longestMs = longest;
        y.dispose();
      }
    });
  });
});

