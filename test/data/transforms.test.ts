// Transforms: torchvision's crop arithmetic (Python rounding, Resize(int), CenterCrop, RandomResizedCrop's
// retries and fallback), and exact output values (tolerance 1e-6 abs + 1e-6 rel against float64 references,
// covering float32 rounding) wherever the resize is the identity or the image constant: ToTensor + Normalize,
// crops, flips, encoded input; plus seeded determinism of the random transform, and the "pil" resampler's crops
// being data/resample.ts's (which test/data/resample.test.ts checks against Pillow byte for byte).
import { describe, expect, it } from "vitest";
import { Rng } from "../../util/random.js";
import { type RawImage, rgbFromBytes } from "../../data/image.js";
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  Transform,
  type TransformSpec,
  centerCropBox,
  randomResizedCropBox,
  roundHalfEven,
  shorterSideSize,
} from "../../data/transforms.js";
import { pilResize } from "../../data/resample.js";
import { expectClose } from "../helpers.js";
import { PNG_GRAY, PNG_RGB, pattern, pngBytes } from "./fixtures.js";
import { refCropNormalize, refRgb } from "./ref.js";

const TOL = { atol: 1e-6, rtol: 1e-6 };
const raw = (width: number, height: number, seed: number): RawImage => ({ width, height, channels: 3, data: pattern(width * height * 3, seed) });

describe("crop arithmetic", () => {
  it("rounds halves to even like Python", () => {
    expect([0.5, 1.5, 2.5, 3.5, -1.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 4, -2, 2, 3]);
  });

  it("Resize(int) sets the shorter side and truncates the longer", () => {
    expect(shorterSideSize(500, 375, 256)).toEqual({ width: 341, height: 256 });
    expect(shorterSideSize(375, 500, 256)).toEqual({ width: 256, height: 341 });
    expect(shorterSideSize(28, 28, 32)).toEqual({ width: 32, height: 32 });
    expect(shorterSideSize(37, 20, 36)).toEqual({ width: 66, height: 36 });
    expect(shorterSideSize(1, 1031, 7)).toEqual({ width: 7, height: 7217 });
  });

  it("CenterCrop offsets round half to even", () => {
    expect(centerCropBox(37, 36, 32)).toEqual({ left: 2, top: 2, width: 32, height: 32 }); // round(2.5) = 2
    expect(centerCropBox(35, 32, 32)).toEqual({ left: 2, top: 0, width: 32, height: 32 }); // round(1.5) = 2
    expect(centerCropBox(256, 341, 224)).toEqual({ left: 16, top: 58, width: 224, height: 224 }); // round(58.5) = 58
    expect(() => centerCropBox(20, 40, 32)).toThrow("transform: expected a centre crop within 20x40, got 32x32");
  });

  it("RandomResizedCrop falls back to the centre crop clamped to the ratio range", () => {
    const rng = new Rng([1]);
    // Every try needs w = round(sqrt(100 * 2)) = 14 > 10: the fallback keeps the width and takes h = 10 / 2.
    expect(randomResizedCropBox(10, 10, [1, 1], [2, 2], rng)).toEqual({ left: 0, top: 2, width: 10, height: 5 });
    expect(randomResizedCropBox(10, 10, [1, 1], [0.5, 0.5], rng)).toEqual({ left: 2, top: 0, width: 5, height: 10 });
    // Area 35 at ratio 1 gives 6x6, too tall for 7x5; the image ratio 1.4 > 1 so h = 5, w = 5, centred.
    expect(randomResizedCropBox(7, 5, [1, 1], [1, 1], rng)).toEqual({ left: 1, top: 0, width: 5, height: 5 });
    // Within the ratio range the fallback is the whole image.
    expect(randomResizedCropBox(7, 5, [1, 1], [0.5, 2], new Rng([2]))).toMatchObject({ width: 7, height: 5 });
    // A 1x1 image can only give itself.
    expect(randomResizedCropBox(1, 1, [0.08, 1], [3 / 4, 4 / 3], rng)).toEqual({ left: 0, top: 0, width: 1, height: 1 });
  });

  it("RandomResizedCrop boxes lie inside the image with area and ratio in range (up to rounding)", () => {
    const rng = new Rng([7]);
    const [W, H] = [400, 300];
    let small = 0;
    const bad: string[] = [];
    for (let t = 0; t < 2000; t++) {
      const b = randomResizedCropBox(W, H, [0.08, 1], [3 / 4, 4 / 3], rng);
      const frac = (b.width * b.height) / (W * H);
      const ratio = b.width / b.height;
      const inside = b.left >= 0 && b.top >= 0 && b.left + b.width <= W && b.top + b.height <= H;
      if (!inside || frac < 0.08 * 0.97 || frac > 1 || ratio < (3 / 4) * 0.97 || ratio > (4 / 3) * 1.03) bad.push(JSON.stringify(b));
      if (frac < 0.3) small++;
    }
    expect(bad).toEqual([]);
    // Area uniform in [0.08, 1] (boxes that do not fit are redrawn): about a quarter fall below 0.3.
    expect(small / 2000).toBeGreaterThan(0.15);
    expect(small / 2000).toBeLessThan(0.35);
  });
});

