// Batches for training and evaluation: seeded shuffling, NCHW float32 images with int32 labels, an optional
// dropped last partial batch, and prefetch: while the caller works on batch k (encoding GPU work), batches
// k+1 .. k+prefetch are being read, decoded and transformed. Decoding and resizing run inside libvips on libuv's
// thread pool (UV_THREADPOOL_SIZE, 4 by default), so they overlap the caller without worker threads; the JS part
// per sample (planning, normalising into the batch) is a single pass over the output pixels.
//
// With a cache (data/transform-cache.ts), a transform that draws nothing makes each image once: later passes copy it,
// and only when the batch's images are read: a consumer that keeps its own copy of the cache (train/batch-images.ts,
// on the device) takes rows `indices` of that instead.
//
// Determinism: the order of epoch e is a permutation drawn from (seed, e); sample i's augmentation in epoch e is
// drawn from its own generator seeded by (seed, e, i). Neither depends on prefetch, concurrency or timing.
import type { Dataset, SkippedImage } from "./dataset.js";
import { CorruptImageError } from "./image.js";
import { mapLimit } from "./concurrency.js";
import { Rng } from "../util/random.js";
import { consecutive } from "../util/typed-arrays.js";
import type { Transform } from "./transforms.js";
import type { KeptImages, TransformCache } from "./transform-cache.js";

export interface Batch {
  images: Float32Array; // (B, 3, S, S), NCHW; read-only: it may be a view of a cache's images
  labels: Int32Array; // (B)
  indices: Int32Array; // (B) dataset indices
  kept?: KeptImages; // the loader's kept images of its dataset under its transform, where it has a cache that keeps them
}

// Batches prepared ahead of the one being consumed, where the caller does not say.
export const DEFAULT_PREFETCH = 2;

export interface LoaderOptions {
  batchSize: number;
  shuffle?: boolean; // default false: dataset order
  seed?: number; // shuffling and augmentation; default 0
  dropLast?: boolean; // drop the last partial batch; default false
  prefetch?: number; // batches prepared ahead of the one being consumed; default DEFAULT_PREFETCH
  concurrency?: number; // samples of one batch in flight at once; default 16
  skipCorrupt?: boolean; // leave undecodable images out of their batch (recorded in `skipped`) instead of failing
  cache?: TransformCache; // keeps the transformed images of a transform that draws nothing, for the next pass
}

// Generator streams: the first seed word keeps the shuffle and the per-sample draws independent.
const ORDER_STREAM = 1;
export const SAMPLE_STREAM = 2; // per-sample generators are Rng([SAMPLE_STREAM, seed, epoch, index])

// Dataset indices in the order epoch `epoch` visits them (data/multi-crop.ts visits them alike).
export function epochOrder(length: number, shuffle: boolean, seed: number, epoch: number): Int32Array {
  if (!shuffle) return Int32Array.from({ length }, (_, i) => i);
  return new Rng([ORDER_STREAM, seed, epoch]).permutation(length);
}

