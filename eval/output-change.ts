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
//
// With the same cell's backbone at an earlier step (`before`, P' its part), each part's change since then on the same
// inputs, ||P(h) - P'(h)|| over the same reference as above, and its turn: the cosine between that change and the
// part's change up to then, P'(h) - P0(h), over every token of every image. Near -1 the part turns back in what it
// computes, near +1 it goes on the same way, near 0 it moves elsewhere; not a number where the part had not moved
// by then.
//
// The same on another set of images (outputChangeOn): the target domain's, on which fine-tuning trains. A part can
// turn back in what it computes on the source domain's images while going on the same way on the target's.
import { type Tensor, readTensors, tidyAsync } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { noGrad } from "../autograd/tape.js";
import type { Loader } from "../data/loader.js";
import { batchImages } from "../train/batch-images.js";
import type { Capture, VisionTransformer } from "../vit/model.js";
import type { BlockMap } from "./block-map.js";

export interface OutputChange {
  embedding: number;
  blocks: number[]; // (depth)
}

// A part's output change since an earlier backbone, and its turn (see above).
export interface PartSince {
  change: number;
  turn: number;
}

export interface OutputSince {
  embedding: PartSince;
  blocks: PartSince[]; // (depth)
}

// Per part, the sums over the images: the change from the original (squared), the reference (squared), and with an
// earlier backbone the change since it (squared), its product with the change up to it, and that one (squared).
const TERMS = 2;
const SINCE_TERMS = 5;

export class OutputChangeAccumulator {
  private readonly sums: Float64Array; // (1 + depth) x terms: the embeddings, then each block
  private readonly terms: number;

  // `before`: the same cell's backbone at an earlier step, the same map, LoRA merged or not (it computes the same).
  constructor(
    readonly depth: number,
    private readonly before?: VisionTransformer,
  ) {
    this.terms = before ? SINCE_TERMS : TERMS;
    this.sums = new Float64Array(this.terms * (1 + depth));
  }

  // One batch's terms, scalars on the device in add's order: `images` (B, 3, S, S) and the original's output of every
  // block on them (B, T, C each, `originalOutputs`: each block's input is the one before's).
  batchTerms(original: VisionTransformer, tuned: VisionTransformer, map: BlockMap, images: Tensor, originalOutputs: Tensor[]): Tensor[] {
    return noGrad(() => {
      const squares = (x: Tensor) => ops.sumAll(ops.square(x));
      const dot = (x: Tensor, y: Tensor) => ops.sumAll(ops.mul(x, y));
      // A part's outputs (the original's, the fine-tuned one's, the earlier one's) and its reference.
      const part = (was: Tensor, is: Tensor, reference: Tensor, earlier?: Tensor): Tensor[] => {
        const terms = [squares(ops.sub(is, was)), squares(reference)];
        if (!earlier) return terms;
        const [since, until] = [ops.sub(is, earlier), ops.sub(earlier, was)];
        return [...terms, squares(since), dot(since, until), squares(until)];
      };
      const run = (m: VisionTransformer, i: number, input: Tensor) => {
        let y = input;
        for (let j = map.own[i]; j <= map.output[i]; j++) y = m.blocks[j].forward(y);
        return y;
      };
      const embedded = original.embed(images);
      const terms = part(embedded, tuned.embed(images), embedded, this.before?.embed(images));
      for (let i = 0; i < this.depth; i++) {
        const input = i === 0 ? embedded : originalOutputs[i - 1];
        // The original block run here again as the fine-tuned one is, not read from the model's fused pass: a block
        // left alone then reads 0 to the bit.
        const was = original.blocks[i].forward(input);
        terms.push(...part(was, run(tuned, i, input), ops.sub(was, input), this.before && run(this.before, i, input)));
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
    return this.byPart((p) => this.relative(p, 0));
  }

  // Each part's change since the earlier backbone and its turn; undefined without one.
  since(): OutputSince | undefined {
    if (!this.before) return undefined;
    return this.byPart((p): PartSince => ({ change: this.relative(p, 2), turn: this.sum(p, 3) / Math.sqrt(this.sum(p, 2) * this.sum(p, 4)) }));
  }

  // `of` each part (0: the embeddings, 1 + i: block i).
  private byPart<T>(of: (p: number) => T): { embedding: T; blocks: T[] } {
    return { embedding: of(0), blocks: Array.from({ length: this.depth }, (_, i) => of(1 + i)) };
  }

  private sum(p: number, t: number): number {
    return this.sums[p * this.terms + t];
  }

  // Part p's term t (a squared change) over its reference, as a ratio of norms.
  private relative(p: number, t: number): number {
    return Math.sqrt(this.sum(p, t)) / Math.sqrt(this.sum(p, 1));
  }
}

// Each part's output change on every image of `loader` (and since `before`, where given), apart from an analysis's own
// pass over its images: the original's block outputs made here.
export async function outputChangeOn(loader: Loader, original: VisionTransformer, tuned: VisionTransformer, map: BlockMap, before?: VisionTransformer): Promise<{ outputChange: OutputChange; outputSince?: OutputSince }> {
  const outputs = new OutputChangeAccumulator(map.depth, before);
  const size = loader.transform.spec.size;
  for await (const batch of loader.epoch(0)) {
    await tidyAsync(async () => {
      const x = batchImages(batch, size);
      const tokens = noGrad(() => {
        const capture: Capture = { blocks: new Set(Array.from({ length: map.depth }, (_, i) => i)), outputs: new Map() };
        original.features(x, capture);
        return Array.from({ length: map.depth }, (_, i) => capture.outputs.get(`block.${i}`)!);
      });
      outputs.add(await readTensors(outputs.batchTerms(original, tuned, map, x, tokens)));
    });
  }
  return { outputChange: outputs.value(), ...(before && { outputSince: outputs.since() }) };
}
