// Bad datasets through `data --dataset NAME --root DIR`: missing and misplaced roots, empty folders, files that
// are not images, corrupt images (one line per file, counted), and for the array formats (npy, CIFAR, IDX) missing,
// truncated and mislabelled files; for the listed layouts images listed twice. Each error names the folder or file (and
// record) at fault.
import { mkdir, symlink } from "node:fs/promises";
import { existsSync } from "node:fs";
import { describe, expect } from "vitest";
import sharp from "sharp";
import { type At, type BadCase, RAW_NODE, runCases, tempRoot } from "./harness.js";
import { npy, write } from "./files.js";
import { PNG_RGB, cifarRecord, concat, gzip, idxBytes, pattern, pngBytes } from "../data/fixtures.js";
import { mat5Bytes, mat73Bytes } from "../data/mat5-writer.js";

const root = tempRoot("data");

// A dataset's files under the case's root: relative path -> contents, FOLDER for an empty folder, or a symbolic link.
const FOLDER = Symbol("folder");
type Link = { linkTo: string };
type Tree = Record<string, Uint8Array | string | typeof FOLDER | Link | undefined>; // undefined: leave the file out

const png = (k: number) => pngBytes(8, 8, PNG_RGB, 8, pattern(192, k));
const jpeg = () => sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 200, g: 30, b: 90 } } }).jpeg().toBuffer();
const lines = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`).join("\n") + "\n";
const npyImages = (n: number) => npy(pattern(n * 64, 3), [n, 8, 8]);
const npyLabels = (values: number[]) => npy(Int32Array.from(values), [values.length]);
const cifar = (labels: number[][]) => concat(labels.map((l, k) => cifarRecord(l, pattern(3072, k))));
const idxImages = (n: number) => idxBytes([n, 4, 4], pattern(n * 16, 5));
const idxLabels = (values: number[]) => idxBytes([values.length], Uint8Array.from(values));

// A good dataset of each kind, which the cases break.
const GOOD: Record<string, () => Tree> = {
  imagefolder: () => ({ "cat/a.png": png(1), "cat/b.png": png(2), "dog/c.png": png(3) }),
  npy: () => ({ "train_images.npy": npyImages(4), "train_labels.npy": npyLabels([0, 1, 0, 1]) }),
  cifar10: () => ({
    ...Object.fromEntries([1, 2, 3, 4, 5].map((k) => [`data_batch_${k}.bin`, cifar([[k]])])),
    "test_batch.bin": cifar([[0]]),
    "batches.meta.txt": lines(10, "class"),
  }),
  cifar100: () => ({
    "train.bin": cifar([[1, 42], [2, 99]]),
    "test.bin": cifar([[0, 0]]),
    "fine_label_names.txt": lines(100, "fine"),
    "coarse_label_names.txt": lines(20, "coarse"),
  }),
  mnist: () => ({
    "train-images-idx3-ubyte": idxImages(3),
    "train-labels-idx1-ubyte": idxLabels([0, 9, 4]),
    "t10k-images-idx3-ubyte": idxImages(1),
    "t10k-labels-idx1-ubyte": idxLabels([7]),
  }),
  // The listed layouts, two classes in disjoint splits (PNG bytes under .jpg names: the decoder goes by content).
  dtd: () => ({
    "images/banded/banded_0001.jpg": png(1),
    "images/dotted/dotted_0001.jpg": png(2),
    "images/banded/banded_0002.jpg": png(3),
    "images/dotted/dotted_0002.jpg": png(4),
    "labels/train1.txt": "banded/banded_0001.jpg\ndotted/dotted_0001.jpg\n",
    "labels/val1.txt": "banded/banded_0002.jpg\n",
    "labels/test1.txt": "dotted/dotted_0002.jpg\n",
  }),
  flowers102: () => ({
    ...Object.fromEntries([1, 2, 3, 4].map((k) => [`jpg/image_0000${k}.jpg`, png(k)])),
    "imagelabels.mat": mat5Bytes([{ name: "labels", values: [1, 2, 1, 2] }], { compress: true }),
    "setid.mat": mat5Bytes([{ name: "trnid", values: [2, 1] }, { name: "valid", values: [3] }, { name: "tstid", values: [4] }], { compress: true }),
  }),
  food101: () => ({
    "images/apple_pie/1005649.jpg": png(1),
    "images/baklava/1006121.jpg": png(2),
    "images/baklava/1006122.jpg": png(3),
    "meta/classes.txt": "apple_pie\nbaklava\n",
    "meta/train.txt": "apple_pie/1005649\nbaklava/1006121\n",
    "meta/test.txt": "baklava/1006122\n",
  }),
};
GOOD["fashion-mnist"] = GOOD.mnist;
GOOD["cifar100-coarse"] = GOOD.cifar100;

interface DataCase {
  what: string;
  dataset: string;
  tree?: Tree | null; // changes to the good dataset; null: no files at all (an empty root)
  jpegs?: Record<string, (good: Buffer) => Uint8Array>; // JPEG files made from a good one
  root?: (at: At) => string; // default at("root")
  flags?: (at: At) => string[];
  code?: 0 | 1 | 2; // default 1
  says: (at: At) => (string | RegExp)[];
  never?: (string | RegExp)[];
  after?: (at: At) => void; // further checks
}

function dataCase(c: DataCase): BadCase {
  return {
    what: `${c.dataset}: ${c.what}`,
    setup: async (at) => {
      await mkdir(at("root"));
      const tree: Tree = c.tree === null ? {} : { ...GOOD[c.dataset](), ...c.tree };
      const good = await jpeg();
      for (const [name, make] of Object.entries(c.jpegs ?? {})) tree[name] = make(good);
      for (const [name, v] of Object.entries(tree)) {
        if (v === FOLDER) await mkdir(at("root", name), { recursive: true });
        else if (typeof v === "object" && "linkTo" in v) await symlink(v.linkTo, at("root", name));
        else if (v !== undefined) await write(at("root", name), v);
      }
    },
    argv: (at) => ["data", "--dataset", c.dataset, "--root", (c.root ?? ((a) => a("root")))(at), ...(c.flags?.(at) ?? [])],
    code: c.code ?? 1,
    says: c.says,
    never: [RAW_NODE, ...(c.never ?? [])],
    after: c.after,
  };
}

// Corrupt images are reported in the tool's words, never as libvips' raw lines.
const RAW_VIPS = /Vips|vips_|jpeg2vips|premature end of input/;

const missingRoots: DataCase[] = ["imagefolder", "npy", "cifar10", "cifar100", "mnist", "fashion-mnist", "dtd", "flowers102", "food101"].flatMap((dataset) => [
  { what: "a missing root", dataset, root: (at: At) => at("nowhere"), says: (at: At) => [at("nowhere"), "does not exist"] },
  { what: "a file as root", dataset, root: (at: At) => at("root", "file.txt"), tree: { "file.txt": "x" }, says: (at: At) => [at("root", "file.txt"), "folder"] },
]);

const imageFolders: DataCase[] = [
  { what: "an empty root", dataset: "imagefolder", tree: null, says: (at) => [at("root"), "expected class folders", "found none"] },
  { what: "only files, no class folders", dataset: "imagefolder", tree: null, jpegs: { "a.jpg": (g) => g }, says: (at) => [at("root"), "expected class folders"] },
  { what: "an empty class folder", dataset: "imagefolder", tree: { bird: FOLDER }, says: (at) => [at("root", "bird"), "found none"] },
  { what: "a class of non-image files", dataset: "imagefolder", tree: { "bird/notes.txt": "x", "bird/pic.gif": "GIF89a", "bird/scan.tiff": "II*" }, says: (at) => [at("root", "bird"), "found none"] },
  { what: "a class of hidden files", dataset: "imagefolder", tree: { "bird/.DS_Store": "x", "bird/.a.png": png(4) }, says: (at) => [at("root", "bird"), "found none"] },
  { what: "a split folder that does not exist", dataset: "imagefolder", flags: () => ["--split", "val"], says: (at) => [at("root", "val"), "split"] },
  {
    what: "split folders val/ and test/ without train/",
    dataset: "imagefolder",
    tree: { "val/cat/a.png": png(4), "test/cat/b.png": png(5) },
    says: (at) => [at("root", "train"), "does not exist", "split folders present: test, val"],
  },
  { what: "train a file beside val/", dataset: "imagefolder", tree: { train: "x", "val/cat/a.png": png(4) }, says: (at) => [at("root", "train"), "it is a file", "present: val"] },
  {
    what: "a symbolic link back to the root",
    dataset: "imagefolder",
    tree: { "cat/up": { linkTo: ".." } },
    says: (at) => [at("root", "cat", "up"), "symbolic-link loops", `leads back to ${at("root")}`],
    never: [/ELOOP: /],
  },
  { what: "a symbolic link to itself", dataset: "imagefolder", tree: { "cat/me": { linkTo: "me" } }, says: (at) => [at("root", "cat", "me"), "a loop of symbolic links"], never: [/ELOOP: /] },
  {
    what: "a truncated JPEG with --check",
    dataset: "imagefolder",
    jpegs: { "dog/bad.jpg": (g) => g.subarray(0, g.length >> 1) },
    flags: () => ["--check"],
    says: (at) => [at("root", "dog", "bad.jpg"), /1 corrupt/],
    never: [RAW_VIPS],
  },
  {
    what: "a JPEG with a damaged body",
    dataset: "imagefolder",
    jpegs: { "dog/bad.jpg": (g) => Uint8Array.from(g, (b, i) => (i > 200 && i < g.length - 2 ? b ^ 0xa5 : b)) },
    flags: () => ["--check"],
    says: (at) => [at("root", "dog", "bad.jpg"), /corrupt/],
    never: [RAW_VIPS],
  },
  { what: "text named .jpg", dataset: "imagefolder", tree: { "dog/readme.jpg": "hello" }, says: (at) => [at("root", "dog", "readme.jpg"), /corrupt|another format|cannot|expected/], never: [RAW_VIPS] },
  { what: "an empty .png with --check", dataset: "imagefolder", tree: { "dog/empty.png": new Uint8Array(0) }, flags: () => ["--check"], says: (at) => [at("root", "dog", "empty.png"), /corrupt/], never: [RAW_VIPS] },
  { what: "random bytes named .png", dataset: "imagefolder", tree: { "dog/noise.png": pattern(500, 9) }, flags: () => ["--check"], says: (at) => [at("root", "dog", "noise.png"), /corrupt/], never: [RAW_VIPS] },
  {
    what: "a PNG cut short",
    dataset: "imagefolder",
    tree: { "dog/cut.png": png(5).subarray(0, 60) },
    flags: () => ["--check"],
    says: (at) => [at("root", "dog", "cut.png"), /corrupt/],
    never: [RAW_VIPS],
  },
  {
    what: "two corrupt files, one line each",
    dataset: "imagefolder",
    tree: { "cat/x.png": "not a png", "dog/y.jpg": "not a jpeg" },
    flags: () => ["--check"],
    says: (at) => [at("root", "cat", "x.png"), at("root", "dog", "y.jpg"), /2 corrupt/],
    never: [RAW_VIPS],
  },
  {
    what: "corrupt files accepted with --skip-corrupt",
    dataset: "imagefolder",
    jpegs: { "dog/bad.jpg": (g) => g.subarray(0, 100) },
    flags: () => ["--check", "--skip-corrupt"],
    code: 0,
    says: (at) => [at("root", "dog", "bad.jpg"), /3 decoded, 1 corrupt/],
    never: [RAW_VIPS],
  },
  {
    what: "a corrupt image in a contact sheet",
    dataset: "imagefolder",
    tree: { "cat/a.png": "broken" },
    flags: (at) => ["--sheet", at("sheet.png")],
    says: (at) => [at("root", "cat", "a.png")],
    never: [RAW_VIPS],
  },
  {
    what: "a PNG named .jpg is read by its content",
    dataset: "imagefolder",
    tree: { "dog/real.jpg": png(6) },
    flags: () => ["--check"],
    code: 0,
    says: () => [/4 decoded, 0 corrupt/],
  },
  { what: "a folder as --sheet", dataset: "imagefolder", flags: (at) => ["--sheet", at("root")], says: (at) => [at("root"), /folder/] },
  {
    what: "--sheet into a folder that does not exist yet",
    dataset: "imagefolder",
    flags: (at) => ["--sheet", at("new", "sheet.png")],
    code: 0,
    says: (at) => [at("new", "sheet.png")],
    after: (at) => expect(existsSync(at("new", "sheet.png"))).toBe(true),
  },
  {
    what: "a contact sheet too large to make",
    dataset: "imagefolder",
    flags: (at) => ["--sheet", at("sheet.png"), "--sheet-per-class", "1000", "--tile", "1024"],
    code: 2,
    says: () => ["--tile, --sheet-per-class, --sheet-classes", "100 megapixels", "2 rows of 1000 tiles of 1024 x 1024"],
    after: (at) => expect(existsSync(at("sheet.png"))).toBe(false),
  },
  { what: "--classes past the dataset's classes", dataset: "imagefolder", flags: () => ["--classes", "1-3"], code: 2, says: () => ["--classes", "[0, 2)", "got 2"] },
];

const npyDatasets: DataCase[] = [
  { what: "no images file", dataset: "npy", tree: { "train_images.npy": undefined }, says: (at) => [at("root", "train_images.npy"), "does not exist"] },
  { what: "no labels file", dataset: "npy", tree: { "train_labels.npy": undefined }, says: (at) => [at("root", "train_labels.npy"), "does not exist"] },
  { what: "no test split", dataset: "npy", flags: () => ["--split", "test"], says: (at) => [at("root", "test_images.npy"), "does not exist"] },
  { what: "images with bad magic", dataset: "npy", tree: { "train_images.npy": "P5 8 8 255\n" }, says: (at) => [at("root", "train_images.npy"), "NUMPY magic"] },
  { what: "images as a folder", dataset: "npy", tree: { "train_images.npy": FOLDER }, says: (at) => [at("root", "train_images.npy"), "folder"] },
  { what: "images of rank 2", dataset: "npy", tree: { "train_images.npy": npy(pattern(256, 1), [4, 64]) }, says: (at) => [at("root", "train_images.npy"), "(4, 64)"] },
  { what: "images with 2 channels", dataset: "npy", tree: { "train_images.npy": npy(pattern(512, 1), [4, 8, 8, 2]) }, says: (at) => [at("root", "train_images.npy"), "(4, 8, 8, 2)"] },
  { what: "images of 0 x 8 pixels", dataset: "npy", tree: { "train_images.npy": npy(new Uint8Array(0), [4, 0, 8]) }, says: (at) => [at("root", "train_images.npy"), "at least 1x1"] },
  { what: "int32 images", dataset: "npy", tree: { "train_images.npy": npy(new Int32Array(256), [4, 8, 8]) }, says: (at) => [at("root", "train_images.npy"), "uint8 or float32", "int32"] },
  { what: "float images outside [0, 1]", dataset: "npy", tree: { "train_images.npy": npy(new Float32Array(256).fill(0.5).fill(255, 70, 71), [4, 8, 8]) }, says: (at) => [at("root", "train_images.npy"), "[0, 1]", "got 255 at element 70"] },
  { what: "NaN pixels", dataset: "npy", tree: { "train_images.npy": npy(new Float32Array(256).fill(NaN), [4, 8, 8]) }, says: (at) => [at("root", "train_images.npy"), "got NaN"] },
  { what: "fewer labels than images", dataset: "npy", tree: { "train_labels.npy": npyLabels([0, 1, 0]) }, says: (at) => [at("root", "train_labels.npy"), "expected 4 labels", "got 3"] },
  { what: "float labels", dataset: "npy", tree: { "train_labels.npy": npy(new Float32Array(4), [4]) }, says: (at) => [at("root", "train_labels.npy"), "integer labels"] },
  { what: "a negative label", dataset: "npy", tree: { "train_labels.npy": npyLabels([0, 1, -2, 1]) }, says: (at) => [at("root", "train_labels.npy"), "got -2", "index 2"] },
  { what: "a label past classes.txt", dataset: "npy", tree: { "classes.txt": "shirt\nshoe\n", "train_labels.npy": npyLabels([0, 1, 2, 1]) }, says: (at) => [at("root", "train_labels.npy#2"), "[0, 2)"] },
  {
    what: "a label of 100000000 without classes.txt",
    dataset: "npy",
    tree: { "train_labels.npy": npyLabels([0, 1, 2, 1e8]) },
    says: (at) => [at("root", "train_labels.npy"), "below 65536", "got 100000000 at index 3"],
  },
  { what: "a class named twice in classes.txt", dataset: "npy", tree: { "classes.txt": "shirt\nshirt\n" }, says: (at) => [at("root", "classes.txt"), '"shirt" at line 1 and again at line 2'] },
  { what: "0 images", dataset: "npy", tree: { "train_images.npy": npy(new Uint8Array(0), [0, 8, 8]), "train_labels.npy": npyLabels([]) }, says: (at) => [at("root", "train_images.npy"), /no images|at least one|0 images/] },
  { what: "classes.txt a folder", dataset: "npy", tree: { "classes.txt": FOLDER }, says: (at) => [at("root", "classes.txt"), "folder"] },
];

const cifarDatasets: DataCase[] = [
  { what: "an empty root", dataset: "cifar10", tree: null, says: (at) => [at("root", "data_batch_1.bin"), "does not exist"] },
  { what: "a missing batch file", dataset: "cifar10", tree: { "data_batch_4.bin": undefined }, says: (at) => [at("root", "data_batch_4.bin"), "does not exist"] },
  { what: "an empty batch file", dataset: "cifar10", tree: { "data_batch_2.bin": new Uint8Array(0) }, says: (at) => [at("root", "data_batch_2.bin"), "3073-byte records", "got 0 bytes"] },
  { what: "a cut record", dataset: "cifar10", tree: { "data_batch_3.bin": cifar([[1], [2]]).subarray(0, 5000) }, says: (at) => [at("root", "data_batch_3.bin"), "got 5000 bytes"] },
  { what: "no class names", dataset: "cifar10", tree: { "batches.meta.txt": undefined }, says: (at) => [at("root", "batches.meta.txt"), "does not exist"] },
  { what: "nine class names", dataset: "cifar10", tree: { "batches.meta.txt": lines(9, "c") }, says: (at) => [at("root", "batches.meta.txt"), "expected 10 class names", "got 9"] },
  { what: "a label of 12", dataset: "cifar10", tree: { "data_batch_5.bin": cifar([[3], [12]]) }, says: (at) => [at("root", "data_batch_5.bin#1"), "got 12"] },
  { what: "a batch file that is a folder", dataset: "cifar10", tree: { "data_batch_1.bin": FOLDER }, says: (at) => [at("root", "data_batch_1.bin"), "folder"] },
  { what: "class names in a folder", dataset: "cifar10", tree: { "batches.meta.txt": FOLDER }, says: (at) => [at("root", "batches.meta.txt"), "folder"] },
  { what: "a split named val", dataset: "cifar10", flags: () => ["--split", "val"], says: () => ["cifar10", "split", '"val"'] },
  { what: "ten identical class names", dataset: "cifar10", tree: { "batches.meta.txt": "cat\n".repeat(10) }, says: (at) => [at("root", "batches.meta.txt"), '"cat" at line 1 and again at line 2'] },
  { what: "--classes 0-2000000000", dataset: "cifar10", flags: () => ["--classes", "0-2000000000"], code: 2, says: () => ["--classes", '"0-2000000000"', "at most 65536 classes"] },
  { what: "a fine label of 150", dataset: "cifar100", tree: { "train.bin": cifar([[1, 42], [2, 150]]) }, says: (at) => [at("root", "train.bin#1"), "got 150"] },
  { what: "a coarse label of 25", dataset: "cifar100-coarse", tree: { "train.bin": cifar([[25, 42]]) }, says: (at) => [at("root", "train.bin#0"), "got 25"] },
  { what: "CIFAR-10 files given as CIFAR-100", dataset: "cifar100", tree: { ...GOOD.cifar10(), "train.bin": undefined }, says: (at) => [at("root", "train.bin"), "does not exist"] },
];

const idxDatasets: DataCase[] = [
  { what: "an empty root", dataset: "mnist", tree: null, says: (at) => [at("root"), "train-images-idx3-ubyte", "found neither"] },
  { what: "no labels file", dataset: "mnist", tree: { "train-labels-idx1-ubyte": undefined }, says: (at) => [at("root"), "train-labels-idx1-ubyte", "found neither"] },
  { what: "a truncated gzip", dataset: "mnist", tree: { "train-images-idx3-ubyte": undefined, "train-images-idx3-ubyte.gz": gzip(idxImages(3)).subarray(0, 30) }, says: (at) => [at("root", "train-images-idx3-ubyte.gz"), "gzip"] },
  { what: "an empty file", dataset: "mnist", tree: { "train-labels-idx1-ubyte": new Uint8Array(0) }, says: (at) => [at("root", "train-labels-idx1-ubyte"), "an empty file"] },
  { what: "a PNG where IDX belongs", dataset: "mnist", tree: { "train-images-idx3-ubyte": png(1) }, says: (at) => [at("root", "train-images-idx3-ubyte"), "magic"] },
  { what: "float IDX values", dataset: "mnist", tree: { "train-images-idx3-ubyte": idxBytes([3, 4, 4], new Uint8Array(192), [0, 0, 0x0d, 3]) }, says: (at) => [at("root", "train-images-idx3-ubyte"), "type 0x08", "0x0d"] },
  { what: "truncated values", dataset: "mnist", tree: { "train-images-idx3-ubyte": idxImages(3).subarray(0, 40) }, says: (at) => [at("root", "train-images-idx3-ubyte"), "truncated"] },
  { what: "a truncated header", dataset: "mnist", tree: { "train-images-idx3-ubyte": idxImages(3).subarray(0, 9) }, says: (at) => [at("root", "train-images-idx3-ubyte"), "truncated"] },
  { what: "more labels than images", dataset: "mnist", tree: { "train-labels-idx1-ubyte": idxLabels([0, 1, 2, 3]) }, says: (at) => [at("root", "train-labels-idx1-ubyte"), "expected labels (3)", "got (4)"] },
  { what: "images of rank 2", dataset: "mnist", tree: { "train-images-idx3-ubyte": idxBytes([3, 16], pattern(48, 1)) }, says: (at) => [at("root", "train-images-idx3-ubyte"), "(N, H, W)", "(3, 16)"] },
  { what: "a label of 10", dataset: "mnist", tree: { "train-labels-idx1-ubyte": idxLabels([0, 10, 4]) }, says: (at) => [at("root", "train-labels-idx1-ubyte#1"), "got 10"] },
  { what: "an images file that is a folder", dataset: "mnist", tree: { "train-images-idx3-ubyte": FOLDER }, says: (at) => [at("root", "train-images-idx3-ubyte"), "folder"] },
  { what: "0 images", dataset: "mnist", tree: { "train-images-idx3-ubyte": idxImages(0), "train-labels-idx1-ubyte": idxLabels([]) }, says: (at) => [at("root", "train-images-idx3-ubyte"), "at least one image", "got 0 images"] },
  { what: "images of 0x0 pixels", dataset: "mnist", tree: { "train-images-idx3-ubyte": idxBytes([3, 0, 0], new Uint8Array(0)) }, says: (at) => [at("root", "train-images-idx3-ubyte"), "at least 1x1", "(3, 0, 0)"] },
  { what: "a split named val", dataset: "mnist", flags: () => ["--split", "val"], says: () => ["mnist", "split", '"val"'] },
];

const listedDatasets: DataCase[] = [
  { what: "an empty root", dataset: "dtd", tree: null, says: (at) => [at("root"), "images/", "does not exist"] },
  {
    what: "images/ a file",
    dataset: "dtd",
    tree: { ...Object.fromEntries(Object.keys(GOOD.dtd()).filter((f) => f.startsWith("images/")).map((f) => [f, undefined])), images: "x" },
    says: (at) => [at("root", "images"), "got a file"],
    never: [RAW_NODE],
  },
  { what: "a split file that is a folder", dataset: "dtd", tree: { "labels/val1.txt": FOLDER }, says: (at) => [at("root", "labels", "val1.txt"), "folder"], never: [RAW_NODE] },
  { what: "a missing split file", dataset: "dtd", tree: { "labels/test1.txt": undefined }, says: (at) => [at("root", "labels", "test1.txt"), "does not exist"] },
  { what: "a listed image missing", dataset: "dtd", tree: { "images/dotted/dotted_0001.jpg": undefined, "images/dotted/dotted_0002.jpg": png(3) }, says: (at) => [at("root", "images", "dotted", "dotted_0001.jpg"), at("root", "labels", "train1.txt"), "line 2", "does not exist"] },
  { what: "a line without a class", dataset: "dtd", tree: { "labels/train1.txt": "banded_0001.jpg\n" }, says: (at) => [at("root", "labels", "train1.txt"), "line 1", '"banded_0001.jpg"'] },
  {
    what: "an image listed twice",
    dataset: "dtd",
    tree: { "labels/train1.txt": "banded/banded_0001.jpg\ndotted/dotted_0001.jpg\nbanded/banded_0001.jpg\n" },
    says: (at) => [at("root", "labels", "train1.txt"), "images/banded/banded_0001.jpg", "line 1 and again", "line 3"],
  },
  {
    what: "an image in train and test",
    dataset: "dtd",
    tree: { "labels/test1.txt": "dotted/dotted_0002.jpg\nbanded/banded_0001.jpg\n" },
    says: (at) => [at("root", "labels", "train1.txt"), at("root", "labels", "test1.txt"), "images/banded/banded_0001.jpg", "disjoint"],
  },
  { what: "a class folder no split file lists", dataset: "dtd", tree: { "images/zigzagged/zigzagged_0001.jpg": png(5) }, says: (at) => [at("root", "images", "zigzagged"), "got none"] },
  { what: "a fold of 11", dataset: "dtd", flags: () => ["--split", "train11"], says: () => ["dtd", "fold 1..10", '"train11"'] },
  { what: "an empty root", dataset: "flowers102", tree: null, says: (at) => [at("root", "imagelabels.mat"), "does not exist"] },
  { what: "setid.mat a folder", dataset: "flowers102", tree: { "setid.mat": FOLDER }, says: (at) => [at("root", "setid.mat"), "folder"], never: [RAW_NODE] },
  { what: "a v7.3 setid.mat", dataset: "flowers102", tree: { "setid.mat": mat73Bytes() }, says: (at) => [at("root", "setid.mat"), "v7.3 (HDF5)", "-v7"] },
  { what: "a text file as imagelabels.mat", dataset: "flowers102", tree: { "imagelabels.mat": "1\n2\n" }, says: (at) => [at("root", "imagelabels.mat"), "MAT v5 file", "4 bytes"] },
  { what: "a truncated imagelabels.mat", dataset: "flowers102", tree: { "imagelabels.mat": mat5Bytes([{ name: "labels", values: [1, 2] }]).subarray(0, 170) }, says: (at) => [at("root", "imagelabels.mat"), "truncated"] },
  { what: "labels as text", dataset: "flowers102", tree: { "imagelabels.mat": mat5Bytes([{ name: "labels", className: "char", values: [49, 50] }]) }, says: (at) => [at("root", "imagelabels.mat"), '"labels"', "char array"] },
  { what: "sets in a cell", dataset: "flowers102", tree: { "setid.mat": mat5Bytes([{ name: "trnid", className: "cell", cells: [{ name: "", values: [1] }] }]) }, says: (at) => [at("root", "setid.mat"), '"trnid"', "cell array"] },
  {
    what: "a test image that is a train image",
    dataset: "flowers102",
    tree: { "setid.mat": mat5Bytes([{ name: "trnid", values: [2, 1] }, { name: "valid", values: [3] }, { name: "tstid", values: [4, 1] }]) },
    says: (at) => [at("root", "setid.mat"), 'image 1 at "trnid" position 2 and again at "tstid" position 2'],
  },
  { what: "a label of 4e9", dataset: "flowers102", tree: { "imagelabels.mat": mat5Bytes([{ name: "labels", values: [1, 2, 1, 4e9] }]) }, says: (at) => [at("root", "imagelabels.mat"), "1..102", "got 4000000000 at position 4"] },
  { what: "a listed image missing", dataset: "flowers102", tree: { "jpg/image_00002.jpg": undefined }, says: (at) => [at("root", "jpg", "image_00002.jpg"), '"trnid" position 1', "does not exist"] },
  { what: "a split named all", dataset: "flowers102", flags: () => ["--split", "all"], says: () => ["flowers102", "split", '"all"'] },
  { what: "an empty root", dataset: "food101", tree: null, says: (at) => [at("root", "meta", "classes.txt"), "does not exist"] },
  { what: "train.txt a folder", dataset: "food101", tree: { "meta/train.txt": FOLDER }, says: (at) => [at("root", "meta", "train.txt"), "folder"], never: [RAW_NODE] },
  { what: "a line of an unknown class", dataset: "food101", tree: { "meta/train.txt": "apple_pie/1005649\nsushi/1\n" }, says: (at) => [at("root", "meta", "train.txt"), "line 2", '"sushi/1"'] },
  { what: "a listed image missing", dataset: "food101", tree: { "images/apple_pie/1005649.jpg": undefined }, says: (at) => [at("root", "images", "apple_pie", "1005649.jpg"), "line 1", "does not exist"] },
  { what: "a split named val", dataset: "food101", flags: () => ["--split", "val"], says: () => ["food101", "split", '"val"'] },
  { what: "an image in both splits", dataset: "food101", tree: { "meta/test.txt": "baklava/1006121\n" }, says: (at) => ["images/baklava/1006121.jpg", at("root", "meta", "train.txt"), at("root", "meta", "test.txt")] },
];

const cases = [...missingRoots, ...imageFolders, ...npyDatasets, ...cifarDatasets, ...idxDatasets, ...listedDatasets];
describe("datasets through data", () => runCases(root, cases.map(dataCase)));
