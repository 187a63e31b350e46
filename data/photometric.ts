// Photometric augmentations of DINO's DataAugmentationDINO (main_dino.py), on a (3, S, S) CHW float image with values
// in [0, 1] (ToTensor's scale, before Normalize), in place, drawing from the sample's generator:
//
//   ColorJitter(b, c, s, h) with probability p   the four adjustments in a random order (torchvision's
//                                                get_params: a permutation, then each factor), each clamped to [0, 1]:
//     brightness f in [1-b, 1+b]:  x = f x
//     contrast   f in [1-c, 1+c]:  x = m + f (x - m), m = mean of the image's luma (0.299 R + 0.587 G + 0.114 B)
//     saturation f in [1-s, 1+s]:  x = l + f (x - l), l = the pixel's luma
//     hue        d in [-h, h]:     the HSV hue rotated by d turns
//   RandomGrayscale(p)             x = luma in every channel
//   GaussianBlur(p, 0.1..2)        a separable Gaussian of sigma ~ U(0.1, 2) pixels, kernel radius ceil(3 sigma),
//                                  borders clamped (PIL's radius is its sigma)
//   Solarization(p)                x = 1 - x where x >= 0.5 (PIL's threshold 128)
//
// The arithmetic is in floats, where PIL rounds to bytes after each operation: values agree to about 1/255.
// For grayscale data (every channel equal) only brightness and contrast make sense: saturation, hue and grayscale
// leave a gray image as it is, and the kind "grayscale" skips their draws.
import type { Rng } from "../util/random.js";

export interface ColorJitter {
  p: number; // probability of applying the jitter at all
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number; // in turns, <= 0.5
}

export interface Photometric {
  jitter?: ColorJitter;
  grayscale?: number; // probability
  blur?: number; // probability
  blurSigma?: [number, number]; // default [0.1, 2], DINO's
  solarize?: number; // probability
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

function luma(x: Float32Array, plane: number, i: number): number {
  return 0.299 * x[i] + 0.587 * x[plane + i] + 0.114 * x[2 * plane + i];
}

export function brightness(x: Float32Array, f: number): void {
  for (let i = 0; i < x.length; i++) x[i] = clamp01(f * x[i]);
}

export function contrast(x: Float32Array, plane: number, f: number): void {
  let m = 0;
  for (let i = 0; i < plane; i++) m += luma(x, plane, i);
  m /= plane;
  for (let i = 0; i < x.length; i++) x[i] = clamp01(m + f * (x[i] - m));
}

export function saturation(x: Float32Array, plane: number, f: number): void {
  for (let i = 0; i < plane; i++) {
    const l = luma(x, plane, i);
    for (let c = 0; c < 3; c++) x[c * plane + i] = clamp01(l + f * (x[c * plane + i] - l));
  }
}

export function hue(x: Float32Array, plane: number, d: number): void {
  for (let i = 0; i < plane; i++) {
    const r = x[i];
    const g = x[plane + i];
    const b = x[2 * plane + i];
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    const delta = max - min;
    if (delta === 0) continue; // gray: no hue to turn
    let h = max === r ? (g - b) / delta : max === g ? 2 + (b - r) / delta : 4 + (r - g) / delta;
    h = (((h / 6 + d) % 1) + 1) % 1; // turns
    const s = delta / max;
    const v = max;
    const k = (n: number) => (n + h * 6) % 6;
    const f = (n: number) => v - v * s * Math.max(0, Math.min(k(n), 4 - k(n), 1));
    x[i] = f(5);
    x[plane + i] = f(3);
    x[2 * plane + i] = f(1);
  }
}

export function toGray(x: Float32Array, plane: number): void {
  for (let i = 0; i < plane; i++) {
    const l = luma(x, plane, i);
    x[i] = x[plane + i] = x[2 * plane + i] = l;
  }
}

// 1-D Gaussian weights of sigma, radius ceil(3 sigma), summing to 1.
export function gaussianKernel(sigma: number): Float64Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const w = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let k = -r; k <= r; k++) sum += w[k + r] = Math.exp(-(k * k) / (2 * sigma * sigma));
  for (let k = 0; k < w.length; k++) w[k] /= sum;
  return w;
}

export function blur(x: Float32Array, size: number, sigma: number): void {
  const w = gaussianKernel(sigma);
  const r = (w.length - 1) / 2;
  const plane = size * size;
  const tmp = new Float64Array(plane);
  const at = (v: number) => (v < 0 ? 0 : v >= size ? size - 1 : v);
  for (let c = 0; c < 3; c++) {
    const o = c * plane;
    for (let y = 0; y < size; y++)
      for (let xx = 0; xx < size; xx++) {
        let s = 0;
        for (let k = -r; k <= r; k++) s += w[k + r] * x[o + y * size + at(xx + k)];
        tmp[y * size + xx] = s;
      }
    for (let y = 0; y < size; y++)
      for (let xx = 0; xx < size; xx++) {
        let s = 0;
        for (let k = -r; k <= r; k++) s += w[k + r] * tmp[at(y + k) * size + xx];
        x[o + y * size + xx] = s;
      }
  }
}

export function solarize(x: Float32Array): void {
  for (let i = 0; i < x.length; i++) if (x[i] >= 0.5) x[i] = 1 - x[i];
}

// Applies `p` to the (3, size, size) image x in place. `gray`: the data is grayscale (colour-only steps skipped,
// without their draws).
export function applyPhotometric(x: Float32Array, size: number, p: Photometric, rng: Rng, gray: boolean): void {
  const plane = size * size;
  if (x.length !== 3 * plane) throw new Error(`photometric: expected an image of 3 x ${size} x ${size} values, got ${x.length}`);
  const j = p.jitter;
  if (j && rng.next() < j.p) {
    const order = rng.permutation(4);
    for (const which of order) {
      if (which === 0 && j.brightness > 0) brightness(x, rng.uniform(Math.max(0, 1 - j.brightness), 1 + j.brightness));
      if (which === 1 && j.contrast > 0) contrast(x, plane, rng.uniform(Math.max(0, 1 - j.contrast), 1 + j.contrast));
      if (gray) continue;
      if (which === 2 && j.saturation > 0) saturation(x, plane, rng.uniform(Math.max(0, 1 - j.saturation), 1 + j.saturation));
      if (which === 3 && j.hue > 0) hue(x, plane, rng.uniform(-j.hue, j.hue));
    }
  }
  if (!gray && p.grayscale && rng.next() < p.grayscale) toGray(x, plane);
  if (p.blur && rng.next() < p.blur) {
    const [lo, hi] = p.blurSigma ?? [0.1, 2];
    blur(x, size, rng.uniform(lo, hi));
  }
  if (p.solarize && rng.next() < p.solarize) solarize(x);
}
