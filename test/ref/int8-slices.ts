// CPU reference for kernels/int8-slices.ts, written from its header's definition: per row of op(x), the exponent e
// with max |x| < 2^e (at least -100), the scale word (f32 bits of 2^e, NaN where the row holds a value that is not
// finite), and `slices` (2 or 3) balanced base-128 digits per element, round to nearest with ties to even, packed 4
// per word from the low byte; rows padded to W = ceil(K / 16) * 4 words. Every step is exact in float64 as in f32.

export function roundEven(v: number): number {
  const f = Math.floor(v);
  const diff = v - f;
  if (diff !== 0.5) return diff < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

// frexp's exponent: the least e with m < 2^e, for m > 0; 0 for m = 0 (as WGSL's frexp).
export function exponentAbove(m: number): number {
  if (m === 0) return 0;
  let e = Math.floor(Math.log2(m)) + 1;
  while (2 ** e <= m) e++;
  while (2 ** (e - 1) > m) e--;
  return e;
}

// x: (batch, R, K) when kAlong, else (batch, K, R). Returns the words of each batch entry, (batch, stride).
export function int8SlicesRef(x: ArrayLike<number>, batch: number, R: number, K: number, kAlong: boolean, slices: number): Int32Array {
  const R4 = Math.ceil(R / 4) * 4;
  const W = Math.ceil(K / 16) * 4;
  const stride = R4 + slices * R * W;
  const out = new Int32Array(batch * stride);
  const bits = new Int32Array(1);
  const asF32 = new Float32Array(bits.buffer);
  for (let b = 0; b < batch; b++) {
    const at = (r: number, k: number) => x[b * R * K + (kAlong ? r * K + k : k * R + r)];
    for (let r = 0; r < R; r++) {
      let m = 0;
      let bad = false;
      for (let k = 0; k < K; k++) {
        const v = at(r, k);
        bad ||= !Number.isFinite(v);
        m = Math.max(m, Math.abs(v));
      }
      const e = bad ? 0 : Math.max(exponentAbove(m), -100); // a bad row's digits are left unspecified
      asF32[0] = bad ? NaN : 2 ** e;
      out[b * stride + r] = bad ? 0x7fc00000 : bits[0];
      for (let w = 0; w < W; w++) {
        const words = new Array<number>(slices).fill(0);
        for (let c = 0; c < 4; c++) {
          const k = 4 * w + c;
          let v = k < K ? at(r, k) * 2 ** (6 - e) : 0;
          for (let s = 0; s < slices; s++) {
            const d = roundEven(v);
            words[s] |= (d & 0xff) << (8 * c);
            v = (v - d) * 128;
          }
        }
        for (let s = 0; s < slices; s++) out[b * stride + R4 + (s * R + r) * W + w] = words[s];
      }
    }
  }
  return out;
}
