// MATLAB MAT-file level 5 (what `save` writes up to -v7, and scipy.io.savemat), read far enough for numeric arrays:
// Flowers102's imagelabels.mat and setid.mat. From MathWorks' "MAT-File Format" (R2018a):
// - a 128-byte header: 116 bytes of text, 8 bytes of subsystem offset, the version 0x0100 and the endian indicator
//   'MI' as a 16-bit value written in the file's byte order (bytes "IM": little-endian, "MI": big-endian);
// - then data elements, each an 8-byte tag (uint32 type, uint32 byte count) and its data padded to 8 bytes; a
//   "small" element packs type and count (< 5 bytes) into the tag's first 4 bytes (count in the upper 16 bits) and
//   its data into the other 4;
// - a variable is a miMATRIX element holding sub-elements: array flags (class in the low byte, complex/global/
//   logical bits above), dimensions (int32), name (int8), then per class the data: for the numeric classes the real
//   part, stored in any numeric type (MATLAB writes a double array of small integers as uint8), column-major;
// - a miCOMPRESSED element holds one zlib-deflated miMATRIX element, and is not padded.
// Cell arrays, structs, objects, sparse and complex arrays and characters are recognised by their header (class,
// dimensions, name) and refused when asked for numbers. MATLAB 7.3 files are HDF5 files behind a MATLAB text header.
import { inflateSync } from "node:zlib";
import { basename } from "node:path";
import { readWhole } from "./dataset.js";

