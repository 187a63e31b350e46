// NPY read/write: round trips of every dtype and awkward shapes, files written by numpy (test/fixtures), and
// every rejected input. Values must come back bit-exact (no tolerance: nothing is computed).
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { encodeNpy, labelsToInt32, parseNpy, readNpy, writeNpy, type NpyData } from "../../data/npy.js";

const FIXTURES = join(import.meta.dirname, "../fixtures");
const dir = mkdtempSync(join(tmpdir(), "npy-test-"));

const SHAPES = [[], [0], [3, 0], [1], [7], [2, 3, 5], [1031]];
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

function sample(dtype: string, n: number): NpyData {
  if (dtype === "float32") return Float32Array.from({ length: n }, (_, i) => (i - 3.25) * 1.5e-3 * (i % 7 === 0 ? -1e30 : 1));
  if (dtype === "int32") return Int32Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1) * i * 65537);
  if (dtype === "int64") return BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * (i % 2 ? -(2n ** 40n) : 3n));
  return Uint8Array.from({ length: n }, (_, i) => (i * 37) & 255);
}

// A .npy file with an arbitrary header dict, padded like numpy's, for the error cases.
function rawNpy(dict: string, data: Uint8Array, version = [1, 0]): Uint8Array {
  const header = dict + " ".repeat(63 - ((10 + dict.length) % 64)) + "\n";
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version[0], version[1], header.length & 255, header.length >> 8]);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(data, 10 + header.length);
  return out;
}

describe("round trip", () => {
  for (const dtype of ["float32", "int32", "int64", "uint8"]) {
    for (const shape of SHAPES) {
      it(`${dtype} (${shape})`, async () => {
        const data = sample(dtype, numel(shape));
        const bytes = encodeNpy(data, shape);
        const dataStart = bytes.length - data.byteLength;
        expect(bytes[dataStart - 1]).toBe(0x0a); // the header ends in "\n"
        expect(dataStart % 64).toBe(0); // numpy's alignment
        const back = parseNpy(bytes, "mem");
        expect(back.dtype).toBe(dtype);
        expect(back.shape).toEqual(shape);
        expect(back.data).toEqual(data);
        const path = join(dir, `${dtype}-${shape.join("x")}.npy`);
        await writeNpy(path, data, shape);
        expect((await readNpy(path)).data).toEqual(data);
      });
    }
  }
  it("uses format 2.0 when the header exceeds 65535 bytes", () => {
    const shape = new Array<number>(25000).fill(1);
    const bytes = encodeNpy(new Float32Array([4.5]), shape);
    expect([bytes[6], bytes[7]]).toEqual([2, 0]);
    const back = parseNpy(bytes, "mem");
    expect(back.shape.length).toBe(25000);
    expect(back.data[0]).toBe(4.5);
  });
  it("writes atomically, replacing an existing file and leaving no temporary files", async () => {
    const sub = mkdtempSync(join(dir, "atomic-"));
    const path = join(sub, "a.npy");
    await writeNpy(path, new Int32Array([1, 2, 3]), [3]);
    await writeNpy(path, new Int32Array([4, 5]), [2]);
    expect((await readNpy(path)).data).toEqual(new Int32Array([4, 5]));
    expect(readdirSync(sub)).toEqual(["a.npy"]);
  });
});

describe("files written by numpy", () => {
  it("reads float32, int64 and int32 arrays", async () => {
    const train = await readNpy(join(FIXTURES, "knn-train.npy"));
    expect(train.dtype).toBe("float32");
    expect(train.shape).toEqual([50, 8]);
    const trainLabels = await readNpy(join(FIXTURES, "knn-train-labels.npy"));
    expect(trainLabels.dtype).toBe("int64");
    // generate.py labels the training rows i % 8.
    expect(Array.from(labelsToInt32(trainLabels, "knn-train-labels.npy", 8))).toEqual(Array.from({ length: 50 }, (_, i) => i % 8));
    const testLabels = await readNpy(join(FIXTURES, "knn-test-labels.npy"));
    expect(testLabels.dtype).toBe("int32");
    expect(testLabels.shape).toEqual([20]);
    expect((await readNpy(join(FIXTURES, "knn-test.npy"))).shape).toEqual([20, 8]);
  });

  // The k-NN contract files agree with the algorithm test/fixtures/README.md describes (DINO's weighted vote), so
  // the k-NN command's contract test can trust them.
  it("knn-expected.json follows from the k-NN files as documented", async () => {
    const expected = JSON.parse(readFileSync(join(FIXTURES, "knn-expected.json"), "utf8"));
    const read = async (n: string) => (await readNpy(join(FIXTURES, n))).data as Float32Array;
    const [train, test] = [await read("knn-train.npy"), await read("knn-test.npy")];
    const trainLabels = labelsToInt32(await readNpy(join(FIXTURES, "knn-train-labels.npy")), "train", 8);
    const testLabels = labelsToInt32(await readNpy(join(FIXTURES, "knn-test-labels.npy")), "test", 8);
    const row = (a: Float32Array, i: number) => {
      const r = Array.from(a.subarray(i * 8, i * 8 + 8));
      const norm = Math.hypot(...r);
      return r.map((v) => v / norm);
    };
    for (const k of [10, 20]) {
      let top1 = 0;
      let top5 = 0;
      const predictions: number[] = [];
      for (let i = 0; i < 20; i++) {
        const q = row(test, i);
        const sims = Array.from({ length: 50 }, (_, j) => ({ j, s: row(train, j).reduce((acc, v, d) => acc + v * q[d], 0) }));
        sims.sort((a, b) => b.s - a.s);
        const votes = new Array<number>(expected.classes).fill(0);
        for (const { j, s } of sims.slice(0, k)) votes[trainLabels[j]] += Math.exp(s / expected.temperature);
        const ranked = votes.map((v, c) => ({ v, c })).sort((a, b) => b.v - a.v).map((e) => e.c);
        predictions.push(ranked[0]);
        if (ranked[0] === testLabels[i]) top1++;
        if (ranked.slice(0, 5).includes(testLabels[i])) top5++;
      }
      expect({ top1: (top1 * 100) / 20, top5: (top5 * 100) / 20, predictions }, `k=${k}`).toEqual(expected.results[String(k)]);
    }
  });
});

