// Summary statistics over plain arrays of numbers.

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// The mean and the sample standard deviation (n - 1); the deviation is 0 for fewer than two values.
export function meanStd(xs: number[]): [mean: number, std: number] {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length < 2) return [m, 0];
  const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
  return [m, Math.sqrt(v)];
}

// meanStd as a record, for results that name their fields.
export interface MeanStd {
  mean: number;
  std: number;
}

export function meanStdOf(xs: number[]): MeanStd {
  const [mean, std] = meanStd(xs);
  return { mean, std };
}

// ln Γ(x) for x > 0: Lanczos' approximation (g = 7, nine terms), relative error under 1e-14.
const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = LANCZOS[0];
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
  const t = x + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

// The regularized incomplete beta function I_x(a, b), by its continued fraction (modified Lentz), taken on the side
// of x where it converges fast.
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(1 - x, b, a);
  const front = Math.exp(a * Math.log(x) + b * Math.log(1 - x) - logGamma(a) - logGamma(b) + logGamma(a + b)) / a;
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let f = d;
  for (let m = 1; m <= 300; m++) {
    for (const num of [(m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)), -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      f *= c * d;
    }
    if (Math.abs(c * d - 1) < 1e-15) break;
  }
  return front * f;
}

// P(T <= t) for Student's t with `df` degrees of freedom.
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