export class Loader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly concurrency: number;
  readonly skipCorrupt: boolean;
  private readonly skips = new Map<number, SkippedImage>();
  private readonly kept: KeptImages | undefined; // this dataset's images under this transform, from opts.cache

  constructor(
    readonly dataset: Dataset,
    readonly transform: Transform,
    opts: LoaderOptions,
  ) {
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.seed = opts.seed ?? 0;
    this.dropLast = opts.dropLast ?? false;
    this.prefetch = opts.prefetch ?? DEFAULT_PREFETCH;
    this.concurrency = opts.concurrency ?? 16;
    this.skipCorrupt = opts.skipCorrupt ?? false;
    this.kept = opts.cache?.imagesFor(dataset, transform);
    if (!(Number.isInteger(this.batchSize) && this.batchSize >= 1)) throw new Error(`loader: expected a batch size >= 1, got ${opts.batchSize}`);
    if (!(Number.isInteger(this.prefetch) && this.prefetch >= 0)) throw new Error(`loader: expected prefetch >= 0, got ${opts.prefetch}`);
    if (!(Number.isInteger(this.concurrency) && this.concurrency >= 1)) throw new Error(`loader: expected concurrency >= 1, got ${opts.concurrency}`);
    if (!Number.isSafeInteger(this.seed)) throw new Error(`loader: expected an integer seed, got ${opts.seed}`);
  }

  get batchesPerEpoch(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  // Corrupt images left out so far, each once however many epochs met it.
  get skipped(): SkippedImage[] {
    return [...this.skips.values()].sort((a, b) => a.index - b.index);
  }

  // Dataset indices in the order epoch `epoch` visits them.
  order(epoch: number): Int32Array {
    return epochOrder(this.dataset.length, this.shuffle, this.seed, epoch);
  }

  async *epoch(epoch = 0): AsyncGenerator<Batch> {
    const order = this.order(epoch);
    const count = this.batchesPerEpoch;
    const queue: Promise<Batch>[] = [];
    let next = 0;
    for (;;) {
      // The batch to hand out next plus `prefetch` more: after the shift below, k+1 .. k+prefetch stay in flight
      // while the caller works on batch k.
      for (; next < count && queue.length <= this.prefetch; next++) {
        const p = this.build(order.subarray(next * this.batchSize, (next + 1) * this.batchSize), epoch);
        p.catch(() => undefined); // observed when awaited below; this only stops an early break leaving it unhandled
        queue.push(p);
      }
      if (queue.length === 0) return;
      const batch = await queue.shift()!;
      if (batch.labels.length > 0) yield batch; // empty only when every image in it was skipped
    }
  }

  // A batch whose images are all kept: a view of the cache where they are consecutive (an evaluation's batches,
  // unshuffled, after the first pass), else copied out of it when first read.
  private keptBatch(kept: KeptImages, indices: Int32Array, per: number): Batch | undefined {
    if (indices.length === 0 || !indices.every((i) => kept.kept[i])) return undefined;
    const labels = Int32Array.from(indices, (i) => this.dataset.labels[i]);
    const first = indices[0];
    if (consecutive(indices)) {
      return { images: kept.images.subarray(first * per, (first + indices.length) * per), labels, indices: Int32Array.from(indices), kept };
    }
    let images: Float32Array | undefined;
    const copy = () => {
      const out = new Float32Array(indices.length * per);
      indices.forEach((i, k) => out.set(kept.images.subarray(i * per, (i + 1) * per), k * per));
      return out;
    };
    return {
      get images() {
        return (images ??= copy());
      },
      labels,
      indices: Int32Array.from(indices),
      kept,
    };
  }

  private async build(indices: Int32Array, epoch: number): Promise<Batch> {
    const s = this.transform.size;
    const per = 3 * s * s;
    const b = indices.length;
    const whole = this.kept && this.keptBatch(this.kept, indices, per);
    if (whole) return whole;
    const images = new Float32Array(b * per);
    const ok = new Array<boolean>(b).fill(true);
    // Kept images are copied; the others are made, then kept.
    const make: number[] = [];
    for (let k = 0; k < b; k++) {
      const i = indices[k];
      if (this.kept?.kept[i]) images.set(this.kept.images.subarray(i * per, (i + 1) * per), k * per);
      else make.push(k);
    }
    await mapLimit(make.length, this.concurrency, async (j) => {
      const k = make[j];
      const i = indices[k];
      const rng = this.transform.random ? new Rng([SAMPLE_STREAM, this.seed, epoch, i]) : undefined;
      try {
        await this.transform.apply(await this.dataset.read(i), images, k * per, rng);
      } catch (err) {
        if (!(this.skipCorrupt && err instanceof CorruptImageError)) throw err;
        this.skips.set(i, { index: i, source: this.dataset.source(i), message: err.message });
        ok[k] = false;
        return;
      }
      if (this.kept && !this.kept.kept[i]) {
        this.kept.images.set(images.subarray(k * per, (k + 1) * per), i * per);
        this.kept.kept[i] = 1;
        this.kept.count++;
      }
    });
    const labels = Int32Array.from(indices, (i) => this.dataset.labels[i]);
    if (ok.every((x) => x)) return { images, labels, indices: Int32Array.from(indices), kept: this.kept };
    // Compact the batch over the skipped samples.
    const keep = ok.flatMap((x, k) => (x ? [k] : []));
    const packed = new Float32Array(keep.length * per);
    keep.forEach((k, j) => packed.set(images.subarray(k * per, (k + 1) * per), j * per));
    return { images: packed, labels: Int32Array.from(keep, (k) => labels[k]), indices: Int32Array.from(keep, (k) => indices[k]), kept: this.kept };
  }
}
