// Tensor storage, views, scopes and the buffer pool.
import { describe, expect, it } from "vitest";
import { Tensor, readTensors, tidy } from "../../engine/tensor.js";
import { runtime } from "../../engine/runtime.js";
import { BufferPool, bucketSize } from "../../engine/pool.js";
import { add, scale } from "../../autograd/ops.js";
import { useEngine } from "../helpers.js";
import { noGrad } from "../../autograd/tape.js";

useEngine();

describe("tensor", () => {
  it("round-trips f32 and i32 data", async () => {
    const f = Tensor.fromArray([1.5, -2, 3], [3]);
    expect(Array.from(await f.data())).toEqual([1.5, -2, 3]);
    const i = Tensor.fromArray([7, -1, 2147483647], [3], "i32");
    expect(Array.from(await i.dataInt())).toEqual([7, -1, 2147483647]);
    await expect(i.data()).rejects.toThrow("use dataInt()");
  });

  it("readTensors reads several tensors with one wait per group, in order", async () => {
    const sizes = [3, 1, 70, 5, 64, 2];
    const tensors = sizes.map((n, k) => Tensor.fromArray(Array.from({ length: n }, (_, i) => k * 1000 + i + 0.5), [n]));
    const { stats } = runtime().batch;
    const expected = sizes.map((n, k) => Array.from({ length: n }, (_, i) => k * 1000 + i + 0.5));
    let before = stats.readbacks;
    expect((await readTensors(tensors)).map((a) => Array.from(a))).toEqual(expected);
    expect(stats.readbacks - before).toBe(1);
    // Groups of at most 66 floats: [3, 1], [70] (larger than a group, on its own), [5], [64, 2].
    before = stats.readbacks;
    expect((await readTensors(tensors, 66 * 4)).map((a) => Array.from(a))).toEqual(expected);
    expect(stats.readbacks - before).toBe(4);
    before = stats.readbacks;
    expect((await readTensors(tensors, 4)).map((a) => Array.from(a))).toEqual(expected);
    expect(stats.readbacks - before).toBe(6);
    expect(await readTensors([])).toEqual([]);
    await expect(readTensors([tensors[0], Tensor.fromArray([1], [1], "i32")])).rejects.toThrow("tensor: readTensors reads f32, ");
  });

  it("reshape is a view over the same storage", async () => {
    const t = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = t.reshape([3, -1]);
    expect(v.shape).toEqual([3, 2]);
    expect(v.buffer).toBe(t.buffer);
    t.dispose();
    expect(Array.from(await v.data())).toEqual([1, 2, 3, 4, 5, 6]); // storage lives while a view does
    expect(() => t.buffer).toThrow("used after dispose");
    expect(() => v.reshape([4, 2])).toThrow("reshape: cannot view (3, 2) as (4, 2)");
  });

  it("write() is ordered after commands already encoded", async () => {
    const t = Tensor.fromArray([1, 2], [2]);
    const doubled = scale(t, 2); // encoded, not yet submitted
    t.write(new Float32Array([10, 20]));
    expect(Array.from(await doubled.data())).toEqual([2, 4]);
    expect(Array.from(await t.data())).toEqual([10, 20]);
  });

  it("a dry run's tensors hold no buffer of the pool and write nothing; used after it, they are refused by name", async () => {
    const { batch, pool } = runtime();
    const wet = Tensor.fromArray([1, 2], [2]);
    const { liveBytes, totalBytes, buffersCreated } = pool.getStats();
    const made = batch.dryRun(() => {
      const t = Tensor.fromArray(Array.from({ length: 1000 }, (_, i) => i), [10, 100]);
      wet.write(new Float32Array([5, 6])); // dropped, like the dispatches
      const v = add(t, t).reshape([1000]);
      expect(v.buffer.size).toBe(bucketSize(4000)); // the size the pool would have given
      v.name = "dry";
      return v;
    });
    expect(pool.getStats()).toMatchObject({ liveBytes, totalBytes, buffersCreated });
    expect(Array.from(await wet.data())).toEqual([1, 2]);
    expect(() => made.buffer).toThrow("Tensor(dry, f32, (1000)): made in a dry run, which computes nothing, used after it");
    made.dispose(); // returns nothing to the pool
    expect(pool.getStats()).toMatchObject({ liveBytes, totalBytes, buffersCreated });
    wet.dispose();
  });

  it("rejects data of the wrong length and bad shapes", () => {
    expect(() => Tensor.fromArray([1, 2, 3], [2, 2])).toThrow("tensor: expected 4 values for shape (2, 2), got 3");
    expect(() => Tensor.empty([2, -3])).toThrow("tensor: bad shape (2, -3)");
  });

  it("tidy disposes what it created except results and kept tensors", () => {
    const outside = Tensor.fromArray([1, 2], [2]);
    let inner: Tensor | undefined;
    let kept: Tensor | undefined;
    const result = tidy(() => {
      inner = add(outside, outside);
      kept = scale(outside, 3).keep();
      return { out: scale(inner, 2) };
    });
    expect(inner!.isDisposed).toBe(true);
    expect(kept!.isDisposed).toBe(false);
    expect(result.out.isDisposed).toBe(false);
    expect(outside.isDisposed).toBe(false);
  });

  it("nested tidy hands results to the enclosing scope", () => {
    const x = Tensor.fromArray([1], [1]);
    let mid: Tensor | undefined;
    tidy(() => {
      mid = tidy(() => scale(x, 2));
      expect(mid.isDisposed).toBe(false);
    });
    expect(mid!.isDisposed).toBe(true);
  });

  it("noGrad records no graph", () => {
    const w = Tensor.fromArray([1, 2], [2]).requireGrad();
    const y = noGrad(() => scale(w, 2));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeUndefined();
  });
});

