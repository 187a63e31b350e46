// DINO's multi-crop batches (main_dino.py DataAugmentationDINO): for every image, 2 global crops and L local crops,
//
//   global 0:  RandomResizedCrop(S, globalScale), flip, photometric, blur p = 1.0
//   global 1:  RandomResizedCrop(S, globalScale), flip, photometric, blur p = 0.1, solarisation p = 0.2
//   local i:   RandomResizedCrop(s, localScale), flip, photometric, blur p = 0.5
//   photometric (data/photometric.ts): colour jitter (0.4, 0.4, 0.2, 0.1) with p = 0.8 and grayscale p = 0.2 for
//   colour data; for grayscale data brightness and contrast (0.4, 0.4) with p = 0.8, and no blur or solarisation
//   (a blur of sigma up to 2 px wipes out a 28 px digit or garment; `blur: true` keeps DINO's)
// then Normalize(mean, std). Crops are drawn by data/transforms.ts (torchvision's RandomResizedCrop, bicubic as DINO),
// at scale [0, 1] values, then augmented and normalised here. With resampler "pil" every crop is Pillow's bytes.
// With sampling "grid" the crops are continuous boxes sampled bilinearly instead (data/grid-crop.ts), as
// scripts/dino-torch-reference.py cuts them on a GPU: a choice for comparing with those runs, not DINO's.
//
// Batches are view-major, as DINO's student sees them: globals (2, B, 3, S, S) and locals (L, B, 3, s, s).
// Determinism as data/loader.ts: the order of epoch e is the loader's permutation of (seed, e); image i's crops in
// epoch e come from one generator seeded by (seed, e, i), drawn crop by crop in the order above.
import type { Dataset } from "./dataset.js";
import { mapLimit } from "./concurrency.js";
import { epochOrder, SAMPLE_STREAM } from "./loader.js";
import { type Photometric, applyPhotometric } from "./photometric.js";
import { drawGridBox, gridCrop } from "./grid-crop.js";
import { decodeImage, isEncoded } from "./image.js";
import { IMAGENET_MEAN, IMAGENET_STD, type Interpolation, type Resampler, Transform } from "./transforms.js";
import { Rng } from "../util/random.js";

export interface MultiCropSpec {
  globalSize: number; // S
  localSize: number; // s
  localCrops: number; // L, 0 for none
  globalScale: [number, number]; // area fraction, DINO (0.4, 1)
  localScale: [number, number]; // DINO (0.05, 0.4)
  color: "rgb" | "grayscale"; // which photometric augmentations apply
  blur?: boolean; // grayscale data: DINO's blur and solarisation too (default false)
  interpolation?: Interpolation; // default bicubic, as DINO
  resampler?: Resampler; // default libvips; "pil": Pillow's resize exactly (data/resample.ts), as DINO's crops
  sampling?: CropSampling; // default torchvision (DINO's); grid: data/grid-crop.ts (see the header)
  mean?: [number, number, number]; // default ImageNet's
  std?: [number, number, number];
}

export type CropSampling = "torchvision" | "grid";
export const CROP_SAMPLINGS: CropSampling[] = ["torchvision", "grid"];

export const MULTI_CROP_DEFAULTS = { globalScale: [0.4, 1] as [number, number], localScale: [0.05, 0.4] as [number, number] };

export interface MultiCropBatch {
  globals: Float32Array; // (2, B, 3, S, S)
  locals: Float32Array; // (L, B, 3, s, s)
  indices: Int32Array; // (B) dataset indices
}

const JITTER_RGB = { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 };

// The photometric augmentation of each crop: globals 0 and 1, then locals.
function photometricFor(spec: MultiCropSpec): [Photometric, Photometric, Photometric] {
  if (spec.color === "grayscale" && !spec.blur) {
    const p: Photometric = { jitter: { ...JITTER_RGB, saturation: 0, hue: 0 } };
    return [p, p, p];
  }
  const base: Photometric = { jitter: JITTER_RGB, grayscale: 0.2 };
  return [
    { ...base, blur: 1 },
    { ...base, blur: 0.1, solarize: 0.2 },
    { ...base, blur: 0.5 },
  ];
}

