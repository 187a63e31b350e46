// train/batch-images.ts: a batch's images taken from the device's copy of a loader's kept images are the batch's
// images to the bit (gathered for a shuffled batch, copied for consecutive indices, any rows of it); the copy exists
// only once every image is kept, not past one binding, and goes back to the pool with the kept images; and a training
// run whose loaders keep their images trains as one that keeps none, bit for bit, steps replayed or run, writing no
// images from the host once they are all kept.
import { afterEach, describe, expect, it, vi } from "vitest";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { type Batch, Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { TransformCache } from "../../data/transform-cache.js";
import { Tensor } from "../../engine/tensor.js";
import { runtime } from "../../engine/runtime.js";
import { validateConfig } from "../../vit/config.js";
import { buildVit, initialiser } from "../../vit/model.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { train } from "../../train/train.js";
import { TRAIN_DEFAULTS, type TrainSettings } from "../../train/settings.js";
import { batchImages, deviceCopy, writeBatchImages } from "../../train/batch-images.js";
import { evaluateAccuracy } from "../../eval/accuracy.js";
import { useEngine } from "../helpers.js";
import { grayDataset } from "../data/fixtures.js";
import { PATTERNS, useSyntheticData } from "./synthetic.js";

useEngine();

const S = 6;
const PER = 3 * S * S;
const transform = new Transform({ kind: "eval", size: S });

async function collect(loader: Loader, epoch = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(epoch)) out.push(b);
  return out;
}

// Image uploads from the host: Tensor.fromArray and Tensor.write of (B, 3, size, size) tensors.
function countImageUploads(size: number): { count: () => number } {
  let n = 0;
  const isImages = (shape: readonly number[]) => shape.length === 4 && shape[1] === 3 && shape[2] === size && shape[3] === size;
  const fromArray = Tensor.fromArray;
  vi.spyOn(Tensor, "fromArray").mockImplementation((data, shape, dtype) => {
    if (isImages(shape)) n++;
    return fromArray.call(Tensor, data, shape, dtype);
  });
  const write = Tensor.prototype.write;
  vi.spyOn(Tensor.prototype, "write").mockImplementation(function (this: Tensor, data) {
    if (isImages(this.shape)) n++;
    return write.call(this, data);
  });
  return { count: () => n };
}

afterEach(() => vi.restoreAllMocks());

describe("batch images from the device's copy", () => {
  // 6 px: rows of 108 values, gathered as vec4s; 5 px: rows of 75, gathered as scalars.
  for (const size of [S, 5]) {
    it(`are the batch's images, gathered, copied or in part, once every image is kept (${size} px)`, async () => {
      const per = 3 * size * size;
      const t = new Transform({ kind: "eval", size });
      const ds = grayDataset(29, size, size, 3, 5);
      const cache = new TransformCache(1e6);
      const shuffled = new Loader(ds, t, { batchSize: 7, shuffle: true, seed: 3, cache });
      const kept = cache.imagesFor(ds, t)!;
      const first = await collect(shuffled, 0); // makes and keeps them
      expect(first.every((b) => b.kept === kept)).toBe(true);
      expect(kept.count).toBe(29);
      const copy = deviceCopy(kept)!;
      expect(copy.shape).toEqual([29, per]);
      expect(deviceCopy(kept)).toBe(copy); // made once
      expect(Array.from(await copy.data())).toEqual(Array.from(kept.images));
      const unshuffled = new Loader(ds, t, { batchSize: 7, cache });
      for (const b of [...(await collect(shuffled, 1)), ...(await collect(unshuffled))]) {
        const n = b.labels.length;
        const want = Array.from(b.images);
        const whole = batchImages(b, size);
        expect(whole.shape).toEqual([n, 3, size, size]);
        expect(Array.from(await whole.data())).toEqual(want);
        const [from, to] = n > 3 ? [2, n - 1] : [0, n];
        const part = batchImages(b, size, from, to);
        expect(Array.from(await part.data())).toEqual(want.slice(from * per, to * per));
        const into = Tensor.empty([n, 3, size, size]);
        writeBatchImages(b, into);
        expect(Array.from(await into.data())).toEqual(want);
        for (const x of [whole, part, into]) x.dispose();
      }
    });
  }

  it("are written from the host before every image is kept, or without a cache, and a shuffled kept batch copies its images only when read", async () => {
    const ds = grayDataset(12, S, S, 3, 6);
    const cache = new TransformCache(1e6);
    const loader = new Loader(ds, transform, { batchSize: 5, prefetch: 0, cache });
    const b = (await loader.epoch(0).next()).value as Batch; // prefetch 0: only the first batch built
    expect(b.kept!.count).toBe(5); // images 0-4 of 12 kept: no copy yet
    expect(deviceCopy(b.kept)).toBeUndefined();
    const plain = (await collect(new Loader(ds, transform, { batchSize: 5, shuffle: true, seed: 1 })))[0];
    expect(plain.kept).toBeUndefined();
    const uploads = countImageUploads(S);
    const x = batchImages(b, S);
    const y = batchImages(plain, S);
    expect(uploads.count()).toBe(2);
    expect(Array.from(await x.data())).toEqual(Array.from(b.images));
    expect(Array.from(await y.data())).toEqual(Array.from(plain.images));
    x.dispose();
    y.dispose();
    await collect(loader);
    const shuffled = (await collect(new Loader(ds, transform, { batchSize: 5, shuffle: true, seed: 1, cache })))[0];
    expect(Object.getOwnPropertyDescriptor(shuffled, "images")?.get).toBeDefined(); // a getter: copied when read
    expect(shuffled.images).toBe(shuffled.images);
    expect(Array.from(shuffled.images)).toEqual(Array.from(plain.images));
  });

  it("go back to the pool once their kept images are garbage", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const { pool } = runtime();
    const bytes = 40 * PER * 4;
    const make = async () => {
      const ds = grayDataset(40, S, S, 3, 8);
      const cache = new TransformCache(1e6);
      const [b] = await collect(new Loader(ds, transform, { batchSize: 40, cache }));
      expect(deviceCopy(b.kept)!.size * 4).toBe(bytes);
    };
    const live = pool.getStats().liveBytes;
    await make();
    expect(pool.getStats().liveBytes - live).toBeGreaterThanOrEqual(bytes);
    for (let i = 0; i < 20 && pool.getStats().liveBytes - live >= bytes; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10)); // finalizers run in a later task
    }
    expect(pool.getStats().liveBytes - live).toBeLessThan(bytes);
  });

  it("stay on the host where the kept images would pass one binding", async () => {
    const ds = grayDataset(10, S, S, 3, 7);
    const cache = new TransformCache(1e6);
    const loader = new Loader(ds, transform, { batchSize: 10, cache });
    const [b] = await collect(loader);
    const { gpu } = runtime();
    const limits = gpu.limits;
    gpu.limits = Object.create(limits, { maxStorageBufferBindingSize: { value: 10 * PER * 4 - 4 } }) as GPUSupportedLimits;
    try {
      expect(deviceCopy(b.kept)).toBeUndefined();
    } finally {
      gpu.limits = limits;
    }
    expect(deviceCopy(b.kept)).toBeUndefined(); // decided once
  });
});

