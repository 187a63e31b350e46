// Replaying a recorded run: the dispatches and copies that one run of a function encodes are recorded
// (Batch.startRecording) and encoded again on each replay, without the host work that made them: autograd, the
// kernels' wrappers, shape checks, the pool. A training step of the default study's model at batch 32 cost the
// main thread ~3 ms run and ~0.7 ms replayed with Dawn's null backend (2026-12-04, docs/PERFORMANCE.md).
//
// What makes a replay the same computation as a run:
// - The run encodes the same commands every time it runs: capture() runs it twice and compares the two recordings
//   command by command (kernel, sizes, grid; not buffers, see firstDifference). Run it once before capturing, so
//   that what a first run makes lazily (optimiser state, a frozen weight's kept pack) exists; and keep what changes
//   from run to run (a learning rate, which the optimiser passes as a size) outside it.
// - The run reads its inputs from tensors that stay: it may not upload (Tensor.fromArray, write) or read back; the
//   caller writes each new input into the same tensors before a replay and reads results from tensors that stay.
// - Its buffers keep their roles. Every buffer the commands use is pinned in the pool (engine/pool.ts): the run's
//   temporaries, released after the capture, are not handed out to other work, and a replay writes them again. A
//   buffer that a live tensor held at the capture (a parameter, a gradient, an input, a kept pack) must stay held:
//   a replay throws once one of them has been released (its tensor disposed, e.g. a gradient by zeroGrad() or a
//   kept pack because its weight was written), since the replay would then compute with a buffer nobody reads.
import { runtime, warn } from "./runtime.js";
import { type RecordedCommand, type RecordedCopy, type RecordedDispatch, UNIFORM_SLOT } from "./batch.js";

type Command = RecordedDispatch | RecordedCopy;

// A run that a replay could not repeat (it uploads, reads back, or computes something else the second time).
// Both runs have happened when it is thrown: whatever they computed is there, as after two runs.
export class ReplayRefusedError extends Error {}

export class Replay {
  private disposed = false;
  private bound: (GPUBindGroup | undefined)[] | undefined; // a dispatch's bind group, made at the first run

  private constructor(
    private readonly commands: Command[],
    private readonly held: Map<GPUBuffer, string>, // buffers a live tensor held at the capture -> the first command using it
    private readonly pinned: GPUBuffer[],
  ) {}

  // Runs `run` twice with its commands recorded, checks that both runs encoded the same commands, and keeps the
  // second run's. Both runs happen: they are steps like any other. `before` runs before each of them, unrecorded
  // (to write the step's inputs).
  static async capture(run: () => void | Promise<void>, before?: () => void | Promise<void>): Promise<Replay> {
    const { batch, pool } = runtime();
    const record = async () => {
      await before?.();
      return batch.record(run);
    };
    const first = await record();
    const second = await record();
    const host = second.find((c): c is { kind: "upload" | "read"; what: string } => c.kind === "upload" || c.kind === "read");
    if (host) {
      throw new ReplayRefusedError(`replay: expected a run without uploads or read-backs, which a replay cannot repeat, got ${host.what}; write inputs into tensors made before the capture, read results after a replay`);
    }
    const commands = second as Command[];
    const difference = firstDifference(first, commands);
    if (difference) {
      throw new ReplayRefusedError(`replay: expected the run to encode the same commands twice, got ${difference}; run it once before capturing, and keep what changes from run to run (a learning rate) outside it`);
    }
    const pinned = [...new Set(commands.flatMap(buffersOf))];
    for (const b of pinned) pool.pin(b);
    const held = new Map<GPUBuffer, string>();
    commands.forEach((c, i) => {
      for (const b of buffersOf(c)) if (!pool.isParked(b) && !held.has(b)) held.set(b, describe(c, i));
    });
    return new Replay(commands, held, pinned);
  }

  get length(): number {
    return this.commands.length;
  }

  // Encodes the recorded commands again (nothing waits: read results as after any encoded work).
  run(): void {
    if (this.disposed) throw new Error("replay: used after dispose");
    const { batch, pool } = runtime();
    for (const [b, user] of this.held) {
      if (pool.isParked(b)) {
        throw new Error(`replay: expected the tensors the recorded run used to stay, got one released since the capture (a buffer of ${user}); capture again`);
      }
    }
    const groups = (this.bound ??= this.bindGroups());
    this.commands.forEach((c, i) => (c.kind === "dispatch" ? batch.dispatchBound(c, groups[i]!) : batch.encode(c)));
  }

