// MAT-file level 5 writer for the tests, written from MathWorks' "MAT-File Format" (not from data/mat5.ts): the
// 128-byte header in either byte order, miMATRIX elements (array flags, dimensions, name, data) with sub-elements in
// the small format where they fit in 4 bytes as MATLAB writes them, optionally each variable inside a zlib
// miCOMPRESSED element (what `save` writes by default since v7). Numeric, char, cell, struct and sparse arrays.
import { deflateSync } from "node:zlib";
import { concat } from "./fixtures.js";

export type MatNumericType = "int8" | "uint8" | "int16" | "uint16" | "int32" | "uint32" | "single" | "double" | "int64" | "uint64";

// miTYPE numbers and byte sizes of the numeric data types; mxCLASS numbers of the array classes.
const MI: Record<MatNumericType, [number, number]> = {
  int8: [1, 1], uint8: [2, 1], int16: [3, 2], uint16: [4, 2], int32: [5, 4], uint32: [6, 4], single: [7, 4], double: [9, 8], int64: [12, 8], uint64: [13, 8],
};
const MX: Record<string, number> = { cell: 1, struct: 2, char: 4, sparse: 5, double: 6, single: 7, int8: 8, uint8: 9, int16: 10, uint16: 11, int32: 12, uint32: 13, int64: 14, uint64: 15 };
const MI_MATRIX = 14;
const MI_COMPRESSED = 15;

export interface MatArray {
  name: string;
  className?: MatNumericType | "char" | "cell" | "struct" | "sparse"; // default double
  dims?: number[]; // default [1, values.length]
  values?: number[]; // numeric: the real part, column-major; char: character codes; sparse: the non-zeros
  storedAs?: MatNumericType; // the data type of the real part (MATLAB stores small integers as uint8); default the class
  imag?: number[]; // complex: the imaginary part
  cells?: MatArray[]; // cell: the elements; struct: one field value per entry (its name is the field name)
}

export interface MatFileOptions {
  bigEndian?: boolean;
  compress?: boolean; // each variable in an miCOMPRESSED element
  text?: string; // the header text; default MATLAB's
}

class Out {
  constructor(readonly little: boolean) {}

  numbers(type: MatNumericType, values: number[]): Uint8Array {
    const [, size] = MI[type];
    const out = new Uint8Array(values.length * size);
    const v = new DataView(out.buffer);
    values.forEach((x, i) => {
      const o = i * size;
      const le = this.little;
      switch (type) {
        case "int8": v.setInt8(o, x); break;
        case "uint8": v.setUint8(o, x); break;
        case "int16": v.setInt16(o, x, le); break;
        case "uint16": v.setUint16(o, x, le); break;
        case "int32": v.setInt32(o, x, le); break;
        case "uint32": v.setUint32(o, x, le); break;
        case "single": v.setFloat32(o, x, le); break;
        case "double": v.setFloat64(o, x, le); break;
        case "int64": v.setBigInt64(o, BigInt(x), le); break;
        case "uint64": v.setBigUint64(o, BigInt(x), le); break;
      }
    });
    return out;
  }

  // A data element: small format (type and size in one word, data in the next 4 bytes) when it fits and `small`,
  // otherwise an 8-byte tag and the data padded to 8 bytes.
  element(type: number, data: Uint8Array, small = true): Uint8Array {
    if (small && data.length > 0 && data.length <= 4) {
      const out = new Uint8Array(8);
      new DataView(out.buffer).setUint32(0, (data.length << 16) | type, this.little);
      out.set(data, 4);
      return out;
    }
    const out = new Uint8Array(8 + Math.ceil(data.length / 8) * 8);
    const v = new DataView(out.buffer);
    v.setUint32(0, type, this.little);
    v.setUint32(4, data.length, this.little);
    out.set(data, 8);
    return out;
  }

  matrix(a: MatArray): Uint8Array {
    const cls = a.className ?? "double";
    const values = a.values ?? [];
    const dims = a.dims ?? [1, cls === "cell" || cls === "struct" ? (a.cells?.length ?? 0) : values.length];
    const flags = MX[cls] | ((a.imag ? 0x08 : 0) << 8);
    const parts = [
      this.element(MI.uint32[0], this.numbers("uint32", [flags, cls === "sparse" ? values.length : 0])),
      this.element(MI.int32[0], this.numbers("int32", dims)),
      this.element(MI.int8[0], new TextEncoder().encode(a.name)),
    ];
    if (cls === "char") parts.push(this.element(MI.uint16[0], this.numbers("uint16", values)));
    else if (cls === "cell") for (const c of a.cells ?? []) parts.push(this.matrix({ ...c, name: "" }));
    else if (cls === "struct") {
      const fields = a.cells ?? [];
      const names = new Uint8Array(32 * fields.length);
      fields.forEach((f, k) => names.set(new TextEncoder().encode(f.name), 32 * k));
      parts.push(this.element(MI.int32[0], this.numbers("int32", [32])), this.element(MI.int8[0], names));
      for (const f of fields) parts.push(this.matrix({ ...f, name: "" }));
    } else if (cls === "sparse") {
      // One non-zero per column from the top: row indices, column starts, values.
      parts.push(this.element(MI.int32[0], this.numbers("int32", values.map(() => 0))));
      parts.push(this.element(MI.int32[0], this.numbers("int32", Array.from({ length: dims[1] + 1 }, (_, j) => Math.min(j, values.length)))));
      parts.push(this.element(MI.double[0], this.numbers("double", values)));
    } else {
      const stored = a.storedAs ?? cls;
      parts.push(this.element(MI[stored][0], this.numbers(stored, values)));
      if (a.imag) parts.push(this.element(MI[stored][0], this.numbers(stored, a.imag)));
    }
    return this.element(MI_MATRIX, concat(parts), false);
  }
}

export function matHeader(text: string, little: boolean, version = 0x0100): Uint8Array {
  const out = new Uint8Array(128).fill(0x20);
  out.set(new TextEncoder().encode(text.slice(0, 116)));
  out.fill(0, 116, 124); // no subsystem data
  new DataView(out.buffer).setUint16(124, version, little);
  // The indicator is the characters 'M' 'I' written as one 16-bit value: "IM" in a little-endian file.
  out.set(little ? [0x49, 0x4d] : [0x4d, 0x49], 126);
  return out;
}

export function mat5Bytes(vars: MatArray[], opts: MatFileOptions = {}): Uint8Array {
  const w = new Out(!opts.bigEndian);
  const text = opts.text ?? `MATLAB 5.0 MAT-file, Platform: ${opts.bigEndian ? "SOL2" : "GLNXA64"}, Created on: Fri Dec  4 09:00:00 2026`;
  const elements = vars.map((v) => {
    const m = w.matrix(v);
    if (!opts.compress) return m;
    const z = deflateSync(m);
    const tag = new Uint8Array(8);
    const view = new DataView(tag.buffer);
    view.setUint32(0, MI_COMPRESSED, w.little);
    view.setUint32(4, z.length, w.little);
    return concat([tag, z]); // compressed elements are not padded
  });
  return concat([matHeader(text, w.little), ...elements]);
}

// The start of a MATLAB 7.3 file: the MATLAB text header in a 512-byte user block, then an HDF5 superblock.
export function mat73Bytes(): Uint8Array {
  const out = new Uint8Array(1024);
  out.set(matHeader("MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Fri Dec  4 09:00:00 2026 HDF5 schema 1.00 .", true, 0x0200));
  out.set([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0], 512);
  return out;
}
