// Fine-tuning with the patch projection's response to a flat patch held (a strategy's -keepflat suffix): a patch of
// one intensity per channel over its P x P pixels reads, at each output, the sum of that channel's weights over the
// pixels (times the intensity), and that sum is where the analysis found full fine-tuning's early forgetting
// (docs/ANALYSIS.md, "What comes and goes"). After every optimizer step, the step's change of the patch projection's
// weight (C, 3 P^2) less its mean over each output's and channel's pixels: every such sum stays as it was before
// training, whatever the optimizer, and the weight moves freely in every other direction. The bias trains as it
// would. Outside autograd, on the device.
import * as ops from "../autograd/ops.js";
import { noGrad } from "../autograd/tape.js";
import type { Tensor } from "../engine/tensor.js";

// `step()` (an optimizer step) run with `weight`'s pixel sums held (pixels: P^2, the weight's columns 3 P^2).
export function withFlatResponseHeld(weight: Tensor, pixels: number, step: () => void): void {
  const [c, k] = weight.shape;
  if (weight.shape.length !== 2 || k % pixels !== 0) throw new Error(`flat response: expected a patch projection weight (C, channels x ${pixels}), got (${weight.shape.join(", ")})`);
  const before = noGrad(() => ops.scale(weight, 1));
  step();
  noGrad(() => {
    const change = ops.reshape(ops.sub(weight, before), [c, k / pixels, pixels]);
    // The mean over each output's and channel's pixels, broadcast to every pixel (addInPlace does not broadcast).
    const mean = ops.add(ops.zeros([c, k / pixels, pixels]), ops.mean(change, 2, true));
    ops.addInPlace(weight, ops.reshape(mean, [c, k]), -1);
  });
}
