// Optimisers over parameter tensors, updating them in place with the WGSL kernels in kernels/optim.ts, with
// PyTorch's semantics (torch.optim.SGD, torch.optim.AdamW). Gradient-norm clipping stays on the GPU: the clip
// coefficient is a 1-element tensor that the update kernels multiply the gradient by, so no read-back.
//
// Loss scaling (autograd/loss-scale.ts) skips a step whose gradients overflowed by a factor of 0, on the device;
// an optimiser built with `skipZero` takes such steps as PyTorch's GradScaler does, where optimizer.step() is not
// called: parameters and state stay as they were, and AdamW's step count (its bias corrections) does not advance,
// so it lives on the device (state `step`). SGD's momentum buffer starts at zero and has no dampening here, so its
// first step (buf = g) is also momentum * 0 + g: a skipped first step needs no count.
import { Tensor } from "../engine/tensor.js";
import { fill } from "../kernels/fill.js";
import { adamwUpdates, clipCoefficient, clipCoefficients, scaleEach, sgdUpdates, sumOfSquares, sumsOfSquares } from "../kernels/optim.js";
import { unaryForward } from "../kernels/elementwise.js";

export interface Optimizer {
  lr: number; // current learning rate; schedules set it before each step
  readonly params: Tensor[];
  // gradScale: the gradient's factor (1 element, on the device); built with skipZero, a 0 there skips the update.
  step(gradScale?: Tensor): void;
  zeroGrad(): void;
  // Named state tensors (for checkpoints): `<param name>.<slot>`, and AdamW's `step` with skipZero.
  state(): Map<string, Tensor>;
  stepCount: number; // steps taken on the host, skipped ones included
}

export interface SgdOptions {
  lr: number;
  momentum: number; // 0 for plain SGD
  weightDecay?: number;
  nesterov?: boolean;
  noDecay?: (p: Tensor) => boolean; // parameters exempt from weight decay (e.g. biases, norms)
  lrScale?: (p: Tensor) => number; // a parameter's rate is lr times this (layer-wise decay, peft/layer-decay.ts); default 1
  skipZero?: boolean; // every step gets a gradScale, and a 0 there skips it (loss scaling)
}

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number; // default 0.01, as PyTorch
  noDecay?: (p: Tensor) => boolean;
  lrScale?: (p: Tensor) => number; // as SgdOptions'
  skipZero?: boolean; // as SgdOptions'; the step count is then kept on the device
}

// PyTorch's.
export const ADAMW_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

function stateName(p: Tensor, i: number, slot: string): string {
  return `${p.name ?? `param${i}`}.${slot}`;
}

abstract class Base implements Optimizer {
  stepCount = 0;
  protected slots: Map<string, Tensor[]> = new Map();

  constructor(
    readonly params: Tensor[],
    public lr: number,
    slotNames: string[],
    protected readonly skipZero: boolean,
  ) {
    const names = new Set<Tensor>();
    for (const p of params) {
      if (names.has(p)) throw new Error(`optimizer: parameter ${p} listed twice`);
      names.add(p);
      if (!p.requiresGrad) throw new Error(`optimizer: parameter ${p} does not require grad`);
    }
    // State is zero-initialised and kept for the optimiser's life.
    for (const slot of slotNames) this.slots.set(slot, params.map((p) => fill(p.shape, 0).keep()));
  }

  abstract step(gradScale?: Tensor): void;

  protected checkScale(gradScale: Tensor | undefined): void {
    if (this.skipZero && !gradScale) throw new Error("optimizer: expected a gradScale for every step of an optimiser built with skipZero, got none");
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = undefined;
    }
  }

  state(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [slot, tensors] of this.slots) tensors.forEach((t, i) => out.set(stateName(this.params[i], i, slot), t));
    return out;
  }
}

export class SGD extends Base {
  constructor(
    params: Tensor[],
    private o: SgdOptions,
  ) {
    super(params, o.lr, o.momentum > 0 ? ["momentum"] : [], o.skipZero ?? false);
  }

  step(gradScale?: Tensor): void {
    this.checkScale(gradScale);
    const buffers = this.slots.get("momentum");
    // Parameters outside this step's graph (no gradient) are left alone, as in PyTorch.
    const tensors = this.params.flatMap((p, i) =>
      p.grad ? [{ param: p, grad: p.grad, momentumBuf: buffers?.[i], weightDecay: this.o.noDecay?.(p) ? 0 : (this.o.weightDecay ?? 0), lrScale: this.o.lrScale?.(p) }] : [],
    );
    sgdUpdates(tensors, { lr: this.lr, momentum: this.o.momentum, nesterov: this.o.nesterov, first: this.stepCount === 0, gradScale, skipZero: this.skipZero });
    this.stepCount++;
  }
}

export class AdamW extends Base {
  weightDecay: number; // current decay of the decayed parameters; schedules may set it before each step (DINO's)
  private readonly counter?: Tensor; // (1) with skipZero: the steps not skipped, as f32 (exact to 2^24)

