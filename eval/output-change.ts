// How far each part's own computation moved, apart from the change of what it reads: the fine-tuned part run on the
// original's input to it, against the original part on the same input, over every token of the analysed images:
//   - the embeddings (the tokens before the blocks, made from the images alone by the patch projection, the CLS token
//     and the position embeddings): ||E'(x) - E(x)|| / ||E(x)||;
//   - each original block i, with Block Expansion's new blocks after it (eval/block-map.ts: own[i] to output[i]): its
//     output on the original's input h to block i, less the original block's there, relative to the original block's
//     own contribution to the residual stream: ||B'(h) - B(h)|| / ||B(h) - h||.
// Frobenius norms: each batch's squares summed on the device (float32), the batches in float64 on the host. Where the
// weight change (eval/weight-change.ts) is how far a part's parameters moved, this is how far that moved what it
// computes on these images: a part can move its weights in directions the images do not reach (a grey image repeated
// over three channels reads only the sum of the patch projection's three), or turn back in what it computes while its
// weights move on. A part fine-tuning left alone reads exactly 0 (the same kernels on the same bytes).
import type { Tensor } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { noGrad } from "../autograd/tape.js";
import type { VisionTransformer } from "../vit/model.js";
import type { BlockMap } from "./block-map.js";

export interface OutputChange {
  embedding: number;
  blocks: number[]; // (depth)
}

export class OutputChangeAccumulator {
  private readonly sums: Float64Array; // (1 + depth) x [change², reference²]: the embeddings, then each block

  constructor(readonly depth: number) {
    this.sums = new Float64Array(2 * (1 + depth));
  }

  // One batch's terms, scalars on the device in add's order: `images` (B, 3, S, S) and the original's output of every
  // block on them (B, T, C each, `originalOutputs`: each block's input is the one before's).
  terms(original: VisionTransformer, tuned: VisionTransformer, map: BlockMap, images: Tensor, originalOutputs: Tensor[]): Tensor[] {
    return noGrad(() => {
      const squares = (x: Tensor) => ops.sumAll(ops.square(x));
      const embedded = original.embed(images);
      const terms = [squares(ops.sub(tuned.embed(images), embedded)), squares(embedded)];
      for (let i = 0; i < this.depth; i++) {
        const input = i === 0 ? embedded : originalOutputs[i - 1];
        // The original block run here again as the fine-tuned one is, not read from the model's fused pass: a block
        // left alone then reads 0 to the bit.
        const was = original.blocks[i].forward(input);
        let y = input;
        for (let j = map.own[i]; j <= map.output[i]; j++) y = tuned.blocks[j].forward(y);
        terms.push(squares(ops.sub(y, was)), squares(ops.sub(was, input)));
      }
      return terms;
    });
  }

  // The terms' values, read back.
  add(values: Float32Array[]): void {
    if (values.length !== this.sums.length) throw new Error(`output change: expected ${this.sums.length} terms, got ${values.length}`);
    values.forEach((v, j) => (this.sums[j] += v[0]));
  }

  value(): OutputChange {
    const relative = (j: number) => Math.sqrt(this.sums[2 * j]) / Math.sqrt(this.sums[2 * j + 1]);
    return { embedding: relative(0), blocks: Array.from({ length: this.depth }, (_, i) => relative(1 + i)) };
  }
}
