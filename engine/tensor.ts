// Tensor: a shape over contiguous GPU storage (f32, i32 for labels and indices, or f16 for a matmul's operands in
// mixed precision, which only kernels write and read). Views (reshape) share storage;
// storage is reference-counted and its buffer goes back to the pool when the last view is disposed. A tensor also
// carries the slots autograd/ fills in (requiresGrad, grad, node); recording and backward live there.
//
// Lifetimes: tensors created inside tidy(fn) are disposed when fn returns, except what fn returns and tensors
// marked keep() (parameters, optimiser state, gradients). Tensors created outside any tidy belong to the caller.
import { runtime } from "./runtime.js";

export type DType = "f32" | "i32" | "f16";
export type Shape = readonly number[];

class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    readonly bytes: number,
    readonly dry = false, // made in a dry run: `buffer` is a stand-in (dryBuffer), not the pool's
  ) {}
}

// A dry run (engine/batch.ts dryRun) computes nothing, so its tensors need no memory: traced, a ViT-S/16 step at
// batch 8 made 573 buffers, 1.05 GB, that the pool then kept (and Dawn's null backend, which allows 512 MB, refused).
// Their buffer is a stand-in with the size the pool would have given; Dawn takes no such object, and Tensor.buffer
// refuses it outside a dry run, so a dry tensor that reaches real work fails by name.
function dryBuffer(bytes: number): GPUBuffer {
  return Object.freeze({ size: runtime().pool.sizeFor(bytes), label: "dry-run stand-in" }) as unknown as GPUBuffer;
}

// How the tensor was made, for backward: the inputs and a function from the output's gradient to the inputs'.
// A node that `sums` is handed, as `earlier`, the gradient each input has gathered so far from its other uses
// (undefined where none), and returns each input's gradient with that earlier one already added: a kernel can fold
// the sum into its own pass (layernorm's dx and the residual stream's gradient), saving an add over the tensor.
export interface GradNode {
  op: string;
  inputs: Tensor[];
  backward: (dout: Tensor, earlier?: (Tensor | undefined)[]) => (Tensor | undefined)[];
  sums?: boolean;
}

let nextId = 0;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | undefined;
  node: GradNode | undefined;
  name: string | undefined; // for error messages and parameter listings
  private disposed = false;
  private kept = false;

  private constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    private storage: Storage,
  ) {
    this.size = numel(shape);
    currentScope()?.push(this);
  }

  // An uninitialised tensor (for kernel outputs).
  static empty(shape: Shape, dtype: DType = "f32"): Tensor {
    checkShape(shape);
    const bytes = Math.max(Math.ceil((numel(shape) * (dtype === "f16" ? 2 : 4)) / 4), 1) * 4; // whole words
    const { pool, batch } = runtime();
    pool.checkSize(bytes, () => `(${shape.join(", ")}) ${dtype} in ${bytes} bytes`); // the pool's label: "tensor"
    if (batch.isDry) return new Tensor([...shape], dtype, new Storage(dryBuffer(bytes), bytes, true));
    const buffer = pool.acquire(bytes, () => batch.submit());
    return new Tensor([...shape], dtype, new Storage(buffer, bytes));
  }

  static fromArray(data: ArrayLike<number>, shape: Shape, dtype: DType = "f32"): Tensor {
    if (data.length !== numel(shape)) {
      throw new Error(`tensor: expected ${numel(shape)} values for shape (${shape.join(", ")}), got ${data.length}`);
    }
    if (dtype === "f16") throw new Error("tensor: fromArray writes f32 or i32; f16 tensors are made by kernels");
    const t = Tensor.empty(shape, dtype);
    // writeBuffer copies at the call: an array of the tensor's type goes as it is (Float32Array.from copied a batch's
    // images element by element through the iterator).
    const array = dtype === "f32" ? (data instanceof Float32Array ? data : Float32Array.from(data)) : data instanceof Int32Array ? data : Int32Array.from(data);
    if (array.length > 0 && !runtime().batch.isDry) {
      runtime().batch.noteUpload(() => `Tensor.fromArray (${shape.join(", ")})`);
      runtime().gpu.device.queue.writeBuffer(t.buffer, 0, array);
    }
    return t;
  }

  static scalar(value: number): Tensor {
    return Tensor.fromArray([value], []);
  }

  get buffer(): GPUBuffer {
    if (this.disposed) throw new Error(`tensor${this.name ? ` "${this.name}"` : ""}: used after dispose`);
    if (this.storage.dry && !runtime().batch.isDry) throw new Error(`${this}: made in a dry run, which computes nothing, used after it`);
    return this.storage.buffer;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  // Whether another tensor (a view) holds this one's storage too.
  get sharesStorage(): boolean {
    return this.storage.refs > 1;
  }

  // A view with another shape over the same storage (-1 infers one dimension), cut off from the graph: models
  // reshape with autograd/ops.ts reshape, which records the op.
  reshape(shape: Shape): Tensor {
    const resolved = inferShape(shape, this.size, this.shape);
    this.storage.refs++;
    return new Tensor(resolved, this.dtype, this.storage);
  }

  // The same storage, cut off from the graph.
  detach(): Tensor {
    this.storage.refs++;
    return new Tensor(this.shape, this.dtype, this.storage);
  }

  // Marks this tensor as a leaf that accumulates .grad in backward().
  requireGrad(flag = true): this {
    this.requiresGrad = flag;
    return this;
  }

  async data(): Promise<Float32Array> {
    if (this.dtype !== "f32") throw new Error(`tensor: data() reads f32, this tensor is ${this.dtype}; use dataInt()`);
    return new Float32Array(await this.read());
  }

  async dataInt(): Promise<Int32Array> {
    if (this.dtype !== "i32") throw new Error(`tensor: dataInt() reads i32, this tensor is ${this.dtype}`);
    return new Int32Array(await this.read());
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`tensor: item() needs one element, shape is (${this.shape.join(", ")})`);
    return (await this.data())[0];
  }

  private read(): Promise<ArrayBuffer> {
    const { batch, readPool } = runtime();
    return batch.read(this.buffer, 0, this.size * 4, readPool);
  }

  // Overwrites the contents in place (same size), e.g. to load weights into a parameter.
  write(data: Float32Array | Int32Array): void {
    if (data.length !== this.size) throw new Error(`tensor: write expected ${this.size} values, got ${data.length}`);
    if (runtime().batch.isDry) return; // nothing reaches the GPU in a dry run
    // Commands already encoded must see the old contents: submit them before the queued write.
    runtime().batch.submit();
    runtime().derived.invalidate(this.buffer);
    runtime().batch.noteUpload(() => `a write into ${this}`);
    runtime().gpu.device.queue.writeBuffer(this.buffer, 0, data);
  }

  // Exempts the tensor from every enclosing tidy().
  keep(): this {
    this.kept = true;
    return this;
  }

  get isKept(): boolean {
    return this.kept;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.node = undefined;
    if (--this.storage.refs === 0 && !this.storage.dry) {
      runtime().derived.invalidate(this.storage.buffer);
      runtime().pool.release(this.storage.buffer);
    }
  }

  toString(): string {
    return `Tensor(${this.name ?? `#${this.id}`}, ${this.dtype}, (${this.shape.join(", ")}))`;
  }
}