describe("labelsToInt32", () => {
  const arr = (data: NpyData, shape: number[]) => parseNpy(encodeNpy(data, shape), "mem");
  it("converts int64, int32 and uint8", () => {
    expect(Array.from(labelsToInt32(arr(new BigInt64Array([0n, 9n]), [2]), "l", 10))).toEqual([0, 9]);
    expect(Array.from(labelsToInt32(arr(new Int32Array([3]), [1]), "l"))).toEqual([3]);
    expect(Array.from(labelsToInt32(arr(new Uint8Array([255]), [1]), "l"))).toEqual([255]);
  });
  it("rejects out-of-range, non-integer and non-vector labels", () => {
    expect(() => labelsToInt32(arr(new BigInt64Array([1n, -1n]), [2]), "l.npy")).toThrow("npy: l.npy: expected labels in [0, 2147483648), got -1 at index 1");
    expect(() => labelsToInt32(arr(new BigInt64Array([2n ** 40n]), [1]), "l.npy")).toThrow("got 1099511627776 at index 0");
    expect(() => labelsToInt32(arr(new Int32Array([0, 10]), [2]), "l.npy", 10)).toThrow("expected labels in [0, 10), got 10 at index 1");
    expect(() => labelsToInt32(arr(new Float32Array([1]), [1]), "l.npy")).toThrow("expected integer labels, got float32");
    expect(() => labelsToInt32(arr(new Int32Array([1, 2]), [1, 2]), "l.npy")).toThrow("expected labels of shape (N), got (1, 2)");
  });
});

describe("errors name the file and what was found", () => {
  const f4 = new Uint8Array(8);
  const cases: [string, Uint8Array, string][] = [
    ["Fortran order", rawNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", f4), "expected C order, got fortran_order True"],
    ["big endian", rawNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", f4), "expected dtype <f4, <i4, <i8 or |u1, got '>f4' (big endian)"],
    ["object array", rawNpy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", f4), "expected dtype <f4, <i4, <i8 or |u1, got '|O' (object array)"],
    ["float64", rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", f4), "expected dtype <f4, <i4, <i8 or |u1, got '<f8'"],
    ["truncated data", rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f4), "expected 12 data bytes for float32 (3), got 8 (truncated)"],
    ["trailing data", rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f4), "expected 4 data bytes for float32 (1), got 8"],
    ["no shape", rawNpy("{'descr': '<f4', 'fortran_order': False, }", f4), "expected a 'shape' tuple in the header"],
    ["bad shape", rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", f4), "expected a shape of non-negative integers, got (-2,)"],
    ["version 3.0", rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f4, [3, 0]), "expected format version 1.0 or 2.0, got 3.0"],
    ["not npy", new TextEncoder().encode("hello, world"), "expected the \\x93NUMPY magic"],
    ["truncated header", rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f4).subarray(0, 40), "expected a 118-byte header, got 30 bytes"],
  ];
  for (const [what, bytes, message] of cases) {
    it(what, async () => {
      expect(() => parseNpy(bytes, "x.npy")).toThrow(`npy: x.npy: ${message}`);
      const path = join(dir, `bad-${what.replace(/ /g, "-")}.npy`);
      writeFileSync(path, bytes);
      await expect(readNpy(path)).rejects.toThrow(`npy: ${path}: ${message}`);
    });
  }
  it("encode checks the element count and shape", () => {
    expect(() => encodeNpy(new Float32Array(5), [2, 3])).toThrow("npy: expected 6 elements for shape (2, 3), got 5");
    expect(() => encodeNpy(new Float32Array(0), [-1])).toThrow("npy: expected a shape of non-negative integers, got (-1)");
  });
});
