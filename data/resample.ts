// Pillow's resize, byte for byte, in JS: what torchvision's Resize and RandomResizedCrop do to the PIL images of
// the paper's and DINO's code. The engine's other resampler is libvips (data/image.ts), which differs from Pillow
// by a few levels; data/transforms.ts chooses between them (`resampler`).
//
// Bilinear and bicubic follow libImaging/Resample.c (Pillow 9.4): separable convolution, horizontal pass first,
// each output pixel a weighted sum over the input pixels whose centres lie within the filter's support, the
// support widened by the scale factor when reducing (antialiasing); weights normalised to sum 1 per output pixel,
// then to fixed point with 22 fraction bits; sums rounded and clipped to bytes after each pass. Nearest follows
// _imaging.c's resize through ImagingScaleAffine: the input pixel under the output pixel's centre, the centres
// stepped by repeated addition as Pillow steps them. Every step below is Pillow's in its order, so that the
// float64 roundings, the truncations and the results agree exactly (test/data/resample.test.ts, against
// Pillow's output in a committed fixture).
import type { Box, RawImage } from "./image.js";

export type PilFilter = "nearest" | "bilinear" | "bicubic";

const PRECISION_BITS = 22; // 32 - 8 - 2: two bits of headroom for the negative lobes' overshoot
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

function bilinear(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

const FILTERS = { bilinear: { f: bilinear, support: 1 }, bicubic: { f: bicubic, support: 2 } };

// One axis's weights (precompute_coeffs + normalize_coeffs_8bpc): for output pixel i, the first input pixel
// first[i], the count count[i], and fixed-point weights at weights[i * taps ..].
interface Coefficients {
  taps: number;
  first: Int32Array;
  count: Int32Array;
  weights: Float64Array; // integers, held as doubles: sums of byte * weight stay exact (< 2^31 as in C)
}

function coefficients(inSize: number, in0: number, in1: number, outSize: number, filter: "bilinear" | "bicubic"): Coefficients {
  const { f, support: base } = FILTERS[filter];
  const scale = (Math.fround(in1) - Math.fround(in0)) / outSize; // Pillow's box is float32
  const filterscale = Math.max(scale, 1);
  const support = base * filterscale;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * taps);
  const k = new Float64Array(taps);
  for (let i = 0; i < outSize; i++) {
    const center = in0 + (i + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0); // C's (int) truncates toward zero
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = f((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      weights[i * taps + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    first[i] = xmin;
    count[i] = xmax;
  }
  return { taps, first, count, weights };
}

function clip8(sum: number): number {
  const v = Math.floor(sum / ONE); // C's arithmetic shift
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// One pass along rows (horizontal) or columns (vertical) of an interleaved byte image: `lines` lines of `inLen`
// pixels at stride `step` (pixels) along the line and `lineStep` between lines, into `outLen` pixels a line.
function pass(
  src: Uint8Array, srcLine: (l: number) => number, srcStep: number,
  dst: Uint8Array, dstLine: (l: number) => number, dstStep: number,
  lines: number, c: Coefficients, channels: number,
): void {
  const { taps, first, count, weights } = c;
  const outLen = first.length;
  for (let l = 0; l < lines; l++) {
    const s0 = srcLine(l);
    const d0 = dstLine(l);
    for (let i = 0; i < outLen; i++) {
      const base = s0 + first[i] * srcStep;
      const n = count[i];
      const w0 = i * taps;
      for (let ch = 0; ch < channels; ch++) {
        let sum = HALF;
        for (let x = 0; x < n; x++) sum += src[base + x * srcStep + ch] * weights[w0 + x];
        dst[d0 + i * dstStep + ch] = clip8(sum);
      }
    }
  }
}

// Pillow's Image.resize((width, height), filter) of `crop` cut out of `img` first (torchvision's resized_crop:
// crop, then resize the crop; the crop is integral, so this is Pillow's resize of the cropped image).
export function pilResize(img: RawImage, crop: Box, width: number, height: number, filter: PilFilter): RawImage {
  const C = img.channels;
  if (crop.left < 0 || crop.top < 0 || crop.width < 1 || crop.height < 1 || crop.left + crop.width > img.width || crop.top + crop.height > img.height)
    throw new Error(`resample: expected a crop inside ${img.width}x${img.height}, got ${crop.width}x${crop.height} at (${crop.left}, ${crop.top})`);
  if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 1 && height >= 1))
    throw new Error(`resample: expected an output size of positive integers, got ${width}x${height}`);
  const rowStride = img.width * C;
  const origin = crop.top * rowStride + crop.left * C;
  const out = new Uint8Array(width * height * C);
  if (width === crop.width && height === crop.height) {
    for (let y = 0; y < height; y++) out.set(img.data.subarray(origin + y * rowStride, origin + y * rowStride + width * C), y * width * C);
    return { width, height, channels: 3, data: out };
  }
  if (filter === "nearest") {
    nearest(img.data, origin, rowStride, crop, out, width, height, C);
    return { width, height, channels: 3, data: out };
  }
  const h = coefficients(crop.width, 0, crop.width, width, filter);
  const v = coefficients(crop.height, 0, crop.height, height, filter);
  // Only the rows the vertical pass reads are resampled horizontally (ImagingResampleInner's ybox).
  const yFirst = v.first[0];
  const yLast = v.first[height - 1] + v.count[height - 1];
  let src = img.data;
  let srcOrigin = origin;
  let srcStride = rowStride;
  if (width !== crop.width) {
    const rows = yLast - yFirst;
    const tmp = new Uint8Array(rows * width * C);
    pass(img.data, (l) => origin + (yFirst + l) * rowStride, C, tmp, (l) => l * width * C, C, rows, h, C);
    for (let i = 0; i < height; i++) v.first[i] -= yFirst;
    src = tmp;
    srcOrigin = 0;
    srcStride = width * C;
  }
  if (height !== crop.height) {
    pass(src, (l) => srcOrigin + l * C, srcStride, out, (l) => l * C, width * C, width, v, C);
  } else {
    for (let y = 0; y < height; y++) out.set(src.subarray(srcOrigin + y * srcStride, srcOrigin + y * srcStride + width * C), y * width * C);
  }
  return { width, height, channels: 3, data: out };
}

// ImagingScaleAffine: the source column (row) of output column (row) i is the integer part of a position stepped
// by repeated float64 addition from box[0] + scale / 2 (Pillow's COORD: negative positions give -1, never here).
function nearest(src: Uint8Array, origin: number, rowStride: number, crop: Box, out: Uint8Array, width: number, height: number, C: number): void {
  const column = new Int32Array(width);
  const xScale = Math.fround(crop.width) / width;
  let xo = xScale * 0.5;
  for (let x = 0; x < width; x++, xo += xScale) column[x] = Math.min(Math.trunc(xo), crop.width - 1);
  const yScale = Math.fround(crop.height) / height;
  let yo = yScale * 0.5;
  for (let y = 0; y < height; y++, yo += yScale) {
    const row = origin + Math.min(Math.trunc(yo), crop.height - 1) * rowStride;
    for (let x = 0; x < width; x++) for (let ch = 0; ch < C; ch++) out[(y * width + x) * C + ch] = src[row + column[x] * C + ch];
  }
}
