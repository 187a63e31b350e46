// safetensors files (Hugging Face's checkpoint format), read and write.
//
// Layout: u64 LE header length N, then N bytes of JSON
//   { "__metadata__": { string: string }, "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ... }
// then the data section; offsets are relative to its start, tensors are C-order little endian and tile the
// section exactly (sorted by offset, no gaps, no overlap), which the reader checks.
// Reading goes header first, then each tensor's bytes straight from the file into its own array, so a ViT-B
// (~350 MB) never exists twice in memory. F32, F16 and BF16 read into Float32Array; the writer writes F32 only.
//
// Checksum: the writer puts the SHA-256 of the data section into the metadata (CHECKSUM_KEY), and the reader checks
// it wherever it is present, so a checkpoint this tool wrote is trusted only when its bytes are the ones written: a
// damaged or edited file is a ChecksumError naming it. Files written elsewhere carry no checksum and are read as they
// are.
import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { writeChunksAtomic } from "../util/atomic.js";

export interface F32Tensor {
  shape: number[];
  data: Float32Array; // prod(shape) elements, C order
}

export interface SafetensorsEntry {
  name: string;
  dtype: string; // as in the file: F32, F16, BF16, ...
  shape: number[];
  begin: number; // byte offsets into the data section
  end: number;
}

export interface SafetensorsHeader {
  entries: SafetensorsEntry[]; // sorted by offset
  metadata: Record<string, string>;
  dataStart: number; // file offset of the data section: 8 + N
}

// Bytes per element of every dtype the format defines, so that sizes are checked even for dtypes we do not read.
const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};
const READABLE = new Set(["F32", "F16", "BF16"]);
export const CHECKSUM_KEY = "data_sha256"; // metadata key: hex SHA-256 of the data section

// A file whose tensors are not the bytes its checksum was computed from.
export class ChecksumError extends Error {}
const MAX_HEADER = 100_000_000; // the reference implementation's limit; guards against reading garbage as a length
const ALIGN = 8;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("safetensors: expected a little-endian host");

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const fmt = (shape: readonly number[]) => `(${shape.join(", ")})`;

// IEEE half precision bits -> number: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero and subnormals
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// bfloat16 is the top half of a float32.
export function bf16ToF32(bits: number): number {
  const u = new Uint32Array([(bits & 0xffff) << 16]);
  return new Float32Array(u.buffer)[0];
}

let f16Table: Float32Array | undefined; // all 65536 half values, built on first use

export function decodeF16(src: Uint16Array): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16ToF32(i);
  }
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16Table[src[i]];
  return out;
}

export function decodeBF16(src: Uint16Array): Float32Array {
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return new Float32Array(out.buffer);
}

// Reads exactly `into.length` bytes at `position`, or throws (a short read means the file shrank or lied).
export async function readExactly(fh: FileHandle, into: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error(`${what}: expected ${into.length} bytes at offset ${position}, got ${done}`);
    done += bytesRead;
  }
}