describe("training from kept images", () => {
  const CONFIG = validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 2, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 });
  const data = useSyntheticData("batch-images-test-", { size: 8, perClass: { train: 7, test: 3 }, seed: 3 });
  const evalT = new Transform({ kind: "eval", size: 8 });

  async function run(dir: string, replay: boolean, cache?: TransformCache) {
    const { settings } = runtime();
    const outer = settings.replay;
    settings.replay = replay;
    const model = buildVit(CONFIG, initialiser(4));
    const trainable = applyStrategy(model, parseStrategy("full"), PATTERNS.length, 4);
    const s: TrainSettings = { ...TRAIN_DEFAULTS, steps: 14, batchSize: 5, lr: 0.05, evalEvery: 5, lossEvery: 2 };
    try {
      const r = await train({
        model,
        trainable,
        train: new Loader(data.train, evalT, { batchSize: 5, shuffle: true, seed: 2, cache }),
        settings: s,
        evaluate: () => evaluateAccuracy(model, new Loader(data.test, evalT, { batchSize: 7, cache })),
        dir: join(data.root, dir),
      });
      const params = Array.from(model.parameters(), ([name]) => name);
      const values = await Promise.all(Array.from(model.parameters(), ([, t]) => t.data()));
      model.dispose();
      return { metrics: r.metrics.map(({ imagesPerSecond: _, ...m }) => m), params, values: values.map((v) => Array.from(v)) };
    } finally {
      settings.replay = outer;
    }
  }

  for (const replay of [false, true]) {
    it(`trains as from images written by the host, bit for bit (steps ${replay ? "replayed" : "run"})`, async () => {
      const uploads = countImageUploads(8);
      const plain = await run(`plain-${replay}`, replay);
      const plainUploads = uploads.count();
      const cache = new TransformCache(1e6);
      const kept = await run(`kept-${replay}`, replay, cache);
      expect(kept.metrics).toEqual(plain.metrics);
      expect(kept.params).toEqual(plain.params);
      expect(kept.values).toEqual(plain.values);
      // 42 training images in batches of 5 (9 a pass: 14 steps reach the second), 18 test images in batches of 7
      // (3 a pass, 3 evaluations): every batch written from the host without the cache, with it only batches of the
      // first pass over each, built before the last of its images was made (prefetch builds ahead).
      expect(plainUploads).toBe(14 + 3 * 3);
      expect(uploads.count() - plainUploads).toBeLessThanOrEqual(9 + 3);
      expect(deviceCopy(cache.imagesFor(data.train, evalT))).toBeDefined();
    });
  }
});
