// Opens a dataset by name: the one entry point the CLI and experiments use.
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { Dataset } from "./dataset.js";
import { openIdx } from "./idx.js";
import { openCifar } from "./cifar.js";
import { ImageFolder } from "./image-folder.js";
import { openDtd } from "./dtd.js";
import { openFlowers102 } from "./flowers102.js";
import { openFood101 } from "./food101.js";
import { openNpyImages } from "./npy-dataset.js";

export interface OpenOptions {
  name: string; // one of DATASET_NAMES
  root?: string; // default defaultRoot(name); required where there is none
  split?: string; // train (default) or test; others where a format has them (dtd: val, trainval, folds train1..test10); for imagefolder any split folder, and by default train/ if present
}

interface Entry {
  root?: string;
  about: string;
  open(root: string, split?: string): Promise<Dataset>;
}

const DATASETS: Record<string, Entry> = {
  // The Debian package dataset-fashion-mnist installs the four .gz files here.
  "fashion-mnist": { root: "/usr/share/datasets/fashion-mnist", about: "IDX files", open: (r, s) => openIdx("fashion-mnist", r, s) },
  mnist: { root: "/usr/share/datasets/mnist", about: "IDX files", open: (r, s) => openIdx("mnist", r, s) },
  cifar10: { about: "the folder of data_batch_1.bin .. test_batch.bin", open: (r, s) => openCifar("cifar10", r, s) },
  cifar100: { about: "the folder of train.bin, test.bin (fine labels)", open: (r, s) => openCifar("cifar100", r, s) },
  "cifar100-coarse": { about: "the folder of train.bin, test.bin (coarse labels)", open: (r, s) => openCifar("cifar100-coarse", r, s) },
  dtd: { about: "dtd/: images/<class>/*.jpg, labels/train1.txt..test10.txt; splits train|val|test|trainval[1-10]", open: (r, s) => openDtd(r, s) },
  flowers102: { about: "jpg/image_*.jpg, imagelabels.mat, setid.mat; splits train|val|test|trainval", open: (r, s) => openFlowers102(r, s) },
  food101: { about: "food-101/: images/<class>/*.jpg, meta/{classes,train,test}.txt; splits train|test", open: (r, s) => openFood101(r, s) },
  imagefolder: { about: "root/<class>/<image> JPEG/PNG, optionally under train/ val/ test/", open: (r, s) => ImageFolder.open(r, s) },
  npy: { about: "<split>_images.npy and <split>_labels.npy", open: (r, s) => openNpyImages(r, s) },
};

export const DATASET_NAMES = Object.keys(DATASETS);

export function defaultRoot(name: string): string | undefined {
  return DATASETS[name]?.root;
}

// One line per dataset for usage texts, each starting with `indent`.
export function describeDatasets(indent: string): string {
  return DATASET_NAMES.map((n) => `${indent}${n.padEnd(16)} ${DATASETS[n].about}${DATASETS[n].root ? ` (default root ${DATASETS[n].root})` : ""}`).join("\n");
}

export async function openDataset(opts: OpenOptions): Promise<Dataset> {
  const entry = DATASETS[opts.name];
  if (!entry) throw new Error(`data: expected a dataset name (${DATASET_NAMES.join(", ")}), got "${opts.name}"`);
  const root = opts.root ?? entry.root;
  if (root === undefined) throw new Error(`data: dataset ${opts.name} needs a root folder (${entry.about}), got none`);
  const abs = resolve(root);
  if (!existsSync(abs)) throw new Error(`data: expected the ${opts.name} root folder ${abs}, it does not exist`);
  if (!statSync(abs).isDirectory()) throw new Error(`data: expected the ${opts.name} root ${abs} to be a folder, got a file`);
  return entry.open(abs, opts.split);
}