async function readHeader(fh: FileHandle, path: string): Promise<SafetensorsHeader> {
  const fail = (what: string) => new Error(`safetensors: ${path}: ${what}`);
  const { size } = await fh.stat();
  if (size < 8) throw fail(`expected at least 8 bytes, got ${size}`);
  const lenBytes = new Uint8Array(8);
  await readExactly(fh, lenBytes, 0, `safetensors: ${path}`);
  const n = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (n > BigInt(Math.min(size - 8, MAX_HEADER))) throw fail(`expected a header length of at most ${Math.min(size - 8, MAX_HEADER)}, got ${n}`);
  const headerBytes = new Uint8Array(Number(n));
  await readExactly(fh, headerBytes, 8, `safetensors: ${path}`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(headerBytes));
  } catch (e) {
    throw fail(`expected a JSON header, got a parse error: ${(e as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw fail("expected the header to be a JSON object");

  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof v !== "object" || v === null) throw fail("expected __metadata__ to be a map of strings");
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== "string") throw fail(`expected __metadata__.${k} to be a string, got ${JSON.stringify(s)}`);
        metadata[k] = s;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const shape = e.shape;
    const offs = e.data_offsets;
    if (typeof e.dtype !== "string" || !(e.dtype in DTYPE_BYTES)) throw fail(`tensor '${name}': expected a known dtype, got ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw fail(`tensor '${name}': expected a shape of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[0] > offs[1]) {
      throw fail(`tensor '${name}': expected data_offsets [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offs)}`);
    }
    const bytes = numel(shape) * DTYPE_BYTES[e.dtype];
    if (offs[1] - offs[0] !== bytes) {
      throw fail(`tensor '${name}': expected ${bytes} bytes for ${e.dtype} ${fmt(shape)}, got data_offsets spanning ${offs[1] - offs[0]}`);
    }
    entries.push({ name, dtype: e.dtype, shape, begin: offs[0], end: offs[1] });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataStart = 8 + Number(n);
  const dataLen = size - dataStart;
  let at = 0;
  for (const e of entries) {
    if (e.begin !== at) throw fail(`tensor '${e.name}': expected data to start at ${at} (contiguous, no overlap), got ${e.begin}`);
    at = e.end;
  }
  if (at !== dataLen) throw fail(`expected the tensors to fill the ${dataLen}-byte data section, got ${at} bytes${at > dataLen ? " (offsets out of range)" : ""}`);
  return { entries, metadata, dataStart };
}

export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const fh = await open(path, "r");
  try {
    return await readHeader(fh, path);
  } finally {
    await fh.close();
  }
}

export async function readSafetensors(path: string): Promise<{ tensors: Map<string, F32Tensor>; metadata: Record<string, string> }> {
  const fh = await open(path, "r");
  try {
    const header = await readHeader(fh, path);
    for (const e of header.entries) {
      if (!READABLE.has(e.dtype)) throw new Error(`safetensors: ${path}: tensor '${e.name}': expected dtype F32, F16 or BF16, got ${e.dtype}`);
    }
    const tensors = new Map<string, F32Tensor>();
    const expected = header.metadata[CHECKSUM_KEY];
    // The entries tile the data section in offset order: hashing them in turn hashes the section.
    const hash = expected === undefined ? undefined : createHash("sha256");
    for (const e of header.entries) {
      const n = numel(e.shape);
      const pos = header.dataStart + e.begin;
      const what = `safetensors: ${path}: tensor '${e.name}'`;
      let data: Float32Array;
      if (e.dtype === "F32") {
        data = new Float32Array(n);
        await readExactly(fh, new Uint8Array(data.buffer), pos, what);
        hash?.update(new Uint8Array(data.buffer));
      } else {
        const half = new Uint16Array(n);
        await readExactly(fh, new Uint8Array(half.buffer), pos, what);
        hash?.update(new Uint8Array(half.buffer));
        data = e.dtype === "F16" ? decodeF16(half) : decodeBF16(half);
      }
      tensors.set(e.name, { shape: e.shape, data });
    }
    if (hash && hash.digest("hex") !== expected) {
      throw new ChecksumError(`safetensors: ${path}: expected tensors matching the checksum written with them (${CHECKSUM_KEY}), got other bytes: the file was damaged or edited after it was written`);
    }
    return { tensors, metadata: header.metadata };
  } finally {
    await fh.close();
  }
}

// Writes F32 tensors in the given order, streamed and atomically (util/atomic.ts: temp file, then rename), with the
// data section's checksum in the metadata. The header is padded with spaces so the data section starts 8-byte
// aligned, which lets readers map F32/F64 data without copying.
export async function writeSafetensors(
  path: string,
  tensors: Map<string, F32Tensor> | Record<string, F32Tensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = { __metadata__: metadata };
  const hash = createHash("sha256");
  let at = 0;
  for (const [name, t] of list) {
    if (name === "__metadata__") throw new Error("safetensors: expected tensor names other than __metadata__");
    if (!(t.data instanceof Float32Array)) throw new Error(`safetensors: tensor '${name}': expected a Float32Array`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`safetensors: tensor '${name}': expected a shape of non-negative integers, got ${fmt(t.shape)}`);
    if (t.data.length !== numel(t.shape)) throw new Error(`safetensors: tensor '${name}': expected ${numel(t.shape)} values for ${fmt(t.shape)}, got ${t.data.length}`);
    header[name] = { dtype: "F32", shape: [...t.shape], data_offsets: [at, at + t.data.byteLength] };
    hash.update(bytesOf(t.data));
    at += t.data.byteLength;
  }
  header.__metadata__ = { ...metadata, [CHECKSUM_KEY]: hash.digest("hex") };
  let json = JSON.stringify(header);
  json += " ".repeat((ALIGN - ((8 + new TextEncoder().encode(json).length) % ALIGN)) % ALIGN);
  const headerBytes = new TextEncoder().encode(json);
  const prefix = new Uint8Array(8 + headerBytes.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  prefix.set(headerBytes, 8);

  await writeChunksAtomic(path, [prefix, ...list.map(([, t]) => bytesOf(t.data))]);
}

function bytesOf(data: Float32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
