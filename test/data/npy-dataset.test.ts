// NPY images and labels: the three image layouts, uint8 and float32 pixels, class names, the bound on classes
// without them, and bad inputs.
import { describe, expect, it } from "vitest";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { openNpyImages } from "../../data/npy-dataset.js";
import { writeNpy } from "../../data/npy.js";
import { pattern, useTmpDir, writeFile } from "./fixtures.js";
import { refRgb } from "./ref.js";

const tmp = useTmpDir("npy");
const N = 5;
const H = 3;
const W = 7;

describe("npy images", () => {
  const hwc = pattern(N * H * W * 3, 1); // (N, H, W, 3)
  const labels = Int32Array.from([2, 0, 1, 2, 2]);

  it("(N, H, W, 3), (N, 3, H, W) and (N, H, W) uint8 give the same RGB images", async () => {
    const chw = new Uint8Array(hwc.length);
    for (let i = 0; i < N; i++) for (let p = 0; p < H * W; p++) for (let c = 0; c < 3; c++) chw[i * 3 * H * W + c * H * W + p] = hwc[(i * H * W + p) * 3 + c];
    const gray = pattern(N * H * W, 2);
    const dirs = { hwc: join(tmp, "hwc"), chw: join(tmp, "chw"), gray: join(tmp, "gray") };
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
    await writeNpy(join(dirs.hwc, "train_images.npy"), hwc, [N, H, W, 3]);
    await writeNpy(join(dirs.chw, "test_images.npy"), chw, [N, 3, H, W]);
    await writeNpy(join(dirs.gray, "train_images.npy"), gray, [N, H, W]);
    await writeNpy(join(dirs.hwc, "train_labels.npy"), new BigInt64Array(Array.from(labels, BigInt)), [N]);
    await writeNpy(join(dirs.chw, "test_labels.npy"), labels, [N]);
    await writeNpy(join(dirs.gray, "train_labels.npy"), Uint8Array.from(labels), [N]);
    writeFile(join(dirs.hwc, "classes.txt"), "zero\none\ntwo\n");
    const a = await openNpyImages(dirs.hwc);
    const b = await openNpyImages(dirs.chw, "test");
    const g = await openNpyImages(dirs.gray);
    expect(a.classes).toEqual(["zero", "one", "two"]);
    expect(b.classes).toEqual(["0", "1", "2"]);
    expect(Array.from(a.labels)).toEqual(Array.from(labels));
    expect(a.imageSize).toEqual({ width: W, height: H });
    expect(a.identity).toMatchObject({ name: "npy", split: "train", count: N });
    for (let i = 0; i < N; i++) {
      const want = Array.from(hwc.subarray(i * H * W * 3, (i + 1) * H * W * 3));
      expect(Array.from((await a.image(i)).data)).toEqual(want);
      expect(Array.from((await b.image(i)).data)).toEqual(want);
      expect(Array.from((await g.image(i)).data)).toEqual(Array.from(refRgb(gray.subarray(i * H * W, (i + 1) * H * W), 1, H * W)));
    }
  });

  it("float32 pixels in [0, 1] are rounded to bytes; outside is an error naming the file", async () => {
    const dir = join(tmp, "float");
    mkdirSync(dir, { recursive: true });
    const f = Float32Array.from(hwc.subarray(0, H * W * 3), (v) => v / 255);
    await writeNpy(join(dir, "train_images.npy"), f, [1, H, W, 3]);
    await writeNpy(join(dir, "train_labels.npy"), Int32Array.from([0]), [1]);
    const ds = await openNpyImages(dir);
    expect(Array.from((await ds.image(0)).data)).toEqual(Array.from(hwc.subarray(0, H * W * 3)));
    f[4] = 1.5;
    await writeNpy(join(dir, "train_images.npy"), f, [1, H, W, 3]);
    await expect(openNpyImages(dir)).rejects.toThrow(`npy: expected float32 pixels in [0, 1] in ${join(dir, "train_images.npy")}, got 1.5 at element 4`);
  });

  it("without classes.txt, names a label too large to be a class rather than making that many classes", async () => {
    const dir = join(tmp, "huge-label");
    mkdirSync(dir, { recursive: true });
    await writeNpy(join(dir, "train_images.npy"), pattern(3 * 4, 3), [3, 2, 2]);
    await writeNpy(join(dir, "train_labels.npy"), Int32Array.from([0, 65535, 1]), [3]);
    expect((await openNpyImages(dir)).classes).toHaveLength(65536);
    await writeNpy(join(dir, "train_labels.npy"), Int32Array.from([0, 1e8, 65536]), [3]);
    await expect(openNpyImages(dir)).rejects.toThrow(
      `npy: expected labels below 65536 in ${join(dir, "train_labels.npy")} (the classes are 0..the largest label where no ${join(dir, "classes.txt")} names them), got 100000000 at index 1`,
    );
  });

  it("names missing files, bad shapes and mismatched labels", async () => {
    const dir = join(tmp, "bad");
    mkdirSync(dir, { recursive: true });
    await expect(openNpyImages(dir)).rejects.toThrow(`npy: expected ${join(dir, "train_images.npy")} (split train), it does not exist`);
    await writeNpy(join(dir, "train_images.npy"), pattern(2 * 4 * 5 * 6, 3), [2, 4, 5, 6]);
    await writeNpy(join(dir, "train_labels.npy"), Int32Array.from([0, 1]), [2]);
    await expect(openNpyImages(dir)).rejects.toThrow(`npy: expected images (N, H, W), (N, H, W, 1|3) or (N, 1|3, H, W) in ${join(dir, "train_images.npy")}, got (2, 4, 5, 6)`);
    await writeNpy(join(dir, "train_images.npy"), pattern(2 * 4 * 5, 3), [2, 4, 5]);
    await writeNpy(join(dir, "train_labels.npy"), Int32Array.from([0, 1, 1]), [3]);
    await expect(openNpyImages(dir)).rejects.toThrow(`npy: expected 2 labels in ${join(dir, "train_labels.npy")} to match the images, got 3`);
    await writeNpy(join(dir, "train_labels.npy"), Int32Array.from([0, 3]), [2]);
    writeFile(join(dir, "classes.txt"), "a\nb\n");
    await expect(openNpyImages(dir)).rejects.toThrow(`npy: expected labels in [0, 2), got 3 at ${join(dir, "train_labels.npy")}#1`);
    writeFile(join(dir, "classes.txt"), "a\nb\na\n");
    await expect(openNpyImages(dir)).rejects.toThrow(`npy: expected each class once in ${join(dir, "classes.txt")}, got "a" at line 1 and again at line 3`);
    await writeNpy(join(dir, "train_images.npy"), Int32Array.from({ length: 40 }), [2, 4, 5]);
    await expect(openNpyImages(dir)).rejects.toThrow(`npy: expected uint8 or float32 images in ${join(dir, "train_images.npy")}, got int32`);
  });
});
