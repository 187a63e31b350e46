// CPU references for row gather and scatter-add.

// y[m, :] = x[index[m], :] for x (R, C).
export function gatherRowsRef(x: ArrayLike<number>, C: number, index: ArrayLike<number>): Float64Array {
  const y = new Float64Array(index.length * C);
  for (let m = 0; m < index.length; m++) for (let c = 0; c < C; c++) y[m * C + c] = x[index[m] * C + c];
  return y;
}

// dx[r, :] = sum over m with index[m] = r of dy[m, :], accumulated in float32 in ascending m (the order the
// kernel promises), so that the result is bit-exact; out-of-range indices contribute nothing.
export function scatterAddRowsRef(dy: ArrayLike<number>, C: number, index: ArrayLike<number>, rows: number): Float32Array {
  const dx = new Float32Array(rows * C);
  for (let m = 0; m < index.length; m++) {
    const r = index[m];
    if (r < 0 || r >= rows) continue;
    for (let c = 0; c < C; c++) dx[r * C + c] = Math.fround(dx[r * C + c] + dy[m * C + c]);
  }
  return dx;
}
