// The Dataset abstraction every format implements, the identity recorded with every result, and the in-memory
// dataset shared by the formats that load whole files of pixels (IDX, CIFAR, NPY).
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import { type ImageInput, type RawImage, rgbFromBytes } from "./image.js";
import { describeFileError, isFileError } from "../util/file-errors.js";

// Which data a result was computed on: two runs with equal identities saw the same files in the same order.
export interface DatasetIdentity {
  name: string; // registry name: fashion-mnist, cifar10, imagefolder, ...
  root: string; // absolute folder the files were read from
  split: string;
  count: number; // samples after any subset
  hash: string; // 16 hex digits of SHA-256 over the file list (and the selected indices for a subset)
  subset?: string; // how a subset was drawn, e.g. "classes 5,6,7,8,9 -> 0..4; first 100 per class"
}

// The identity without the folder the files were read from: what a run folder records, since it may move to a
// machine that keeps the same files elsewhere.
export function portableIdentity({ root: _, ...identity }: DatasetIdentity): Omit<DatasetIdentity, "root"> {
  return identity;
}

export interface Dataset {
  readonly length: number;
  readonly classes: string[]; // class names, indexed by label
  readonly labels: Int32Array; // (length), each in [0, classes.length)
  readonly identity: DatasetIdentity;
  readonly imageSize?: { width: number; height: number }; // present when every image has this size
  // The cheapest form of sample i: pixels for in-memory formats, the file's bytes for image files (decoded later,
  // inside the transform's libvips pipeline, which can then crop and resize while decoding).
  read(i: number): Promise<ImageInput>;
  // Sample i decoded to 8-bit RGB.
  image(i: number): Promise<RawImage>;
  // Where sample i comes from, for error messages: a path, or path#record.
  source(i: number): string;
}

// An image left out because it could not be decoded.
export interface SkippedImage {
  index: number; // dataset index
  source: string; // the file
  message: string;
}

// A whole file. A file-system failure names the file in the tool's words, prefixed by the reading module (Node's
// EISDIR names no file at all).
export async function readWhole(module: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw isFileError(e) ? new Error(`${module}: ${describeFileError(e, path, "read")}`, { cause: e }) : e;
  }
}

export function hashLines(lines: string[]): string {
  const h = createHash("sha256");
  for (const line of lines) h.update(line + "\n");
  return h.digest("hex").slice(0, 16);
}

// Identity hash of a few whole files: their names and byte sizes.
export async function hashFiles(paths: string[]): Promise<string> {
  const lines = await Promise.all(paths.map(async (p) => `${basename(p)}\t${(await stat(p)).size}`));
  return hashLines(lines);
}

export function checkIndex(ds: Dataset, i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= ds.length) throw new Error(`${ds.identity.name}: expected an index in [0, ${ds.length}), got ${i}`);
}

// The most classes a class list may hold, and a dataset whose labels name no classes may have: ImageNet-21k, the
// largest class set in common use, has 21,841. A label past it is a mistake (an id, a hash, a regression target),
// and taken as a class count it would build that many names and per-class lists until memory runs out.
export const MAX_CLASSES = 65536;

// Throws naming the file when an array of images (N, H, W, ...) holds none, or images without pixels.
export function checkImageArray(module: string, path: string, shape: number[], height: number, width: number): void {
  if (shape[0] === 0) throw new Error(`${module}: expected at least one image in ${path}, got 0 images (${shape.join(", ")})`);
  if (height < 1 || width < 1) throw new Error(`${module}: expected images of at least 1x1 in ${path}, got (${shape.join(", ")})`);
}

// Throws naming the file when a label is outside [0, numClasses).
export function checkLabels(name: string, labels: Int32Array, numClasses: number, where: (i: number) => string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= numClasses) throw new Error(`${name}: expected labels in [0, ${numClasses}), got ${labels[i]} at ${where(i)}`);
  }
}

// What is wrong where `a`'s labels name other classes than `b`'s, or the same in another order (`what`: the config
// keys that name them, a's first); undefined where they agree. A test set or k-NN queries drawn from other classes
// would be scored against labels that mean other things, with nothing to show it but the accuracy.
export function classMismatch(a: Dataset, b: Dataset, what: readonly [string, string]): string | undefined {
  const [aKey, bKey] = what;
  const expected = `expected ${aKey} to have the ${b.classes.length} classes of ${bKey} in the same order`;
  if (a.classes.length !== b.classes.length) return `${expected}, got ${a.classes.length} classes (give both the same classes)`;
  const at = a.classes.findIndex((name, label) => name !== b.classes[label]);
  if (at >= 0) return `${expected}, got label ${at} "${a.classes[at]}" where ${bKey} has "${b.classes[at]}" (give both the same classes)`;
  return undefined;
}

// Why `a` may not be used beside `b`: images they share (compared by source, the file and record each was read
// from), which would score an image against itself (a k-NN query in its bank) or on what trained it.
export function sharedImages(a: Dataset, b: Dataset, what: readonly [string, string]): string | undefined {
  const sources = new Set<string>();
  for (let i = 0; i < b.length; i++) sources.add(b.source(i));
  let shared = 0;
  let first = "";
  for (let i = 0; i < a.length; i++) {
    if (!sources.has(a.source(i))) continue;
    if (shared++ === 0) first = a.source(i);
  }
  return shared > 0 ? `${what[0]}: expected no image of ${what[1]}, got ${shared} of them (the first: ${first})` : undefined;
}

// Images of one size held in one byte buffer: record i's pixels start at offset + i * stride, 1 or 3 channels,
// planar (C, H, W) or interleaved (H, W, C). Files are used in place (IDX pixels follow the header; CIFAR pixels
// follow each record's label bytes), so nothing is copied until a sample is read.
export interface PixelLayout {
  offset: number;
  stride: number;
  width: number;
  height: number;
  channels: 1 | 3;
  planar: boolean;
}

export class ArrayDataset implements Dataset {
  readonly imageSize: { width: number; height: number };

  constructor(
    readonly identity: DatasetIdentity,
    readonly classes: string[],
    readonly labels: Int32Array, // (N)
    private readonly pixels: Uint8Array, // N records laid out as `layout` says
    private readonly layout: PixelLayout,
    private readonly file: (i: number) => string, // the file and record of sample i
  ) {
    this.imageSize = { width: layout.width, height: layout.height };
    const need = layout.offset + (labels.length - 1) * layout.stride + layout.width * layout.height * layout.channels;
    if (labels.length > 0 && pixels.length < need) throw new Error(`${identity.name}: expected at least ${need} pixel bytes for ${labels.length} images, got ${pixels.length}`);
  }

  get length(): number {
    return this.labels.length;
  }

  async read(i: number): Promise<RawImage> {
    return this.image(i);
  }

  async image(i: number): Promise<RawImage> {
    checkIndex(this, i);
    const { offset, stride, width, height, channels, planar } = this.layout;
    return rgbFromBytes(this.pixels, offset + i * stride, width, height, channels, planar);
  }

  source(i: number): string {
    checkIndex(this, i);
    return this.file(i);
  }
}
