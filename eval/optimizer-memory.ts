// The optimiser's memory at a kept step: the update its state alone would make next, the next step with a zero
// gradient at rate 1 and without weight decay (autograd/optim.ts stateStep), of each trained tensor. With SGD the
// next step is the rate times the sum of this, minus the gradient and minus the decay's term, so beside gradient
// descent's next move (eval/training-gradient.ts) it says how much of the step is the past's; with AdamW it is the
// part of the step that the state alone decides. A kept step holds the optimiser's state as the last checkpoint does
// (study/runner.ts); eval/part-moves.ts splits the memory by part, eval/patch-directions.ts the patch projection's
// along its patches' first direction and the rest.
import { stateStep } from "../autograd/optim.js";
import type { Tensor } from "../engine/tensor.js";
import { OPTIMIZER_STATE } from "../train/checkpoint.js";
import type { F32Tensor } from "../vit/safetensors.js";
import type { VisionTransformer } from "../vit/model.js";
import { besideBias } from "./patch-directions.js";

// `tensors`: the kept step's file (`path` names it in errors); `hyperParameters`: its manifest's (the optimiser and
// its momentum); `step`: the steps taken, AdamW's count where the file holds no `optimizer.step` (loss scaling's
// count of the steps not skipped). Of the model's parameters, those the file holds state for; none for plain SGD.
export function optimizerMemory(model: VisionTransformer, tensors: Map<string, F32Tensor>, hyperParameters: Record<string, unknown>, step: number, path: string): Map<Tensor, Float64Array> {
  const memory = new Map<Tensor, Float64Array>();
  const slotsOf = (name: string) => {
    const prefix = `${OPTIMIZER_STATE}${name}.`;
    return new Map([...tensors].filter(([key]) => key.startsWith(prefix)).map(([key, t]) => [key.slice(prefix.length), t.data]));
  };
  const kept = model.parameters().map(([name, t]) => [t, slotsOf(name)] as const).filter(([, slots]) => slots.size > 0);
  if (kept.length === 0) return memory;
  const { optimizer, momentum } = hyperParameters;
  if (!(optimizer === "adamw" || (optimizer === "sgd" && typeof momentum === "number"))) {
    throw new Error(`optimizer memory: ${path}: expected the manifest's hyperParameters to name the optimiser (sgd with its momentum, or adamw), got optimizer ${JSON.stringify(optimizer)}, momentum ${JSON.stringify(momentum)}`);
  }
  const count = tensors.get(`${OPTIMIZER_STATE}step`);
  const steps = count ? count.data[0] : step;
  const options = optimizer === "sgd" ? { optimizer: "sgd" as const, momentum: momentum as number } : { optimizer: "adamw" as const };
  for (const [t, slots] of kept) {
    const m = stateStep(options, slots, steps);
    if (m) memory.set(t, m);
  }
  return memory;
}

// The patch projection's memory as [W | b] (patchProjection's layout; a bias without one moves by 0); none
// without the weight's.
export function patchMemoryOf(model: VisionTransformer, memory: Map<Tensor, Float64Array>): Float64Array | undefined {
  const { weight, bias } = model.patchEmbed;
  const w = memory.get(weight);
  return w && besideBias(w, bias && memory.get(bias), weight.shape[0]);
}
