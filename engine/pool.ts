// Buffer pool, bucketed by size. Storage buffers are never destroyed during a run: a released buffer waits in
// `pending` until the batch that may use it is submitted, then returns to its bucket's free list. Reuse after a
// submit is safe because the queue executes submits in order.
//
// Buckets: sizes round up to 2^k * {1, 1.25, 1.5, 1.75} (at most 25% waste), at least 256 bytes, but never past a
// device limit the request is within (the largest storage binding, the largest buffer): a tensor that fits one binding
// keeps fitting once pooled. SwiftShader allows 1 GiB for both, and the bucket of a 1.03 GiB request, 1.25 GiB, was
// refused by Dawn (an error that surfaced at the next submit, naming other kernels).
//
// A bucket hands out its oldest free buffer (lowest creation number), so that the buffers an acquisition gets
// depend only on which are free, not on the order they were released in: a training step then gets the same
// buffers step after step, and its dispatches find their bind groups from the previous step (engine/batch.ts).
// Handed out last-released-first, the buffers went round in cycles as release orders permuted them, and half the
// dispatches of a default-model training step made a new bind group (Dawn's null backend, 2026-12-04).

export function bucketSize(bytes: number, limits: readonly number[] = []): number {
  let size = 256;
  if (bytes > 256) {
    const p = 2 ** Math.floor(Math.log2(bytes));
    size = [1, 1.25, 1.5, 1.75, 2].map((f) => p * f).find((b) => b >= bytes)!;
  }
  for (const limit of limits) if (bytes <= limit) size = Math.max(bytes, Math.min(size, limit - (limit % 4)));
  return size;
}

// The device's limits on one buffer: the pool refuses a larger request by name, before Dawn would.
export interface BufferLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export interface PoolStats {
  liveBytes: number; // held by tensors (bucket sizes)
  freeBytes: number; // in free lists, ready for reuse
  pendingBytes: number; // released, waiting for the next submit
  pinnedBytes: number; // released but pinned (see pin()): not handed out until unpinned
  totalBytes: number; // everything the pool ever created and still owns
  peakLiveBytes: number;
  buffersCreated: number;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>(); // per bucket, newest first: pop() takes the oldest
  private order = new WeakMap<GPUBuffer, number>(); // creation number of each buffer
  private created = 0;
  private pending: GPUBuffer[] = [];
  private pins = new Map<GPUBuffer, number>(); // pin counts
  private parked = new Set<GPUBuffer>(); // released while pinned
  readonly limits: BufferLimits;
  private stats: PoolStats = { liveBytes: 0, freeBytes: 0, pendingBytes: 0, pinnedBytes: 0, totalBytes: 0, peakLiveBytes: 0, buffersCreated: 0 };

  constructor(
    private device: GPUDevice,
    private usage: number,
    private label: string,
    limits: BufferLimits,
  ) {
    // Numbers, read once: tests stand another object in for the device's limits.
    this.limits = { maxBufferSize: limits.maxBufferSize, maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize };
  }

  // The size of the buffer a request of `bytes` gets.
  sizeFor(bytes: number): number {
    return bucketSize(bytes, [this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize]);
  }

  // Refuses a request past the device's maxBufferSize by name, before Dawn would. `what` describes it (a tensor names
  // its shape and dtype), made only for the message; Tensor.empty checks here in a dry run too, which acquires nothing.
  checkSize(bytes: number, what = () => `${bytes} bytes`): void {
    const max = this.limits.maxBufferSize;
    if (bytes > max) throw new Error(`${this.label}: expected a buffer of at most ${max} bytes (the device's maxBufferSize), got ${what()}`);
  }

  // A buffer of at least `bytes`; `onMiss` lets the caller flush so pending buffers become reusable.
  acquire(bytes: number, onMiss?: () => void): GPUBuffer {
    this.checkSize(bytes);
    const size = this.sizeFor(bytes);
    let list = this.free.get(size);
    if ((!list || list.length === 0) && onMiss && this.pending.some((b) => b.size === size)) {
      onMiss();
      list = this.free.get(size);
    }
    let buf = list?.pop();
    if (buf) this.stats.freeBytes -= size;
    else {
      buf = this.device.createBuffer({ size, usage: this.usage, label: `${this.label}:${size}` });
      this.order.set(buf, this.created++);
      this.stats.totalBytes += size;
      this.stats.buffersCreated++;
    }
    this.stats.liveBytes += size;
    this.stats.peakLiveBytes = Math.max(this.stats.peakLiveBytes, this.stats.liveBytes);
    return buf;
  }

  release(buf: GPUBuffer): void {
    this.stats.liveBytes -= buf.size;
    if (this.pins.has(buf)) {
      this.park(buf);
      return;
    }
    this.stats.pendingBytes += buf.size;
    this.pending.push(buf);
  }

  // Called right after a submit: everything released before it may be reused.
  recycle(): void {
    for (const buf of this.pending) {
      if (this.pins.has(buf)) this.park(buf); // pinned after its release
      else this.toFreeList(buf);
    }
    this.stats.pendingBytes = 0;
    this.pending = [];
  }

  // Keeps `buf` from being handed out until as many unpin() calls: a free buffer leaves its free list, and a
  // held one that its tensor releases waits aside instead (a recorded step replayed later, engine/replay.ts, still
  // writes its temporaries); unpinned, it is reusable after the next submit, like a buffer just released. Pins
  // count; only this pool's tensor buffers can be pinned.
  pin(buf: GPUBuffer): void {
    const n = this.pins.get(buf) ?? 0;
    this.pins.set(buf, n + 1);
    if (n > 0) return;
    const list = this.free.get(buf.size);
    const at = list?.indexOf(buf) ?? -1;
    if (at < 0) return;
    list!.splice(at, 1);
    this.stats.freeBytes -= buf.size;
    this.park(buf);
  }

  unpin(buf: GPUBuffer): void {
    const n = this.pins.get(buf);
    if (n === undefined) throw new Error(`pool: expected a pinned buffer to unpin, got ${buf.label || "a buffer"} that is not pinned`);
    if (n > 1) {
      this.pins.set(buf, n - 1);
      return;
    }
    this.pins.delete(buf);
    if (!this.parked.delete(buf)) return;
    this.stats.pinnedBytes -= buf.size;
    this.stats.pendingBytes += buf.size;
    this.pending.push(buf); // commands encoded with it may not have been submitted yet
  }

  // Whether a pinned buffer was released (or was free when pinned): no tensor holds it.
  isParked(buf: GPUBuffer): boolean {
    return this.parked.has(buf);
  }

  private park(buf: GPUBuffer): void {
    this.parked.add(buf);
    this.stats.pinnedBytes += buf.size;
  }

  private toFreeList(buf: GPUBuffer): void {
    let list = this.free.get(buf.size);
    if (!list) this.free.set(buf.size, (list = []));
    // Insert keeping the list newest first (binary search on creation numbers).
    const n = this.order.get(buf)!;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.order.get(list[mid])! > n) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, buf);
    this.stats.freeBytes += buf.size;
  }

  // Destroys the free buffers (e.g. between benchmark cases) so that the process's memory shrinks.
  trim(): void {
    for (const list of this.free.values()) for (const b of list) {
      this.stats.totalBytes -= b.size;
      b.destroy();
    }
    this.free.clear();
    this.stats.freeBytes = 0;
  }

  resetPeak(): void {
    this.stats.peakLiveBytes = this.stats.liveBytes;
  }

  getStats(): PoolStats {
    return { ...this.stats };
  }
}
