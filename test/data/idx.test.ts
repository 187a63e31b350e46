// IDX reading and the MNIST-style datasets: pixel values (gray -> 3 equal channels), labels, gzip and raw files,
// every bad-input error, and the real Fashion-MNIST when the Debian package is installed.
import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { gunzipChunk, openIdx, readIdx } from "../../data/idx.js";
import { classCounts } from "../../data/summary.js";
import { gzip, idxBytes, pattern, useTmpDir, writeFile } from "./fixtures.js";
import { refRgb } from "./ref.js";

const tmp = useTmpDir("idx");
const N = 7; // prime image count, 5x3 (prime, non-square) images
const H = 5;
const W = 3;
const pixels = pattern(N * H * W, 1);
const labels = Uint8Array.from([3, 0, 9, 3, 1, 7, 0]);

function writeSet(dir: string, gz: boolean, prefix = "train"): void {
  const enc = (b: Uint8Array) => (gz ? gzip(b) : b);
  const ext = gz ? ".gz" : "";
  writeFile(join(dir, `${prefix}-images-idx3-ubyte${ext}`), enc(idxBytes([N, H, W], pixels)));
  writeFile(join(dir, `${prefix}-labels-idx1-ubyte${ext}`), enc(idxBytes([N], labels)));
}

describe("readIdx", () => {
  it("reads shape and values of raw and gzipped files alike", async () => {
    const raw = writeFile(join(tmp, "a.idx"), idxBytes([N, H, W], pixels));
    const gz = writeFile(join(tmp, "a.idx.gz"), gzip(idxBytes([N, H, W], pixels)));
    for (const p of [raw, gz]) {
      const arr = await readIdx(p);
      expect(arr.shape).toEqual([N, H, W]);
      expect(Array.from(arr.data)).toEqual(Array.from(pixels));
    }
  });

  it("gunzips a file of several MiB in one chunk of the size its trailer states, and reads it whole", async () => {
    const big = pattern(3 * 1024 * 1024 + 5, 3); // a prime-ish count of bytes past 3 MiB
    const file = gzip(idxBytes([big.length], big));
    expect(gunzipChunk(file)).toBe(4 + 4 + big.length + 1);
    const arr = await readIdx(writeFile(join(tmp, "big.idx.gz"), file));
    expect(arr.shape).toEqual([big.length]);
    expect(Buffer.from(arr.data).equals(Buffer.from(big))).toBe(true);
  });

  it("gunzips in 1 MiB chunks where the trailer's size is implausible or small", () => {
    const small = gzip(idxBytes([N], labels));
    expect(gunzipChunk(small)).toBe(1 << 20);
    const lying = Uint8Array.from(small);
    new DataView(lying.buffer).setUint32(lying.length - 4, 0xffffffff, true); // 4 GiB from a few dozen bytes
    expect(gunzipChunk(lying)).toBe(1 << 20);
    expect(gunzipChunk(new Uint8Array(10))).toBe(1 << 20);
  });

  it("rejects a wrong magic, naming the file and the bytes found", async () => {
    const p = writeFile(join(tmp, "bad-magic"), idxBytes([N], labels, [0, 1, 8, 1]));
    await expect(readIdx(p)).rejects.toThrow(`idx: expected magic 00 00 08 0N (N = 1..4 dimensions) at the start of ${p}, got 00 01 08 01`);
    const q = writeFile(join(tmp, "int-type"), idxBytes([N], labels, [0, 0, 0x0c, 1]));
    await expect(readIdx(q)).rejects.toThrow(`idx: expected type 0x08 (unsigned bytes) in ${q}, got 0x0c`);
    const e = writeFile(join(tmp, "empty"), new Uint8Array(0));
    await expect(readIdx(e)).rejects.toThrow("got an empty file");
  });

  it("rejects truncated data, a truncated header and a truncated gzip stream", async () => {
    const full = idxBytes([N, H, W], pixels);
    const p = writeFile(join(tmp, "short"), full.subarray(0, full.length - 4));
    await expect(readIdx(p)).rejects.toThrow(`idx: expected ${N * H * W} bytes of values for shape (7, 5, 3) in ${p}, got ${N * H * W - 4} (truncated)`);
    const h = writeFile(join(tmp, "short-header"), full.subarray(0, 9));
    await expect(readIdx(h)).rejects.toThrow(`idx: expected a 16-byte header in ${h}, got 9 bytes (truncated)`);
    const zipped = gzip(full);
    const z = writeFile(join(tmp, "short.gz"), zipped.subarray(0, zipped.length - 10));
    await expect(readIdx(z)).rejects.toThrow(`idx: expected a complete gzip stream in ${z}`);
  });
});

