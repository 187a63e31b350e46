// TransformCache: a loader given one hands out the same bytes as one without, reads each image once across epochs
// and loaders, keeps nothing for random transforms or past its budget, and tells datasets and transforms apart.
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import type { Dataset } from "../../data/dataset.js";
import { ImageFolder } from "../../data/image-folder.js";
import { type Batch, Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { TransformCache } from "../../data/transform-cache.js";
import { PNG_RGB, counted, grayDataset, pattern, pngBytes, useTmpDir, writeFile } from "./fixtures.js";

const tmp = useTmpDir("transform-cache");

// 37 gray 6x5 images whose pixels depend on `seed`, under an identity that names it.
const tinyDataset = (seed = 9): Dataset => grayDataset(37, 6, 5, 4, seed);

async function collect(loader: Loader, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(epoch)) out.push(b);
  return out;
}

const view = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const bytes = (batches: Batch[]) => Buffer.concat(batches.flatMap((b) => [view(b.images), view(b.indices), view(b.labels)]));

describe("TransformCache", () => {
  const evalT = new Transform({ kind: "eval", size: 6 });
  const knnT = new Transform({ kind: "knn", size: 4 });

  it("gives batches identical to an uncached loader's, reading each image once over epochs and loaders", async () => {
    const ds = tinyDataset();
    const cache = new TransformCache(1e6);
    const { ds: seen, reads } = counted(ds);
    const options = { batchSize: 5, shuffle: true, seed: 4 };
    const cached = new Loader(seen, evalT, { ...options, cache });
    const plain = new Loader(ds, evalT, options);
    for (const epoch of [0, 1, 2]) expect(bytes(await collect(cached, epoch)).equals(bytes(await collect(plain, epoch)))).toBe(true);
    expect([...reads].sort((a, b) => a - b)).toEqual(Array.from({ length: 37 }, (_, i) => i));
    // Another loader, batch size and dataset object of the same identity share the images.
    const again = counted(tinyDataset());
    const other = new Loader(again.ds, evalT, { batchSize: 8, cache });
    expect(bytes(await collect(other, 0)).equals(bytes(await collect(new Loader(ds, evalT, { batchSize: 8 }), 0)))).toBe(true);
    expect(again.reads).toEqual([]);
    expect(cache.bytes).toBe(37 * 3 * 36 * 4);
    // Unshuffled, kept batches are views of the kept images (no copy); shuffled ones are gathered into their own.
    const kept = cache.imagesFor(ds, evalT)!.images.buffer;
    expect((await collect(other, 0)).every((b) => b.images.buffer === kept)).toBe(true);
    expect((await collect(cached, 3)).some((b) => b.images.buffer === kept)).toBe(false);
  });

  it("keeps other datasets and transforms apart", async () => {
    const cache = new TransformCache(1e6);
    const a = tinyDataset(9);
    const b = tinyDataset(10); // same name and files but another hash: other images
    for (const [ds, t] of [[a, evalT], [b, evalT], [a, knnT], [b, knnT]] as const) {
      const { ds: seen, reads } = counted(ds);
      const got = await collect(new Loader(seen, t, { batchSize: 37, cache }), 0);
      expect(reads.length).toBe(37); // nothing kept from another pair
      expect(bytes(got).equals(bytes(await collect(new Loader(ds, t, { batchSize: 37 }), 0)))).toBe(true);
    }
    expect(cache.bytes).toBe(2 * 37 * 3 * (36 + 16) * 4);
  });

  it("keeps nothing for a random transform", async () => {
    const cache = new TransformCache(1e6);
    const trainT = new Transform({ kind: "train", size: 4 });
    const { ds, reads } = counted(tinyDataset());
    const loader = new Loader(ds, trainT, { batchSize: 8, shuffle: true, cache });
    const first = await collect(loader, 0);
    expect(bytes(await collect(loader, 0)).equals(bytes(first))).toBe(true); // the same draws, made again
    expect(bytes(await collect(loader, 1)).equals(bytes(first))).toBe(false);
    expect(reads.length).toBe(3 * 37);
    expect(cache.bytes).toBe(0);
    expect(cache.imagesFor(ds, trainT)).toBeUndefined();
  });

  it("keeps a pair whole or not at all, within the budget", async () => {
    const one = 37 * 3 * 16 * 4; // a dataset under knnT
    const cache = new TransformCache(one + 100);
    const a = counted(tinyDataset(1));
    const b = counted(tinyDataset(2));
    for (let pass = 0; pass < 2; pass++) {
      await collect(new Loader(a.ds, knnT, { batchSize: 16, cache }), 0);
      await collect(new Loader(b.ds, knnT, { batchSize: 16, cache }), 0);
    }
    expect(a.reads.length).toBe(37); // kept
    expect(b.reads.length).toBe(2 * 37); // did not fit beside it
    expect(cache.bytes).toBe(one);
    expect(new TransformCache(0).imagesFor(a.ds, knnT)).toBeUndefined();
    expect(() => new TransformCache(-1)).toThrow("transform cache: expected a budget in bytes >= 0, got -1");
  });

  it("keeps no corrupt image: it is skipped again in every pass", async () => {
    const root = join(tmp, "corrupt");
    const good = pngBytes(5, 5, PNG_RGB, 8, pattern(75, 1));
    for (let i = 0; i < 5; i++) writeFile(join(root, "a", `${i}.png`), good);
    const bad = writeFile(join(root, "a", "2b.png"), good.subarray(0, good.length - 30));
    const t = new Transform({ kind: "eval", size: 3 });
    const { ds, reads } = counted(await ImageFolder.open(root));
    const loader = new Loader(ds, t, { batchSize: 4, skipCorrupt: true, cache: new TransformCache(1e6) });
    const first = await collect(loader, 0);
    const second = await collect(loader, 1);
    for (const batches of [first, second]) expect(batches.flatMap((b) => Array.from(b.indices))).toEqual([0, 1, 2, 4, 5]);
    expect(bytes(second).equals(bytes(first))).toBe(true);
    expect(reads.filter((i) => i === 3).length).toBe(2);
    expect(reads.length).toBe(6 + 1);
    expect(loader.skipped.map((s) => [s.index, s.source])).toEqual([[3, bad]]);
  });
});
