// Bad .npy files through `knn` (each of its four files in turn) and `features --input`: the container (magic,
// version, header fields, byte order, Fortran order, object arrays, truncation), the array (dtype, rank, rows,
// shapes that disagree) and the values (labels out of range, NaN rows). Each error names the file or its flag.
import { mkdir, rm } from "node:fs/promises";
import { describe } from "vitest";
import { type At, type BadCase, RAW_NODE, runCases, tempRoot } from "./harness.js";
import { images, npy, npyFile, tinyVit, f32Safetensors, write } from "./files.js";

const root = tempRoot("npy");

// ---- knn: a 50-row bank of 5 classes in 8 dimensions, 10 queries

const D = 8;
const features = (rows: number, seed: number) => new Float32Array(rows * D).map((_, i) => Math.sin(i * 12.9898 + seed) * 43758.5453 % 1);
const labels = (rows: number) => Int32Array.from({ length: rows }, (_, i) => i % 5);
const GOOD = {
  train: () => npy(features(50, 1), [50, D]),
  "train-labels": () => npy(labels(50), [50]),
  test: () => npy(features(10, 2), [10, D]),
  "test-labels": () => npy(labels(10), [10]),
};
type Role = keyof typeof GOOD;
const ROLES = Object.keys(GOOD) as Role[];

interface KnnCase {
  what: string;
  files?: Partial<Record<Role, () => Uint8Array>>; // replacements for the good files
  setup?: (at: At) => Promise<unknown>;
  flags?: string[];
  code?: 0 | 1 | 2; // default 1
  says: (string | RegExp)[] | ((at: At) => (string | RegExp)[]);
  never?: (string | RegExp)[];
}

function knnCase(c: KnnCase): BadCase {
  return {
    what: c.what,
    setup: async (at) => {
      for (const r of ROLES) await write(at(`${r}.npy`), (c.files?.[r] ?? GOOD[r])());
      await c.setup?.(at);
    },
    argv: (at) => ["knn", ...ROLES.flatMap((r) => [`--${r}`, at(`${r}.npy`)]), ...(c.flags ?? [])],
    code: c.code ?? 1,
    says: c.says,
    never: [RAW_NODE, ...(c.never ?? [])],
  };
}

// Defects of the container, each as it would hit any of the four files: the error names that file.
const CONTAINER: [string, (shape: number[], descr: string) => Uint8Array, string | RegExp][] = [
  ["bad magic", () => new TextEncoder().encode("label,feature\n1,2\n"), "NUMPY magic"],
  ["an empty file", () => new Uint8Array(0), "NUMPY magic"],
  ["format version 3.0", (shape, descr) => npyFile({ version: [3, 0], shape, descr }), "version 1.0 or 2.0, got 3.0"],
  ["Fortran order", (shape, descr) => npyFile({ fortran: true, shape, descr }), "fortran_order True"],
  ["big-endian", (shape, descr) => npyFile({ descr: descr.replace("<", ">"), shape }), "big endian"],
  ["an object array", (shape) => npyFile({ descr: "|O", shape, data: new Uint8Array(8 * shape.reduce((a, b) => a * b, 1)) }), "object array"],
  ["float64", (shape) => npyFile({ descr: "<f8", shape, data: new Uint8Array(8 * shape.reduce((a, b) => a * b, 1)) }), "got '<f8'"],
  ["truncated data", (shape, descr) => npyFile({ shape, descr, data: new Uint8Array(12) }), "truncated"],
  ["no shape in the header", () => npyFile({ header: "{'descr': '<f4', 'fortran_order': False, }" }), "'shape' tuple"],
  ["a negative dimension", (_, descr) => npyFile({ header: `{'descr': '${descr}', 'fortran_order': False, 'shape': (-1, 8), }` }), "non-negative integers"],
];
const SHAPES: Record<Role, [number[], string]> = { train: [[50, D], "<f4"], "train-labels": [[50], "<i4"], test: [[10, D], "<f4"], "test-labels": [[10], "<i4"] };

const containerCases: KnnCase[] = ROLES.flatMap((role) =>
  CONTAINER.map(([what, make, word]): KnnCase => ({
    what: `--${role}: ${what}`,
    files: { [role]: () => make(...SHAPES[role]) },
    says: (at) => [at(`${role}.npy`), word],
  })),
);

const pathCases: KnnCase[] = ROLES.flatMap((role) => [
  { what: `--${role}: a missing file`, setup: (at) => rm(at(`${role}.npy`)), says: (at: At) => [at(`${role}.npy`), /does not exist|no such file|not found/i] },
  {
    what: `--${role}: a folder`,
    setup: async (at) => {
      await rm(at(`${role}.npy`));
      await mkdir(at(`${role}.npy`));
    },
    says: (at: At) => [at(`${role}.npy`), /folder|directory/],
  },
]);

const nanAt = (rows: number, row: number, value = NaN) => () => {
  const x = features(rows, 3);
  x[row * D + 5] = value;
  return npy(x, [rows, D]);
};

