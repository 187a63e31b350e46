// CPU reference for layer normalisation over the last axis of (rows, C), in float64, written from the math.
// gamma, beta: (C) or undefined (1 and 0).

export function layernorm(
  x: ArrayLike<number>,
  gamma: ArrayLike<number> | undefined,
  beta: ArrayLike<number> | undefined,
  rows: number,
  C: number,
  eps: number,
): { y: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(rows * C);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[r * C + c];
    const mu = s / C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / C + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let c = 0; c < C; c++) {
      y[r * C + c] = (x[r * C + c] - mu) * rs * (gamma ? gamma[c] : 1) + (beta ? beta[c] : 0);
    }
  }
  return { y, mean, rstd };
}

// Gradients of sum(y * dy) with y = layernorm(x): with xhat = (x - mean) * rstd and g = dy * gamma,
// dx = rstd * (g - mean_c g - xhat * mean_c(g * xhat)); dgamma = sum_rows dy * xhat; dbeta = sum_rows dy.
export function layernormBackward(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  gamma: ArrayLike<number> | undefined,
  rows: number,
  C: number,
  eps: number,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const { mean, rstd } = layernorm(x, undefined, undefined, rows, C, eps);
  const dx = new Float64Array(rows * C);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const xhat = (c: number) => (x[r * C + c] - mean[r]) * rstd[r];
    const g = (c: number) => dy[r * C + c] * (gamma ? gamma[c] : 1);
    let sg = 0;
    let sgx = 0;
    for (let c = 0; c < C; c++) {
      sg += g(c);
      sgx += g(c) * xhat(c);
      dgamma[c] += dy[r * C + c] * xhat(c);
      dbeta[c] += dy[r * C + c];
    }
    for (let c = 0; c < C; c++) dx[r * C + c] = rstd[r] * (g(c) - sg / C - (xhat(c) * sgx) / C);
  }
  return { dx, dgamma, dbeta };
}