export function checkMultiCrop(s: MultiCropSpec): void {
  const int = (v: number, what: string, min: number) => {
    if (!(Number.isInteger(v) && v >= min)) throw new Error(`multi-crop: expected ${what} to be an integer >= ${min}, got ${v}`);
  };
  int(s.globalSize, "globalSize", 1);
  int(s.localSize, "localSize", 1);
  int(s.localCrops, "localCrops", 0);
  for (const [what, [a, b]] of [["globalScale", s.globalScale], ["localScale", s.localScale]] as const) {
    if (!(a > 0 && a <= b && b <= 1)) throw new Error(`multi-crop: expected 0 < ${what}[0] <= ${what}[1] <= 1, got [${a}, ${b}]`);
  }
  if (s.color !== "rgb" && s.color !== "grayscale") throw new Error(`multi-crop: expected color "rgb" or "grayscale", got "${s.color}"`);
  if (s.sampling !== undefined && !CROP_SAMPLINGS.includes(s.sampling)) throw new Error(`multi-crop: expected sampling ${CROP_SAMPLINGS.join(" or ")}, got "${s.sampling}"`);
  if (s.sampling === "grid" && (s.interpolation !== undefined || s.resampler !== undefined))
    throw new Error(`multi-crop: expected no interpolation or resampler with sampling "grid" (it samples bilinearly itself), got ${s.interpolation ?? ""}${s.interpolation && s.resampler ? " and " : ""}${s.resampler ?? ""}`);
}

export class MultiCropLoader {
  private readonly crops: Transform[]; // global 0, global 1, local (at [0, 1] scale)
  private readonly photometric: [Photometric, Photometric, Photometric];
  private readonly norm: { mean: number[]; std: number[] };

  constructor(
    readonly dataset: Dataset,
    readonly spec: MultiCropSpec,
    readonly batchSize: number,
    readonly seed: number,
    private readonly concurrency = 16,
  ) {
    checkMultiCrop(spec);
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`multi-crop: expected a batch size >= 1, got ${batchSize}`);
    if (dataset.length < batchSize) throw new Error(`multi-crop: expected at least one batch of ${batchSize} images, got ${dataset.length} images`);
    const crop = (size: number, scale: [number, number]) =>
      new Transform({ kind: "train", size, scale, interpolation: spec.interpolation ?? "bicubic", resampler: spec.resampler, mean: [0, 0, 0], std: [1, 1, 1] });
    const global = crop(spec.globalSize, spec.globalScale);
    this.crops = [global, global, crop(spec.localSize, spec.localScale)];
    this.photometric = photometricFor(spec);
    this.norm = { mean: spec.mean ?? IMAGENET_MEAN, std: spec.std ?? IMAGENET_STD };
  }

  // Full batches only (DINO's drop_last).
  get batchesPerEpoch(): number {
    return Math.floor(this.dataset.length / this.batchSize);
  }

  async *epoch(epoch: number, skip = 0): AsyncGenerator<MultiCropBatch> {
    const order = epochOrder(this.dataset.length, true, this.seed, epoch);
    let next = this.build(order, epoch, skip);
    for (let b = skip; b < this.batchesPerEpoch; b++) {
      const batch = await next;
      if (b + 1 < this.batchesPerEpoch) {
        next = this.build(order, epoch, b + 1); // prepared while the caller encodes this one
        next.catch(() => undefined);
      }
      yield batch;
    }
  }

  private async build(order: Int32Array, epoch: number, b: number): Promise<MultiCropBatch> {
    const { globalSize: S, localSize: s, localCrops: L } = this.spec;
    const B = this.batchSize;
    const indices = order.slice(b * B, (b + 1) * B);
    const globals = new Float32Array(2 * B * 3 * S * S);
    const locals = new Float32Array(L * B * 3 * s * s);
    const gray = this.spec.color === "grayscale";
    const grid = this.spec.sampling === "grid";
    await mapLimit(B, this.concurrency, async (k) => {
      const i = indices[k];
      const rng = new Rng([SAMPLE_STREAM, this.seed, epoch, i]);
      const input = await this.dataset.read(i);
      // grid samples pixels itself: an encoded image is decoded once for all its crops.
      const pixels = grid ? (isEncoded(input) ? await decodeImage(input) : input) : undefined;
      for (let v = 0; v < 2 + L; v++) {
        const size = v < 2 ? S : s;
        const out = v < 2 ? globals : locals;
        const offset = ((v < 2 ? v : v - 2) * B + k) * 3 * size * size;
        const view = out.subarray(offset, offset + 3 * size * size);
        if (pixels) gridCrop(pixels, drawGridBox(v < 2 ? this.spec.globalScale : this.spec.localScale, rng), size, view, 0);
        else await this.crops[Math.min(v, 2)].apply(input, view, 0, rng);
        applyPhotometric(view, size, this.photometric[Math.min(v, 2)], rng, gray);
        this.normalize(view, size);
      }
    });
    return { globals, locals, indices };
  }

  private normalize(x: Float32Array, size: number): void {
    const plane = size * size;
    for (let c = 0; c < 3; c++) {
      const m = this.norm.mean[c];
      const sd = this.norm.std[c];
      for (let i = c * plane; i < (c + 1) * plane; i++) x[i] = (x[i] - m) / sd;
    }
  }
}