const valueCases: KnnCase[] = [
  { what: "integer features", files: { train: () => npy(labels(50 * D), [50, D]) }, says: (at) => [at("train.npy"), "float32 features", "int32"] },
  { what: "features of rank 1", files: { test: () => npy(features(10, 2), [10 * D]) }, says: (at) => [at("test.npy"), "(N, D)"] },
  { what: "features of rank 3", files: { train: () => npy(features(50, 2), [50, 2, 4]) }, says: (at) => [at("train.npy"), "(N, D)"] },
  { what: "float labels", files: { "train-labels": () => npy(new Float32Array(50), [50]) }, says: (at) => [at("train-labels.npy"), "integer labels"] },
  { what: "labels of rank 2", files: { "test-labels": () => npy(labels(10), [10, 1]) }, says: (at) => [at("test-labels.npy"), "shape (N)"] },
  { what: "a negative label", files: { "train-labels": () => npy(labels(50).map((v, i) => (i === 7 ? -1 : v)), [50]) }, says: (at) => [at("train-labels.npy"), "got -1", /index 7|row 7/] },
  { what: "int64 labels past 2^31", files: { "test-labels": () => npy(BigInt64Array.from({ length: 10 }, (_, i) => (i === 3 ? 2n ** 40n : 1n)), [10]) }, says: (at) => [at("test-labels.npy"), "1099511627776", /index 3|row 3/] },
  { what: "a label of 2147483647", files: { "train-labels": () => npy(labels(50).map((v, i) => (i === 4 ? 2147483647 : v)), [50]) }, says: (at) => [at("train-labels.npy"), "2147483647", /row 4|index 4/] },
  { what: "fewer train labels than rows", files: { "train-labels": () => npy(labels(49), [49]) }, says: ["train-labels", "49"] },
  { what: "more test labels than rows", files: { "test-labels": () => npy(labels(11), [11]) }, says: ["test-labels", "11"] },
  { what: "test and train of different dimensions", files: { test: () => npy(features(10, 2).subarray(0, 10 * 6), [10, 6]) }, says: (at) => [at("test.npy"), /\(10, 6\)|dimension 6/] },
  { what: "a bank of 0 rows", files: { train: () => npy(new Float32Array(0), [0, D]), "train-labels": () => npy(new Int32Array(0), [0]) }, says: (at) => [at("train.npy"), /0 rows|no rows|empty|at least one/] },
  { what: "0 queries", files: { test: () => npy(new Float32Array(0), [0, D]), "test-labels": () => npy(new Int32Array(0), [0]) }, says: (at) => [at("test.npy"), /0 rows|no rows|empty|at least one/] },
  { what: "a NaN in a bank row", files: { train: nanAt(50, 17) }, says: (at) => [at("train.npy"), /row 17/, /NaN|finite/] },
  { what: "a NaN in a query", files: { test: nanAt(10, 6) }, says: (at) => [at("test.npy"), /row 6/, /NaN|finite/] },
  { what: "an infinity in a bank row", files: { train: nanAt(50, 0, -Infinity) }, says: (at) => [at("train.npy"), /row 0/, /Infinity|finite/] },
  // k beyond the bank: a row for k = 100 says that only the bank's 50 rows voted.
  { what: "--k 100 with a 50-row bank", flags: ["--k", "100"], code: 0, says: [/^\s*100\s.*\b50 used/m] },
  { what: "the default k list with a 50-row bank", code: 0, says: [/^\s*100\s.*\b50 used/m, /^\s*200\s.*\b50 used/m], never: [/^\s*(10|20)\s.*used/m] },
];

// ---- features --input: (N, 3, 16, 16) float32 for the tiny ViT

interface InputCase {
  what: string;
  input?: () => Uint8Array; // none: the case's setup makes x.npy
  setup?: (at: At) => Promise<unknown>;
  says: (string | RegExp)[];
}

function inputCase(c: InputCase): BadCase {
  return {
    what: `features --input: ${c.what}`,
    setup: async (at) => {
      await write(at("w.safetensors"), f32Safetensors(tinyVit()));
      if (c.input) await write(at("x.npy"), c.input());
      await c.setup?.(at);
    },
    argv: (at) => ["features", "--weights", at("w.safetensors"), "--input", at("x.npy"), "--out", at("f.npy"), "--heads", "2"],
    code: 1,
    says: (at) => [at("x.npy"), ...c.says],
    never: [RAW_NODE],
  };
}

const IMG = [2, 3, 16, 16];
const inputCases: InputCase[] = [
  { what: "bad magic", input: () => new Uint8Array(100), says: ["NUMPY magic"] },
  { what: "Fortran order", input: () => npyFile({ fortran: true, shape: IMG }), says: ["fortran_order True"] },
  { what: "big-endian", input: () => npyFile({ descr: ">f4", shape: IMG }), says: ["big endian"] },
  { what: "an object array", input: () => npyFile({ descr: "|O", shape: IMG, data: new Uint8Array(8 * 1536) }), says: ["object array"] },
  { what: "truncated", input: () => images(2).subarray(0, 1000), says: ["truncated"] },
  { what: "uint8 images", input: () => npy(new Uint8Array(1536), IMG), says: ["expected float32 (N, 3, H, W)", "uint8"] },
  { what: "rank 3", input: () => npy(new Float32Array(1536), [6, 16, 16]), says: ["expected float32 (N, 3, H, W)", "(6, 16, 16)"] },
  { what: "one channel", input: () => npy(new Float32Array(512), [2, 1, 16, 16]), says: ["expected float32 (N, 3, H, W)", "(2, 1, 16, 16)"] },
  { what: "channels last", input: () => npy(new Float32Array(1536), [2, 16, 16, 3]), says: ["expected float32 (N, 3, H, W)", "(2, 16, 16, 3)"] },
  { what: "a size not a multiple of the patch", input: () => npy(new Float32Array(2 * 3 * 15 * 15), [2, 3, 15, 15]), says: [/15/, /patch|multiple/] },
  { what: "0 images", input: () => npy(new Float32Array(0), [0, 3, 16, 16]), says: [/0 images|no images|empty|at least one/] },
  { what: "a missing file", says: [/does not exist|no such file|not found/i] },
  { what: "a folder", setup: (at) => mkdir(at("x.npy")), says: [/folder|directory/] },
];

describe("npy files through knn", () => runCases(root, [...containerCases, ...pathCases, ...valueCases].map(knnCase)));
describe("npy files through features --input", () => runCases(root, inputCases.map(inputCase)));
