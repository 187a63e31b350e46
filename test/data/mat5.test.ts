// The MAT v5 reader: every numeric class in both byte orders, plain and zlib-compressed, values stored in a
// narrower type than their class, small data elements, a file assembled byte by byte from the format's description,
// and a named error for each thing it refuses (not a MAT file, v7.3/HDF5, cell, struct, sparse, complex, char, a
// missing variable, truncated, zeroed and damaged files).
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { parseMat5, readMat5 } from "../../data/mat5.js";
import { type MatArray, type MatNumericType, mat5Bytes, mat73Bytes, matHeader } from "./mat5-writer.js";
import { concat, useTmpDir, writeFile } from "./fixtures.js";

const tmp = useTmpDir("mat5");
const F = "/data/x.mat"; // the path errors name

// Values each class holds exactly, including its extremes.
const RANGES: Record<MatNumericType, number[]> = {
  int8: [-128, -1, 0, 127],
  uint8: [0, 1, 200, 255],
  int16: [-32768, -300, 7, 32767],
  uint16: [0, 1020, 6149, 65535],
  int32: [-2147483648, -5, 8189, 2147483647],
  uint32: [0, 3, 70000, 4294967295],
  single: [-1.5, 0.25, 3, 16777216],
  double: [Math.PI, -0.1, 1e300, 5e-324],
  int64: [-(2 ** 53) + 1, -1, 0, 2 ** 53 - 1],
  uint64: [0, 1, 2 ** 40, 2 ** 53 - 1],
};
const TYPES = Object.keys(RANGES) as MatNumericType[];

