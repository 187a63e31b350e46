// A function of image batches (a model's CLS features, its head's logits) over every batch of a loader, read back
// together: full batches replayed (eval/replayed-forward.ts), the others run, each batch's output kept on the device
// and read with the others once READ_GROUP_BYTES of them wait (`groupBytes`), or at the end (engine/tensor.ts
// readTensors). A read per batch waited for the device as often as there are batches: ~1,300 of the default study's
// ~2,000 waits, its evaluations' and k-NN's.
import { runtime } from "../engine/runtime.js";
import { READ_GROUP_BYTES, Tensor, readTensors, tidy } from "../engine/tensor.js";
import { noGrad } from "../autograd/tape.js";
import type { Loader } from "../data/loader.js";
import { batchImages, writeBatchImages } from "../train/batch-images.js";
import type { ReplayedForward } from "./replayed-forward.js";
import { joined } from "../util/typed-arrays.js";

export interface LoaderOutputs {
  values: Float32Array; // (images, width): the batches' outputs end to end
  labels: Int32Array; // (images)
  width: number; // output values per image
}

// `replayed` (of the same function, or none: every batch run) may serve several loaders of one batch shape.
export async function loaderOutputs(
  loader: Loader,
  f: (images: Tensor) => Tensor,
  replayed: ReplayedForward | undefined,
  groupBytes = READ_GROUP_BYTES,
): Promise<LoaderOutputs> {
  const size = loader.transform.size;
  const read: Float32Array[] = [];
  const labels: Int32Array[] = [];
  let pending: Tensor[] = [];
  let pendingBytes = 0;
  const readPending = async () => {
    read.push(...(await readTensors(pending, groupBytes)));
    for (const t of pending) t.dispose();
    pending = [];
    pendingBytes = 0;
  };
  try {
    for await (const b of loader.epoch(0)) {
      const n = b.labels.length;
      const shape = [n, 3, size, size];
      let out: Tensor;
      if (replayed && n === loader.batchSize) {
        const y = await replayed.call((into) => writeBatchImages(b, into), shape); // overwritten by the next call: copied out
        out = Tensor.empty(y.shape);
        runtime().batch.copy(y.buffer, 0, out.buffer, 0, y.size * 4);
      } else {
        out = tidy(() => noGrad(() => f(batchImages(b, size))));
      }
      pending.push(out);
      pendingBytes += out.size * 4;
      labels.push(b.labels);
      if (pendingBytes >= groupBytes) await readPending();
    }
    await readPending();
  } finally {
    for (const t of pending) t.dispose();
  }
  const all = joined(labels, Int32Array);
  const values = joined(read, Float32Array);
  return { values, labels: all, width: all.length > 0 ? values.length / all.length : 0 };
}
