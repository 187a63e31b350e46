// CPU references for k-NN, written from the math in float64: every similarity, a full sort by (sim descending,
// bank index ascending), then DINO's weighted vote (eval_knn.py) with classes ranked by (votes descending,
// class ascending).

// Unit rows, norms clamped below at 1e-12 as torch.nn.functional.normalize. x: (rows, D) -> (rows, D)
export function normalizeRows(x: ArrayLike<number>, d: number): Float64Array {
  const out = Float64Array.from(x);
  for (let r = 0; r * d < out.length; r++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += out[r * d + j] ** 2;
    const norm = Math.max(Math.sqrt(ss), 1e-12);
    for (let j = 0; j < d; j++) out[r * d + j] /= norm;
  }
  return out;
}

// s[i, n] = <q_i, b_n>. queries (Q, D), bank (N, D) -> (Q, N)
export function similarityRef(queries: ArrayLike<number>, bank: ArrayLike<number>, d: number): Float64Array {
  const q = queries.length / d;
  const n = bank.length / d;
  const s = new Float64Array(q * n);
  for (let i = 0; i < q; i++) {
    for (let r = 0; r < n; r++) {
      let acc = 0;
      for (let j = 0; j < d; j++) acc += queries[i * d + j] * bank[r * d + j];
      s[i * n + r] = acc;
    }
  }
  return s;
}

// The k best of each row of s (Q, N): sims (Q, k) and indices (Q, k); -Infinity and -1 past N.
export function topKRef(s: Float64Array, q: number, n: number, k: number): { sims: Float64Array; indices: Int32Array } {
  const sims = new Float64Array(q * k).fill(-Infinity);
  const indices = new Int32Array(q * k).fill(-1);
  for (let i = 0; i < q; i++) {
    const order = Array.from({ length: n }, (_, r) => r).sort((a, b) => s[i * n + b] - s[i * n + a] || a - b);
    for (let j = 0; j < Math.min(k, n); j++) {
      sims[i * k + j] = s[i * n + order[j]];
      indices[i * k + j] = order[j];
    }
  }
  return { sims, indices };
}

export interface KnnRefResult {
  k: number;
  top1: number; // percent
  top5: number; // percent
  predictions: Int32Array; // (Q) each test row's top-1 class
}

// DINO's weighted k-NN classifier. train (N, D), test (Q, D): features of any scale, normalised here.
// weight = exp(sim / T), one-hot votes summed per class; top-5 counts the label among the first min(5, k)
// classes, as eval_knn.py does.
export function knnClassifyRef(
  train: ArrayLike<number>,
  trainLabels: ArrayLike<number>,
  test: ArrayLike<number>,
  testLabels: ArrayLike<number>,
  d: number,
  ks: number[],
  temperature: number,
  classes: number,
): KnnRefResult[] {
  const n = trainLabels.length;
  const q = testLabels.length;
  const s = similarityRef(normalizeRows(test, d), normalizeRows(train, d), d);
  return ks.map((k) => {
    const { sims, indices } = topKRef(s, q, n, k);
    let top1 = 0;
    let top5 = 0;
    const predictions = new Int32Array(q);
    for (let i = 0; i < q; i++) {
      const votes = new Float64Array(classes);
      for (let j = 0; j < k; j++) {
        if (indices[i * k + j] >= 0) votes[trainLabels[indices[i * k + j]]] += Math.exp(sims[i * k + j] / temperature);
      }
      const ranking = Array.from({ length: classes }, (_, c) => c).sort((a, b) => votes[b] - votes[a] || a - b);
      predictions[i] = ranking[0];
      const place = ranking.indexOf(testLabels[i]);
      if (place === 0) top1++;
      if (place < Math.min(5, k)) top5++;
    }
    return { k, top1: (100 * top1) / q, top5: (100 * top5) / q, predictions };
  });
}