// The p-quantile of Student's t with `df` degrees of freedom (0 < p < 1), by bisection on its CDF.
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) throw new Error(`studentTQuantile: expected 0 < p < 1 and df > 0, got p ${p}, df ${df}`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

// The mean of `xs` and its two-sided confidence interval at `level` (Student's t, n - 1 degrees of freedom): what a
// mean over seeds can claim. The interval is [NaN, NaN] for fewer than two values: one value has no spread.
export interface MeanInterval {
  mean: number;
  lo: number;
  hi: number;
  n: number;
}
export function meanInterval(xs: number[], level = 0.95): MeanInterval {
  const [mean, std] = meanStd(xs);
  if (xs.length < 2) return { mean, lo: NaN, hi: NaN, n: xs.length };
  const half = (studentTQuantile((1 + level) / 2, xs.length - 1) * std) / Math.sqrt(xs.length);
  return { mean, lo: mean - half, hi: mean + half, n: xs.length };
}

// The mean of a table x[s][i] of S rows (seeds) by Q columns (test images, each row the same ones) and its
// confidence interval at `level` where both are samples: the two-way crossed random-effects design, in which
// Var(mean) = var_rows / S + var_columns / Q + var_residual / (S Q). It is estimated from the mean squares as
// (MS_rows + MS_columns - MS_residual) / (S Q), each variance component floored at 0: the columns' part (where the
// columns vary no more than the residual says they must, this is meanInterval of the row means: the interval over
// seeds alone) and the rows' (where the row means vary less than the residual says they must, MS_rows stands at
// MS_residual, its expectation without a rows' part: two seeds whose means agree by chance, as counts of right
// answers often do, would otherwise claim no uncertainty at all). Satterthwaite's degrees of freedom, the rows'
// mean square keeping its S - 1. [NaN, NaN] for fewer than two rows or columns.
export function crossedMeanInterval(x: ArrayLike<number>[], level = 0.95): MeanInterval {
  const s = x.length;
  const q = s > 0 ? x[0].length : 0;
  if (x.some((row) => row.length !== q)) throw new Error(`crossedMeanInterval: expected rows of one length, got lengths ${x.map((row) => row.length).join(", ")}`);
  const rowMeans = x.map((row) => {
    let sum = 0;
    for (let i = 0; i < q; i++) sum += row[i];
    return sum / q;
  });
  const mean = rowMeans.reduce((a, b) => a + b, 0) / s;
  if (s < 2 || q < 2) return { mean, lo: NaN, hi: NaN, n: s };
  const columnMeans = new Float64Array(q);
  for (const row of x) for (let i = 0; i < q; i++) columnMeans[i] += row[i] / s;
  let total = 0;
  for (const row of x) for (let i = 0; i < q; i++) total += (row[i] - mean) ** 2;
  const rows = q * rowMeans.reduce((a, m) => a + (m - mean) ** 2, 0);
  const columns = s * columnMeans.reduce((a, m) => a + (m - mean) ** 2, 0);
  const msRows = rows / (s - 1);
  const msColumns = columns / (q - 1);
  const msResidual = Math.max(0, total - rows - columns) / ((s - 1) * (q - 1));
  const columnPart = Math.max(0, msColumns - msResidual);
  // The rows' mean square at least the residual's, its expectation without a rows' part; it keeps its s - 1 degrees
  // of freedom, so that the interval changes continuously as MS_rows crosses MS_residual.
  const msSeeds = Math.max(msRows, msResidual);
  const variance = (msSeeds + columnPart) / (s * q);
  if (variance === 0) return { mean, lo: mean, hi: mean, n: s };
  const df = columnPart === 0 ? s - 1 : (msSeeds + columnPart) ** 2 / (msSeeds ** 2 / (s - 1) + msColumns ** 2 / (q - 1) + msResidual ** 2 / ((s - 1) * (q - 1)));
  const half = studentTQuantile((1 + level) / 2, df) * Math.sqrt(variance);
  return { mean, lo: mean - half, hi: mean + half, n: s };
}

// The mean of a table x[s][b][i] of S seeds by B k-NN banks (independent draws of the source images the classifier's
// neighbours come from) by Q queries (the same images in every seed and bank) and its confidence interval at `level`
// where all three are samples: what a paired difference of k-NN accuracy between two strategies can claim. The
// three-way fully crossed random-effects design without replication (the three-way interaction is the residual), in
// which Var(mean) = s2S / S + s2B / B + s2Q / Q + s2SB / (S B) + s2SQ / (S Q) + s2BQ / (B Q) + s2E / (S B Q). Since
// E[MS_S] = s2E + B s2SQ + Q s2SB + B Q s2S, E[MS_Q] = s2E + B s2SQ + S s2BQ + S B s2Q,
// E[MS_B] = s2E + Q s2SB + S s2BQ + S Q s2B, E[MS_SQ] = s2E + B s2SQ, E[MS_SB] = s2E + Q s2SB,
// E[MS_BQ] = s2E + S s2BQ and E[MS_E] = s2E, it is estimated as (MS_S + max(0, MS_Q - MS_SQ - MS_BQ + MS_E)
// + max(0, MS_B - MS_SB - MS_BQ + MS_E) + max(0, MS_BQ - MS_E)) / (S B Q): the seeds' mean square always counts, as
// in crossedMeanInterval (at least its expectation without a seeds' part, MS_E + max(0, MS_SQ - MS_E)
// + max(0, MS_SB - MS_E), with its own degrees of freedom), and each other part is a variance component floored at
// 0. Degrees of freedom are Satterthwaite's over the combination of mean squares actually used. One bank is
// crossedMeanInterval of x[s][0]; [NaN, NaN] for fewer than two seeds or queries.
export function crossedMeanInterval3(x: ArrayLike<number>[][], level = 0.95): MeanInterval {
  const s = x.length;
  const b = s > 0 ? x[0].length : 0;
  const q = b > 0 ? x[0][0].length : 0;
  if (x.some((seed) => seed.length !== b)) throw new Error(`crossedMeanInterval3: expected seeds with one number of banks, got ${x.map((seed) => seed.length).join(", ")}`);
  if (x.some((seed) => seed.some((bank) => bank.length !== q))) {
    throw new Error(`crossedMeanInterval3: expected banks with one number of queries, got ${x.map((seed) => `[${seed.map((bank) => bank.length).join(", ")}]`).join(", ")}`);
  }
  if (b === 1) return crossedMeanInterval(x.map((seed) => seed[0]), level);
  // The two-way marginal means in one pass; the one-way ones and the grand mean follow from them.
  const sb = new Float64Array(s * b);
  const sq = new Float64Array(s * q);
  const bq = new Float64Array(b * q);
  for (let k = 0; k < s; k++) {
    for (let j = 0; j < b; j++) {
      const bank = x[k][j];
      let sum = 0;
      for (let i = 0; i < q; i++) {
        const v = bank[i];
        sum += v;
        sq[k * q + i] += v / b;
        bq[j * q + i] += v / s;
      }
      sb[k * b + j] = sum / q;
    }
  }
  const ms = new Float64Array(s);
  const mb = new Float64Array(b);
  const mq = new Float64Array(q);
  for (let k = 0; k < s; k++) for (let j = 0; j < b; j++) ms[k] += sb[k * b + j] / b;
  for (let j = 0; j < b; j++) for (let i = 0; i < q; i++) mb[j] += bq[j * q + i] / q;
  for (let j = 0; j < b; j++) for (let i = 0; i < q; i++) mq[i] += bq[j * q + i] / b;
  const mean = ms.reduce((a, m) => a + m, 0) / s;
  if (s < 2 || q < 2) return { mean, lo: NaN, hi: NaN, n: s };
  const squares = (xs: Float64Array) => xs.reduce((a, m) => a + (m - mean) ** 2, 0);
  let ssSB = 0;
  for (let k = 0; k < s; k++) for (let j = 0; j < b; j++) ssSB += (sb[k * b + j] - ms[k] - mb[j] + mean) ** 2;
  let ssSQ = 0;
  for (let k = 0; k < s; k++) for (let i = 0; i < q; i++) ssSQ += (sq[k * q + i] - ms[k] - mq[i] + mean) ** 2;
  let ssBQ = 0;
  for (let j = 0; j < b; j++) for (let i = 0; i < q; i++) ssBQ += (bq[j * q + i] - mb[j] - mq[i] + mean) ** 2;
  // The residual directly, rather than as the total less the other sums, which would cancel to rounding noise.
  let ssE = 0;
  for (let k = 0; k < s; k++) {
    for (let j = 0; j < b; j++) {
      const bank = x[k][j];
      const base = ms[k] + mb[j] - mean - sb[k * b + j];
      for (let i = 0; i < q; i++) ssE += (bank[i] - sq[k * q + i] - bq[j * q + i] + mq[i] + base) ** 2;
    }
  }
  // Mean squares, their degrees of freedom and their coefficients c in the estimate, in the order S, B, Q, SB, SQ, BQ, E.
  const df = [s - 1, b - 1, q - 1, (s - 1) * (b - 1), (s - 1) * (q - 1), (b - 1) * (q - 1), (s - 1) * (b - 1) * (q - 1)];
  const meanSquares = [b * q * squares(ms), s * q * squares(mb), s * b * squares(mq), q * ssSB, b * ssSQ, s * ssBQ, ssE].map((ss, i) => ss / df[i]);
  const [msS, msB, msQ, msSB, msSQ, msBQ, msE] = meanSquares;
  const queryPart = Math.max(0, msQ - msSQ - msBQ + msE);
  const bankPart = Math.max(0, msB - msSB - msBQ + msE);
  const interactionPart = Math.max(0, msBQ - msE);
  // MS_S at least its expectation without a seeds' part (each interaction's component floored at 0), keeping its
  // s - 1 degrees of freedom, as in crossedMeanInterval.
  meanSquares[0] = Math.max(msS, msE + Math.max(0, msSQ - msE) + Math.max(0, msSB - msE));
  const c = [1, 0, 0, 0, 0, 0, 0];
  if (queryPart > 0) for (const [i, d] of [[2, 1], [4, -1], [5, -1], [6, 1]]) c[i] += d;
  if (bankPart > 0) for (const [i, d] of [[1, 1], [3, -1], [5, -1], [6, 1]]) c[i] += d;
  if (interactionPart > 0) for (const [i, d] of [[5, 1], [6, -1]]) c[i] += d;
  const combination = meanSquares[0] + queryPart + bankPart + interactionPart;
  const variance = combination / (s * b * q);
  if (variance === 0) return { mean, lo: mean, hi: mean, n: s };
  const satterthwaite = combination ** 2 / meanSquares.reduce((a, m, i) => (c[i] === 0 ? a : a + (c[i] * m) ** 2 / df[i]), 0);
  const half = studentTQuantile((1 + level) / 2, satterthwaite) * Math.sqrt(variance);
  return { mean, lo: mean - half, hi: mean + half, n: s };
}
