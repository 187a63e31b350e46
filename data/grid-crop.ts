// Random resized crops as continuous boxes sampled bilinearly: what scripts/dino-torch-reference.py's `rrc` cuts
// on a GPU with affine_grid and grid_sample, the alternative to torchvision's RandomResizedCrop (integer boxes,
// each resized by PIL or libvips; data/transforms.ts) that DINO's multi-crop uses. At 28 px the two differ in
// more than arithmetic: an integer box of a few pixels takes one of few sizes and positions, a continuous one any.
//
// The box, in grid_sample's normalised coordinates ([-1, 1] across the image, pixel centres at (2i + 1) / W - 1):
//   area fraction a ~ U(scale), aspect r = exp(U(log 3/4, log 4/3)), half-extents w = min(sqrt(a r), 1) and
//   h = min(sqrt(a / r), 1) (a box that does not fit is clamped, not redrawn), centre cx ~ U(-1, 1) (1 - w) and
//   cy ~ U(-1, 1) (1 - h), flipped horizontally with p = 0.5 (the x half-extent negated).
// Output pixel (i, j) of a size x size crop samples the image at x = w (2j + 1) / size - w + cx (flipped: -w ...),
// y likewise, mapped to pixels as grid_sample does without align_corners, ((x + 1) W - 1) / 2, clamped to the image
// (padding "border"), bilinearly, from the bytes / 255. Values stay floats in [0, 1]: no rounding to bytes.
import type { RawImage } from "./image.js";
import type { Rng } from "../util/random.js";

export interface GridBox {
  w: number; // half-extents in normalised coordinates, (0, 1]
  h: number;
  cx: number; // centre
  cy: number;
  flip: boolean;
}

// Drawn from `rng` in this order: area, log-aspect, cx, cy, flip.
export function drawGridBox(scale: [number, number], rng: Rng): GridBox {
  const area = rng.uniform(scale[0], scale[1]);
  const aspect = Math.exp(rng.uniform(Math.log(3 / 4), Math.log(4 / 3)));
  const w = Math.min(Math.sqrt(area * aspect), 1);
  const h = Math.min(Math.sqrt(area / aspect), 1);
  const cx = (rng.next() * 2 - 1) * (1 - w);
  const cy = (rng.next() * 2 - 1) * (1 - h);
  return { w, h, cx, cy, flip: rng.next() < 0.5 };
}

// Where output pixel i of `size` samples along an axis of `extent` pixels: (first input pixel, its weight), the
// second pixel being first + 1 with weight 1 - that (clamped to the last pixel).
function taps(size: number, half: number, centre: number, extent: number): { lo: Int32Array; hi: Int32Array; w: Float64Array } {
  const lo = new Int32Array(size);
  const hi = new Int32Array(size);
  const w = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const g = half * ((2 * i + 1) / size - 1) + centre;
    const x = Math.min(Math.max(((g + 1) * extent - 1) / 2, 0), extent - 1);
    const x0 = Math.floor(x);
    lo[i] = x0;
    hi[i] = Math.min(x0 + 1, extent - 1);
    w[i] = 1 - (x - x0);
  }
  return { lo, hi, w };
}

// Writes the (3, size, size) crop of `img` in [0, 1] into out[offset ..].
export function gridCrop(img: RawImage, box: GridBox, size: number, out: Float32Array, offset: number): void {
  if (out.length < offset + 3 * size * size) throw new Error(`grid crop: expected room for (3, ${size}, ${size}) at offset ${offset}, got an array of ${out.length}`);
  const xs = taps(size, box.flip ? -box.w : box.w, box.cx, img.width);
  const ys = taps(size, box.h, box.cy, img.height);
  const plane = size * size;
  const stride = img.width * 3;
  const px = img.data;
  for (let i = 0; i < size; i++) {
    const r0 = ys.lo[i] * stride;
    const r1 = ys.hi[i] * stride;
    const wy = ys.w[i];
    for (let j = 0; j < size; j++) {
      const c0 = xs.lo[j] * 3;
      const c1 = xs.hi[j] * 3;
      const wx = xs.w[j];
      for (let ch = 0; ch < 3; ch++) {
        const top = wx * px[r0 + c0 + ch] + (1 - wx) * px[r0 + c1 + ch];
        const bottom = wx * px[r1 + c0 + ch] + (1 - wx) * px[r1 + c1 + ch];
        out[offset + ch * plane + i * size + j] = (wy * top + (1 - wy) * bottom) / 255;
      }
    }
  }
}