// The values of several f32 tensors, in order, read back with one wait per READ_GROUP_BYTES or so instead of one
// per tensor (engine/batch.ts readMany: a wait costs more than its bytes). The groups bound the staging buffer,
// which the read pool keeps: a ViT-B/16 checkpoint's 700 MB read at once would stay allocated as one.
export async function readTensors(tensors: Tensor[], groupBytes = READ_GROUP_BYTES): Promise<Float32Array[]> {
  for (const t of tensors) if (t.dtype !== "f32") throw new Error(`tensor: readTensors reads f32, ${t} is ${t.dtype}`);
  const { batch, readPool } = runtime();
  const out: Float32Array[] = [];
  for (let start = 0; start < tensors.length; ) {
    let end = start + 1;
    let bytes = tensors[start].size * 4;
    while (end < tensors.length && bytes + tensors[end].size * 4 <= groupBytes) bytes += tensors[end++].size * 4;
    const ranges = tensors.slice(start, end).map((t) => ({ buffer: t.buffer, offset: 0, bytes: t.size * 4 }));
    for (const b of await batch.readMany(ranges, readPool)) out.push(new Float32Array(b));
    start = end;
  }
  return out;
}
export const READ_GROUP_BYTES = 64 * 2 ** 20;

export function numel(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkShape(shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`tensor: bad shape (${shape.join(", ")})`);
  }
}

function inferShape(shape: Shape, size: number, from: Shape): number[] {
  const out = [...shape];
  const unknown = out.indexOf(-1);
  if (unknown >= 0) {
    const rest = numel(out.filter((_, i) => i !== unknown));
    out[unknown] = rest === 0 ? 0 : size / rest;
  }
  if (numel(out) !== size || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot view (${from.join(", ")}) as (${shape.join(", ")})`);
  }
  return out;
}

// ---- scopes ----

const scopes: Tensor[][] = [];

function currentScope(): Tensor[] | undefined {
  return scopes[scopes.length - 1];
}

// Runs fn and disposes every tensor it created, except kept tensors and the tensors in its result
// (a Tensor, or an array or object of them), which move to the enclosing scope.
export function tidy<T>(fn: () => T): T {
  scopes.push([]);
  let result: T | undefined;
  try {
    result = fn();
  } finally {
    closeScope(result);
  }
  return result;
}

// The async form, for steps that read values back inside the scope. Scopes must not interleave.
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  scopes.push([]);
  const depth = scopes.length;
  let result: T | undefined;
  try {
    result = await fn();
  } finally {
    if (scopes.length !== depth) throw new Error("tidyAsync: scopes were not closed in order");
    closeScope(result);
  }
  return result;
}

function closeScope(result: unknown): void {
  const created = scopes.pop()!;
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  const parent = currentScope();
  for (const t of created) {
    if (survivors.has(t)) parent?.push(t);
    else if (!t.isKept) t.dispose();
  }
}

function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, into);
  else if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into);
  }
}
