// NPY arrays (numpy's .npy format), read and write, for feature and label files exchanged with Python.
//
// Layout: "\x93NUMPY", major, minor, header length (u16 LE in 1.0, u32 LE in 2.0), then an ASCII Python dict
// literal `{'descr': '<f4', 'fortran_order': False, 'shape': (50, 8), }` padded with spaces and ended by "\n" so
// the data starts at a multiple of 64 bytes, then the raw elements in C order.
// Supported: little-endian float32, int32, int64 and uint8 in C order, versions 1.0 and 2.0. Everything else
// (Fortran order, big endian, object arrays, other dtypes, 3.0 headers, truncated data) is an error naming the file.
import { writeFileAtomic } from "../util/atomic.js";
import { readWhole } from "./dataset.js";

export type NpyDType = "float32" | "int32" | "int64" | "uint8";
export type NpyData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

export interface NpyArray {
  dtype: NpyDType;
  shape: number[]; // [] for a scalar; any dimension may be 0
  data: NpyData; // prod(shape) elements, C order
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const ALIGN = 64;

// descr string -> dtype; '|u1' and '<u1' both mean one unsigned byte ('|' = byte order not applicable).
const DESCRS: Record<string, NpyDType> = { "<f4": "float32", "<i4": "int32", "<i8": "int64", "|u1": "uint8", "<u1": "uint8" };
const WRITE_DESCR: Record<NpyDType, string> = { float32: "<f4", int32: "<i4", int64: "<i8", uint8: "|u1" };
const ITEM_BYTES: Record<NpyDType, number> = { float32: 4, int32: 4, int64: 8, uint8: 1 };

// Typed arrays view memory in the host's byte order; the format is little endian.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("npy: expected a little-endian host");

export async function readNpy(path: string): Promise<NpyArray> {
  return parseNpy(await readWhole("npy", path), path);
}

// Parses a whole .npy file held in memory; `name` is used in error messages.
export function parseNpy(bytes: Uint8Array, name: string): NpyArray {
  const fail = (what: string) => new Error(`npy: ${name}: ${what}`);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw fail("expected the \\x93NUMPY magic, got another file type");
  const major = bytes[6];
  const minor = bytes[7];
  if ((major !== 1 && major !== 2) || minor !== 0) throw fail(`expected format version 1.0 or 2.0, got ${major}.${minor}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw fail("expected a header length, got a truncated file");
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > bytes.length) throw fail(`expected a ${headerLen}-byte header, got ${bytes.length - 8 - lenBytes} bytes`);
  const header = new TextDecoder("latin1").decode(bytes.subarray(8 + lenBytes, dataStart));
  const { dtype, shape } = parseHeader(header, fail);

  const n = shape.reduce((a, b) => a * b, 1);
  const want = n * ITEM_BYTES[dtype];
  const got = bytes.length - dataStart;
  if (got !== want) throw fail(`expected ${want} data bytes for ${dtype} (${shape.join(", ")}), got ${got}${got < want ? " (truncated)" : ""}`);
  // Copy into a fresh, aligned ArrayBuffer: the data offset need not be a multiple of the element size (and a
  // Node Buffer's slice() would be a view, not a copy).
  const copy = new Uint8Array(want);
  copy.set(bytes.subarray(dataStart, dataStart + want));
  const raw = copy.buffer;
  const Ctor = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array }[dtype];
  return { dtype, shape, data: new Ctor(raw) };
}

// The header is a Python dict literal; numpy always writes these three keys, in any order.
function parseHeader(header: string, fail: (what: string) => Error): { dtype: NpyDType; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const order = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr) throw fail(`expected a 'descr' string in the header, got ${JSON.stringify(header.trim())}`);
  if (!order) throw fail(`expected 'fortran_order' in the header, got ${JSON.stringify(header.trim())}`);
  if (!shapeM) throw fail(`expected a 'shape' tuple in the header, got ${JSON.stringify(header.trim())}`);
  const dtype = DESCRS[descr[1]];
  if (!dtype) {
    const what = descr[1].startsWith(">") ? " (big endian)" : descr[1].includes("O") ? " (object array)" : "";
    throw fail(`expected dtype <f4, <i4, <i8 or |u1, got '${descr[1]}'${what}`);
  }
  if (order[1] === "True") throw fail("expected C order, got fortran_order True");
  const dims = shapeM[1].split(",").map((s) => s.trim()).filter((s) => s !== "");
  const shape = dims.map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  if (shape.some((d) => !Number.isSafeInteger(d))) throw fail(`expected a shape of non-negative integers, got (${shapeM[1]})`);
  return { dtype, shape };
}

function dtypeOf(data: NpyData): NpyDType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  return "uint8";
}

// The bytes of a .npy file (version 1.0 unless the header needs 2.0) holding data in C order with this shape.
export function encodeNpy(data: NpyData, shape: readonly number[]): Uint8Array {
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new Error(`npy: expected a shape of non-negative integers, got (${shape.join(", ")})`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`npy: expected ${n} elements for shape (${shape.join(", ")}), got ${data.length}`);
  const dtype = dtypeOf(data);
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '${WRITE_DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  // Pad so that magic + version + length + header (ending in "\n") is a multiple of 64 bytes.
  let major = 1;
  let pre = 10;
  let total = Math.ceil((pre + dict.length + 1) / ALIGN) * ALIGN;
  if (total - pre > 0xffff) {
    major = 2;
    pre = 12;
    total = Math.ceil((pre + dict.length + 1) / ALIGN) * ALIGN;
  }
  const header = dict + " ".repeat(total - pre - dict.length - 1) + "\n";
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[pre + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

// Writes atomically: a reader never sees a half-written file, even if the process dies mid-write.
export async function writeNpy(path: string, data: NpyData, shape: readonly number[]): Promise<void> {
  await writeFileAtomic(path, encodeNpy(data, shape));
}

// Class labels as Int32Array: accepts int64, int32 or uint8 arrays of shape (N,) and checks 0 <= label < classes
// (classes defaults to 2^31, i.e. only non-negative and representable).
export function labelsToInt32(arr: NpyArray, name: string, classes = 2 ** 31): Int32Array {
  if (arr.dtype === "float32") throw new Error(`npy: ${name}: expected integer labels, got float32`);
  if (arr.shape.length !== 1) throw new Error(`npy: ${name}: expected labels of shape (N), got (${arr.shape.join(", ")})`);
  const out = new Int32Array(arr.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = Number(arr.data[i]);
    if (!(v >= 0 && v < classes)) throw new Error(`npy: ${name}: expected labels in [0, ${classes}), got ${arr.data[i]} at index ${i}`);
    out[i] = v;
  }
  return out;
}
