// Dynamic loss scaling for mixed precision, PyTorch's GradScaler on the device: the backward is seeded with the
// scale S instead of 1, so gradients small enough to underflow f16 at a product's input survive; unscale() turns the
// scaled gradients' sum of squares into the optimiser's gradient factor (clip / S, or 0 when a gradient is inf or
// NaN: the step is skipped and S lowered) and updates S, all in kernels (kernels/optim.ts lossScaleStep), so a step
// reads nothing back. S and the count of good steps are state, checkpointed with the optimiser's. The optimiser,
// built with skipZero, leaves a skipped step out of its step count as PyTorch's does (autograd/optim.ts).
import { Tensor } from "../engine/tensor.js";
import { fill } from "../kernels/fill.js";
import { lossScaleStep } from "../kernels/optim.js";
import { gradSumOfSquares } from "./optim.js";

export interface LossScaleSettings {
  init: number; // the first scale
  backoff: number; // factor after an overflow, in (0, 1)
  growth: number; // factor after `interval` steps without one, > 1
  interval: number;
}

// GradScaler's defaults.
export const LOSS_SCALE_DEFAULTS: LossScaleSettings = { init: 2 ** 16, backoff: 0.5, growth: 2, interval: 2000 };

export class LossScaler {
  readonly scale: Tensor; // (1): S, the backward's seed
  readonly goodSteps: Tensor; // (1): steps since the last overflow or growth, as f32 (exact to 2^24)

  constructor(readonly settings: LossScaleSettings) {
    const { init, backoff, growth, interval } = settings;
    if (!(init > 0 && Number.isFinite(init))) throw new Error(`loss scale: expected init > 0, got ${init}`);
    if (!(backoff > 0 && backoff < 1)) throw new Error(`loss scale: expected backoff in (0, 1), got ${backoff}`);
    if (!(growth > 1 && Number.isFinite(growth))) throw new Error(`loss scale: expected growth > 1, got ${growth}`);
    if (!(Number.isInteger(interval) && interval >= 1)) throw new Error(`loss scale: expected interval an integer >= 1, got ${interval}`);
    this.scale = fill([1], init).keep();
    this.goodSteps = fill([1], 0).keep();
  }

  // The factor for optimiser.step(factor) (an optimiser built with skipZero) from the scaled gradients of
  // `params`, clipping the unscaled norm to maxNorm where given; updates the scale.
  unscale(params: Tensor[], maxNorm?: number): Tensor {
    const sumSq = gradSumOfSquares(params);
    const factor = lossScaleStep(sumSq, this.scale, this.goodSteps, { ...this.settings, maxNorm });
    sumSq.dispose();
    return factor;
  }

  state(): Map<string, Tensor> {
    return new Map([
      ["lossScale.scale", this.scale],
      ["lossScale.goodSteps", this.goodSteps],
    ]);
  }

  dispose(): void {
    this.scale.dispose();
    this.goodSteps.dispose();
  }
}