describe("Transform values", () => {
  it("eval at the image's own size is ToTensor + Normalize, exactly", async () => {
    const img = raw(17, 17, 1);
    const mean: [number, number, number] = [0.5, 0.5, 0.5];
    const t = new Transform({ kind: "eval", size: 17, mean, std: mean });
    expectClose("eval 17", await t.tensor(img), refCropNormalize(img, { left: 0, top: 0, width: 17, height: 17 }, false, mean, mean), TOL);
    const one = raw(1, 1, 2);
    const t1 = new Transform({ kind: "eval", size: 1 });
    expectClose("eval 1x1", await t1.tensor(one), refCropNormalize(one, { left: 0, top: 0, width: 1, height: 1 }, false, IMAGENET_MEAN, IMAGENET_STD), TOL);
  });

  it("knn: shorter side already at the resize size, then the centre crop", async () => {
    const img = raw(23, 19, 3); // Resize(19) keeps 23x19; CenterCrop(15) at left round(4) = 4, top round(2) = 2
    const t = new Transform({ kind: "knn", size: 15, resize: 19 });
    expect(t.plan(23, 19)).toEqual({ crop: { left: 0, top: 0, width: 23, height: 19 }, width: 23, height: 19, keep: { left: 4, top: 2, width: 15, height: 15 }, flip: false });
    expectClose("knn crop", await t.tensor(img), refCropNormalize(img, { left: 4, top: 2, width: 15, height: 15 }, false, IMAGENET_MEAN, IMAGENET_STD), TOL);
  });

  it("knn defaults: 256 -> 224, 32 -> 28, bicubic", () => {
    expect(new Transform({ kind: "knn", size: 224 }).resize).toBe(256);
    expect(new Transform({ kind: "knn", size: 28 }).resize).toBe(32);
    expect(new Transform({ kind: "knn", size: 32 }).resize).toBe(36);
    expect(new Transform({ kind: "knn", size: 224 }).kernel).toBe("cubic");
    expect(new Transform({ kind: "eval", size: 224 }).kernel).toBe("linear");
    expect(new Transform({ kind: "train", size: 224, interpolation: "bicubic" }).kernel).toBe("cubic");
  });

  it("train: a crop at the output size is cut and flipped exactly as planned", async () => {
    // scale 0.36 of 20x20 at ratio 1 is always a 12x12 box: no resize, only the random position and flip.
    const img = raw(20, 20, 4);
    const t = new Transform({ kind: "train", size: 12, scale: [0.36, 0.36], ratio: [1, 1] });
    const flips = new Set<boolean>();
    const lefts = new Set<number>();
    for (let s = 0; s < 24; s++) {
      const plan = t.plan(20, 20, new Rng([s]));
      flips.add(plan.flip);
      lefts.add(plan.crop.left);
      expect([plan.crop.width, plan.crop.height, plan.width]).toEqual([12, 12, 12]);
      const want = refCropNormalize(img, plan.crop, plan.flip, IMAGENET_MEAN, IMAGENET_STD);
      expectClose(`train seed ${s}`, await t.tensor(img, new Rng([s])), want, TOL);
    }
    expect([...flips].sort()).toEqual([false, true]);
    expect(lefts.size).toBeGreaterThan(3);
    const noFlip = new Transform({ kind: "train", size: 12, scale: [0.36, 0.36], ratio: [1, 1], flip: false });
    for (let s = 0; s < 24; s++) expect(noFlip.plan(20, 20, new Rng([s])).flip).toBe(false);
  });

  it("train: the same generator seed gives the same tensor, another seed another", async () => {
    const img = raw(40, 31, 5);
    const t = new Transform({ kind: "train", size: 16 });
    const a = await t.tensor(img, new Rng([1, 2, 3]));
    const b = await t.tensor(img, new Rng([1, 2, 3]));
    const c = await t.tensor(img, new Rng([1, 2, 4]));
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
    await expect(t.tensor(img)).rejects.toThrow("transform: expected a generator for the train transform, got none");
  });

  it("resampler pil: the planned crop resized by Pillow's arithmetic (data/resample.ts), then kept, flipped, normalised", async () => {
    const img = raw(37, 29, 8);
    for (const [kind, interpolation] of [["train", "bicubic"], ["train", "bilinear"], ["knn", "bicubic"], ["eval", "nearest"]] as const)
      for (let s = 0; s < 6; s++) {
        const t = new Transform({ kind, size: 13, interpolation, resampler: "pil" });
        const plan = t.plan(37, 29, new Rng([s]));
        const resized = pilResize(img, plan.crop, plan.width, plan.height, interpolation);
        const want = refCropNormalize(resized, plan.keep, plan.flip, IMAGENET_MEAN, IMAGENET_STD);
        expectClose(`${kind} ${interpolation} seed ${s}`, await t.tensor(img, new Rng([s])), want, TOL);
      }
    // Encoded input: decoded, then the same resize.
    const rgb = pattern(9 * 9 * 3, 7);
    const t = new Transform({ kind: "eval", size: 4, resampler: "pil" });
    expectClose("png", await t.tensor({ path: "c.png", bytes: pngBytes(9, 9, PNG_RGB, 8, rgb) }), await t.tensor(rgbFromBytes(rgb, 0, 9, 9, 3, false)), TOL);
  });

  it("a constant image gives constant channels for every kind, size, interpolation and resampler", async () => {
    const rgb = [12, 130, 250];
    const img: RawImage = { width: 1031, height: 3, channels: 3, data: Uint8Array.from({ length: 1031 * 3 * 3 }, (_, k) => rgb[k % 3]) };
    const want = rgb.map((v, c) => (v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
    for (const kind of ["train", "eval", "knn"] as const)
      for (const interpolation of ["nearest", "bilinear", "bicubic"] as const)
        for (const size of [1, 3, 28]) {
          for (const resampler of ["libvips", "pil"] as const) {
            const spec: TransformSpec = { kind, size, interpolation, resampler };
            const out = await new Transform(spec).tensor(img, new Rng([size]));
            const ref = Array.from({ length: out.length }, (_, k) => want[Math.floor(k / (size * size))]);
            expectClose(`${kind} ${interpolation} ${resampler} ${size}`, out, ref, TOL);
          }
        }
  });

  it("encoded PNG input (gray and RGB) goes through the same path", async () => {
    const gray = pattern(9 * 9, 6);
    const rgb = pattern(9 * 9 * 3, 7);
    const t = new Transform({ kind: "eval", size: 9 });
    const box = { left: 0, top: 0, width: 9, height: 9 };
    const g = await t.tensor({ path: "g.png", bytes: pngBytes(9, 9, PNG_GRAY, 8, gray) });
    expectClose("gray png", g, refCropNormalize({ width: 9, height: 9, data: refRgb(gray, 1, 81) }, box, false, IMAGENET_MEAN, IMAGENET_STD), TOL);
    const c = await t.tensor({ path: "c.png", bytes: pngBytes(9, 9, PNG_RGB, 8, rgb) });
    expectClose("rgb png", c, refCropNormalize({ width: 9, height: 9, data: rgb }, box, false, IMAGENET_MEAN, IMAGENET_STD), TOL);
    // Resized encoded input equals resizing the decoded pixels.
    const small = new Transform({ kind: "eval", size: 4 });
    expectClose("png resized", await small.tensor({ path: "c.png", bytes: pngBytes(9, 9, PNG_RGB, 8, rgb) }), await small.tensor(rgbFromBytes(rgb, 0, 9, 9, 3, false)), TOL);
  });

  it("rejects bad specs and a short output array", async () => {
    expect(() => new Transform({ kind: "eval", size: 0 })).toThrow("transform: expected an integer size >= 1, got 0");
    expect(() => new Transform({ kind: "test" as "eval", size: 8 })).toThrow('transform: expected kind train, eval or knn, got "test"');
    expect(() => new Transform({ kind: "train", size: 8, scale: [0.5, 0.2] })).toThrow("transform: expected 0 < scale[0] <= scale[1] <= 1, got [0.5, 0.2]");
    expect(() => new Transform({ kind: "knn", size: 8, resize: 7 })).toThrow("transform: expected an integer knn resize >= size 8, got 7");
    expect(() => new Transform({ kind: "eval", size: 8, std: [1, 0, 1] })).toThrow("transform: expected 3 means and 3 positive stds");
    // Positive, yet float32 holds 1e-45 as 0 and 1e39 as Infinity: every pixel would be infinite.
    expect(() => new Transform({ kind: "eval", size: 8, std: [1e-45, 1, 1] })).toThrow(
      "transform: expected a mean and std whose normalised pixels are finite in float32, got mean [0.485,0.456,0.406] and std [1e-45,1,1]: channel R, byte 0 gives -Infinity",
    );
    expect(() => new Transform({ kind: "eval", size: 8, mean: [0, 1e39, 0], std: [1, 1, 1] })).toThrow("channel G, byte 0 gives -Infinity");
    expect(() => new Transform({ kind: "eval", size: 8, mean: [0, 0, 0], std: [1e-38, 1e-38, 1e-38] })).not.toThrow(); // 1e38 at most: finite
    expect(() => new Transform({ kind: "eval", size: 8, interpolation: "area" as "nearest" })).toThrow('transform: expected interpolation nearest, bilinear, bicubic, got "area"');
    expect(() => new Transform({ kind: "eval", size: 8, resampler: "pillow" as "pil" })).toThrow('transform: expected resampler libvips or pil, got "pillow"');
    await expect(new Transform({ kind: "eval", size: 4 }).apply(raw(4, 4, 1), new Float32Array(47), 0)).rejects.toThrow(
      "transform: expected room for (3, 4, 4) at offset 0, got an array of 47",
    );
  });
});
