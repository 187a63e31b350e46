// IDX files (MNIST, Fashion-MNIST), gzipped or raw: a 4-byte magic 00 00 <type> <ndim>, ndim big-endian uint32
// sizes, then the values. Only type 0x08 (unsigned bytes) occurs in these datasets and only it is accepted.
// A dataset is four files: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
import { existsSync } from "node:fs";
import { gunzip } from "node:zlib";
import { promisify } from "node:util";
import { join, resolve } from "node:path";
import { ArrayDataset, type Dataset, checkImageArray, checkLabels, hashFiles, readWhole } from "./dataset.js";

export interface IdxArray {
  shape: number[];
  data: Uint8Array; // prod(shape) values, row-major (a view into the file's bytes)
}

const gunzipAsync = promisify(gunzip);
// Output chunk of the gunzip (zlib's default is 16 KiB): Fashion-MNIST's training images (26 MB to 47 MB) took
// 265-308 ms in 16 KiB chunks, 165-170 ms in 1 MiB ones (the thread pool's round trips), at the start of every study
// (2-core machine, 2026-12-05), and zlib then concatenated the 45 chunks on the main thread. Where the gzip trailer
// states the size (ISIZE, mod 2^32), the output is one chunk of it, which zlib hands over as it is.
const GUNZIP_CHUNK = 1 << 20;
const GUNZIP_CHUNK_MAX = 1 << 30;
// Deflate's largest ratio: a trailer stating more bytes than this per compressed byte is not believed (a damaged or
// crafted file would otherwise have its stated gigabytes allocated before it fails).
const DEFLATE_MAX_RATIO = 1032;

// One output chunk for all of a gzip stream whose trailer states a plausible size, else 1 MiB chunks.
export function gunzipChunk(gz: Uint8Array): number {
  if (gz.length < 18) return GUNZIP_CHUNK; // no room for a header and a trailer
  const stated = new DataView(gz.buffer, gz.byteOffset + gz.length - 4, 4).getUint32(0, true);
  if (stated > gz.length * DEFLATE_MAX_RATIO) return GUNZIP_CHUNK;
  // A byte more than stated: zlib then ends with room left, not by allocating another chunk to find the end.
  return Math.min(Math.max(stated + 1, GUNZIP_CHUNK), GUNZIP_CHUNK_MAX);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

export async function readIdx(path: string): Promise<IdxArray> {
  let bytes: Uint8Array = await readWhole("idx", path);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await gunzipAsync(bytes, { chunkSize: gunzipChunk(bytes) });
    } catch (err) {
      throw new Error(`idx: expected a complete gzip stream in ${path}, got: ${(err as Error).message}`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0 || bytes[3] < 1 || bytes[3] > 4)
    throw new Error(`idx: expected magic 00 00 08 0N (N = 1..4 dimensions) at the start of ${path}, got ${hex(bytes.subarray(0, 4)) || "an empty file"}`);
  if (bytes[2] !== 0x08) throw new Error(`idx: expected type 0x08 (unsigned bytes) in ${path}, got 0x${bytes[2].toString(16).padStart(2, "0")}`);
  const ndim = bytes[3];
  const offset = 4 + 4 * ndim;
  if (bytes.length < offset) throw new Error(`idx: expected a ${offset}-byte header in ${path}, got ${bytes.length} bytes (truncated)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: ndim }, (_, d) => view.getUint32(4 + 4 * d, false));
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - offset !== count)
    throw new Error(`idx: expected ${count} bytes of values for shape (${shape.join(", ")}) in ${path}, got ${bytes.length - offset}${bytes.length - offset < count ? " (truncated)" : ""}`);
  return { shape, data: bytes.subarray(offset) };
}

// The raw file, or else its .gz.
function findIdx(name: string, root: string, base: string): string {
  for (const file of [base, base + ".gz"]) if (existsSync(join(root, file))) return join(root, file);
  throw new Error(`${name}: expected ${base} or ${base}.gz in ${root}, found neither`);
}

export const IDX_CLASSES: Record<"mnist" | "fashion-mnist", string[]> = {
  mnist: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  // torchvision's FashionMNIST.classes
  "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
};

export async function openIdx(name: "mnist" | "fashion-mnist", root: string, split = "train"): Promise<Dataset> {
  if (split !== "train" && split !== "test") throw new Error(`${name}: expected split train or test, got "${split}"`);
  root = resolve(root);
  const prefix = split === "train" ? "train" : "t10k";
  const imagesPath = findIdx(name, root, `${prefix}-images-idx3-ubyte`);
  const labelsPath = findIdx(name, root, `${prefix}-labels-idx1-ubyte`);
  const [images, labels] = await Promise.all([readIdx(imagesPath), readIdx(labelsPath)]);
  if (images.shape.length !== 3) throw new Error(`${name}: expected images (N, H, W) in ${imagesPath}, got (${images.shape.join(", ")})`);
  checkImageArray(name, imagesPath, images.shape, images.shape[1], images.shape[2]);
  if (labels.shape.length !== 1 || labels.shape[0] !== images.shape[0])
    throw new Error(`${name}: expected labels (${images.shape[0]}) in ${labelsPath} to match the images, got (${labels.shape.join(", ")})`);
  const [n, height, width] = images.shape;
  const classes = IDX_CLASSES[name];
  const y = Int32Array.from(labels.data);
  checkLabels(name, y, classes.length, (i) => `${labelsPath}#${i}`);
  const identity = { name, root, split, count: n, hash: await hashFiles([imagesPath, labelsPath]) };
  const layout = { offset: 0, stride: height * width, width, height, channels: 1 as const, planar: false };
  return new ArrayDataset(identity, classes, y, images.data, layout, (i) => `${imagesPath}#${i}`);
}