// Array classes (mxCLASS) by their number in the array flags.
const CLASSES = ["", "cell", "struct", "object", "char", "sparse", "double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "function", "opaque"] as const;
export type MatClass = Exclude<(typeof CLASSES)[number], "">;
const NUMERIC = new Set<MatClass>(["double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]);

// Data types (miTYPE), and the byte size of the numeric ones.
const MI = { int8: 1, uint8: 2, int16: 3, uint16: 4, int32: 5, uint32: 6, single: 7, double: 9, int64: 12, uint64: 13, matrix: 14, compressed: 15, utf8: 16 };
const MI_SIZE: Record<number, number> = {
  [MI.int8]: 1, [MI.uint8]: 1, [MI.int16]: 2, [MI.uint16]: 2, [MI.int32]: 4, [MI.uint32]: 4, [MI.single]: 4, [MI.double]: 8, [MI.int64]: 8, [MI.uint64]: 8,
};
const NAME_TYPES = [MI.int8, MI.uint8, MI.utf8]; // int8 as the format says; uint8 and utf8 from other writers

const FLAG_COMPLEX = 0x08;
const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

export interface MatVariable {
  name: string;
  className: MatClass;
  dims: number[];
  complex: boolean;
  real?: Float64Array; // (prod(dims)) column-major; numeric classes only
}

export class Mat5File {
  constructor(
    readonly path: string,
    readonly bigEndian: boolean,
    readonly variables: MatVariable[],
  ) {}

  // The values of a real numeric variable, column-major, with its dimensions.
  numeric(name: string): { dims: number[]; values: Float64Array } {
    const v = this.variables.find((x) => x.name === name);
    if (!v) {
      const names = this.variables.map((x) => x.name).filter((n) => n !== "");
      throw new Error(`mat5: expected a variable "${name}" in ${this.path}, found ${names.length ? names.join(", ") : "none"}`);
    }
    const kind = v.complex ? `complex ${v.className}` : v.className;
    const what = `${/^[aeio]/.test(kind) ? "an" : "a"} ${kind} array`;
    if (!NUMERIC.has(v.className) || v.complex || !v.real) throw new Error(`mat5: expected "${name}" in ${this.path} to be a real numeric array, got ${what}`);
    return { dims: v.dims, values: v.real };
  }
}

export async function readMat5(path: string): Promise<Mat5File> {
  return parseMat5(path, await readWhole("mat5", path));
}

// Reads the elements of one buffer (the file after its header, or an inflated miCOMPRESSED element).
class Reader {
  private readonly view: DataView;

  constructor(
    private readonly path: string,
    readonly bytes: Uint8Array,
    private readonly little: boolean,
    private readonly where: string, // "" for the file, " (in the compressed element at byte N)" inside one
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  error(what: string): Error {
    return new Error(`mat5: expected a MAT v5 file in ${this.path}, got ${what}${this.where}`);
  }

  u32(at: number): number {
    return this.view.getUint32(at, this.little);
  }

  // The element starting at `at`: its type, data range and where the next one starts.
  element(at: number, padded: boolean): { type: number; start: number; size: number; next: number } {
    if (at + 8 > this.bytes.length) throw this.error(`a file truncated at byte ${this.bytes.length} (a data element's tag at byte ${at} needs 8)`);
    const first = this.u32(at);
    if (first >>> 16 !== 0) {
      const size = first >>> 16;
      if (size > 4) throw this.error(`a small data element of ${size} bytes at byte ${at} (at most 4 fit)`);
      return { type: first & 0xffff, start: at + 4, size, next: at + 8 };
    }
    const size = this.u32(at + 4);
    const end = at + 8 + size;
    if (end > this.bytes.length) throw this.error(`a file truncated at byte ${this.bytes.length} (the element at byte ${at} needs ${size} bytes after its tag)`);
    return { type: first, start: at + 8, size, next: padded ? at + 8 + Math.ceil(size / 8) * 8 : end };
  }

  // Numeric data of type `type` as float64; 64-bit integers must be exact in a double.
  numbers(type: number, start: number, size: number, at: number): Float64Array {
    const width = MI_SIZE[type];
    if (width === undefined) throw this.error(`data type ${type} where numbers belong (element at byte ${at})`);
    if (size % width !== 0) throw this.error(`${size} bytes of ${width}-byte numbers (element at byte ${at})`);
    const n = size / width;
    const out = new Float64Array(n);
    const v = this.view;
    const le = this.little;
    for (let i = 0; i < n; i++) {
      const o = start + i * width;
      switch (type) {
        case MI.int8: out[i] = v.getInt8(o); break;
        case MI.uint8: out[i] = v.getUint8(o); break;
        case MI.int16: out[i] = v.getInt16(o, le); break;
        case MI.uint16: out[i] = v.getUint16(o, le); break;
        case MI.int32: out[i] = v.getInt32(o, le); break;
        case MI.uint32: out[i] = v.getUint32(o, le); break;
        case MI.single: out[i] = v.getFloat32(o, le); break;
        case MI.double: out[i] = v.getFloat64(o, le); break;
        default: {
          const big = type === MI.int64 ? v.getBigInt64(o, le) : v.getBigUint64(o, le);
          if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < -BigInt(Number.MAX_SAFE_INTEGER)) throw this.error(`a 64-bit integer ${big} beyond 2^53 (element at byte ${at})`);
          out[i] = Number(big);
        }
      }
    }
    return out;
  }

  // The miMATRIX element whose data spans [start, start + size).
  matrix(start: number, size: number, at: number): MatVariable | undefined {
    if (size === 0) return undefined; // an empty placeholder (MATLAB writes them inside cells)
    const end = start + size;
    const sub = (p: number, what: string) => {
      const e = this.element(p, true);
      if (e.start + e.size > end) throw this.error(`a variable's ${what} running past its element (at byte ${at})`);
      return e;
    };
    const flags = sub(start, "array flags");
    if (flags.type !== MI.uint32 || flags.size !== 8) throw this.error(`array flags of type ${flags.type} and ${flags.size} bytes (variable at byte ${at})`);
    const word = this.u32(flags.start);
    const className = CLASSES[word & 0xff];
    if (!className) throw this.error(`array class ${word & 0xff} (variable at byte ${at})`);
    const complex = (word & (FLAG_COMPLEX << 8)) !== 0;
    // Every class but opaque (MATLAB's string, table and function-workspace objects) has dimensions before the name.
    let dims: number[] = [];
    let p = flags.next;
    if (className !== "opaque") {
      const dimsEl = sub(p, "dimensions");
      // int32 as the format says; some writers use uint32
      if ((dimsEl.type !== MI.int32 && dimsEl.type !== MI.uint32) || dimsEl.size < 8 || dimsEl.size % 4 !== 0)
        throw this.error(`dimensions of type ${dimsEl.type} and ${dimsEl.size} bytes (variable at byte ${at})`);
      dims = Array.from(this.numbers(MI.int32, dimsEl.start, dimsEl.size, at));
      if (dims.some((d) => d < 0)) throw this.error(`negative dimensions ${dims.join("x")} (variable at byte ${at})`);
      p = dimsEl.next;
    }
    const nameEl = sub(p, "name");
    if (!NAME_TYPES.includes(nameEl.type)) throw this.error(`a variable name of type ${nameEl.type} (variable at byte ${at})`);
    const name = Buffer.from(this.bytes.subarray(nameEl.start, nameEl.start + nameEl.size)).toString("utf8");
    const v: MatVariable = { name, className, dims, complex };
    if (!NUMERIC.has(className)) return v;
    const realEl = sub(nameEl.next, `real part ("${name}")`);
    const real = this.numbers(realEl.type, realEl.start, realEl.size, at);
    const count = dims.reduce((a, b) => a * b, 1);
    if (real.length !== count) throw this.error(`${real.length} values for "${name}" of dimensions ${dims.join("x")} (${count}; variable at byte ${at})`);
    v.real = real;
    return v;
  }
}

export function parseMat5(path: string, bytes: Uint8Array): Mat5File {
  const name = basename(path);
  const text = Buffer.from(bytes.subarray(0, Math.min(116, bytes.length))).toString("latin1");
  const hdf5At = (o: number) => bytes.length >= o + 8 && HDF5_SIGNATURE.every((b, k) => bytes[o + k] === b);
  // MATLAB 7.3 files keep a 512-byte user block (the MATLAB text header) before the HDF5 superblock.
  if (text.startsWith("MATLAB 7.3") || hdf5At(0) || hdf5At(512))
    throw new Error(`mat5: expected a MAT v5 file in ${path}, got a MATLAB v7.3 (HDF5) file; re-save it with save('${name}', '-v7')`);
  if (bytes.length < 128) {
    const what = text.startsWith("MATLAB") ? `a file truncated at byte ${bytes.length} (the header is 128 bytes)` : `${bytes.length} bytes (a MAT file starts with a 128-byte header)`;
    throw new Error(`mat5: expected a MAT v5 file in ${path}, got ${what}`);
  }
  const endian = String.fromCharCode(bytes[126], bytes[127]);
  if (endian !== "IM" && endian !== "MI") throw new Error(`mat5: expected a MAT v5 file in ${path}, got no endian indicator "IM" or "MI" at byte 126 (not a MAT file, or a MAT v4 file)`);
  const little = endian === "IM";
  const version = new DataView(bytes.buffer, bytes.byteOffset + 124, 2).getUint16(0, little);
  if (version !== 0x0100) throw new Error(`mat5: expected a MAT v5 file in ${path}, got version 0x${version.toString(16).padStart(4, "0")} (v5 files have 0x0100)`);

  const file = new Reader(path, bytes, little, "");
  const variables: MatVariable[] = [];
  for (let at = 128; at < bytes.length; ) {
    const el = file.element(at, false);
    let v: MatVariable | undefined;
    if (el.type === MI.matrix) v = file.matrix(el.start, el.size, at);
    else if (el.type === MI.compressed) {
      let inflated: Buffer;
      try {
        inflated = inflateSync(bytes.subarray(el.start, el.start + el.size));
      } catch (e) {
        throw file.error(`a damaged or truncated compressed element at byte ${at} (zlib: ${(e as Error).message})`);
      }
      const inner = new Reader(path, inflated, little, ` (in the compressed element at byte ${at})`);
      const m = inner.element(0, true);
      if (m.type !== MI.matrix) throw inner.error(`data type ${m.type} where a variable (miMATRIX, 14) belongs`);
      v = inner.matrix(m.start, m.size, 0);
    } else throw file.error(`data type ${el.type} at byte ${at} where a variable (miMATRIX 14 or miCOMPRESSED 15) belongs`);
    if (v) variables.push(v);
    at = el.next;
  }
  return new Mat5File(path, !little, variables);
}
