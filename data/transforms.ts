// Transforms from an image to a normalised float32 CHW tensor of size x size, as the paper's code builds them with
// torchvision on PIL images:
//   train: RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3)), RandomHorizontalFlip(0.5)
//   eval:  Resize((size, size))                                   (classification evaluation)
//   knn:   Resize(resize, bicubic) of the shorter side, CenterCrop(size), with resize = floor(size * 256 / 224)
//          (DINO's k-NN evaluation: 256 then 224; 32 then 28 at size 28)
// each followed by ToTensor (bytes / 255) and Normalize(mean, std), ImageNet statistics by default.
//
// Every transform is a plan (which box to crop, what size to resize to, which box to keep, whether to flip),
// drawn from the image size and the sample's generator, then executed: the crop and resize in one libvips call
// (see image.ts for the kernels), the final box, flip and normalisation in one JS pass that writes straight into
// the batch. When the resize is the identity (Fashion-MNIST at 28 evaluated at 28) libvips is not called at all.
import { type Box, type ImageInput, type Kernel, cropResize, decodeImage, imageInfo, isEncoded } from "./image.js";
import { pilResize } from "./resample.js";
import type { Rng } from "../util/random.js";

export type TransformKind = "train" | "eval" | "knn";
export type Interpolation = "nearest" | "bilinear" | "bicubic";
export type Resampler = "libvips" | "pil";
export const RESAMPLERS: Resampler[] = ["libvips", "pil"];

const KERNELS: Record<Interpolation, Kernel> = { nearest: "nearest", bilinear: "linear", bicubic: "cubic" };
export const INTERPOLATIONS = Object.keys(KERNELS) as Interpolation[];

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

export interface TransformSpec {
  kind: TransformKind;
  size: number; // output is (3, size, size)
  interpolation?: Interpolation; // default bilinear for train and eval, bicubic for knn (torchvision defaults / DINO)
  resampler?: Resampler; // default libvips
  scale?: [number, number]; // train: area fraction range, default [0.08, 1]
  ratio?: [number, number]; // train: aspect ratio range, default [3/4, 4/3]
  flip?: boolean; // train: random horizontal flip, default true
  resize?: number; // knn: shorter side before the centre crop, default floor(size * 256 / 224)
  mean?: [number, number, number]; // default IMAGENET_MEAN
  std?: [number, number, number]; // default IMAGENET_STD
}

// Python's round(): halves go to the even neighbour. torchvision's crop arithmetic uses it.
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// torchvision's RandomResizedCrop.get_params: up to 10 tries at a box of random area and log-uniform aspect ratio
// that fits, then a centre crop clamped to the ratio range.
export function randomResizedCropBox(width: number, height: number, scale: [number, number], ratio: [number, number], rng: Rng): Box {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let tries = 0; tries < 10; tries++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(target * aspect));
    const h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1); // torchvision draws the row first
      return { left: rng.int(width - w + 1), top, width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) h = roundHalfEven(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = roundHalfEven(h * Math.max(...ratio));
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

// torchvision's Resize(int): the shorter side becomes `size`, the longer one int(size * long / short).
export function shorterSideSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.floor((size * height) / width) };
  return { width: Math.floor((size * width) / height), height: size };
}

// torchvision's CenterCrop for a crop no larger than the image.
export function centerCropBox(width: number, height: number, size: number): Box {
  if (size > width || size > height) throw new Error(`transform: expected a centre crop within ${width}x${height}, got ${size}x${size}`);
  return { left: roundHalfEven((width - size) / 2), top: roundHalfEven((height - size) / 2), width: size, height: size };
}

// What to do to one image: crop `crop` from it, resize that to width x height, keep `keep` of the result, flip.
export interface Plan {
  crop: Box;
  width: number;
  height: number;
  keep: Box; // (size x size) within the resized image
  flip: boolean;
}

export class Transform {
  readonly size: number;
  readonly random: boolean; // whether apply() draws from its generator
  private readonly lut: Float32Array; // (3, 256): normalised value of each byte per channel

