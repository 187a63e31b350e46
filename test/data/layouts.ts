// Miniature copies of DTD, Flowers102 and Food101 in the layouts they are distributed in, for the readers' tests and
// for anything that runs end to end on them: a few classes of a few tiny JPEGs each (solid colours, one per class,
// in varied non-square sizes), the split files, and for Flowers102 the two MATLAB 5 files. Each writer returns the
// root to open (the dataset's own folder, as the registry expects).
import { join } from "node:path";
import sharp from "sharp";
import { writeFile } from "./fixtures.js";
import { type MatFileOptions, mat5Bytes } from "./mat5-writer.js";

export interface LayoutOptions {
  classes?: number; // default 3
  perClass?: number; // images per class; default 3 (DTD: a multiple of 3, each fold splitting a class in thirds)
}

// Sizes cycle through these, so batches mix orientations and aspect ratios.
const SIZES = [
  [12, 8],
  [9, 14],
  [16, 16],
  [10, 7],
];

// A solid colour per class, far apart, so a contact sheet or a decoded pixel tells the class.
export function classColour(c: number): { r: number; g: number; b: number } {
  return { r: (c * 97 + 40) % 256, g: (c * 151 + 200) % 256, b: (c * 59 + 120) % 256 };
}

async function jpeg(c: number, k: number): Promise<Buffer> {
  const [width, height] = SIZES[k % SIZES.length];
  return sharp({ create: { width, height, channels: 3, background: classColour(c) } }).jpeg({ quality: 90 }).toBuffer();
}

const DTD_CLASSES = ["banded", "blotchy", "braided", "bubbly", "bumpy", "chequered"];

// dtd/images/<class>/<class>_000k.jpg and dtd/labels/{train,val,test}{1..10}.txt (fold f puts image k of each class
// in part (k + f) mod 3), and labels_joint_anno.txt as the download has it.
export async function writeDtd(dir: string, opts: LayoutOptions = {}): Promise<string> {
  const root = join(dir, "dtd");
  const classes = DTD_CLASSES.slice(0, opts.classes ?? 3);
  const perClass = opts.perClass ?? 3;
  const rel = (c: number, k: number) => `${classes[c]}/${classes[c]}_${String(k + 1).padStart(4, "0")}.jpg`;
  for (let c = 0; c < classes.length; c++) for (let k = 0; k < perClass; k++) writeFile(join(root, "images", rel(c, k)), await jpeg(c, k));
  const parts = ["train", "val", "test"];
  for (let f = 1; f <= 10; f++)
    parts.forEach((part, p) => {
      const lines = classes.flatMap((_, c) => Array.from({ length: perClass }, (_, k) => k).filter((k) => (k + f) % 3 === p).map((k) => rel(c, k)));
      writeFile(join(root, "labels", `${part}${f}.txt`), lines.map((l) => l + "\n").join(""));
    });
  writeFile(join(root, "labels", "labels_joint_anno.txt"), classes.map((c, i) => `${rel(i, 0)} ${c} \n`).join(""));
  return root;
}

// The image numbers of each Flowers102 set in a miniature of `classes` x `perClass` images, numbered class by class:
// per class the first image is in train, the second in val, the rest in test; each set listed in descending order,
// so that a reader that sorts them is caught.
export function flowersSets(classes: number, perClass: number): { trnid: number[]; valid: number[]; tstid: number[] } {
  const ids = (k: (i: number) => boolean) => Array.from({ length: classes * perClass }, (_, i) => i + 1).filter((id) => k((id - 1) % perClass)).reverse();
  return { trnid: ids((i) => i === 0), valid: ids((i) => i === 1), tstid: ids((i) => i >= 2) };
}

// flowers/jpg/image_0000k.jpg, imagelabels.mat ("labels": class c + 1 for image k of class c) and setid.mat
// ("trnid", "valid", "tstid" as flowersSets), written compressed (MATLAB's default) unless `mat` says otherwise.
export async function writeFlowers102(dir: string, opts: LayoutOptions & { mat?: MatFileOptions } = {}): Promise<string> {
  const root = join(dir, "flowers");
  const classes = opts.classes ?? 3;
  const perClass = opts.perClass ?? 3;
  const labels: number[] = [];
  for (let c = 0; c < classes; c++)
    for (let k = 0; k < perClass; k++) {
      labels.push(c + 1);
      writeFile(join(root, "jpg", `image_${String(labels.length).padStart(5, "0")}.jpg`), await jpeg(c, k));
    }
  const mat = opts.mat ?? { compress: true };
  writeFile(join(root, "imagelabels.mat"), mat5Bytes([{ name: "labels", values: labels, storedAs: "uint8" }], mat));
  const sets = flowersSets(classes, perClass);
  writeFile(join(root, "setid.mat"), mat5Bytes(Object.entries(sets).map(([name, values]) => ({ name, values, storedAs: "uint16" })), mat));
  return root;
}

const FOOD_CLASSES = ["apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad"];

// food-101/images/<class>/<id>.jpg, meta/classes.txt, and meta/train.txt / test.txt ("<class>/<id>", no extension):
// the last image of each class is in test, the others in train.
export async function writeFood101(dir: string, opts: LayoutOptions = {}): Promise<string> {
  const root = join(dir, "food-101");
  const classes = FOOD_CLASSES.slice(0, opts.classes ?? 3);
  const perClass = opts.perClass ?? 3;
  const split: Record<string, string[]> = { train: [], test: [] };
  for (let c = 0; c < classes.length; c++)
    for (let k = 0; k < perClass; k++) {
      const id = `${classes[c]}/${1000003 + 7919 * k + c}`;
      writeFile(join(root, "images", `${id}.jpg`), await jpeg(c, k));
      split[k === perClass - 1 ? "test" : "train"].push(id);
    }
  writeFile(join(root, "meta", "classes.txt"), classes.map((c) => c + "\n").join(""));
  for (const [name, ids] of Object.entries(split)) writeFile(join(root, "meta", `${name}.txt`), ids.map((l) => l + "\n").join(""));
  return root;
}
