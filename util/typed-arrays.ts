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
