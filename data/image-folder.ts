// ImageFolder: root/<class>/<image>, as torchvision's ImageFolder reads it (DTD, Flowers102, Food101, Pets and
// ImageNet once arranged in class folders). Classes are the sorted sub-folder names; each class's images are found
// recursively and sorted, so the order (and the identity hash) is the same on every machine. Only .jpg, .jpeg and
// .png files count (any case); other files are ignored, and so are hidden files and folders (.DS_Store,
// .ipynb_checkpoints), which torchvision would take as images or classes. An optional split level sits above the
// classes: root/{train,val,test}/<class>/<image>.
import { existsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { type Dataset, type DatasetIdentity, checkIndex, hashLines, readWhole } from "./dataset.js";
import { type EncodedImage, type RawImage, decodeImage } from "./image.js";

export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png"];

// UTF-16 order, independent of the locale: Python's sorted() order, which torchvision uses, for every name without
// characters beyond U+FFFF.
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path)).isDirectory(); // stat follows symlinks, as os.walk(followlinks=True) does
}

// Visible entries of a folder, sorted, split into sub-folders and files. Only symlinks cost a stat, so listing
// ImageNet's 1.3M files stays a readdir per folder.
async function entries(dir: string): Promise<{ dirs: string[]; files: string[] }> {
  const dirs: string[] = [];
  const files: string[] = [];
  const list = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith("."));
  list.sort((a, b) => byCodePoint(a.name, b.name));
  for (const e of list) {
    const folder = e.isDirectory() || (e.isSymbolicLink() && (await isDir(join(dir, e.name))));
    (folder ? dirs : files).push(e.name);
  }
  return { dirs, files };
}

async function listImages(dir: string): Promise<string[]> {
  const { dirs, files } = await entries(dir);
  const out = files.filter((f) => IMAGE_EXTENSIONS.some((ext) => f.toLowerCase().endsWith(ext))).map((f) => join(dir, f));
  for (const d of dirs) out.push(...(await listImages(join(dir, d))));
  return out; // a folder's files, then each sub-folder's, as torchvision's sorted(os.walk(...)) visits them
}

const SPLITS = ["train", "val", "test"];

// The folder holding the classes: root/<split> when a split is given or root has a train/ folder, else root.
async function classRoot(root: string, split?: string): Promise<{ dir: string; split: string }> {
  if (split !== undefined) {
    const dir = join(root, split);
    if (!existsSync(dir) || !(await isDir(dir))) {
      const present = (await entries(root)).dirs.filter((d) => SPLITS.includes(d));
      throw new Error(`imagefolder: expected split folder ${dir}, it does not exist (split folders present: ${present.join(", ") || "none"})`);
    }
    return { dir, split };
  }
  if (existsSync(join(root, "train")) && (await isDir(join(root, "train")))) return { dir: join(root, "train"), split: "train" };
  return { dir: root, split: "all" };
}

export class ImageFolder implements Dataset {
  readonly length: number;

  private constructor(
    readonly identity: DatasetIdentity,
    readonly classes: string[],
    readonly labels: Int32Array, // (N)
    readonly paths: string[], // (N) absolute
  ) {
    this.length = paths.length;
  }

  static async open(root: string, split?: string): Promise<ImageFolder> {
    root = resolve(root);
    const where = await classRoot(root, split);
    const classes = (await entries(where.dir)).dirs;
    if (classes.length === 0) throw new Error(`imagefolder: expected class folders in ${where.dir}, found none`);
    const perClass = await Promise.all(classes.map((c) => listImages(join(where.dir, c))));
    perClass.forEach((files, c) => {
      if (files.length === 0) throw new Error(`imagefolder: expected at least one ${IMAGE_EXTENSIONS.join("/")} image in ${join(where.dir, classes[c])}, found none`);
    });
    const paths = perClass.flat();
    const labels = new Int32Array(paths.length);
    let k = 0;
    perClass.forEach((files, c) => files.forEach(() => (labels[k++] = c)));
    const hash = hashLines(paths.map((p) => relative(where.dir, p)));
    const identity = { name: "imagefolder", root, split: where.split, count: paths.length, hash };
    return new ImageFolder(identity, classes, labels, paths);
  }

  async read(i: number): Promise<EncodedImage> {
    checkIndex(this, i);
    const path = this.paths[i];
    return { path, bytes: await readWhole("imagefolder", path) };
  }

  async image(i: number): Promise<RawImage> {
    return decodeImage(await this.read(i));
  }

  source(i: number): string {
    checkIndex(this, i);
    return this.paths[i];
  }
}
