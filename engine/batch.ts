// Command batching. Every kernel dispatch is encoded into one shared command encoder and compute pass; the
// batch is submitted only when a value is read back, when it grows past MAX_DISPATCHES (so the GPU starts
// on long graphs while the CPU keeps encoding), or on sync(). Nothing waits on the GPU unless a value is read.
//
// Per-dispatch sizes (the uniform structs) are packed into 64 KiB uniform pages at 256-byte slots and written
// with one writeBuffer per page just before the submit. Pages keep their staging bytes from batch to batch: a new
// 64 KiB array per page made the host's cost of a dispatch 35 us instead of 24 (Dawn's null backend, 2-core host),
// mostly in the garbage collector.
//
// Waiting: dawn-node burns a core while a GPU promise is pending, so before awaiting we sleep for most of the
// GPU time the pending work is expected to take (an estimate learned from earlier waits; see wait()), and the
// rest of the wait polls about every quarter of a millisecond instead of spinning (engine/quiet-await.ts).
// PEFT_WAIT (engine/settings.ts) picks the policy: quiet (that, the default), spin (sleep, then await directly: dawn-node spins a
// core until the promise settles) or busy (await directly, no sleep: the naive wait, for comparisons).
import type { Gpu } from "./device.js";
import { throwIfDeviceError } from "./device.js";
import type { BufferPool } from "./pool.js";
import type { DerivedCache } from "./derived.js";
import type { Kernel, PipelineCache } from "./pipeline.js";
import type { WaitPolicy } from "./settings.js";
import { Profiler } from "./profile.js";
import { awaitQuietly } from "./quiet-await.js";

export const UNIFORM_SLOT = 256; // bytes per uniform: minUniformBufferOffsetAlignment on every adapter we know
const PAGE = 64 * 1024;
const MAX_DISPATCHES = 512;
const MAX_GROUPS_PER_KERNEL = 1024;

interface UniformSlot {
  buffer: GPUBuffer; // a uniform page
  offset: number;
  size: number;
}

// A small number per buffer, for bind-group cache keys.
const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 0;
function bufferId(buffer: GPUBuffer): number {
  let id = bufferIds.get(buffer);
  if (id === undefined) bufferIds.set(buffer, (id = nextBufferId++));
  return id;
}

// A dispatch's own GPU time, beside its work: ~60 us measured on lavapipe. A GPU's is a few us and hides in
// its kernels' time; counted at lavapipe's, a training step's optimizer (a few hundred tiny dispatches) would be
// expected to take ms that the GPU finishes in a fraction of one, and the wait would oversleep them.
const DISPATCH_OVERHEAD_S = { cpu: 60e-6, gpu: 0 };

// The most one wait may raise the estimate by. A batch whose units took far longer than the rest's (matmul's test of
// 70,001 one-row products, 55 s on SwiftShader, ~10^4 times the estimate) taught every later wait to sleep seconds
// for milliseconds of work; an estimate that moves up gradually undersleeps a lasting change for a few waits, which
// costs only quiet polls.
const MAX_GROWTH = 4;

export type Grid = [number, number?, number?];

// What the batch keeps while it records (startRecording): the dispatches and copies as encoded (engine/census.ts
// replays dispatches one by one, engine/replay.ts the whole list), and the uploads and read-backs, which only the
// host can repeat (by their description).
export interface RecordedDispatch {
  kind: "dispatch";
  kernel: Kernel;
  buffers: GPUBuffer[];
  uniform: ArrayBuffer | undefined; // a copy of the bytes
  grid: Grid;
  work: number;
  note: string | undefined;
}
export interface RecordedCopy {
  kind: "copy";
  src: GPUBuffer;
  srcOffset: number;
  dst: GPUBuffer;
  dstOffset: number;
  bytes: number;
}
export type RecordedCommand = RecordedDispatch | RecordedCopy | { kind: "upload" | "read"; what: string };

