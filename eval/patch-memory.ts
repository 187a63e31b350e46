// The optimiser's memory on the patch projection at a kept step: the update its state alone would make next, the
// next step with a zero gradient at rate 1 and without weight decay (autograd/optim.ts stateStep), as [W | b]
// (patchProjection's layout). With SGD the next step is the rate times the sum of this, minus the gradient and
// minus the decay's term, so beside gradient descent's next move (eval/patch-gradient.ts) it says how much of the
// step is the past's; with AdamW it is the part of the step that the state alone decides. A kept step holds the optimiser's state as the last
// checkpoint does (study/runner.ts).
import { stateStep } from "../autograd/optim.js";
import { OPTIMIZER_STATE } from "../train/checkpoint.js";
import type { F32Tensor } from "../vit/safetensors.js";
import type { VisionTransformer } from "../vit/model.js";
import { besideBias } from "./patch-directions.js";

// `tensors`: the kept step's file (`path` names it in errors); `hyperParameters`: its manifest's (the optimiser and
// its momentum); `step`: the steps taken, AdamW's count where the file holds no `optimizer.step` (loss scaling's
// count of the steps not skipped). None where the file holds no state for the patch projection's weight (not
// trained, plain SGD, or kept before the state was).
export function patchMemory(model: VisionTransformer, tensors: Map<string, F32Tensor>, hyperParameters: Record<string, unknown>, step: number, path: string): Float64Array | undefined {
  const { weight, bias } = model.patchEmbed;
  const slots = (name: string) => {
    const prefix = `${OPTIMIZER_STATE}${name}.`;
    return new Map([...tensors].filter(([key]) => key.startsWith(prefix)).map(([key, t]) => [key.slice(prefix.length), t.data]));
  };
  const weightSlots = slots(weight.name!);
  if (weightSlots.size === 0) return undefined;
  const { optimizer, momentum } = hyperParameters;
  if (!(optimizer === "adamw" || (optimizer === "sgd" && typeof momentum === "number"))) {
    throw new Error(`patch memory: ${path}: expected the manifest's hyperParameters to name the optimiser (sgd with its momentum, or adamw), got optimizer ${JSON.stringify(optimizer)}, momentum ${JSON.stringify(momentum)}`);
  }
  const count = tensors.get(`${OPTIMIZER_STATE}step`);
  const steps = count ? count.data[0] : step;
  const options = optimizer === "sgd" ? { optimizer: "sgd" as const, momentum: momentum as number } : { optimizer: "adamw" as const };
  const w = stateStep(options, weightSlots, steps);
  if (!w) return undefined;
  const b = bias && slots(bias.name!).size > 0 ? stateStep(options, slots(bias.name!), steps) : undefined;
  return besideBias(w, b, weight.shape[0]);
}