  // A bind group per dispatch, made once, its uniform in a buffer of the replay's own written once, also on CPU
  // drivers, which otherwise make one per dispatch (engine/batch.ts; on lavapipe bind groups found again made a
  // replayed full step of the default model 50-52 ms against 51-59, 2026-12-04). Encoded with the batch's uniform
  // pages, a replay paid for each dispatch's slot and bind-group key, and found its group again only where the
  // dispatch fell on the slot it had before: with Dawn's null backend (the host alone) the default model's replayed
  // full step ran at 35,000-38,000 images/s so, 45,000-48,000 with its groups made once (2026-12-05,
  // docs/PERFORMANCE.md); on lavapipe the same within the noise.
  private bindGroups(): (GPUBindGroup | undefined)[] {
    const { gpu } = runtime();
    const sized = this.commands.filter((c): c is RecordedDispatch => c.kind === "dispatch" && c.uniform !== undefined);
    const bytes = new Uint8Array(sized.length * UNIFORM_SLOT);
    sized.forEach((c, i) => bytes.set(new Uint8Array(c.uniform!), i * UNIFORM_SLOT));
    const uniforms = sized.length > 0 ? gpu.device.createBuffer({ size: bytes.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: "replay uniforms" }) : undefined;
    if (uniforms) gpu.device.queue.writeBuffer(uniforms, 0, bytes);
    let slot = 0;
    return this.commands.map((c) => {
      if (c.kind !== "dispatch") return undefined;
      const entries: GPUBindGroupEntry[] = c.buffers.map((buffer, k) => ({ binding: k + 1, resource: { buffer } }));
      if (c.uniform) entries.push({ binding: 0, resource: { buffer: uniforms!, offset: slot++ * UNIFORM_SLOT, size: c.uniform.byteLength } });
      return gpu.device.createBindGroup({ layout: c.kernel.layout, entries });
    });
  }

  // Unpins the buffers: the temporaries go back to the pool once nothing holds them.
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const { pool } = runtime();
    for (const b of this.pinned) pool.unpin(b); // reusable after the next submit, as released buffers are
    this.bound = undefined; // the uniforms' buffer goes with its groups: Dawn frees it after the commands using it
  }
}

// A run over tensors that stay (its inputs written into them before each call, its results read from them after),
// replayed where it can be: the first call runs it, so that what a first run makes lazily (a frozen weight's kept
// pack, optimiser state) exists; the second captures it (both of the capture's runs happen); later calls replay it.
// A run that cannot be replayed (ReplayRefusedError) is run at every later call, after one warning, `refusal`
// followed by the reason. The trainer's steps (train/replayed-loss.ts) and feature extraction (eval/features.ts).
export class ReplayedRun {
  private replay: Replay | undefined;
  private warm = false;
  private refusedOnce = false;

  constructor(
    private readonly run: () => void,
    private readonly refusal: string,
  ) {}

  get refused(): boolean {
    return this.refusedOnce;
  }

  async call(): Promise<void> {
    if (this.replay) return this.replay.run();
    if (!this.warm || this.refusedOnce) {
      this.run();
      this.warm = true;
      return;
    }
    try {
      this.replay = await Replay.capture(this.run);
    } catch (e) {
      if (!(e instanceof ReplayRefusedError)) throw e;
      warn(`${this.refusal}: ${e.message}`);
      this.refusedOnce = true;
    }
  }

  // Drops the replay (the next call runs afresh, then captures again).
  dispose(): void {
    this.replay?.dispose();
    this.replay = undefined;
    this.warm = false;
  }
}

function buffersOf(c: Command): GPUBuffer[] {
  return c.kind === "dispatch" ? c.buffers : [c.src, c.dst];
}

function describe(c: Command, i: number): string {
  return c.kind === "dispatch" ? `command ${i}, ${c.kernel.key}${c.note ? ` ${c.note}` : ""}` : `command ${i}, a copy of ${c.bytes} bytes`;
}

// The first way the second recording differs from the first in what it computes (kernels, sizes, grids, copies),
// or undefined. Not in its buffers: the pool may hand a run's temporaries other buffers than the run before's
// (with Dawn's null backend, a layernorm's partial sums came from buffers that the first run had used for other
// temporaries), and either recording is faithful. A run that reads a new tensor each time (an input made anew for
// each step) looks the same: a replay reads the second run's, and throws once that tensor is disposed (run()).
function firstDifference(first: RecordedCommand[], second: Command[]): string | undefined {
  for (let i = 0; i < Math.min(first.length, second.length); i++) {
    const [a, b] = [first[i], second[i]];
    if (a.kind !== b.kind) return `${describe(b, i)} where the first run had a ${a.kind}`;
    if (a.kind === "dispatch" && b.kind === "dispatch") {
      if (a.kernel !== b.kernel) return `${describe(b, i)} where the first run had ${a.kernel.key}`;
      if (!sameBytes(a.uniform, b.uniform)) return `other sizes at ${describe(b, i)}`;
      if (a.grid.join() !== b.grid.join()) return `another grid at ${describe(b, i)}`;
    } else if (a.kind === "copy" && b.kind === "copy") {
      if (a.srcOffset !== b.srcOffset || a.dstOffset !== b.dstOffset || a.bytes !== b.bytes) return `another copy at ${describe(b, i)}`;
    }
  }
  return first.length === second.length ? undefined : `${second.length} commands where the first run had ${first.length}`;
}

function sameBytes(a: ArrayBuffer | undefined, b: ArrayBuffer | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.byteLength !== b.byteLength) return false;
  const [x, y] = [new Uint8Array(a), new Uint8Array(b)];
  return x.every((v, i) => v === y[i]);
}
