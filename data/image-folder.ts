// ImageFolder: root/<class>/<image>, as torchvision's ImageFolder reads it (Pets, ImageNet, any set arranged in
// class folders; DTD, Flowers102 and Food101 as distributed are read by dtd.ts, flowers102.ts and food101.ts).
// Classes are the sorted sub-folder names; each class's images are found recursively and sorted, so the order (and
// the identity hash) is the same on every machine. Only .jpg, .jpeg and .png files count (any case); other files are
// ignored, and so are hidden files and folders (.DS_Store, .ipynb_checkpoints), which torchvision would take as
// images or classes. An optional split level sits above the classes: root/{train,val,test}/<class>/<image>.
import { existsSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { hashLines } from "./dataset.js";
import { ImageFiles, entries, isDir } from "./image-files.js";

export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png"];

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

export class ImageFolder extends ImageFiles {
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
}
