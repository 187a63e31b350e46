// Whether indices run first, first + 1, ... (a loader's unshuffled batch); false when there are none.
export function consecutive(indices: Int32Array): boolean {
  return indices.length > 0 && indices.every((i, k) => i === indices[0] + k);
}

// Typed arrays end to end in one new array of their kind: a batch loop's per-batch results, a file's parts.
export function joined<T extends Float32Array | Int32Array | Uint8Array>(parts: T[], kind: new (length: number) => T): T {
  const out = new kind(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
