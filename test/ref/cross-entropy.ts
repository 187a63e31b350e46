// CPU reference for batch-mean cross-entropy with label smoothing s, in float64, written from the math:
// target q = (1 - s) * onehot(label) + s / C; loss = mean_b -sum_c q_c log softmax(x_b)_c.
// A label outside [0, C) gives NaN, as the kernel documents.

function logSumExp(x: ArrayLike<number>, b: number, C: number): number {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, x[b * C + c]);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(x[b * C + c] - m);
  return m + Math.log(s);
}

function target(label: number, c: number, C: number, s: number): number {
  return (c === label ? 1 - s : 0) + s / C;
}

export function crossEntropy(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  B: number,
  C: number,
  smoothing = 0,
): { loss: number; lse: Float64Array } {
  const lse = new Float64Array(B);
  let total = 0;
  for (let b = 0; b < B; b++) {
    lse[b] = logSumExp(logits, b, C);
    if (labels[b] < 0 || labels[b] >= C) total = NaN;
    for (let c = 0; c < C; c++) total -= target(labels[b], c, C, smoothing) * (logits[b * C + c] - lse[b]);
  }
  return { loss: total / B, lse };
}

// d loss / d logits[b, c] = dloss / B * (softmax(x_b)_c - q_c)
export function crossEntropyBackward(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  B: number,
  C: number,
  smoothing: number,
  dloss: number,
): Float64Array {
  const dx = new Float64Array(B * C);
  for (let b = 0; b < B; b++) {
    const lse = logSumExp(logits, b, C);
    for (let c = 0; c < C; c++) {
      dx[b * C + c] = (dloss / B) * (Math.exp(logits[b * C + c] - lse) - target(labels[b], c, C, smoothing));
    }
  }
  return dx;
}
