// A function of a batch of images (a model's CLS features, its head's logits), replayed for batches of one shape
// (engine/replay.ts ReplayedRun): the images written into a tensor that stays and the output copied into another,
// the first batch run, the second captured (run twice), the rest encoded again without the host's work of building
// them. Another shape starts afresh. A replayed batch computes what a run one does, to the bit.
import { runtime } from "../engine/runtime.js";
import { Tensor, tidy } from "../engine/tensor.js";
import { ReplayedRun } from "../engine/replay.js";
import { noGrad } from "../autograd/tape.js";

export class ReplayedForward {
  private replayed: { images: Tensor; output: { tensor?: Tensor }; run: ReplayedRun } | undefined;

  constructor(
    private readonly f: (images: Tensor) => Tensor,
    private readonly refusal: string, // the warning's start where the function cannot be replayed (it then runs)
  ) {}

  // f(images) for images of `shape`, in a tensor of this object's that the next call overwrites: read or copy it
  // before then. `images`: their values, or what writes them into the tensor given (train/batch-images.ts).
  async call(images: Float32Array | ((into: Tensor) => void), shape: number[]): Promise<Tensor> {
    if (this.replayed && this.replayed.images.shape.join() !== shape.join()) this.dispose();
    const r = (this.replayed ??= this.make(shape));
    if (images instanceof Float32Array) r.images.write(images);
    else images(r.images);
    await r.run.call();
    return r.output.tensor!;
  }

  private make(shape: number[]): { images: Tensor; output: { tensor?: Tensor }; run: ReplayedRun } {
    const images = Tensor.empty(shape).keep();
    const output: { tensor?: Tensor } = {}; // made by the first run, at the function's output shape
    const run = () =>
      tidy(() =>
        noGrad(() => {
          const y = this.f(images);
          output.tensor ??= Tensor.empty(y.shape).keep();
          runtime().batch.copy(y.buffer, 0, output.tensor.buffer, 0, y.size * 4);
        }),
      );
    return { images, output, run: new ReplayedRun(run, this.refusal) };
  }

  dispose(): void {
    if (!this.replayed) return;
    this.replayed.run.dispose();
    this.replayed.images.dispose();
    this.replayed.output.tensor?.dispose();
    this.replayed = undefined;
  }
}
