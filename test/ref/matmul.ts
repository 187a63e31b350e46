// CPU reference for matmul, written from the math: y[m, n] = sum_k A[m, k] * B[k, n], accumulated in float64.
// A is read from (K, M) storage when transA and B from (N, K) storage when transB. `batch` entries follow each
// other in a, b (unless b is shared) and y.
export interface MatmulRefShape {
  batch: number;
  M: number;
  K: number;
  N: number;
  transA?: boolean;
  transB?: boolean;
  sharedB?: boolean; // one b for every batch entry
}

export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, s: MatmulRefShape): Float64Array {
  const { batch, M, K, N } = s;
  const y = new Float64Array(batch * M * N);
  const row = new Float64Array(N);
  for (let e = 0; e < batch; e++) {
    const aOff = e * M * K;
    const bOff = s.sharedB ? 0 : e * K * N;
    for (let m = 0; m < M; m++) {
      row.fill(0);
      for (let k = 0; k < K; k++) {
        const av = a[aOff + (s.transA ? k * M + m : m * K + k)];
        for (let n = 0; n < N; n++) row[n] += av * b[bOff + (s.transB ? n * K + k : k * N + n)];
      }
      y.set(row, (e * M + m) * N);
    }
  }
  return y;
}

// The (rows, cols) matrix `x` stored transposed, (cols, rows), for each of `batch` entries.
export function transpose(x: ArrayLike<number>, batch: number, rows: number, cols: number): Float32Array {
  const t = new Float32Array(batch * rows * cols);
  for (let e = 0; e < batch; e++) {
    const off = e * rows * cols;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[off + c * rows + r] = x[off + r * cols + c];
  }
  return t;
}