  constructor(
    params: Tensor[],
    private o: AdamWOptions,
  ) {
    super(params, o.lr, ["exp_avg", "exp_avg_sq"], o.skipZero ?? false);
    this.weightDecay = o.weightDecay ?? 0.01;
    if (this.skipZero) this.counter = fill([1], 0).keep();
  }

  step(gradScale?: Tensor): void {
    this.checkScale(gradScale);
    this.stepCount++;
    const m = this.slots.get("exp_avg")!;
    const v = this.slots.get("exp_avg_sq")!;
    const tensors = this.params.flatMap((p, i) =>
      p.grad ? [{ param: p, grad: p.grad, m: m[i], v: v[i], weightDecay: this.o.noDecay?.(p) ? 0 : this.weightDecay, lrScale: this.o.lrScale?.(p) }] : [],
    );
    adamwUpdates(tensors, {
      lr: this.lr,
      beta1: this.o.beta1 ?? ADAMW_DEFAULTS.beta1,
      beta2: this.o.beta2 ?? ADAMW_DEFAULTS.beta2,
      eps: this.o.eps ?? ADAMW_DEFAULTS.eps,
      ...(this.counter ? { counter: this.counter } : { step: this.stepCount }),
      gradScale,
      skipZero: this.skipZero,
    });
  }

  override state(): Map<string, Tensor> {
    const out = super.state();
    if (this.counter) out.set("step", this.counter);
    return out;
  }
}

// The sum of squares of every gradient of `params` (a 1-element tensor on the GPU); parameters without one are left out.
export function gradSumOfSquares(params: Tensor[]): Tensor {
  return sumOfSquares(params.map((p) => p.grad).filter((g): g is Tensor => g !== undefined));
}

// The global gradient norm of `params` (a 1-element tensor) and the clip coefficient min(1, maxNorm/(norm+1e-6))
// to pass to step(). Both stay on the GPU.
export function clipGradNorm(params: Tensor[], maxNorm: number): { norm: Tensor; coefficient: Tensor } {
  const sumSq = gradSumOfSquares(params);
  const coefficient = clipCoefficient(sumSq, maxNorm);
  const norm = unaryForward("sqrt", sumSq);
  sumSq.dispose();
  return { norm, coefficient };
}

// Every parameter's gradient clipped by its own norm, in place (DINO's clip_gradients): grad *= min(1, maxNorm /
// (|grad| + 1e-6)), with `scale` (loss scaling) of the unscaled norm, |grad| / scale: per parameter the values
// of clipCoefficient(sumOfSquares([grad])) times grad, in a few dispatches for all of them. Parameters without a
// gradient are left out.
export function clipGradEach(params: Tensor[], maxNorm: number, scale?: Tensor): void {
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== undefined);
  if (grads.length === 0) return;
  const sums = sumsOfSquares(grads);
  const coefficients = clipCoefficients(sums, maxNorm, scale);
  scaleEach(grads, coefficients);
  sums.dispose();
  coefficients.dispose();
}

// The update an optimiser's state alone makes at its next step: that step with a zero gradient, at rate 1 and
// without weight decay, on the host in float64: what it would do next from its memory of the gradients so far.
//   SGD:   buf' = momentum * buf, the update -buf' (Nesterov's: -momentum * buf'); none without momentum
//   AdamW: m' = beta1 m, v' = beta2 v at step t + 1: -m' / (1 - beta1^(t+1)) / (sqrt(v') / sqrt(1 - beta2^(t+1)) + eps)
// `slots`: the parameter's state by slot name (as state() names them after the parameter's name); `steps`: the
// steps the optimiser has taken (AdamW's t; its `step` state where loss scaling skips steps).
export function stateStep(
  o: { optimizer: "sgd"; momentum: number; nesterov?: boolean } | ({ optimizer: "adamw" } & Pick<AdamWOptions, "beta1" | "beta2" | "eps">),
  slots: Map<string, Float32Array>,
  steps: number,
): Float64Array | undefined {
  const slot = (name: string) => {
    const t = slots.get(name);
    if (!t) throw new Error(`optimizer state: expected the slot ${name} of ${o.optimizer}, got ${[...slots.keys()].join(", ") || "none"}`);
    return t;
  };
  if (o.optimizer === "sgd") {
    if (o.momentum === 0) return undefined;
    const factor = o.nesterov ? o.momentum * o.momentum : o.momentum;
    return Float64Array.from(slot("momentum"), (b) => -factor * b);
  }
  const [beta1, beta2, eps] = [o.beta1 ?? ADAMW_DEFAULTS.beta1, o.beta2 ?? ADAMW_DEFAULTS.beta2, o.eps ?? ADAMW_DEFAULTS.eps];
  const t = steps + 1;
  const [m, v] = [slot("exp_avg"), slot("exp_avg_sq")];
  return Float64Array.from(m, (mi, i) => -((beta1 * mi) / (1 - beta1 ** t)) / (Math.sqrt(beta2 * v[i]) / Math.sqrt(1 - beta2 ** t) + eps));
}
