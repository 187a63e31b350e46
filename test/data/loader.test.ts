// Loader: every sample exactly once per epoch, batch contents equal to transforming each sample alone, seeded
// order and augmentation independent of prefetch and concurrency, drop-last, and skipping corrupt images.
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import type { Dataset } from "../../data/dataset.js";
import { ImageFolder } from "../../data/image-folder.js";
import { type Batch, Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { PNG_RGB, counted, grayDataset, pattern, pngBytes, useTmpDir, writeFile } from "./fixtures.js";

const tmp = useTmpDir("loader");

// 37 gray 6x5 images (prime count, non-square), labels cycling over 4 classes.
const tinyDataset = (): Dataset => grayDataset(37, 6, 5, 4, 9);

async function collect(loader: Loader, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(epoch)) out.push(b);
  return out;
}

const same = (a: Batch[], b: Batch[]) =>
  a.length === b.length &&
  a.every((x, k) => Buffer.from(x.images.buffer).equals(Buffer.from(b[k].images.buffer)) && Buffer.from(x.indices.buffer).equals(Buffer.from(b[k].indices.buffer)));

describe("Loader", () => {
  const ds = tinyDataset();
  const evalT = new Transform({ kind: "eval", size: 6 });
  const trainT = new Transform({ kind: "train", size: 4 });

  it("visits every sample once, in order without shuffle, with matching images and labels", async () => {
    const loader = new Loader(ds, evalT, { batchSize: 8 });
    const batches = await collect(loader, 0);
    expect(batches.map((b) => b.labels.length)).toEqual([8, 8, 8, 8, 5]);
    expect(loader.batchesPerEpoch).toBe(5);
    const all = batches.flatMap((b) => Array.from(b.indices));
    expect(all).toEqual(Array.from({ length: 37 }, (_, i) => i));
    for (const b of batches) {
      expect(b.images.length).toBe(b.labels.length * 3 * 6 * 6);
      for (let k = 0; k < b.labels.length; k++) {
        const i = b.indices[k];
        expect(b.labels[k]).toBe(ds.labels[i]);
        const alone = await evalT.tensor(await ds.read(i));
        expect(Buffer.from(b.images.buffer, k * 108 * 4, 108 * 4).equals(Buffer.from(alone.buffer))).toBe(true);
      }
    }
  });

  it("drop-last leaves out the partial batch", async () => {
    const loader = new Loader(ds, evalT, { batchSize: 8, dropLast: true, shuffle: true, seed: 3 });
    const batches = await collect(loader, 0);
    expect(loader.batchesPerEpoch).toBe(4);
    expect(batches.map((b) => b.labels.length)).toEqual([8, 8, 8, 8]);
    expect(new Set(batches.flatMap((b) => Array.from(b.indices))).size).toBe(32);
  });

  it("shuffles by seed and epoch, each epoch a permutation", async () => {
    const a = new Loader(ds, evalT, { batchSize: 37, shuffle: true, seed: 1 });
    const b = new Loader(ds, evalT, { batchSize: 37, shuffle: true, seed: 2 });
    const o0 = Array.from(a.order(0));
    expect([...o0].sort((x, y) => x - y)).toEqual(Array.from({ length: 37 }, (_, i) => i));
    expect(o0).not.toEqual(Array.from({ length: 37 }, (_, i) => i));
    expect(Array.from(a.order(0))).toEqual(o0);
    expect(Array.from(a.order(1))).not.toEqual(o0);
    expect(Array.from(b.order(0))).not.toEqual(o0);
  });

  it("the same seed gives identical augmented batches whatever the prefetch and concurrency", async () => {
    const ref = await collect(new Loader(ds, trainT, { batchSize: 5, shuffle: true, seed: 11, prefetch: 0, concurrency: 1 }), 2);
    const wide = await collect(new Loader(ds, trainT, { batchSize: 5, shuffle: true, seed: 11, prefetch: 4, concurrency: 16 }), 2);
    expect(same(ref, wide)).toBe(true);
    const otherEpoch = await collect(new Loader(ds, trainT, { batchSize: 5, shuffle: true, seed: 11 }), 3);
    const otherSeed = await collect(new Loader(ds, trainT, { batchSize: 5, shuffle: true, seed: 12 }), 2);
    expect(same(ref, otherEpoch)).toBe(false);
    expect(same(ref, otherSeed)).toBe(false);
    // A sample's augmentation depends on (seed, epoch, index), not on its batch: unshuffled, same draws.
    const plain = await collect(new Loader(ds, trainT, { batchSize: 37, seed: 11 }), 2);
    for (const b of ref)
      for (let k = 0; k < b.labels.length; k++) {
        const i = b.indices[k];
        expect(Buffer.from(b.images.buffer, k * 48 * 4, 48 * 4).equals(Buffer.from(plain[0].images.buffer, i * 48 * 4, 48 * 4))).toBe(true);
      }
  });

  it("prefetches exactly `prefetch` batches while the caller holds one", async () => {
    for (const prefetch of [0, 2]) {
      const { ds: counting, reads } = counted(ds);
      const it = new Loader(counting, evalT, { batchSize: 4, prefetch }).epoch(0);
      await it.next();
      await new Promise((r) => setTimeout(r, 50)); // time for any further batch to start reading
      expect(reads.length).toBe(4 * (1 + prefetch));
      await it.return(undefined);
    }
  });

  it("an early break leaves nothing running that fails later", async () => {
    const loader = new Loader(ds, evalT, { batchSize: 4, prefetch: 3 });
    for await (const b of loader.epoch(0)) {
      expect(b.labels.length).toBe(4);
      break;
    }
  });

  it("rejects bad options", () => {
    expect(() => new Loader(ds, evalT, { batchSize: 0 })).toThrow("loader: expected a batch size >= 1, got 0");
    expect(() => new Loader(ds, evalT, { batchSize: 2, prefetch: -1 })).toThrow("loader: expected prefetch >= 0, got -1");
    expect(() => new Loader(ds, evalT, { batchSize: 2, seed: 0.5 })).toThrow("loader: expected an integer seed, got 0.5");
  });
});

describe("Loader over an image folder with a corrupt file", () => {
  const root = join(tmp, "corrupt");
  const good = pngBytes(5, 5, PNG_RGB, 8, pattern(75, 1));
  for (let i = 0; i < 5; i++) writeFile(join(root, "a", `${i}.png`), good);
  const bad = writeFile(join(root, "a", "2b.png"), good.subarray(0, good.length - 30));
  const t = new Transform({ kind: "eval", size: 3 });

  it("fails naming the file by default", async () => {
    const ds = await ImageFolder.open(root);
    await expect(collect(new Loader(ds, t, { batchSize: 4 }), 0)).rejects.toThrow(`image: expected a readable JPEG or PNG image in ${bad}, got`);
  });

  it("with skipCorrupt, shrinks the batch and records the file once across epochs", async () => {
    const ds = await ImageFolder.open(root);
    const loader = new Loader(ds, t, { batchSize: 4, skipCorrupt: true });
    for (const epoch of [0, 1]) {
      const batches = await collect(loader, epoch);
      expect(batches.map((b) => b.labels.length)).toEqual([3, 2]);
      expect(batches.flatMap((b) => Array.from(b.indices))).toEqual([0, 1, 2, 4, 5]); // index 3 is 2b.png
      expect(batches[0].images.length).toBe(3 * 27);
    }
    expect(loader.skipped.map((s) => [s.index, s.source])).toEqual([[3, bad]]);
  });
});
