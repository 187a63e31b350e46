// data/multi-crop.ts: view-major shapes, crops of the right sizes, normalisation (each crop of a constant image is
// one value), seeded determinism across epochs and skips, the loader's epoch order, grayscale data kept
// gray, the pil resampler and grid sampling reaching the crops, and checked settings.
import { describe, expect, it } from "vitest";
import { ArrayDataset } from "../../data/dataset.js";
import { MultiCropLoader, type MultiCropSpec } from "../../data/multi-crop.js";
import { epochOrder } from "../../data/loader.js";
import { pattern } from "./fixtures.js";

const W = 12;
const N = 10;

function dataset(channels: 1 | 3, constant?: number): ArrayDataset {
  const per = W * W * channels;
  const pixels = constant === undefined ? pattern(N * per, 3) : new Uint8Array(N * per).fill(constant);
  const identity = { name: "test", root: "/", split: "train", count: N, hash: "0" };
  return new ArrayDataset(identity, ["a", "b"], Int32Array.from({ length: N }, (_, i) => i % 2), pixels, { offset: 0, stride: per, width: W, height: W, channels, planar: false }, (i) => `#${i}`);
}

const SPEC: MultiCropSpec = { globalSize: 8, localSize: 4, localCrops: 3, globalScale: [0.4, 1], localScale: [0.05, 0.4], color: "rgb" };

async function first(loader: MultiCropLoader, epoch: number, skip = 0) {
  for await (const b of loader.epoch(epoch, skip)) return b;
  throw new Error("no batch");
}

describe("MultiCropLoader", () => {
  it("yields view-major global and local crops of the epoch's images", async () => {
    const loader = new MultiCropLoader(dataset(3), SPEC, 4, 1);
    expect(loader.batchesPerEpoch).toBe(2);
    const batches = [];
    for await (const b of loader.epoch(0)) batches.push(b);
    expect(batches.length).toBe(2);
    expect(batches[0].globals.length).toBe(2 * 4 * 3 * 8 * 8);
    expect(batches[0].locals.length).toBe(3 * 4 * 3 * 4 * 4);
    expect([...batches[0].indices, ...batches[1].indices]).toEqual([...epochOrder(N, true, 1, 0).subarray(0, 8)]);
  });

  it("normalises: a constant image gives the constant in every crop", async () => {
    const b = await first(new MultiCropLoader(dataset(3, 128), { ...SPEC, color: "grayscale", mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, 2, 0), 0);
    // Brightness and contrast may move the constant; every value of a crop stays equal.
    for (const [all, size] of [[b.globals, 8], [b.locals, 4]] as const) {
      for (let v = 0; v < all.length; v += 3 * size * size) {
        const crop = all.subarray(v, v + 3 * size * size);
        expect(crop.every((x) => Math.abs(x - crop[0]) < 1e-5)).toBe(true);
        expect(crop[0]).toBeGreaterThanOrEqual(-2);
        expect(crop[0]).toBeLessThanOrEqual(2);
      }
    }
  });

  it("is seeded per image and epoch, and a skip resumes the epoch exactly", async () => {
    const loader = new MultiCropLoader(dataset(3), SPEC, 4, 5);
    const a = await first(loader, 3);
    const again = await first(new MultiCropLoader(dataset(3), SPEC, 4, 5), 3);
    expect(again.globals).toEqual(a.globals);
    expect(again.locals).toEqual(a.locals);
    expect((await first(loader, 4)).globals).not.toEqual(a.globals);
    const batches = [];
    for await (const b of loader.epoch(3)) batches.push(b);
    const skipped = await first(loader, 3, 1);
    expect(skipped.globals).toEqual(batches[1].globals);
    expect(skipped.indices).toEqual(batches[1].indices);
  });

  it("resampler pil: the same boxes, flips and photometric draws, the pixels from Pillow's resize", async () => {
    const spec: MultiCropSpec = { ...SPEC, color: "grayscale", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
    const vips = await first(new MultiCropLoader(dataset(1), spec, 4, 2), 0);
    const pil = await first(new MultiCropLoader(dataset(1), { ...spec, resampler: "pil" }, 4, 2), 0);
    const again = await first(new MultiCropLoader(dataset(1), { ...spec, resampler: "pil" }, 4, 2), 0);
    expect(again.globals).toEqual(pil.globals);
    expect(pil.globals).not.toEqual(vips.globals);
    // libvips and Pillow differ by a few levels of 255 per pixel (data/image.ts), not in what was drawn.
    for (const [a, b] of [[pil.globals, vips.globals], [pil.locals, vips.locals]]) {
      let diff = 0;
      for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
      expect(diff / a.length).toBeLessThan(0.1);
    }
  });

  it("sampling grid: continuous boxes sampled bilinearly (data/grid-crop.ts), seeded, a constant image constant", async () => {
    const spec: MultiCropSpec = { ...SPEC, sampling: "grid", mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], color: "grayscale" };
    const a = await first(new MultiCropLoader(dataset(1), spec, 4, 3), 1);
    expect((await first(new MultiCropLoader(dataset(1), spec, 4, 3), 1)).locals).toEqual(a.locals);
    expect(a.globals).not.toEqual((await first(new MultiCropLoader(dataset(1), { ...spec, sampling: "torchvision" }, 4, 3), 1)).globals);
    const flat = await first(new MultiCropLoader(dataset(3, 200), spec, 2, 0), 0);
    for (const [all, size] of [[flat.globals, 8], [flat.locals, 4]] as const)
      for (let v = 0; v < all.length; v += 3 * size * size) {
        const crop = all.subarray(v, v + 3 * size * size);
        expect(crop.every((x) => Math.abs(x - crop[0]) < 1e-5)).toBe(true);
      }
  });

  it("keeps grayscale data gray", async () => {
    const b = await first(new MultiCropLoader(dataset(1), { ...SPEC, color: "grayscale", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, 4, 2), 0);
    const P = 8 * 8;
    for (let v = 0; v < b.globals.length; v += 3 * P) {
      expect(b.globals.subarray(v, v + P)).toEqual(b.globals.subarray(v + P, v + 2 * P));
      expect(b.globals.subarray(v, v + P)).toEqual(b.globals.subarray(v + 2 * P, v + 3 * P));
    }
  });

  it("refuses bad settings, naming them", () => {
    expect(() => new MultiCropLoader(dataset(3), { ...SPEC, localScale: [0.5, 0.4] }, 2, 0)).toThrow("multi-crop: expected 0 < localScale[0] <= localScale[1] <= 1, got [0.5, 0.4]");
    expect(() => new MultiCropLoader(dataset(3), { ...SPEC, localCrops: -1 }, 2, 0)).toThrow("multi-crop: expected localCrops to be an integer >= 0, got -1");
    expect(() => new MultiCropLoader(dataset(3), { ...SPEC, color: "cmyk" as "rgb" }, 2, 0)).toThrow('multi-crop: expected color "rgb" or "grayscale", got "cmyk"');
    expect(() => new MultiCropLoader(dataset(3), SPEC, 11, 0)).toThrow("multi-crop: expected at least one batch of 11 images, got 10 images");
    expect(() => new MultiCropLoader(dataset(3), { ...SPEC, sampling: "affine" as "grid" }, 2, 0)).toThrow('multi-crop: expected sampling torchvision or grid, got "affine"');
    expect(() => new MultiCropLoader(dataset(3), { ...SPEC, sampling: "grid", resampler: "pil" }, 2, 0)).toThrow('multi-crop: expected no interpolation or resampler with sampling "grid" (it samples bilinearly itself), got pil');
  });
});