describe("buffer pool", () => {
  it("buckets sizes with at most 25% waste", () => {
    expect(bucketSize(1)).toBe(256);
    expect(bucketSize(256)).toBe(256);
    expect(bucketSize(257)).toBe(320);
    expect(bucketSize(1000)).toBe(1024);
    expect(bucketSize(1025)).toBe(1280);
    for (let n = 300; n < 1e7; n = Math.ceil(n * 1.37)) {
      const b = bucketSize(n);
      expect(b).toBeGreaterThanOrEqual(n);
      expect(b / n).toBeLessThanOrEqual(1.25);
    }
  });

  it("never rounds a size past a device limit it is within: a tensor that fits one binding fits once pooled", () => {
    expect(bucketSize(1000, [1000])).toBe(1000); // 1024 without the limit
    expect(bucketSize(1000, [999])).toBe(1024); // over that limit: the bucket as usual
    expect(bucketSize(580, [600, 1000])).toBe(600); // within both: the smaller, less its odd bytes
    expect(bucketSize(601, [600, 1000])).toBe(640); // within the larger only, whose bound the bucket is under
    expect(bucketSize(1001, [1002])).toBe(1001); // the limit less its odd bytes would be short: the size itself
    // lavapipe's limits: a buffer of up to 2^32 - 1 bytes, whose bucket of 2^32 Dawn would refuse
    expect(bucketSize(2 ** 32 - 8, [2 ** 27, 2 ** 32 - 1])).toBe(2 ** 32 - 4);
  });

  it("refuses a buffer past the device's maxBufferSize by name, before asking Dawn for it", async () => {
    const { device, limits } = runtime().gpu;
    const pool = new BufferPool(device, GPUBufferUsage.STORAGE, "test", { maxBufferSize: 1000, maxStorageBufferBindingSize: 600 });
    expect(pool.acquire(580).size).toBe(600);
    expect(pool.acquire(601).size).toBe(640);
    expect(pool.acquire(999).size).toBe(1000);
    expect(() => pool.acquire(1001)).toThrow("test: expected a buffer of at most 1000 bytes (the device's maxBufferSize), got 1001 bytes");
    const words = Math.floor(limits.maxBufferSize / 4) + 1;
    const before = runtime().pool.getStats().buffersCreated;
    expect(() => Tensor.empty([words])).toThrow(`tensor: expected a buffer of at most ${limits.maxBufferSize} bytes (the device's maxBufferSize), got (${words}) f32 in ${words * 4} bytes`);
    expect(runtime().pool.getStats().buffersCreated).toBe(before);
    expect(await Tensor.fromArray([1, 2], [2]).data()).toEqual(Float32Array.from([1, 2])); // no error left for the next submit
  });

  it("reuses released buffers only after a submit", async () => {
    const { pool, batch } = runtime();
    batch.submit();
    const a = Tensor.empty([1000]);
    const buf = a.buffer;
    a.dispose();
    const before = pool.getStats();
    expect(before.pendingBytes).toBeGreaterThanOrEqual(4096);
    batch.submit();
    expect(pool.getStats().pendingBytes).toBe(0);
    const b = Tensor.empty([1000]);
    expect(b.buffer).toBe(buf);
    b.dispose();
  });

  it("hands out the oldest free buffer, so a repeated step gets the same buffers whatever the release order", () => {
    const { batch } = runtime();
    batch.submit();
    const step = () => [0, 1, 2].map(() => Tensor.empty([777_777])); // a bucket no other test uses
    let ts = step();
    const buffers = ts.map((t) => t.buffer);
    for (const order of [[2, 0, 1], [1, 2, 0], [0, 2, 1]]) {
      for (const i of order) ts[i].dispose();
      batch.submit();
      ts = step();
      expect(ts.map((t) => buffers.indexOf(t.buffer))).toEqual([0, 1, 2]); // GPUBuffers compare by identity only
    }
    for (const t of ts) t.dispose();
  });

  it("hands out no pinned buffer: a free one leaves its list, a held one waits aside when released, until unpinned", () => {
    const { pool, batch } = runtime();
    batch.submit();
    const size = [654_321]; // a bucket no other test uses
    const free = Tensor.empty(size);
    const held = Tensor.empty(size);
    const [freeBuf, heldBuf] = [free.buffer, held.buffer];
    free.dispose();
    batch.submit();
    const bytes = freeBuf.size;
    const before = pool.getStats();
    pool.pin(freeBuf);
    pool.pin(heldBuf);
    pool.pin(heldBuf); // pins count
    expect(pool.isParked(freeBuf)).toBe(true);
    expect(pool.isParked(heldBuf)).toBe(false);
    expect(pool.getStats().freeBytes).toBe(before.freeBytes - bytes);
    expect(pool.getStats().pinnedBytes).toBe(before.pinnedBytes + bytes);
    held.dispose();
    expect(pool.isParked(heldBuf)).toBe(true); // at once: the pending list is for buffers to reuse
    batch.submit();
    expect(pool.getStats().pinnedBytes).toBe(before.pinnedBytes + 2 * bytes);
    const other = Tensor.empty(size);
    expect([freeBuf, heldBuf]).not.toContain(other.buffer);
    pool.unpin(freeBuf);
    pool.unpin(heldBuf);
    expect(pool.isParked(heldBuf)).toBe(true); // pinned once more
    pool.unpin(heldBuf);
    expect(pool.getStats().pinnedBytes).toBe(before.pinnedBytes);
    expect(pool.getStats().pendingBytes).toBe(2 * bytes); // reusable after the next submit, like released buffers
    batch.submit();
    const again = [Tensor.empty(size), Tensor.empty(size)];
    expect(again.map((t) => t.buffer)).toEqual([freeBuf, heldBuf]); // back on the free list, oldest first
    expect(() => pool.unpin(freeBuf)).toThrow("pool: expected a pinned buffer to unpin");
    for (const t of [other, ...again]) t.dispose();
  });
});
