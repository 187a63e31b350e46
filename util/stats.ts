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
// (MS_rows + MS_columns - MS_residual) / (S Q), the columns' part floored at 0 (where the columns vary no more than
// the residual says they must, this is meanInterval of the row means: the interval over seeds alone), with
// Satterthwaite's degrees of freedom. [NaN, NaN] for fewer than two rows or columns.
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
  const variance = (msRows + columnPart) / (s * q);
  if (variance === 0) return { mean, lo: mean, hi: mean, n: s };
  const df = columnPart === 0 ? s - 1 : (msRows + columnPart) ** 2 / (msRows ** 2 / (s - 1) + msColumns ** 2 / (q - 1) + msResidual ** 2 / ((s - 1) * (q - 1)));
  const half = studentTQuantile((1 + level) / 2, df) * Math.sqrt(variance);
  return { mean, lo: mean - half, hi: mean + half, n: s };
}