describe("parseMat5", () => {
  for (const bigEndian of [false, true])
    for (const compress of [false, true])
      it(`reads every numeric class, ${bigEndian ? "big" : "little"}-endian, ${compress ? "compressed" : "plain"}`, () => {
        const vars: MatArray[] = TYPES.map((t) => ({ name: `v_${t}`, className: t, dims: [2, 2], values: RANGES[t] }));
        vars.push({ name: "one", values: [7], storedAs: "uint8" }); // 1 byte of data: a small element, and a 3-letter name
        const mat = parseMat5(F, mat5Bytes(vars, { bigEndian, compress }));
        expect(mat.bigEndian).toBe(bigEndian);
        expect(mat.variables.map((v) => v.name)).toEqual(vars.map((v) => v.name));
        for (const t of TYPES) {
          const { dims, values } = mat.numeric(`v_${t}`);
          expect([t, dims, Array.from(values)]).toEqual([t, [2, 2], RANGES[t]]);
          expect(mat.variables.find((v) => v.name === `v_${t}`)?.className).toBe(t);
        }
        expect(Array.from(mat.numeric("one").values)).toEqual([7]);
      });

  it("reads a double array stored as uint8, uint16 or int32, as MATLAB stores small integers", () => {
    const ids = [1, 2, 300, 8189];
    for (const storedAs of ["uint16", "int32", "single"] as const) {
      const mat = parseMat5(F, mat5Bytes([{ name: "trnid", values: ids, storedAs }], { compress: true }));
      expect([storedAs, mat.variables[0].className, Array.from(mat.numeric("trnid").values)]).toEqual([storedAs, "double", ids]);
    }
    const small = parseMat5(F, mat5Bytes([{ name: "labels", dims: [1, 4], values: [1, 2, 102, 77], storedAs: "uint8" }], { bigEndian: true }));
    expect(Array.from(small.numeric("labels").values)).toEqual([1, 2, 102, 77]);
  });

  it("reads a file assembled byte by byte from the format's description", () => {
    // Big-endian; variable "ab" = [1 2 3] of class double stored as uint8: flags, dims, a small-format name,
    // a small-format real part (3 bytes).
    const hex = [
      "0000000e 00000030", // miMATRIX, 48 bytes
      "00000006 00000008 00000006 00000000", // array flags: miUINT32, 8 bytes; class 6 (double), nzmax 0
      "00000005 00000008 00000001 00000003", // dimensions: miINT32, 8 bytes; 1 x 3
      "00020001 61620000", // name: small element, 2 bytes of miINT8, "ab"
      "00030002 01020300", // real part: small element, 3 bytes of miUINT8
    ].join("").replace(/ /g, "");
    const body = Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
    const mat = parseMat5(F, concat([matHeader("MATLAB 5.0 MAT-file", false), body]));
    expect(mat.variables).toEqual([{ name: "ab", className: "double", dims: [1, 3], complex: false, real: Float64Array.from([1, 2, 3]) }]);
  });

  it("names the file and what it is for each kind of array it refuses", () => {
    const mat = parseMat5(F, mat5Bytes([
      { name: "c", className: "cell", cells: [{ name: "", values: [1] }, { name: "", className: "char", values: [104, 105] }] },
      { name: "s", className: "struct", dims: [1, 1], cells: [{ name: "trnid", values: [1, 2] }] },
      { name: "sp", className: "sparse", dims: [3, 2], values: [5, 6] },
      { name: "z", values: [1, 0], imag: [0, 1] },
      { name: "str", className: "char", values: [..."labels"].map((ch) => ch.charCodeAt(0)) },
      { name: "ok", values: [1] },
    ], { compress: true }));
    expect(mat.variables.map((v) => [v.name, v.className, v.dims])).toEqual([["c", "cell", [1, 2]], ["s", "struct", [1, 1]], ["sp", "sparse", [3, 2]], ["z", "double", [1, 2]], ["str", "char", [1, 6]], ["ok", "double", [1, 1]]]);
    const refuse = (name: string, what: string) => expect(() => mat.numeric(name)).toThrow(`mat5: expected "${name}" in ${F} to be a real numeric array, got ${what}`);
    refuse("c", "a cell array");
    refuse("s", "a struct array");
    refuse("sp", "a sparse array");
    refuse("z", "a complex double array");
    refuse("str", "a char array");
    expect(() => mat.numeric("labels")).toThrow(`mat5: expected a variable "labels" in ${F}, found c, s, sp, z, str, ok`);
    expect(() => parseMat5(F, mat5Bytes([])).numeric("labels")).toThrow(`mat5: expected a variable "labels" in ${F}, found none`);
  });

  it("refuses what is not a MAT v5 file, naming the file", () => {
    const bad = (bytes: Uint8Array, what: string | RegExp) => expect(() => parseMat5(F, bytes)).toThrow(what);
    bad(mat73Bytes(), `mat5: expected a MAT v5 file in ${F}, got a MATLAB v7.3 (HDF5) file; re-save it with save('x.mat', '-v7')`);
    bad(new TextEncoder().encode("banded/banded_0001.jpg\n".repeat(10)), `mat5: expected a MAT v5 file in ${F}, got no endian indicator "IM" or "MI" at byte 126`);
    bad(new Uint8Array(512), `mat5: expected a MAT v5 file in ${F}, got no endian indicator`);
    bad(new Uint8Array(20), `mat5: expected a MAT v5 file in ${F}, got 20 bytes (a MAT file starts with a 128-byte header)`);
    bad(matHeader("MATLAB 5.0 MAT-file", true).subarray(0, 100), `mat5: expected a MAT v5 file in ${F}, got a file truncated at byte 100 (the header is 128 bytes)`);
    bad(matHeader("MATLAB 5.0 MAT-file", true, 0x0300), `mat5: expected a MAT v5 file in ${F}, got version 0x0300`);
  });

  it("names truncated, zeroed and damaged files", () => {
    const plain = mat5Bytes([{ name: "labels", values: [1, 2, 3, 4, 5] }]);
    const bad = (bytes: Uint8Array, what: string | RegExp) => expect(() => parseMat5(F, bytes)).toThrow(what);
    bad(plain.subarray(0, plain.length - 8), new RegExp(`^mat5: expected a MAT v5 file in ${F}, got a file truncated at byte ${plain.length - 8} \\(the element at byte 128 needs`));
    bad(plain.subarray(0, 132), `mat5: expected a MAT v5 file in ${F}, got a file truncated at byte 132 (a data element's tag at byte 128 needs 8)`);
    const zeroed = plain.slice();
    zeroed.fill(0, 128);
    bad(zeroed, `mat5: expected a MAT v5 file in ${F}, got data type 0 at byte 128 where a variable (miMATRIX 14 or miCOMPRESSED 15) belongs`);
    const packed = mat5Bytes([{ name: "labels", values: [1, 2, 3, 4, 5] }], { compress: true });
    bad(packed.subarray(0, packed.length - 5), /^mat5: expected a MAT v5 file in \/data\/x.mat, got a file truncated at byte \d+ \(the element at byte 128 needs/);
    const garbled = packed.slice();
    for (let i = 140; i < garbled.length; i++) garbled[i] ^= 0x5a;
    bad(garbled, /^mat5: expected a MAT v5 file in \/data\/x.mat, got a damaged or truncated compressed element at byte 128 \(zlib: /);
    // A variable whose dimensions promise more values than it holds.
    const short = mat5Bytes([{ name: "labels", dims: [1, 9], values: [1, 2, 3] }]);
    bad(short, `mat5: expected a MAT v5 file in ${F}, got 3 values for "labels" of dimensions 1x9 (9; variable at byte 128)`);
    // A 64-bit integer a double cannot hold exactly.
    bad(mat5Bytes([{ name: "big", className: "uint64", values: [2 ** 60] }]), /got a 64-bit integer 1152921504606846976 beyond 2\^53/);
  });

  it("reads a file from disk and names a missing one", async () => {
    const path = writeFile(join(tmp, "setid.mat"), mat5Bytes([{ name: "trnid", values: [3, 1] }], { compress: true }));
    expect(Array.from((await readMat5(path)).numeric("trnid").values)).toEqual([3, 1]);
    await expect(readMat5(join(tmp, "none.mat"))).rejects.toThrow(`mat5: cannot read ${join(tmp, "none.mat")}: no such file or folder (ENOENT)`);
  });
});
