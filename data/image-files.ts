// A dataset of image files, each with its label: what ImageFolder finds by walking class folders and what the
// readers of listed layouts (DTD, Flowers102, Food101) build from their split files. Files are read whole when a
// sample is asked for and decoded later, inside the transform's libvips pipeline (see image.ts). Also the folder
// listing they share, in an order that is the same on every machine.
import type { Dirent } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { type Dataset, type DatasetIdentity, checkIndex, readWhole } from "./dataset.js";
import { type EncodedImage, type RawImage, decodeImage } from "./image.js";
import { describeFileError, isFileError } from "../util/file-errors.js";

export class ImageFiles implements Dataset {
  readonly length: number;

  constructor(
    readonly identity: DatasetIdentity,
    readonly classes: string[],
    readonly labels: Int32Array, // (N)
    readonly paths: string[], // (N) absolute
  ) {
    if (labels.length !== paths.length) throw new Error(`${identity.name}: expected a label per image, got ${labels.length} labels for ${paths.length} images`);
    this.length = paths.length;
  }

  async read(i: number): Promise<EncodedImage> {
    checkIndex(this, i);
    const path = this.paths[i];
    return { path, bytes: await readWhole(this.identity.name, path) };
  }

  async image(i: number): Promise<RawImage> {
    return decodeImage(await this.read(i));
  }

  source(i: number): string {
    checkIndex(this, i);
    return this.paths[i];
  }
}

// UTF-16 order, independent of the locale: Python's sorted() order, which torchvision uses, for every name without
// characters beyond U+FFFF.
export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// A file-system failure in the reading module's words, naming the path (a symbolic link to itself: ELOOP).
function fileError(module: string, path: string, action: string, e: unknown): unknown {
  return isFileError(e) ? new Error(`${module}: ${describeFileError(e, path, action)}`, { cause: e }) : e;
}

export async function isDir(module: string, path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory(); // stat follows symlinks, as os.walk(followlinks=True) does
  } catch (e) {
    throw fileError(module, path, "read", e);
  }
}

// Visible entries of a folder, sorted, split into sub-folders and files. Hidden ones (.DS_Store,
// .ipynb_checkpoints) are left out. Only symlinks cost a stat, so listing ImageNet's 1.3M files stays a readdir per
// folder. A pipe, socket or device is refused, naming it: reading one as an image would wait for ever.
export async function entries(module: string, dir: string): Promise<{ dirs: string[]; files: string[] }> {
  const dirs: string[] = [];
  const files: string[] = [];
  let list: Dirent[];
  try {
    list = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith("."));
  } catch (e) {
    throw fileError(module, dir, "list", e);
  }
  list.sort((a, b) => byCodePoint(a.name, b.name));
  for (const e of list) {
    if (e.isFIFO() || e.isSocket() || e.isCharacterDevice() || e.isBlockDevice()) {
      throw new Error(`${module}: expected files and folders in ${dir}, got ${join(dir, e.name)}, a pipe, socket or device`);
    }
    const folder = e.isDirectory() || (e.isSymbolicLink() && (await isDir(module, join(dir, e.name))));
    (folder ? dirs : files).push(e.name);
  }
  return { dirs, files };
}
