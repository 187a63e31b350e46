// Images in the input pipeline, and every call into sharp (libvips), which decodes, crops and resizes on libuv's
// thread pool: awaiting these calls leaves the main thread free to encode GPU work meanwhile.
//
// Decoding follows what PIL's `Image.open(f).convert("RGB")` gives the paper's code, with these choices:
// - grayscale becomes 3 equal channels;
// - an alpha channel is dropped without compositing onto a background (as convert("RGB") does), and it is
//   dropped *before* any resize, because libvips would otherwise resize in premultiplied alpha;
// - 16-bit images keep the high byte of each sample (libvips' conversion, the same as PIL's for RGB);
// - palette images are expanded through their palette;
// - the EXIF orientation tag is ignored (PIL does not apply it either);
// - an embedded ICC profile is applied by libvips when converting to sRGB (PIL would ignore it).
import sharp, { type Sharp } from "sharp";

export interface RawImage {
  width: number;
  height: number;
  channels: 3;
  data: Uint8Array; // (height, width, 3), HWC, 8-bit sRGB
}

// The bytes of a JPEG or PNG file, decoded only when a transform needs pixels.
export interface EncodedImage {
  path: string;
  bytes: Uint8Array;
}

export type ImageInput = RawImage | EncodedImage;

export interface ImageInfo {
  width: number;
  height: number;
  hasAlpha: boolean;
}

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

// sharp's resampling kernels. "linear" is the triangle filter, "cubic" Catmull-Rom (a = -0.5), which are PIL's
// BILINEAR and BICUBIC (PyTorch's tensor bicubic uses a = -0.75 and differs slightly). For reductions libvips
// widens the kernel by the scale factor (antialiasing) as PIL does. Measured against PIL's formula: away from the
// borders a 2x reduction equals PIL's weights applied vertically then horizontally with rounding to bytes between
// the passes (PIL goes horizontally first: up to 3 levels of 255 apart on noise); other factors come within ~2
// levels, large reductions (4x and more, where libvips first box-shrinks) within ~4. At the borders libvips
// repeats the edge pixel where PIL renormalises the weights, and its enlargements sit a quarter input pixel (at 2x)
// off PIL's pixel-centre alignment. test/data/image.test.ts checks the cases defined exactly.
export type Kernel = "nearest" | "linear" | "cubic" | "lanczos3";

// An image file that cannot be decoded, in one line of the tool's words. The loader can skip these (counting them)
// instead of failing.
export class CorruptImageError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`image: expected a readable JPEG or PNG image in ${path}, got ${reason}`);
  }
}

// libvips' error text, several lines of "VipsJpeg: ..." repeated per decoding attempt, as one short phrase with
// its first line for detail: "a truncated or damaged image (premature end of JPEG image)".
export function decoderReason(message: string): string {
  const first = message.split("\n")[0].trim();
  const detail = first.split(": ").at(-1) ?? first;
  if (/unsupported image format/i.test(first)) return "a file of another format";
  if (/premature end|corrupt|truncated|not a JPEG|bad huffman|invalid/i.test(message)) return `a truncated or damaged image (${detail})`;
  return `an error of the decoder (${first})`;
}

export function isEncoded(img: ImageInput): img is EncodedImage {
  return "bytes" in img;
}

// Sharp instance for an input: raw pixels are described to sharp, encoded bytes are sniffed by it. Decoder
// warnings (extraneous bytes, unknown markers) are tolerated as PIL tolerates them; errors and truncated data fail.
function open(img: ImageInput): Sharp {
  if (isEncoded(img)) return sharp(img.bytes, { failOn: "error" });
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

// Runs a sharp call on an encoded input, turning its failures into CorruptImageError naming the file.
async function guard<T>(img: ImageInput, f: () => Promise<T>): Promise<T> {
  if (!isEncoded(img)) return f();
  try {
    return await f();
  } catch (err) {
    throw new CorruptImageError(img.path, decoderReason(err instanceof Error ? err.message : String(err)));
  }
}

async function toRaw(s: Sharp): Promise<RawImage> {
  const { data, info } = await s.toColourspace("srgb").removeAlpha().raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`image: expected 3 channels after conversion to sRGB, got ${info.channels}`);
  return { width: info.width, height: info.height, channels: 3, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

// Width and height without decoding the pixels (encoded files: the header only).
export async function imageInfo(img: ImageInput): Promise<ImageInfo> {
  if (!isEncoded(img)) return { width: img.width, height: img.height, hasAlpha: false };
  const meta = await guard(img, () => open(img).metadata());
  if (!meta.width || !meta.height) throw new CorruptImageError(img.path, "a header without an image size");
  return { width: meta.width, height: meta.height, hasAlpha: meta.hasAlpha === true };
}

export async function decodeImage(img: ImageInput): Promise<RawImage> {
  if (!isEncoded(img)) return img;
  return guard(img, () => toRaw(open(img)));
}

// Crops `crop` out of the image and resizes it to width x height with `kernel`, in one libvips pipeline.
// An encoded image with alpha is decoded first, so that alpha is dropped before resampling (see the header).
export async function cropResize(img: ImageInput, info: ImageInfo, crop: Box, width: number, height: number, kernel: Kernel): Promise<RawImage> {
  if (crop.left < 0 || crop.top < 0 || crop.width < 1 || crop.height < 1 || crop.left + crop.width > info.width || crop.top + crop.height > info.height)
    throw new Error(`image: expected a crop inside ${info.width}x${info.height}, got ${crop.width}x${crop.height} at (${crop.left}, ${crop.top})`);
  const src = info.hasAlpha ? await decodeImage(img) : img;
  return guard(src, () => {
    let s = open(src);
    if (crop.left !== 0 || crop.top !== 0 || crop.width !== info.width || crop.height !== info.height) s = s.extract(crop);
    // fastShrinkOnLoad off: JPEG DCT-domain downscaling is faster but is not what PIL does.
    return toRaw(s.resize(width, height, { kernel, fit: "fill", fastShrinkOnLoad: false }));
  });
}

export async function encodePng(img: RawImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
}

// Pixels of an image stored as bytes at `offset` in `buf`: channels 1 (gray) or 3, planar (C, H, W) as in CIFAR
// files or interleaved (H, W, C). Returns the HWC RGB image the rest of the pipeline expects.
export function rgbFromBytes(buf: Uint8Array, offset: number, width: number, height: number, channels: 1 | 3, planar: boolean): RawImage {
  const n = width * height;
  const data = new Uint8Array(n * 3);
  if (channels === 1) {
    for (let p = 0; p < n; p++) data[3 * p] = data[3 * p + 1] = data[3 * p + 2] = buf[offset + p];
  } else if (planar) {
    for (let c = 0; c < 3; c++) for (let p = 0; p < n; p++) data[3 * p + c] = buf[offset + c * n + p];
  } else {
    data.set(buf.subarray(offset, offset + 3 * n));
  }
  return { width, height, channels: 3, data };
}
