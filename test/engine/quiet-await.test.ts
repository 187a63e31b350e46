// Quiet awaiting: setImmediate is throttled only while a long await is pending (and restored after, also on
// rejection and with overlapping awaits), handles made meanwhile clear as they should, and dawn-node's polls of a
// real GPU wait go through the throttled path (if a new dawn-node stops using the global setImmediate, the
// last test fails rather than the wait silently spinning again).
import { describe, expect, it } from "vitest";
import { awaitQuietly, quietPolls } from "../../engine/quiet-await.js";
import { runtime } from "../../engine/runtime.js";
import { Tensor, tidy } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { useEngine } from "../helpers.js";

useEngine();

const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe("awaitQuietly", () => {
  it("throttles setImmediate during a long await and restores it after", async () => {
    const spinning = globalThis.setImmediate;
    let during: typeof setImmediate | undefined;
    setTimeout(() => (during = globalThis.setImmediate), 10);
    expect(await awaitQuietly(() => after(30, "done"))).toBe("done");
    expect(during).toBeDefined();
    expect(during).not.toBe(spinning);
    expect(globalThis.setImmediate).toBe(spinning);
  });

  it("leaves setImmediate alone for a wait shorter than the spin", async () => {
    const spinning = globalThis.setImmediate;
    const polls = quietPolls.count;
    expect(await awaitQuietly(() => Promise.resolve(7))).toBe(7);
    expect(globalThis.setImmediate).toBe(spinning);
    expect(quietPolls.count).toBe(polls);
  });

  it("spins through a longer spinMs before throttling", async () => {
    const spinning = globalThis.setImmediate;
    let during: typeof setImmediate | undefined;
    setTimeout(() => (during = globalThis.setImmediate), 10);
    expect(await awaitQuietly(() => after(30, "done"), 60)).toBe("done");
    expect(during).toBe(spinning);
  });

  it("restores setImmediate after a rejection and only when overlapping awaits have all settled", async () => {
    const spinning = globalThis.setImmediate;
    const failing = awaitQuietly(() => after(20, 0).then(() => Promise.reject(new Error("lost device"))));
    const longer = awaitQuietly(() => after(40, "longer"));
    await expect(failing).rejects.toThrow("lost device");
    expect(globalThis.setImmediate).not.toBe(spinning); // the longer await is still pending
    expect(await longer).toBe("longer");
    expect(globalThis.setImmediate).toBe(spinning);
  });

  it("runs setImmediate callbacks made during the window, and clearImmediate cancels them", async () => {
    const ran: string[] = [];
    const wait = awaitQuietly(() => after(30, 0));
    await after(10, 0);
    globalThis.setImmediate((x: string) => ran.push(x), "kept");
    const cancelled = globalThis.setImmediate(() => ran.push("cancelled"));
    globalThis.clearImmediate(cancelled);
    await wait;
    await after(5, 0);
    expect(ran).toEqual(["kept"]);
    // And setImmediate callbacks still run after the window.
    const immediate = new Promise((resolve) => setImmediate(() => resolve("ran")));
    expect(await Promise.race([immediate, after(1000, "stuck")])).toBe("ran");
  });

  it("dawn-node's polls of a pending GPU promise go through the throttled setImmediate", async () => {
    const { batch, gpu } = runtime();
    // CPU drivers only, where a polling main thread takes a core from the driver's workers. On an H200 this held in
    // one run and not in the next (waits of over 10 ms ended without a throttled poll), and there the wait costs
    // the GPU nothing either way.
    if (!gpu.isCpu) return;
    const a = Tensor.fromArray(new Float32Array(512 * 512).fill(0.001), [512, 512]);
    // Chained products: tens of ms on a CPU driver; on a fast GPU the wait may end within the spin, so retry longer.
    for (let chain = 8, polls = quietPolls.count; ; chain *= 4) {
      const y = tidy(() => {
        let x = a;
        for (let i = 0; i < chain; i++) x = ops.matmul(x, a);
        return x;
      });
      batch.submit();
      const t0 = performance.now();
      await awaitQuietly(() => gpu.device.queue.onSubmittedWorkDone());
      const waited = performance.now() - t0;
      y.dispose();
      if (waited > 10 || chain > 1000) {
        expect(quietPolls.count).toBeGreaterThan(polls);
        break;
      }
    }
    a.dispose();
  });
});
