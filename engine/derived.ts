// Tensors derived from a buffer's contents (a matmul's packed copy of a weight), kept across steps until the buffer
// is written. Inference and linear probing pack the same frozen weights every step (17 dispatches of the 62 of a
// linear-probe step of the default study's model); kept, they are packed once.
//
// Invalidation is by buffer, at every point the engine writes one: a dispatch's read_write bindings (Batch.dispatch,
// from the WGSL's declarations; a binding declared read_write and left unwritten only costs a re-derive), a
// buffer-to-buffer copy's destination, Tensor.write, and the release of the storage to the pool (a later tensor on
// the same buffer is a different tensor). The derived tensor is disposed then: its buffer returns to the pool after
// the batch that may still read it is submitted, like any other.
// A derived tensor, as far as the cache needs it: the runtime, and so Tensor, depends on this file, which imports
// neither.
export interface Derived {
  dispose(): void;
}

export class DerivedCache {
  private entries = new Map<GPUBuffer, Map<string, Derived>>();

  // The tensor derived from `source` under `key` (which must name everything the derivation depends on besides the
  // buffer's contents: shapes, layout), if the buffer has not been written since.
  get<T extends Derived>(source: GPUBuffer, key: string): T | undefined {
    return this.entries.get(source)?.get(key) as T | undefined;
  }

  // Holds `derived` until `source` is written or released, then disposes it; a tensor must be kept (Tensor.keep),
  // else the enclosing tidy disposes it first.
  set(source: GPUBuffer, key: string, derived: Derived): void {
    let byKey = this.entries.get(source);
    if (!byKey) this.entries.set(source, (byKey = new Map()));
    byKey.get(key)?.dispose();
    byKey.set(key, derived);
  }

  invalidate(buffer: GPUBuffer): void {
    if (this.entries.size === 0) return;
    const byKey = this.entries.get(buffer);
    if (!byKey) return;
    this.entries.delete(buffer);
    for (const t of byKey.values()) t.dispose();
  }

  // Derived tensors held, for tests and memory accounting.
  get size(): number {
    let n = 0;
    for (const byKey of this.entries.values()) n += byKey.size;
    return n;
  }
}