  constructor(readonly spec: TransformSpec) {
    const { kind, size } = spec;
    if (!["train", "eval", "knn"].includes(kind)) throw new Error(`transform: expected kind train, eval or knn, got "${kind}"`);
    if (!Number.isInteger(size) || size < 1) throw new Error(`transform: expected an integer size >= 1, got ${size}`);
    if (spec.interpolation !== undefined && !(spec.interpolation in KERNELS))
      throw new Error(`transform: expected interpolation ${Object.keys(KERNELS).join(", ")}, got "${spec.interpolation}"`);
    if (spec.resampler !== undefined && !RESAMPLERS.includes(spec.resampler))
      throw new Error(`transform: expected resampler ${RESAMPLERS.join(" or ")}, got "${spec.resampler}"`);
    const [s0, s1] = this.scale;
    if (!(s0 > 0 && s0 <= s1 && s1 <= 1)) throw new Error(`transform: expected 0 < scale[0] <= scale[1] <= 1, got [${s0}, ${s1}]`);
    const [r0, r1] = this.ratio;
    if (!(r0 > 0 && r0 <= r1)) throw new Error(`transform: expected 0 < ratio[0] <= ratio[1], got [${r0}, ${r1}]`);
    if (kind === "knn" && !(Number.isInteger(this.resize) && this.resize >= size))
      throw new Error(`transform: expected an integer knn resize >= size ${size}, got ${this.resize}`);
    const mean = spec.mean ?? IMAGENET_MEAN;
    const std = spec.std ?? IMAGENET_STD;
    if (mean.length !== 3 || std.length !== 3 || std.some((s) => !(s > 0))) throw new Error(`transform: expected 3 means and 3 positive stds, got [${mean}] and [${std}]`);
    this.size = size;
    this.random = kind === "train";
    // Float32 arithmetic in torchvision's order: x = byte / 255; (x - mean) / std.
    this.lut = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) {
      const m = Math.fround(mean[c]);
      const s = Math.fround(std[c]);
      for (let v = 0; v < 256; v++) this.lut[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
    }
    // A std that float32 holds as 0 (1e-45) or a mean past its range (1e39) gives infinite pixels, which training
    // would take silently until the loss is NaN.
    const infinite = this.lut.findIndex((x) => !Number.isFinite(x));
    if (infinite >= 0) {
      const [c, v] = [Math.floor(infinite / 256), infinite % 256];
      throw new Error(`transform: expected a mean and std whose normalised pixels are finite in float32, got mean [${mean}] and std [${std}]: channel ${"RGB"[c]}, byte ${v} gives ${this.lut[infinite]}`);
    }
  }

  get scale(): [number, number] {
    return this.spec.scale ?? [0.08, 1];
  }

  get ratio(): [number, number] {
    return this.spec.ratio ?? [3 / 4, 4 / 3];
  }

  get resize(): number {
    return this.spec.resize ?? Math.floor((this.spec.size * 256) / 224);
  }

  get interpolation(): Interpolation {
    return this.spec.interpolation ?? (this.spec.kind === "knn" ? "bicubic" : "bilinear");
  }

  get kernel(): Kernel {
    return KERNELS[this.interpolation];
  }

  plan(width: number, height: number, rng?: Rng): Plan {
    const size = this.size;
    const full = { left: 0, top: 0, width, height };
    const square = { left: 0, top: 0, width: size, height: size };
    if (this.spec.kind === "eval") return { crop: full, width: size, height: size, keep: square, flip: false };
    if (this.spec.kind === "knn") {
      const r = shorterSideSize(width, height, this.resize);
      return { crop: full, ...r, keep: centerCropBox(r.width, r.height, size), flip: false };
    }
    if (!rng) throw new Error("transform: expected a generator for the train transform, got none");
    const crop = randomResizedCropBox(width, height, this.scale, this.ratio, rng);
    const flip = this.spec.flip !== false && rng.next() < 0.5;
    return { crop, width: size, height: size, keep: square, flip };
  }

  // Writes the (3, size, size) result for `input` into out[offset ..]. `rng` is the sample's generator.
  async apply(input: ImageInput, out: Float32Array, offset: number, rng?: Rng): Promise<void> {
    const info = await imageInfo(input);
    const p = this.plan(info.width, info.height, rng);
    if (p.width === p.crop.width && p.height === p.crop.height) {
      // Identity resize: crop and keep compose into one box of the original pixels.
      const img = isEncoded(input) ? await decodeImage(input) : input;
      const box = { left: p.crop.left + p.keep.left, top: p.crop.top + p.keep.top, width: p.keep.width, height: p.keep.height };
      this.write(img.data, img.width, box, p.flip, out, offset);
    } else if (this.spec.resampler === "pil") {
      const img = pilResize(isEncoded(input) ? await decodeImage(input) : input, p.crop, p.width, p.height, this.interpolation);
      this.write(img.data, img.width, p.keep, p.flip, out, offset);
    } else {
      const img = await cropResize(input, info, p.crop, p.width, p.height, this.kernel);
      this.write(img.data, img.width, p.keep, p.flip, out, offset);
    }
  }

  // The (3, size, size) result for `input` as a new array.
  async tensor(input: ImageInput, rng?: Rng): Promise<Float32Array> {
    const out = new Float32Array(3 * this.size * this.size);
    await this.apply(input, out, 0, rng);
    return out;
  }

  // ToTensor + Normalize of `box` of an HWC RGB image (row length `width`), flipped if asked, into CHW at offset.
  private write(rgb: Uint8Array, width: number, box: Box, flip: boolean, out: Float32Array, offset: number): void {
    const s = this.size;
    if (out.length < offset + 3 * s * s) throw new Error(`transform: expected room for (3, ${s}, ${s}) at offset ${offset}, got an array of ${out.length}`);
    const lut = this.lut;
    for (let y = 0; y < s; y++) {
      const row = (box.top + y) * width + box.left;
      for (let x = 0; x < s; x++) {
        const src = 3 * (row + (flip ? s - 1 - x : x));
        const dst = offset + y * s + x;
        out[dst] = lut[rgb[src]];
        out[dst + s * s] = lut[256 + rgb[src + 1]];
        out[dst + 2 * s * s] = lut[512 + rgb[src + 2]];
      }
    }
  }
}
