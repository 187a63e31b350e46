// Bad files built from parts: safetensors (header, data section, a header length that may lie), .npy (magic,
// version, header fields, data), zip archives (torch.save's .pth) and pickles; and the good inputs they are
// variations of: the tiny ViT of test/fixtures and an image batch it reads.
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import type { F32Tensor } from "../../vit/safetensors.js";
import { encodeNpy } from "../../data/npy.js";

export const FIXTURES = join(import.meta.dirname, "../fixtures");

export async function write(path: string, bytes: Uint8Array | string): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
  return path;
}

const u64 = (n: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
};
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

// ---- safetensors

export interface SafetensorsParts {
  header: unknown; // JSON-serialised, or a string written as it is (for broken JSON)
  data?: Uint8Array; // the data section
  length?: bigint; // the header length field; default the header's true length
}

export function safetensorsFile(p: SafetensorsParts): Uint8Array {
  const text = new TextEncoder().encode(typeof p.header === "string" ? p.header : JSON.stringify(p.header));
  return concat(u64(p.length ?? BigInt(text.length)), text, p.data ?? new Uint8Array(0));
}

export interface RawTensor {
  dtype: string; // F32, F16, ...
  shape: number[];
  bytes: Uint8Array;
}

// A well-formed file of these tensors in this order, without a checksum (as other tools write them).
export function tensorsFile(tensors: [string, RawTensor][], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let at = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes.length] };
    at += t.bytes.length;
  }
  return safetensorsFile({ header, data: concat(...tensors.map(([, t]) => t.bytes)) });
}

export const f32Safetensors = (tensors: Map<string, F32Tensor>, metadata: Record<string, string> = {}) =>
  tensorsFile([...tensors].map(([name, t]) => [name, { dtype: "F32", shape: t.shape, bytes: bytesOf(t.data) }]), metadata);

// The tiny ViT of test/fixtures (width 32, 2 blocks, patch 4, image 16, 5-class head; needs --heads 2), as a
// fresh map each call so that a case may edit it.
export function tinyVit(): Map<string, F32Tensor> {
  const bytes = readFileSync(join(FIXTURES, "vit-tiny.safetensors"));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, { shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, F32Tensor>();
  for (const [name, e] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const raw = bytes.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
    out.set(name, { shape: e.shape, data: new Float32Array(new Uint8Array(raw).buffer) });
  }
  return out;
}

// The tiny ViT with some tensors changed (a function of the old tensor, or undefined to drop it) or added.
export function editedVit(edits: Record<string, F32Tensor | ((t: F32Tensor) => F32Tensor | undefined) | undefined>): Map<string, F32Tensor> {
  const m = tinyVit();
  for (const [name, e] of Object.entries(edits)) {
    const next = typeof e === "function" ? e(m.get(name)!) : e;
    if (next === undefined) m.delete(name);
    else m.set(name, next);
  }
  return m;
}

export const filled = (shape: number[], value: number): F32Tensor => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value) });

// ---- npy

export interface NpyParts {
  magic?: string; // default "\x93NUMPY"
  version?: [number, number]; // default [1, 0]
  header?: string; // the dict literal; default built from descr, fortran and shape
  descr?: string;
  fortran?: boolean;
  shape?: number[];
  data?: Uint8Array; // default zeros for the declared shape and a 4-byte dtype
}

export function npyFile(p: NpyParts): Uint8Array {
  const shape = p.shape ?? [2, 3];
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const header = (p.header ?? `{'descr': '${p.descr ?? "<f4"}', 'fortran_order': ${p.fortran ? "True" : "False"}, 'shape': ${tuple}, }`) + "\n";
  const magic = Uint8Array.from(p.magic ?? "\x93NUMPY", (c) => c.charCodeAt(0));
  const [major, minor] = p.version ?? [1, 0];
  const len = new Uint8Array(2);
  new DataView(len.buffer).setUint16(0, header.length, true);
  const data = p.data ?? new Uint8Array(4 * shape.reduce((a, b) => a * b, 1));
  return concat(magic, new Uint8Array([major, minor]), len, new TextEncoder().encode(header), data);
}

