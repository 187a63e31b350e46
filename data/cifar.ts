// CIFAR-10 and CIFAR-100, "binary version" as distributed by their authors. Each file is a run of fixed-size
// records: label byte(s), then 3072 pixel bytes, planar (R 32x32, G 32x32, B 32x32) in row-major order.
// - CIFAR-10 (cifar-10-batches-bin/): data_batch_1..5.bin, test_batch.bin; records of 1 + 3072 bytes;
//   class names in batches.meta.txt.
// - CIFAR-100 (cifar-100-binary/): train.bin, test.bin; records of 2 + 3072 bytes (coarse label, fine label);
//   names in fine_label_names.txt and coarse_label_names.txt.
// The root may be that folder or the folder holding it.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ArrayDataset, type Dataset, checkLabels, hashFiles, readWhole } from "./dataset.js";
import { readClassNames } from "./list-files.js";

export type CifarVariant = "cifar10" | "cifar100" | "cifar100-coarse";

const PIXELS = 3 * 32 * 32;

interface Format {
  folder: string;
  files: Record<string, string[]>;
  labelBytes: number; // label bytes before the pixels of each record
  labelAt: number; // which of them this variant uses
  names: string;
  numClasses: number;
}

const FORMATS: Record<CifarVariant, Format> = {
  cifar10: {
    folder: "cifar-10-batches-bin",
    files: { train: [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`), test: ["test_batch.bin"] },
    labelBytes: 1,
    labelAt: 0,
    names: "batches.meta.txt",
    numClasses: 10,
  },
  cifar100: { folder: "cifar-100-binary", files: { train: ["train.bin"], test: ["test.bin"] }, labelBytes: 2, labelAt: 1, names: "fine_label_names.txt", numClasses: 100 },
  "cifar100-coarse": { folder: "cifar-100-binary", files: { train: ["train.bin"], test: ["test.bin"] }, labelBytes: 2, labelAt: 0, names: "coarse_label_names.txt", numClasses: 20 },
};

async function readNames(variant: CifarVariant, path: string, expected: number): Promise<string[]> {
  const names = await readClassNames(variant, path, "the class-name file");
  if (names.length !== expected) throw new Error(`${variant}: expected ${expected} class names in ${path}, got ${names.length}`);
  return names;
}

export async function openCifar(variant: CifarVariant, root: string, split = "train"): Promise<Dataset> {
  const fmt = FORMATS[variant];
  const files = fmt.files[split];
  if (!files) throw new Error(`${variant}: expected split train or test, got "${split}"`);
  root = resolve(root);
  const dir = existsSync(join(root, fmt.folder)) ? join(root, fmt.folder) : root;
  const paths = files.map((f) => join(dir, f));
  for (const p of paths) if (!existsSync(p)) throw new Error(`${variant}: expected ${p} (${split} split), it does not exist`);
  const record = fmt.labelBytes + PIXELS;
  const parts = await Promise.all(
    paths.map(async (p) => {
      const bytes = await readWhole(variant, p);
      if (bytes.length === 0 || bytes.length % record !== 0)
        throw new Error(`${variant}: expected ${p} to hold whole ${record}-byte records (${fmt.labelBytes} label byte(s) + ${PIXELS} pixels), got ${bytes.length} bytes`);
      return bytes;
    }),
  );
  const classes = await readNames(variant, join(dir, fmt.names), fmt.numClasses);
  const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  const n = bytes.length / record;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = bytes[i * record + fmt.labelAt];
  // Sample i's file and record within it, for messages.
  const starts = parts.map((_, k) => parts.slice(0, k).reduce((a, b) => a + b.length / record, 0));
  const where = (i: number) => {
    let k = starts.length - 1;
    while (starts[k] > i) k--;
    return `${paths[k]}#${i - starts[k]}`;
  };
  checkLabels(variant, labels, classes.length, where);
  const identity = { name: variant, root: dir, split, count: n, hash: await hashFiles(paths) };
  const layout = { offset: fmt.labelBytes, stride: record, width: 32, height: 32, channels: 3 as const, planar: true };
  return new ArrayDataset(identity, classes, labels, bytes, layout, where);
}
