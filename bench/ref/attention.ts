// CPU reference for scaled-dot-product attention over a packed qkv (B, N, 3*H*D), written from the math with the
// N x N matrices materialised, in float64:
//   S = scale Q K^T,  P = softmax(S) row-wise,  O = P V,  lse_i = log sum_j exp(S_ij)
//   backward: dV = P^T dO,  dP = dO V^T,  dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik),  dQ = scale dS K,  dK = scale dS^T Q
// Its one home: `bench attention` validates one (b, h) slice with it, and test/ref/attention.ts re-exports it for
// the kernel tests (nothing may import test/, so it cannot live there). Never derived from the WGSL.
export interface AttentionShape {
  B: number;
  N: number;
  H: number;
  D: number;
}

// Index of element d of part (0 = q, 1 = k, 2 = v) of token n, head h, batch b in the packed qkv.
function at(s: AttentionShape, b: number, n: number, part: number, h: number, d: number): number {
  const C = s.H * s.D;
  return (b * s.N + n) * 3 * C + part * C + h * s.D + d;
}

// Index in (B, N, H*D) arrays: o and dO.
function atOut(s: AttentionShape, b: number, n: number, h: number, d: number): number {
  return (b * s.N + n) * s.H * s.D + h * s.D + d;
}

// The slice (b, h): P (N, N), lse (N), o (N, D).
export function attentionSliceRef(qkv: ArrayLike<number>, s: AttentionShape, scale: number, b: number, h: number): { P: Float64Array; lse: Float64Array; o: Float64Array } {
  const { N, D } = s;
  const P = new Float64Array(N * N);
  const lse = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let max = -Infinity;
    for (let j = 0; j < N; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += qkv[at(s, b, i, 0, h, d)] * qkv[at(s, b, j, 1, h, d)];
      P[i * N + j] = scale * dot;
      max = Math.max(max, scale * dot);
    }
    let sum = 0;
    for (let j = 0; j < N; j++) sum += Math.exp(P[i * N + j] - max);
    for (let j = 0; j < N; j++) P[i * N + j] = Math.exp(P[i * N + j] - max) / sum;
    lse[i] = max + Math.log(sum);
  }
  const o = new Float64Array(N * D);
  for (let i = 0; i < N; i++) {
    for (let d = 0; d < D; d++) {
      let acc = 0;
      for (let j = 0; j < N; j++) acc += P[i * N + j] * qkv[at(s, b, j, 2, h, d)];
      o[i * D + d] = acc;
    }
  }
  return { P, lse, o };
}

// The gradients dq, dk, dv (N, D) of the slice (b, h), given its P from attentionSliceRef. dP is formed a row at
// a time: one N x N matrix (P) at a time is enough.
export function attentionSliceBackwardRef(
  qkv: ArrayLike<number>,
  dout: ArrayLike<number>,
  s: AttentionShape,
  scale: number,
  b: number,
  h: number,
  P: Float64Array,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { N, D } = s;
  const [dq, dk, dv] = [0, 0, 0].map(() => new Float64Array(N * D));
  const dP = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += dout[atOut(s, b, i, h, d)] * qkv[at(s, b, j, 2, h, d)];
      dP[j] = dot;
    }
    // Softmax Jacobian: dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik)
    let rowDot = 0;
    for (let k = 0; k < N; k++) rowDot += P[i * N + k] * dP[k];
    for (let j = 0; j < N; j++) {
      const dS = P[i * N + j] * (dP[j] - rowDot);
      for (let d = 0; d < D; d++) {
        dq[i * D + d] += scale * dS * qkv[at(s, b, j, 1, h, d)];
        dk[j * D + d] += scale * dS * qkv[at(s, b, i, 0, h, d)];
        dv[j * D + d] += P[i * N + j] * dout[atOut(s, b, i, h, d)];
      }
    }
  }
  return { dq, dk, dv };
}

// qkv: (B, N, 3*H*D) -> o: (B, N, H*D), lse: (B, H, N), probs: (B, H, N, N)
export function attentionRef(qkv: ArrayLike<number>, s: AttentionShape, scale: number): { o: Float64Array; lse: Float64Array; probs: Float64Array } {
  const { B, N, H, D } = s;
  const o = new Float64Array(B * N * H * D);
  const lse = new Float64Array(B * H * N);
  const probs = new Float64Array(B * H * N * N);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const r = attentionSliceRef(qkv, s, scale, b, h);
      probs.set(r.P, (b * H + h) * N * N);
      lse.set(r.lse, (b * H + h) * N);
      for (let i = 0; i < N; i++) for (let d = 0; d < D; d++) o[atOut(s, b, i, h, d)] = r.o[i * D + d];
    }
  }
  return { o, lse, probs };
}

// qkv: (B, N, 3*H*D), dout: (B, N, H*D) -> dqkv: (B, N, 3*H*D)
export function attentionBackwardRef(qkv: ArrayLike<number>, dout: ArrayLike<number>, s: AttentionShape, scale: number): Float64Array {
  const { B, N, H, D } = s;
  const dqkv = new Float64Array(qkv.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const { P } = attentionSliceRef(qkv, s, scale, b, h);
      const g = attentionSliceBackwardRef(qkv, dout, s, scale, b, h, P);
      for (let i = 0; i < N; i++) {
        for (let d = 0; d < D; d++) {
          dqkv[at(s, b, i, 0, h, d)] = g.dq[i * D + d];
          dqkv[at(s, b, i, 1, h, d)] = g.dk[i * D + d];
          dqkv[at(s, b, i, 2, h, d)] = g.dv[i * D + d];
        }
      }
    }
  }
  return dqkv;
}
