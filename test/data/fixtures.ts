// Fixture writers for the data tests: IDX, CIFAR records and PNG files are produced here byte by byte from their
// specifications (not by the code under test, and PNG not by sharp), into temp folders removed after each file.
import { afterAll } from "vitest";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { crc32, deflateSync, gzipSync } from "node:zlib";
import { ArrayDataset, type Dataset } from "../../data/dataset.js";
import { joined } from "../../util/typed-arrays.js";

// A fresh temp folder for the calling test file, deleted when it finishes.
export function useTmpDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `peft-data-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function writeFile(path: string, bytes: Uint8Array | string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}

// IDX: 00 00 08 ndim, big-endian uint32 dims, bytes. `magic` overrides the first four bytes.
export function idxBytes(shape: number[], values: Uint8Array, magic?: number[]): Uint8Array {
  const head = new Uint8Array(4 + 4 * shape.length);
  head.set(magic ?? [0, 0, 8, shape.length]);
  const view = new DataView(head.buffer);
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(head.length + values.length);
  out.set(head);
  out.set(values, head.length);
  return out;
}

export function gzip(bytes: Uint8Array): Uint8Array {
  return gzipSync(bytes);
}

// Deterministic byte patterns: pixel values that differ across images, rows, columns and channels.
export function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

// n gray width x height images in memory, pixels pattern(..., seed), labels cycling over `classes` classes ("a",
// "b", ...); the identity's hash is the seed, so datasets of other seeds are told apart.
export function grayDataset(n: number, width: number, height: number, classes: number, seed: number): ArrayDataset {
  const labels = Int32Array.from({ length: n }, (_, i) => i % classes);
  const identity = { name: "tiny", root: "/mem", split: "train", count: n, hash: String(seed) };
  const layout = { offset: 0, stride: width * height, width, height, channels: 1 as const, planar: false };
  const names = Array.from({ length: classes }, (_, c) => String.fromCharCode(97 + c));
  return new ArrayDataset(identity, names, labels, pattern(n * width * height, seed), layout, (i) => `/mem#${i}`);
}

// `ds` with the indices it is asked to read, in order.
export function counted(ds: Dataset): { ds: Dataset; reads: number[] } {
  const reads: number[] = [];
  return { ds: Object.assign(Object.create(ds) as Dataset, { read: (i: number) => (reads.push(i), ds.read(i)) }), reads };
}

// One CIFAR record: label bytes, then R, G, B planes of 32x32, given an HWC image.
export function cifarRecord(labels: number[], hwc: Uint8Array): Uint8Array {
  const out = new Uint8Array(labels.length + 3072);
  out.set(labels);
  for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) out[labels.length + c * 1024 + p] = hwc[3 * p + c];
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  return joined(parts, Uint8Array);
}

// PNG colour types (PNG spec, section 11.2.2).
export const PNG_GRAY = 0;
export const PNG_RGB = 2;
export const PNG_PALETTE = 3;
export const PNG_GRAY_ALPHA = 4;
export const PNG_RGBA = 6;
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length, false);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)), false);
  return out;
}

// A PNG with filter 0 on every row. `samples` holds height*width*channels values (0..255 or 0..65535 for
// bitDepth 16, palette indices for colour type 3); `palette` is RGB triples.
export function pngBytes(width: number, height: number, colorType: number, bitDepth: 8 | 16, samples: ArrayLike<number>, palette?: Uint8Array): Uint8Array {
  const ch = PNG_CHANNELS[colorType];
  const bps = bitDepth / 8;
  const rowBytes = 1 + width * ch * bps;
  const raw = new Uint8Array(height * rowBytes);
  for (let y = 0; y < height; y++) {
    for (let k = 0; k < width * ch; k++) {
      const v = samples[y * width * ch + k];
      const o = y * rowBytes + 1 + k * bps;
      if (bitDepth === 16) {
        raw[o] = v >> 8;
        raw[o + 1] = v & 255;
      } else raw[o] = v;
    }
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width, false);
  view.setUint32(4, height, false);
  ihdr.set([bitDepth, colorType, 0, 0, 0], 8);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr)];
  if (palette) parts.push(chunk("PLTE", palette));
  parts.push(chunk("IDAT", deflateSync(raw)), chunk("IEND", new Uint8Array(0)));
  return concat(parts);
}