export class Batch {
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private pages: { buffer: GPUBuffer; data: Uint8Array; used: number }[] = [];
  private freePages: { buffer: GPUBuffer; data: Uint8Array; used: number }[] = []; // reused with their staging bytes
  private names: string[] = []; // kernels in this batch, for error messages
  private dispatches = 0;
  private work = 0; // estimated work units of the encoded, unsubmitted dispatches
  private firstUse = false; // some encoded dispatch is its kernel's first (its time includes a compile)
  // Submitted but possibly unfinished work, and the learned seconds per work unit.
  private inflightWork = 0;
  private inflightDispatches = 0;
  private inflightSince = 0;
  private inflightFirstUse = false;
  // Learned seconds per work unit. Public so that a benchmark taking turns between kernels of different speeds can
  // keep one per kernel: a shared estimate learned on a slow kernel makes the next, faster one oversleep.
  // 0 until the first wait it can learn from: before that, waits do not sleep (a guess too high oversleeps).
  secondsPerUnit = 0;
  // The longest in-flight time a wait has learned from (ms): a wait sleeps at most twice that. One estimate serves
  // work of every kind, and work units are not the same time in every kernel: after small read-backs (3-16 ms for
  // ~1e6 units) the default study's analysis slept 0.25-4.3 s on batches of 2e9 units that took a fraction of that,
  // and took 25-44 s instead of 14 (2026-12-04). Sleeping too little costs the quiet polls; too much, the GPU's time.
  longestMs = 0;
  private profiler: Profiler | undefined; // per-kernel GPU times, while profiling (see engine/profile.ts)
  readonly stats = { dispatches: 0, submits: 0, readbacks: 0, sleptMs: 0 };
  reuseBindGroups: boolean; // see bindGroup(); public for tests
  private readonly dispatchOverhead: number;
  private dry = false; // see dryRun()
  private recorded: RecordedCommand[] | undefined; // see startRecording()

  constructor(
    private gpu: Gpu,
    private pool: BufferPool,
    private pipelines: PipelineCache,
    private derived: DerivedCache, // invalidated for every buffer a dispatch or copy may write
    public policy: WaitPolicy, // PEFT_WAIT; public: tests and benchmarks compare policies in one process
    public log: ((line: string) => void) | undefined, // DEBUG: every dispatch; public: tests read the log
  ) {
    this.dispatchOverhead = gpu.isCpu ? DISPATCH_OVERHEAD_S.cpu : DISPATCH_OVERHEAD_S.gpu;
    this.reuseBindGroups = !gpu.isCpu;
  }

