// A batch's images on the device. Where a loader keeps its dataset's images under a transform that draws nothing
// (data/transform-cache.ts) and has made every one of them, they are uploaded once, (N, 3·S·S), and a batch's images
// are taken from that copy on the device: rows copied where the batch's indices are consecutive (an evaluation's
// batches), gathered by its indices otherwise (a shuffled training batch). Else the host would copy every batch out
// of the cache and write it to the device: on Dawn's null backend a seventh of the default study's host time
// (docs/PERFORMANCE.md, 2026-12-05). The copy stays as long as the kept images (a study's, a pre-training's): it is
// disposed once they are collected. It is no larger than the host's, whose budget is PEFT_IMAGE_CACHE_MB, and is
// made only where one binding can hold it. Batches of a loader that keeps nothing, or made before its dataset is
// whole, are written from the host as before. Either way the values are the same bits.
import { runtime } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import type { Batch } from "../data/loader.js";
import type { KeptImages } from "../data/transform-cache.js";
import { consecutive } from "../util/typed-arrays.js";

const deviceCopies = new WeakMap<KeptImages, Tensor | null>(); // null: too large for one binding
// A copy's storage goes back to the pool when its kept images are garbage: nothing else reads it (the batches copied
// or gathered from it were encoded before, and no replay records those commands).
const released = new FinalizationRegistry<Tensor>((copy) => copy.dispose());

// The device's copy of `kept` (N, 3·S·S), made once every image is in it; undefined before then, or where it is too large.
export function deviceCopy(kept: KeptImages | undefined): Tensor | undefined {
  const n = kept?.kept.length ?? 0;
  if (!kept || n === 0 || kept.count < n) return undefined;
  let copy = deviceCopies.get(kept);
  if (copy === undefined) {
    const { limits } = runtime().gpu;
    const bytes = kept.images.byteLength;
    const fits = bytes <= limits.maxStorageBufferBindingSize && bytes <= limits.maxBufferSize;
    copy = fits ? Tensor.fromArray(kept.images, [n, kept.images.length / n]).keep() : null;
    deviceCopies.set(kept, copy);
    if (copy) released.register(kept, copy);
  }
  return copy ?? undefined;
}

// Images [start, end) of the batch, (end - start, 3, S, S), in a tensor of their own.
export function batchImages(b: Batch, size: number, start = 0, end = b.labels.length): Tensor {
  const shape = [end - start, 3, size, size];
  const copy = deviceCopy(b.kept);
  if (!copy) return Tensor.fromArray(b.images.subarray(start * 3 * size * size, end * 3 * size * size), shape);
  const indices = b.indices.subarray(start, end);
  if (!consecutive(indices)) {
    const rows = gathered(copy, indices);
    const out = rows.reshape(shape);
    rows.dispose(); // the view keeps the storage
    return out;
  }
  const out = Tensor.empty(shape);
  copyRows(copy, indices[0], out);
  return out;
}

// Writes the batch's images into `into` (B, 3, S, S), a tensor that stays (a replayed run's input).
export function writeBatchImages(b: Batch, into: Tensor): void {
  const copy = deviceCopy(b.kept);
  if (!copy) return into.write(b.images);
  if (consecutive(b.indices)) return copyRows(copy, b.indices[0], into);
  const rows = gathered(copy, b.indices);
  runtime().batch.copy(rows.buffer, 0, into.buffer, 0, rows.size * 4);
  rows.dispose();
}

// Rows first.. of the copy into `into`, as many as it holds.
function copyRows(copy: Tensor, first: number, into: Tensor): void {
  runtime().batch.copy(copy.buffer, first * copy.shape[1] * 4, into.buffer, 0, into.size * 4);
}

function gathered(copy: Tensor, indices: Int32Array): Tensor {
  const index = Tensor.fromArray(indices, [indices.length], "i32");
  const rows = ops.gatherRows(copy, index);
  index.dispose();
  return rows;
}
