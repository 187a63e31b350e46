// CPU references for the optimisers, transcribed from PyTorch's update equations (torch/optim/sgd.py and
// torch/optim/adamw.py, single-tensor path) in float64. The state arrays are updated in place.

export interface SgdOptions {
  lr: number;
  momentum: number;
  weightDecay: number;
  dampening: number;
  nesterov: boolean;
}

// One SGD step; `buf` is null before the first step when momentum != 0 (PyTorch creates it as a clone of d_p).
export function sgdStepRef(
  p: Float64Array,
  grad: ArrayLike<number>,
  buf: Float64Array | null,
  o: SgdOptions,
  gradScale = 1,
): Float64Array | null {
  const d = Float64Array.from(grad, (g) => g * gradScale);
  if (o.weightDecay !== 0) for (let i = 0; i < p.length; i++) d[i] += o.weightDecay * p[i];
  if (o.momentum !== 0) {
    if (buf === null) buf = Float64Array.from(d);
    else for (let i = 0; i < p.length; i++) buf[i] = o.momentum * buf[i] + (1 - o.dampening) * d[i];
    for (let i = 0; i < p.length; i++) d[i] = o.nesterov ? d[i] + o.momentum * buf[i] : buf[i];
  }
  for (let i = 0; i < p.length; i++) p[i] -= o.lr * d[i];
  return buf;
}

export interface AdamwOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

// One AdamW step number `step` (from 1); m and v start at zero.
export function adamwStepRef(
  p: Float64Array,
  grad: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  step: number,
  o: AdamwOptions,
  gradScale = 1,
): void {
  const bc1 = 1 - o.beta1 ** step;
  const bc2 = 1 - o.beta2 ** step;
  for (let i = 0; i < p.length; i++) {
    const g = grad[i] * gradScale;
    p[i] *= 1 - o.lr * o.weightDecay;
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + o.eps;
    p[i] -= (o.lr / bc1) * (m[i] / denom);
  }
}

export function sumOfSquaresRef(xs: ArrayLike<number>[]): number {
  let s = 0;
  for (const x of xs) for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

// torch.nn.utils.clip_grad_norm_: the gradients are multiplied by min(1, maxNorm / (norm + 1e-6)).
export function clipCoefficientRef(sumSq: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (Math.sqrt(sumSq) + 1e-6));
}