  // Encodes one dispatch. `buffers` bind from @binding(1) in order; `uniform` (if any) binds to @binding(0).
  // `work` is a rough cost (flops + bytes) used only to estimate how long to sleep before a read-back; `note`
  // (e.g. a matmul's sizes) names the dispatch in DEBUG logs and profiles, which otherwise show the grid.
  dispatch(kernel: Kernel, buffers: GPUBuffer[], uniform: ArrayBuffer | undefined, grid: Grid, work = 0, note?: string): void {
    const [x, y = 1, z = 1] = grid;
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new Error(`${kernel.key}: grid (${x}, ${y}, ${z}) exceeds maxComputeWorkgroupsPerDimension ${max}`);
    }
    if (x === 0 || y === 0 || z === 0 || this.dry) return;
    const slot = uniform ? this.uniformSlot(uniform) : undefined;
    this.encodeDispatch({ kind: "dispatch", kernel, buffers, uniform, grid: [x, y, z], work, note }, this.bindGroup(kernel, slot, buffers));
  }

  // Encodes a recorded dispatch again with a bind group made for it once, its uniform in a buffer of the caller's
  // (engine/replay.ts), instead of a slot of this batch's uniform pages and a bind group found or made for it.
  dispatchBound(c: RecordedDispatch, bindGroup: GPUBindGroup): void {
    if (!this.dry) this.encodeDispatch(c, bindGroup);
  }

  private encodeDispatch(c: RecordedDispatch, bindGroup: GPUBindGroup): void {
    const { kernel, buffers, uniform, grid, work, note } = c;
    const [x, y = 1, z = 1] = grid;
    for (const i of kernel.writable) this.derived.invalidate(buffers[i]);
    this.recorded?.push({ kind: "dispatch", kernel, buffers: [...buffers], uniform: uniform?.slice(0), grid: [x, y, z], work, note });
    if (this.profiler) {
      this.endPass();
      this.pass = this.commandEncoder().beginComputePass({ timestampWrites: this.profiler.timestampWrites(dispatchLabel(kernel.label, grid, note)) });
    }
    const pass = this.computePass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.log?.(`[dispatch] ${dispatchLabel(kernel.key, grid, note)}${note ? ` grid=${x}x${y}x${z}` : ""}`);
    this.names.push(kernel.key);
    if (!kernel.dispatched) {
      kernel.dispatched = true;
      this.firstUse = true;
    }
    this.dispatches++;
    this.stats.dispatches++;
    this.work += work;
    if (this.dispatches >= MAX_DISPATCHES) this.submit();
  }

  // The kernel's bind group for these buffers and uniform slot. On GPUs it is made once and reused: in steady
  // state (a training loop) the same dispatch gets the same slot of the same uniform page, and the pool hands it
  // the same buffers. Creating a bind group was a third of a dispatch's host cost (~8 of ~23 us, Dawn's null
  // backend; reused, ~15 in all). On lavapipe reuse made a training step of the small model ~5% slower, in CPU
  // time as in wall time (and binding the uniform as a dynamic offset into its page, ~13%), so CPU drivers make
  // a bind group per dispatch.
  private bindGroup(kernel: Kernel, slot: UniformSlot | undefined, buffers: GPUBuffer[]): GPUBindGroup {
    if (!this.reuseBindGroups) return this.makeBindGroup(kernel, slot, buffers);
    let key = slot ? `${bufferId(slot.buffer)}@${slot.offset}:${slot.size}` : "";
    for (const b of buffers) key += `,${bufferId(b)}`;
    let group = kernel.groups.get(key);
    if (group) return group;
    group = this.makeBindGroup(kernel, slot, buffers);
    if (kernel.groups.size >= MAX_GROUPS_PER_KERNEL) kernel.groups.clear(); // buffers come and go: start afresh
    kernel.groups.set(key, group);
    return group;
  }

  private makeBindGroup(kernel: Kernel, slot: UniformSlot | undefined, buffers: GPUBuffer[]): GPUBindGroup {
    const entries: GPUBindGroupEntry[] = [];
    if (slot) entries.push({ binding: 0, resource: slot });
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    return this.gpu.device.createBindGroup({ layout: kernel.layout, entries });
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (this.dry) return;
    this.recorded?.push({ kind: "copy", src, srcOffset, dst, dstOffset, bytes });
    this.derived.invalidate(dst);
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.names.push("copy");
    this.work += bytes;
  }

  private commandEncoder(): GPUCommandEncoder {
    this.encoder ??= this.gpu.device.createCommandEncoder();
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    this.pass ??= this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  private uniformSlot(data: ArrayBuffer): UniformSlot {
    if (data.byteLength > UNIFORM_SLOT) throw new Error(`batch: uniform of ${data.byteLength} bytes exceeds ${UNIFORM_SLOT}`);
    let page = this.pages[this.pages.length - 1];
    if (!page || page.used + UNIFORM_SLOT > PAGE) {
      page = this.freePages.pop() ?? {
        buffer: this.gpu.device.createBuffer({ size: PAGE, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: "uniforms" }),
        data: new Uint8Array(PAGE),
        used: 0,
      };
      page.used = 0;
      this.pages.push(page);
    }
    const offset = page.used;
    page.data.set(new Uint8Array(data), offset);
    page.used += UNIFORM_SLOT;
    return { buffer: page.buffer, offset, size: data.byteLength };
  }

  // Submits everything encoded so far. Released buffers become reusable afterwards.
  submit(): void {
    if (!this.encoder) {
      this.pool.recycle();
      return;
    }
    this.endPass();
    this.profiler?.resolve(this.encoder);
    const { queue } = this.gpu.device;
    for (const page of this.pages) queue.writeBuffer(page.buffer, 0, page.data, 0, page.used);
    queue.submit([this.encoder.finish()]);
    this.encoder = undefined;
    // Uniform pages can be rewritten by the next batch: writeBuffer is ordered after this submit on the queue.
    this.freePages.push(...this.pages.reverse()); // popped in the same order next batch: the same slots, the same bind groups
    this.pages = [];
    if (this.inflightWork === 0 && this.inflightDispatches === 0) this.inflightSince = performance.now();
    this.inflightWork += this.work;
    this.inflightDispatches += this.dispatches;
    this.inflightFirstUse ||= this.firstUse;
    this.work = 0;
    this.dispatches = 0;
    this.firstUse = false;
    this.stats.submits++;
    this.pool.recycle();
    this.checkErrors();
  }

  private checkErrors(): void {
    const compileErrors = this.pipelines.takeErrors();
    if (compileErrors.length > 0) throw new Error(compileErrors.join("\n"));
    throwIfDeviceError(this.describe());
  }

  private describe(): string {
    const names = [...new Set(this.names)];
    this.names = [];
    return names.length ? `kernels ${names.join(", ")}` : "idle";
  }

  // Estimated seconds until the submitted work is done.
  private expectedRemaining(): number {
    const total = this.inflightWork * this.secondsPerUnit + this.inflightDispatches * this.dispatchOverhead;
    return total - (performance.now() - this.inflightSince) / 1000;
  }

  // Awaits `promise` (a GPU promise) after sleeping for ~80% of the expected remaining GPU time, then learns.
  // The await spins only briefly, then polls quietly (engine/quiet-await.ts): on a CPU driver for its first
  // millisecond, since a spinning core is one the driver's workers lose; on a GPU, where it costs no GPU time,
  // until the expected end (with a quarter to spare), so that only work running late waits for the quiet polls.
  // If the promise still took a while after the sleep, the GPU was busy until it resolved and the elapsed time
  // is the true duration: move halfway to it, but at most MAX_GROWTH times up. If it resolved soon after, we
  // overslept and only know an upper bound: halve the estimate, so one slow batch does not make every later wait
  // oversleep. Work that ran a kernel for the first time teaches nothing upward: on llvmpipe its time includes
  // compiling shaders (a first ViT-S forward took seconds more), and the next wait would oversleep by that much.
  // Dawn's null backend does no work to sleep through: what its waits learn is dawn-node's notice alone, and
  // sleeping on it added ~0.6 s to the default study's 7-9 s of host work there (PEFT_BACKEND=null measures the
  // host alone).
  async wait<T>(promise: () => Promise<T>): Promise<T> {
    const remaining = this.expectedRemaining();
    const sleeps = remaining > 0.002 && this.policy !== "busy" && this.gpu.backend !== "null";
    const sleepMs = sleeps ? Math.min(remaining * 0.8 * 1000, 2 * this.longestMs) : 0;
    if (sleepMs > 0) {
      await sleep(sleepMs);
      this.stats.sleptMs += sleepMs;
    }
    const spinMs = this.gpu.isCpu ? 1 : Math.max(1, 1.25 * this.expectedRemaining() * 1000);
    const awaitStart = performance.now();
    const result = this.policy === "quiet" ? await awaitQuietly(promise, spinMs) : await promise();
    const now = performance.now();
    // Still busy after the sleep: the await lasted more than the few ms dawn-node takes to notice finished
    // work, and a tenth of the sleep. (Against a fixed 1 ms, slower notices passed for busy GPUs: the estimate
    // then learned its own oversleep and shrank by only ~10% per wait, ViT-S runs of 6.0 s, 5.4 s, 4.9 s for
    // 3.2 s of GPU work.)
    // Busy means an await longer than 2 ms and a tenth of the time since the submit (the sleep included): after
    // host work between a submit and its wait, a late notice of long-finished work would pass for the device's
    // time (300 ms of host time learned as the duration of a 2 ms job, under a loaded test run).
    const stillBusy = now - awaitStart > Math.max(2, 0.1 * (awaitStart - this.inflightSince));
    if (stillBusy && this.inflightWork > 1e6 && !this.inflightFirstUse) {
      const measured = ((now - this.inflightSince) / 1000 - this.inflightDispatches * this.dispatchOverhead) / this.inflightWork;
      const halfway = 0.5 * this.secondsPerUnit + 0.5 * measured;
      if (measured > 0) this.secondsPerUnit = this.secondsPerUnit === 0 ? measured : Math.min(MAX_GROWTH * this.secondsPerUnit, halfway);
      this.longestMs = Math.max(this.longestMs, now - this.inflightSince);
    } else if (!stillBusy && sleepMs > 0) {
      // Slept, and found the work done: the estimate was too high, whether or not the batch could teach it (a
      // kernel's first dispatch, a small batch): an oversleep of either would otherwise recur at every such wait.
      this.secondsPerUnit *= 0.5;
    }
    this.inflightWork = 0;
    this.inflightDispatches = 0;
    this.inflightFirstUse = false;
    await this.profiler?.collect();
    await Promise.resolve();
    this.checkErrors();
    return result;
  }

  // Starts timing every dispatch on its own (engine/profile.ts) until stopProfile(); returns the profiler, whose
  // totals grow after each wait.
  startProfile(): Profiler {
    if (!this.gpu.features.has("timestamp-query")) {
      throw new Error(`profile: expected an adapter with the "timestamp-query" feature, got ${this.gpu.adapterInfo.description}`);
    }
    this.submit();
    this.profiler ??= new Profiler(this.gpu.device, MAX_DISPATCHES);
    return this.profiler;
  }

  async stopProfile(): Promise<void> {
    if (!this.profiler) return;
    await this.sync();
    this.profiler.destroy();
    this.profiler = undefined;
  }

  // Keeps every command from now until stopRecording(), which returns them in order (not those of a dry run,
  // which are dropped). Uploads (Tensor.fromArray, write) tell the batch through noteUpload.
  startRecording(): void {
    if (this.recorded) throw new Error("batch: expected no recording in progress, got a second startRecording()");
    this.recorded = [];
  }

  noteUpload(what: () => string): void {
    if (this.recorded) this.recorded.push({ kind: "upload", what: what() }); // named only while recording
  }

  stopRecording(): RecordedCommand[] {
    const recorded = this.recorded ?? [];
    this.recorded = undefined;
    return recorded;
  }

  // The commands of one run of `run`, on an otherwise idle device: what was encoded before is submitted and done
  // first, and the run's own work is done when this resolves.
  async record(run: () => void | Promise<void>): Promise<RecordedCommand[]> {
    await this.sync();
    this.startRecording();
    let recorded: RecordedCommand[];
    try {
      await run();
    } finally {
      recorded = this.stopRecording();
    }
    await this.sync();
    return recorded;
  }

  // Encodes a recorded dispatch or copy again, as it was (engine/census.ts, engine/replay.ts).
  encode(c: RecordedDispatch | RecordedCopy): void {
    if (c.kind === "dispatch") this.dispatch(c.kernel, c.buffers, c.uniform, c.grid, c.work, c.note);
    else this.copy(c.src, c.srcOffset, c.dst, c.dstOffset, c.bytes);
  }

  // Whether dispatches are being dropped (see dryRun): what they would write is not there.
  get isDry(): boolean {
    return this.dry;
  }

  // Runs `fn` with every dispatch and copy checked and then dropped: nothing reaches the GPU, and a read-back
  // throws, since nothing was computed (engine/trace.ts traces a training step so). Synchronous, so that no other
  // work can run while the batch is dry; the batch is wet again when fn returns or throws.
  dryRun<T>(fn: () => T): T {
    const outer = this.dry;
    this.dry = true;
    try {
      const result = fn();
      if (result instanceof Promise) throw new Error("batch: expected a synchronous function for a dry run, got one returning a promise");
      return result;
    } finally {
      this.dry = outer;
    }
  }

  // Copies `bytes` from `src` into a staging buffer, submits, and resolves with a copy of the bytes.
  async read(src: GPUBuffer, offset: number, bytes: number, readPool: BufferPool): Promise<ArrayBuffer> {
    return (await this.readMany([{ buffer: src, offset, bytes }], readPool))[0];
  }

  // Several ranges read back with one staging buffer, one submit and one wait: a wait costs far more than its bytes
  // (a poll of the device, a sleep; on a shared CPU the driver's threads and the poll compete for the cores), and a
  // checkpoint or an analysis reads dozens of small tensors at once. Callers bound the total (engine/tensor.ts
  // readTensors): the staging buffer stays in the read pool for later read-backs.
  async readMany(parts: ReadRange[], readPool: BufferPool): Promise<ArrayBuffer[]> {
    if (this.dry) throw new Error("batch: expected no read-back in a dry run, which computes nothing, got one");
    if (parts.length === 0) return [];
    const starts: number[] = [];
    let total = 0;
    for (const p of parts) {
      starts.push(total);
      total += alignTo4(p.bytes);
    }
    this.recorded?.push({ kind: "read", what: parts.length === 1 ? `a read-back of ${parts[0].bytes} bytes` : `a read-back of ${parts.length} ranges, ${total} bytes` });
    const staging = readPool.acquire(total);
    parts.forEach((p, i) => this.copy(p.buffer, p.offset, staging, starts[i], alignTo4(p.bytes)));
    this.submit();
    this.stats.readbacks++;
    try {
      await this.wait(() => staging.mapAsync(GPUMapMode.READ, 0, total));
      const mapped = staging.getMappedRange(0, total);
      const out = parts.map((p, i) => mapped.slice(starts[i], starts[i] + p.bytes));
      staging.unmap();
      return out;
    } finally {
      // A wait that threw (a device error reported with this batch) can leave it mapped: the next submit that
      // copies into it would fail with "used in submit while mapped".
      if (staging.mapState !== "unmapped") staging.unmap();
      readPool.release(staging);
      readPool.recycle();
    }
  }

  // Submits and waits until the GPU has finished everything (benchmarks, shutdown).
  async sync(): Promise<void> {
    this.submit();
    await this.wait(() => this.gpu.device.queue.onSubmittedWorkDone());
  }
}

// A dispatch as profiles and censuses sum it: its kernel's label (engine/pipeline.ts specLabel) and its note (a
// matmul's sizes), else its grid. DEBUG logs name the kernel by its key instead, as DEBUG=2 names its WGSL.
export function dispatchLabel(kernel: string, grid: Grid, note: string | undefined): string {
  const [x, y = 1, z = 1] = grid;
  return `${kernel} ${note ?? `grid=${x}x${y}x${z}`}`;
}

// Bytes [offset, offset + bytes) of a buffer, for readMany.
export interface ReadRange {
  buffer: GPUBuffer;
  offset: number;
  bytes: number;
}

function alignTo4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
