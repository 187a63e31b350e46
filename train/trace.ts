// The kernel shapes of one training step, traced: for each strategy, a fresh model takes one step (forward,
// cross-entropy loss, backward, SGD update) in a dry run (engine/trace.ts), and every version look-up of a kernel
// family is recorded with its shape. Nothing reaches the GPU, so tracing costs host time only. `tune` times the
// shapes (cli/tune.ts); a shape is used by the strategies whose step looked it up. With precision "f16" the step
// runs as training.precision "f16" does (autograd/precision.ts): its products are f16 shapes of their own.
import { Tensor, tidy } from "../engine/tensor.js";
import { type TracedShape, addUses, traceDry } from "../engine/trace.js";
import * as ops from "../autograd/ops.js";
import { backward } from "../autograd/tape.js";
import { SGD } from "../autograd/optim.js";
import { type Precision, withPrecision } from "../autograd/precision.js";
import type { VitConfig } from "../vit/config.js";
import { buildVit, initialiser } from "../vit/model.js";
import { type Strategy, applyStrategy, strategyName } from "../peft/strategy.js";

// config: the backbone with its classes (>= 1: the loss needs a head); B: images per step.
export function traceTrainingStep(config: VitConfig, B: number, strategies: Strategy[], precision: Precision = "f32"): TracedShape[] {
  const shapes = new Map<string, TracedShape>();
  for (const strategy of strategies) {
    addUses(shapes, traceDry(() => withPrecision(precision, () => step(config, B, strategy))), strategyName(strategy));
  }
  return [...shapes.values()];
}

function step(config: VitConfig, B: number, strategy: Strategy): void {
  const model = buildVit({ ...config, classes: 0 }, initialiser(0));
  const trainable = applyStrategy(model, strategy, config.classes);
  // The update's values do not matter here, only its kernels: no momentum, so no momentum buffers.
  const sgd = new SGD(trainable.map(([, t]) => t), { lr: 0, momentum: 0 });
  try {
    tidy(() => {
      const images = Tensor.empty([B, 3, config.imageSize, config.imageSize]);
      backward(ops.crossEntropy(model.forward(images), new Int32Array(B)));
      sgd.step();
    });
  } finally {
    sgd.zeroGrad();
    for (const [, t] of model.parameters()) t.dispose();
  }
}
