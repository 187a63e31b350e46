// A training step's loss and gradients, replayed (engine/replay.ts) where the step allows it: the zeroGrad, forward
// and backward of a batch recorded once and encoded again for each later batch of the same size, its images and
// labels written into tensors that stay, in the run's precision. The optimiser's step stays outside: its learning
// rate changes with the schedule, and in f16 the loss scaler's unscale and update go with it; the backward's seed,
// the scale, is the scaler's tensor, which the replay reads where it is updated in place. A replayed step computes what the run step computes, bit for bit (test/train/replayed-loss.test.ts), so
// it is no setting of a run: PEFT_REPLAY=0 turns it off for a process (engine/settings.ts).
//
// The steps, for batches of one size: the first is run (what a first step makes lazily, a frozen weight's kept
// pack, then exists); the second is the capture, whose two recorded runs compute the same batch's gradients twice
// (the second overwrites the first's with the same values), so that step costs one more forward and backward; the
// rest are replayed. A batch of another size (an epoch's last, short batch) is run by the caller: the replay goes,
// since that run's zeroGrad() releases the gradients the replay writes, and the next batch of the size is captured
// again. A run that cannot be replayed (ReplayRefusedError: it uploads, or records other commands the second
// time) is run from then on, with one warning.
import { Tensor, tidy } from "../engine/tensor.js";
import { runtime } from "../engine/runtime.js";
import { ReplayedRun } from "../engine/replay.js";
import * as ops from "../autograd/ops.js";
import { type Precision, withPrecision } from "../autograd/precision.js";
import { backward } from "../autograd/tape.js";
import type { Optimizer } from "../autograd/optim.js";
import type { VisionTransformer } from "../vit/model.js";
import type { Batch } from "../data/loader.js";
import { writeBatchImages } from "./batch-images.js";

export class ReplayedLoss {
  private inputs: { images: Tensor; labels: Tensor; loss: Tensor } | undefined; // for batches of one size
  private replayed: ReplayedRun | undefined; // the step over those inputs
  private refused = false;

  constructor(
    private readonly model: VisionTransformer,
    private readonly opt: Optimizer,
    private readonly size: number, // image side
    private readonly precision: Precision,
    private readonly seed?: Tensor, // the backward's seed: f16's loss scale, a tensor the scaler updates in place
  ) {}

  // Zeroes the gradients and computes the batch's mean loss (returned, a tensor of its own) and gradients, replayed
  // or run; undefined where the caller must run the step itself (replay refused, or a batch of another size).
  async lossAndGradients(b: Batch): Promise<Tensor | undefined> {
    if (this.refused) return undefined;
    const B = b.labels.length;
    if (this.inputs && this.inputs.labels.size !== B) {
      this.release();
      return undefined;
    }
    const inputs = (this.inputs ??= {
      images: Tensor.empty([B, 3, this.size, this.size]).keep(),
      labels: Tensor.empty([B], "i32").keep(),
      loss: Tensor.empty([]).keep(),
    });
    writeBatchImages(b, inputs.images);
    inputs.labels.write(b.labels);
    this.replayed ??= new ReplayedRun(() => tidy(() => withPrecision(this.precision, () => this.run(inputs))), "train: steps are run, not replayed");
    await this.replayed.call();
    this.refused = this.replayed.refused; // both runs of the refused capture happened: this step's results are there
    const loss = Tensor.empty([]);
    runtime().batch.copy(inputs.loss.buffer, 0, loss.buffer, 0, 4);
    return loss;
  }

  private run(inputs: { images: Tensor; labels: Tensor; loss: Tensor }): void {
    this.opt.zeroGrad();
    const l = ops.crossEntropy(this.model.forward(inputs.images), inputs.labels);
    backward(l, this.seed?.reshape(l.shape));
    runtime().batch.copy(l.buffer, 0, inputs.loss.buffer, 0, 4);
  }

  // Drops the replay and the inputs (the next batch starts afresh, run first).
  release(): void {
    this.replayed?.dispose();
    this.replayed = undefined;
    if (this.inputs) for (const t of Object.values(this.inputs)) t.dispose();
    this.inputs = undefined;
  }
}
