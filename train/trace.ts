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
import { maxTensorBytes } from "../engine/runtime.js";
import { UsageError } from "../util/command.js";

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
    model.dispose();
  }
}

// Refuses a --classes or --batch whose training step would make a tensor past one storage binding (engine/runtime.ts
// maxTensorBytes), before the step (or its trace) makes it: `tune` and `bench vit` ask for such steps by flag. The
// step's largest tensors: the head's weight (classes, C), and per image the images (3, S, S), qkv (N, 3C), the MLP's
// hidden activations (N, mlpHidden) and the logits (classes); unfused attention's scores are made only where they fit.
export function checkStepFits(config: VitConfig, model: string, batch: number): void {
  const limit = maxTensorBytes();
  const most = (values: number) => Math.floor(limit / (4 * values));
  const fit = `must fit one storage binding, ${limit} bytes on this device`;
  if (config.classes > most(config.width)) {
    throw new UsageError(`--classes: expected at most ${most(config.width)} for ${model}, whose head's weight (classes, ${config.width}) ${fit}, got ${config.classes}`);
  }
  const { imageSize: S, width: C, mlpHidden } = config;
  const N = (S / config.patchSize) ** 2 + 1;
  const perImage: [string, number][] = [
    [`images (B, 3, ${S}, ${S})`, 3 * S * S],
    [`qkv (B·${N}, ${3 * C})`, N * 3 * C],
    [`MLP activations (B·${N}, ${mlpHidden})`, N * mlpHidden],
    [`logits (B, ${config.classes})`, config.classes],
  ];
  const [what, values] = perImage.reduce((a, b) => (b[1] > a[1] ? b : a));
  if (batch > most(values)) throw new UsageError(`--batch: expected at most ${most(values)} for ${model}, whose ${what} ${fit}, got ${batch}`);
}
