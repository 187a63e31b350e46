// CPU reference for softmax over the last axis of (rows, C), in float64, written from the math.
export function softmax(x: ArrayLike<number>, rows: number, C: number): Float64Array {
  const y = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, x[r * C + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x[r * C + c] - m);
    for (let c = 0; c < C; c++) y[r * C + c] = Math.exp(x[r * C + c] - m) / s;
  }
  return y;
}

// dx[r, c] = sum_c' dy[r, c'] * dy_c'/dx_c = y[r, c] * (dy[r, c] - sum_c' dy[r, c'] * y[r, c'])
export function softmaxBackward(y: ArrayLike<number>, dy: ArrayLike<number>, rows: number, C: number): Float64Array {
  const dx = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += dy[r * C + c] * y[r * C + c];
    for (let c = 0; c < C; c++) dx[r * C + c] = y[r * C + c] * (dy[r * C + c] - s);
  }
  return dx;
}
