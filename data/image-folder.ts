// ImageFolder: root/<class>/<image>, as torchvision's ImageFolder reads it (Pets, ImageNet, any set arranged in
// class folders; DTD, Flowers102 and Food101 as distributed are read by dtd.ts, flowers102.ts and food101.ts).
// Classes are the sorted sub-folder names; each class's images are found recursively and sorted, so the order (and
// the identity hash) is the same on every machine. Only .jpg, .jpeg and .png files count (any case); other files are
// ignored, and so are hidden files and folders (.DS_Store, .ipynb_checkpoints), which torchvision would take as
// images or classes. An optional split level sits above the classes: root/{train,val,test}/<class>/<image>. Where
// root holds any of these split folders, the classes are in the split asked for (train by default), never in root.
import { existsSync } from "node:fs";
import { realpath } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { hashLines } from "./dataset.js";
import { ImageFiles, entries, isDir } from "./image-files.js";

export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png"];

// `above`: the real paths of the folders dir lies in, so that a symbolic link back to one of them (a/up -> ..) is
// named here rather than walked until the system gives up (ELOOP), or for ever as torchvision's os.walk would.
async function listImages(dir: string, above: string[]): Promise<string[]> {
  const real = await realpath(dir);
  if (above.includes(real)) throw new Error(`imagefolder: expected folders without symbolic-link loops, got ${dir}, which leads back to ${real}`);
  const { dirs, files } = await entries("imagefolder", dir);
  const out = files.filter((f) => IMAGE_EXTENSIONS.some((ext) => f.toLowerCase().endsWith(ext))).map((f) => join(dir, f));
  for (const d of dirs) out.push(...(await listImages(join(dir, d), [...above, real])));
  return out; // a folder's files, then each sub-folder's, as torchvision's sorted(os.walk(...)) visits them
}

const SPLITS = ["train", "val", "test"];

// The folder holding the classes: root/<split> when a split is given or root holds split folders, else root. A
// root with val/ and test/ but no train/ folder is not taken as classes "test" and "val".
async function classRoot(root: string, split?: string): Promise<{ dir: string; split: string }> {
  const present = (await entries("imagefolder", root)).dirs.filter((d) => SPLITS.includes(d));
  if (split === undefined && present.length === 0) return { dir: root, split: "all" };
  const name = split ?? "train";
  const dir = join(root, name);
  if (!existsSync(dir) || !(await isDir("imagefolder", dir))) {
    const got = existsSync(dir) ? "it is a file" : "it does not exist";
    throw new Error(`imagefolder: expected split folder ${dir}${split === undefined ? " (the default split)" : ""}, ${got} (split folders present: ${present.join(", ") || "none"})`);
  }
  return { dir, split: name };
}

export class ImageFolder extends ImageFiles {
  static async open(root: string, split?: string): Promise<ImageFolder> {
    root = resolve(root);
    const where = await classRoot(root, split);
    const classes = (await entries("imagefolder", where.dir)).dirs;
    if (classes.length === 0) throw new Error(`imagefolder: expected class folders in ${where.dir}, found none`);
    const above = [await realpath(root), await realpath(where.dir)];
    const perClass = await Promise.all(classes.map((c) => listImages(join(where.dir, c), above)));
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
}