describe("openIdx", () => {
  for (const gz of [false, true]) {
    it(`fashion-mnist from ${gz ? "gzipped" : "raw"} files: labels, classes, RGB pixels`, async () => {
      const dir = join(tmp, gz ? "gz" : "raw");
      writeSet(dir, gz);
      const ds = await openIdx("fashion-mnist", dir, "train");
      expect(ds.length).toBe(N);
      expect(Array.from(ds.labels)).toEqual(Array.from(labels));
      expect(ds.classes[9]).toBe("Ankle boot");
      expect(ds.imageSize).toEqual({ width: W, height: H });
      expect(ds.identity).toMatchObject({ name: "fashion-mnist", root: dir, split: "train", count: N });
      expect(ds.identity.hash).toMatch(/^[0-9a-f]{16}$/);
      for (const i of [0, 4, N - 1]) {
        const img = await ds.image(i);
        expect([img.width, img.height, img.channels]).toEqual([W, H, 3]);
        expect(Array.from(img.data)).toEqual(Array.from(refRgb(pixels.subarray(i * H * W, (i + 1) * H * W), 1, H * W)));
      }
      expect(ds.source(2)).toBe(join(dir, `train-images-idx3-ubyte${gz ? ".gz" : ""}#2`));
      expect(classCounts(ds)).toEqual([2, 1, 0, 2, 0, 0, 0, 1, 0, 1]);
    });
  }

  it("names the missing file, the unknown split and mismatched labels", async () => {
    const dir = join(tmp, "partial");
    writeFile(join(dir, "train-images-idx3-ubyte"), idxBytes([N, H, W], pixels));
    await expect(openIdx("mnist", dir, "train")).rejects.toThrow(`mnist: expected train-labels-idx1-ubyte or train-labels-idx1-ubyte.gz in ${dir}, found neither`);
    await expect(openIdx("mnist", dir, "val")).rejects.toThrow('mnist: expected split train or test, got "val"');
    writeFile(join(dir, "train-labels-idx1-ubyte"), idxBytes([N - 1], labels.subarray(1)));
    await expect(openIdx("mnist", dir, "train")).rejects.toThrow(`mnist: expected labels (7) in ${join(dir, "train-labels-idx1-ubyte")} to match the images, got (6)`);
    writeFile(join(dir, "train-labels-idx1-ubyte"), idxBytes([N], Uint8Array.from([0, 1, 2, 10, 0, 0, 0])));
    await expect(openIdx("mnist", dir, "train")).rejects.toThrow(`mnist: expected labels in [0, 10), got 10 at ${join(dir, "train-labels-idx1-ubyte")}#3`);
  });

  it("names a file of no images and one of images without pixels, as the NPY reader does", async () => {
    const dir = join(tmp, "no-pixels");
    const images = join(dir, "train-images-idx3-ubyte");
    writeFile(images, idxBytes([0, H, W], new Uint8Array(0)));
    writeFile(join(dir, "train-labels-idx1-ubyte"), idxBytes([0], new Uint8Array(0)));
    await expect(openIdx("mnist", dir)).rejects.toThrow(`mnist: expected at least one image in ${images}, got 0 images (0, 5, 3)`);
    writeFile(images, idxBytes([N, 0, 0], new Uint8Array(0)));
    writeFile(join(dir, "train-labels-idx1-ubyte"), idxBytes([N], labels));
    await expect(openIdx("mnist", dir)).rejects.toThrow(`mnist: expected images of at least 1x1 in ${images}, got (7, 0, 0)`);
  });

  it("the identity hash follows the files", async () => {
    const a = join(tmp, "ha");
    const b = join(tmp, "hb");
    writeSet(a, true);
    writeSet(b, true);
    writeSet(b, true, "t10k");
    const [da, db, dt] = await Promise.all([openIdx("fashion-mnist", a), openIdx("fashion-mnist", b), openIdx("fashion-mnist", b, "test")]);
    expect(da.identity.hash).toBe(db.identity.hash); // same file names and sizes
    expect(dt.identity.hash).not.toBe(db.identity.hash); // t10k-* names
  });
});

const FASHION = "/usr/share/datasets/fashion-mnist";
const HAVE_FASHION = existsSync(join(FASHION, "train-images-idx3-ubyte.gz"));
describe(`Fashion-MNIST from the Debian package dataset-fashion-mnist${HAVE_FASHION ? "" : ` (skipped: ${FASHION} not installed)`}`, () => {
  it.skipIf(!HAVE_FASHION)("60000 train and 10000 test images, 6000 and 1000 per class, 28x28", async () => {
    const [train, test] = await Promise.all([openIdx("fashion-mnist", FASHION, "train"), openIdx("fashion-mnist", FASHION, "test")]);
    expect(train.length).toBe(60000);
    expect(test.length).toBe(10000);
    expect(classCounts(train)).toEqual(new Array(10).fill(6000));
    expect(classCounts(test)).toEqual(new Array(10).fill(1000));
    expect(train.imageSize).toEqual({ width: 28, height: 28 });
    // The first training image is an ankle boot (label 9); its border is background.
    expect(train.labels[0]).toBe(9);
    const img = await train.image(0);
    expect(img.data[0]).toBe(0);
  });
});
