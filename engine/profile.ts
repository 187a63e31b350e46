// Per-kernel GPU time from timestamp queries (the adapter feature "timestamp-query"; lavapipe has it).
//
// While a Profiler is attached to the batch (Batch.profile), every dispatch runs in a compute pass of its own whose
// beginning and end write timestamps into the submit's query set; at submit the query set is resolved into a
// mappable buffer, and after the batch's next wait those buffers are read and the durations summed per label
// (the kernel key and its grid, which tells shapes apart). One pass per dispatch costs a little on its own, so
// a profiled run is slower than an unprofiled one: use the shares, not the sum, to compare kernels.
export interface KernelTime {
  label: string; // kernel key (name/spec) and grid
  count: number; // dispatches
  ms: number; // summed GPU time
}

interface Slot {
  querySet: GPUQuerySet;
  resolved: GPUBuffer; // QUERY_RESOLVE | COPY_SRC
  read: GPUBuffer; // MAP_READ | COPY_DST
  labels: string[]; // one per dispatch written so far; timestamps 2i and 2i+1
}

export class Profiler {
  private totals = new Map<string, KernelTime>();
  private free: Slot[] = [];
  private current: Slot | undefined;
  private submitted: Slot[] = [];

  // capacity: dispatches per submit (the batch submits before it encodes more than that).
  constructor(
    private device: GPUDevice,
    private capacity: number,
  ) {}

  // Timestamp writes for the pass of the next dispatch, labelled `label`.
  timestampWrites(label: string): GPUComputePassTimestampWrites {
    const slot = (this.current ??= this.free.pop() ?? this.newSlot());
    const i = slot.labels.length;
    if (i >= this.capacity) throw new Error(`profile: expected at most ${this.capacity} dispatches per submit, got more`);
    slot.labels.push(label);
    return { querySet: slot.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  // Encodes the read-back of this submit's timestamps; call with the encoder just before it is finished.
  resolve(encoder: GPUCommandEncoder): void {
    const slot = this.current;
    if (!slot) return;
    const n = 2 * slot.labels.length;
    encoder.resolveQuerySet(slot.querySet, 0, n, slot.resolved, 0);
    encoder.copyBufferToBuffer(slot.resolved, 0, slot.read, 0, n * 8);
    this.submitted.push(slot);
    this.current = undefined;
  }

  // Adds the durations of every submitted batch to the totals. Call once the GPU has finished them.
  async collect(): Promise<void> {
    const slots = this.submitted.splice(0);
    for (const slot of slots) {
      const n = 2 * slot.labels.length;
      await slot.read.mapAsync(GPUMapMode.READ, 0, n * 8);
      const stamps = new BigUint64Array(slot.read.getMappedRange(0, n * 8).slice(0));
      slot.read.unmap();
      slot.labels.forEach((label, i) => {
        // A pass whose end precedes its beginning (timestamps are not guaranteed monotonic) counts as zero.
        const ns = stamps[2 * i + 1] > stamps[2 * i] ? Number(stamps[2 * i + 1] - stamps[2 * i]) : 0;
        const t = this.totals.get(label) ?? { label, count: 0, ms: 0 };
        t.count++;
        t.ms += ns / 1e6;
        this.totals.set(label, t);
      });
      slot.labels = [];
      this.free.push(slot);
    }
  }

  // Totals per label, slowest first.
  report(): KernelTime[] {
    return [...this.totals.values()].sort((a, b) => b.ms - a.ms);
  }

  reset(): void {
    this.totals.clear();
  }

  destroy(): void {
    for (const slot of [...this.free, ...this.submitted, ...(this.current ? [this.current] : [])]) {
      slot.querySet.destroy();
      slot.resolved.destroy();
      slot.read.destroy();
    }
    this.free = [];
    this.submitted = [];
    this.current = undefined;
  }

  private newSlot(): Slot {
    const count = 2 * this.capacity;
    return {
      querySet: this.device.createQuerySet({ type: "timestamp", count, label: "profile" }),
      resolved: this.device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: "profile" }),
      read: this.device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: "profile" }),
      labels: [],
    };
  }
}
