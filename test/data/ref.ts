// CPU references for the transforms, written from torchvision's definitions: crop a box from an HWC byte image,
// optionally mirror it, ToTensor (/255) and Normalize ((x - mean) / std), laid out CHW. Float64 throughout.
export interface RefImage {
  width: number;
  height: number;
  data: Uint8Array; // (height, width, 3)
}

export function refCropNormalize(
  img: RefImage,
  box: { left: number; top: number; width: number; height: number },
  flip: boolean,
  mean: number[],
  std: number[],
): Float64Array {
  const { width: w, height: h } = box;
  const out = new Float64Array(3 * w * h);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const sx = box.left + (flip ? w - 1 - x : x);
        const v = img.data[((box.top + y) * img.width + sx) * 3 + c];
        out[c * w * h + y * w + x] = (v / 255 - mean[c]) / std[c];
      }
  return out;
}

// Gray or RGB samples to 3-channel HWC, as PIL's convert("RGB").
export function refRgb(samples: ArrayLike<number>, channels: 1 | 3, n: number): Uint8Array {
  const out = new Uint8Array(3 * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) out[3 * p + c] = samples[p * channels + (channels === 1 ? 0 : c)];
  return out;
}

// PIL's separable antialiased resampling (Imaging's precompute_coeffs): output pixel o of a reduction by
// scale = in / out averages input pixels around centre (o + 0.5) * scale with filter(dist / scale) weights over
// support * scale. Returns per output pixel the first input index, the normalised weights, and whether the
// window lies inside the image (libvips repeats the edge pixel instead of renormalising at the borders).
export function refResampleWeights(inSize: number, outSize: number, filter: (x: number) => number, support: number): { lo: number; w: number[]; inside: boolean }[] {
  const scale = inSize / outSize;
  const fs = Math.max(scale, 1);
  const sup = support * fs;
  return Array.from({ length: outSize }, (_, o) => {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(centre - sup + 0.5));
    const hi = Math.min(inSize, Math.trunc(centre + sup + 0.5));
    const w: number[] = [];
    for (let i = lo; i < hi; i++) w.push(filter((i - centre + 0.5) / fs));
    const total = w.reduce((a, b) => a + b, 0);
    return { lo, w: w.map((x) => x / total), inside: centre - sup + 0.5 >= 0 && centre + sup + 0.5 <= inSize };
  });
}

export const triangle = (x: number): number => Math.max(0, 1 - Math.abs(x));
export function catmullRom(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

// Two-pass separable resampling of an HWC RGB byte image with PIL's weights, each pass rounded and clipped to
// bytes. PIL runs the horizontal pass first ("hv"); libvips the vertical one ("vh"). Also returns which output
// pixels have both windows inside the image.
export function refResample(
  img: RefImage,
  outW: number,
  outH: number,
  filter: (x: number) => number,
  support: number,
  order: "hv" | "vh",
): { data: Float64Array; inside: boolean[] } {
  const wx = refResampleWeights(img.width, outW, filter, support);
  const wy = refResampleWeights(img.height, outH, filter, support);
  const clip8 = (v: number) => Math.min(255, Math.max(0, Math.round(v)));
  // One pass along x or y of a (h, w, 3) float image.
  const pass = (src: Float64Array, w: number, h: number, alongX: boolean): Float64Array => {
    const ow = alongX ? outW : w;
    const oh = alongX ? h : outH;
    const dst = new Float64Array(ow * oh * 3);
    for (let y = 0; y < oh; y++)
      for (let x = 0; x < ow; x++)
        for (let c = 0; c < 3; c++) {
          const win = alongX ? wx[x] : wy[y];
          let v = 0;
          win.w.forEach((a, k) => (v += a * (alongX ? src[(y * w + win.lo + k) * 3 + c] : src[((win.lo + k) * w + x) * 3 + c])));
          dst[(y * ow + x) * 3 + c] = clip8(v);
        }
    return dst;
  };
  const src = Float64Array.from(img.data);
  const data =
    order === "hv" ? pass(pass(src, img.width, img.height, true), outW, img.height, false) : pass(pass(src, img.width, img.height, false), img.width, outH, true);
  const inside: boolean[] = [];
  for (let y = 0; y < outH; y++) for (let x = 0; x < outW; x++) inside.push(wx[x].inside && wy[y].inside);
  return { data, inside };
}