// A valid .npy of these values.
export const npy = (data: Float32Array | Int32Array | BigInt64Array | Uint8Array, shape: number[]) => encodeNpy(data, shape);

// (n, 3, size, size) float32 images of small values: the tiny ViT's input.
export function images(n: number, size = 16): Uint8Array {
  const x = new Float32Array(n * 3 * size * size).map((_, i) => Math.sin(i) * 0.5);
  return npy(x, [n, 3, size, size]);
}

// ---- zip (torch.save's container) and pickles

export type ZipEntries = [string, Uint8Array][];

export interface ZipOptions {
  method?: number; // compression method written for every entry (the data is written as given)
  flags?: number; // general-purpose flags of every entry (bit 0: encrypted)
}

// Stored entries, as torch.save writes them (without its 64-byte alignment padding, which readers must not need).
export function zipFile(entries: ZipEntries, o: ZipOptions = {}): Uint8Array {
  const locals: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let at = 0;
  for (const [name, data] of entries) {
    const n = new TextEncoder().encode(name);
    const local = new Uint8Array(30 + n.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(6, o.flags ?? 0, true);
    lv.setUint16(8, o.method ?? 0, true);
    lv.setUint32(14, crc32(data), true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, n.length, true);
    local.set(n, 30);
    const cd = new Uint8Array(46 + n.length);
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(8, o.flags ?? 0, true);
    cv.setUint16(10, o.method ?? 0, true);
    cv.setUint32(16, crc32(data), true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, n.length, true);
    cv.setUint32(42, at, true);
    cd.set(n, 46);
    locals.push(local, data);
    central.push(cd);
    at += local.length + data.length;
  }
  const cd = concat(...central);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cd.length, true);
  ev.setUint32(16, at, true);
  return concat(...locals, cd, eocd);
}

// The entries of a zip of stored entries (the fixtures'), in central-directory order.
export function unzip(bytes: Uint8Array): ZipEntries {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = bytes.length - 22;
  while (v.getUint32(eocd, true) !== 0x06054b50) eocd--;
  const count = v.getUint16(eocd + 10, true);
  let p = v.getUint32(eocd + 16, true);
  const out: ZipEntries = [];
  for (let i = 0; i < count; i++) {
    const size = v.getUint32(p + 20, true);
    const nameLen = v.getUint16(p + 28, true);
    const local = v.getUint32(p + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    const start = local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true);
    out.push([name, bytes.slice(start, start + size)]);
    p += 46 + nameLen + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
  }
  return out;
}

// The entries of test/fixtures/vit-tiny.pth (folder "vit-tiny/"), a fresh copy each call.
export const tinyPth = (): ZipEntries => unzip(readFileSync(join(FIXTURES, "vit-tiny.pth")));

// The fixture's archive with its pickle replaced by f(pickle).
export function withPickle(f: (pkl: Uint8Array) => Uint8Array): Uint8Array {
  return zipFile(tinyPth().map(([name, data]) => [name, name.endsWith("/data.pkl") ? f(data) : data]));
}

// A pickle's text with one ASCII string replaced (GLOBAL names are newline-terminated, so lengths may differ).
export function replaceInPickle(pkl: Uint8Array, from: string, to: string): Uint8Array {
  const text = Buffer.from(pkl).toString("latin1");
  if (!text.includes(from)) throw new Error(`replaceInPickle: expected "${from}" in the pickle`);
  return new Uint8Array(Buffer.from(text.replace(from, to), "latin1"));
}

// A protocol-2 pickle of these opcodes and operands: [0x80, 2, ...body, STOP].
export const pickle = (...body: (number | string)[]) =>
  Uint8Array.from([0x80, 2, ...body.flatMap((b) => (typeof b === "string" ? Array.from(b, (c) => c.charCodeAt(0)) : [b])), 0x2e]);
