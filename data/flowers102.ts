// Oxford Flowers102 as downloaded from its page (www.robots.ox.ac.uk/~vgg/data/flowers/102/):
//   jpg/image_00001.jpg .. image_08189.jpg   (102flowers.tgz) 8,189 images of varied sizes
//   imagelabels.mat                          "labels": 1 x 8189, the class (1..102) of image k at position k
//   setid.mat                                "trnid", "valid", "tstid": image numbers of the 1,020 train, 1,020 val
//                                            and 6,149 test images
// Both .mat files are MATLAB 5 files (mat5.ts). Splits: train, val, test, trainval (train then val). As torchvision's
// Flowers102: labels 1..102 become 0..101 and samples follow the order of the set's ids; the three sets are
// disjoint, so an image in two of them (or twice in one) is refused. The files name no classes: class k is named by
// its label in imagelabels.mat ("1".."102"), and the class count is the largest label there, the same for every
// split. The root may be this folder or the folder holding it as flowers-102/ (torchvision's).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { hashLines } from "./dataset.js";
import { ImageFiles } from "./image-files.js";
import { checkListed, checkOnce, checkPublishedCount } from "./list-files.js";
import { type Mat5File, readMat5 } from "./mat5.js";

const PUBLISHED = { images: 8189, classes: 102, trnid: 1020, valid: 1020, tstid: 6149 };
const SPLITS: Record<string, ("trnid" | "valid" | "tstid")[]> = { train: ["trnid"], val: ["valid"], test: ["tstid"], trainval: ["trnid", "valid"] };
export const FLOWERS102_SPLITS = Object.keys(SPLITS);

// A numeric vector of positive integers (MATLAB stores these as 1 x n doubles).
function positiveIntegers(mat: Mat5File, name: string): Float64Array {
  const { dims, values } = mat.numeric(name);
  if (dims.filter((d) => d !== 1).length > 1) throw new Error(`flowers102: expected "${name}" in ${mat.path} to be a vector, got dimensions ${dims.join("x")}`);
  const bad = values.findIndex((v) => !Number.isInteger(v) || v < 1);
  if (bad >= 0) throw new Error(`flowers102: expected positive integers in "${name}" of ${mat.path}, got ${values[bad]} at position ${bad + 1}`);
  return values;
}

export async function openFlowers102(root: string, split = "train"): Promise<ImageFiles> {
  const sets = SPLITS[split];
  if (!sets) throw new Error(`flowers102: expected a split ${FLOWERS102_SPLITS.join(", ")}, got "${split}"`);
  root = resolve(root);
  const dir = !existsSync(join(root, "imagelabels.mat")) && existsSync(join(root, "flowers-102", "imagelabels.mat")) ? join(root, "flowers-102") : root;
  for (const f of ["imagelabels.mat", "setid.mat", "jpg"])
    if (!existsSync(join(dir, f))) throw new Error(`flowers102: expected ${join(dir, f)} (from the Flowers102 download page), it does not exist`);
  const labelFile = await readMat5(join(dir, "imagelabels.mat"));
  const imageLabels = positiveIntegers(labelFile, "labels");
  const beyond = imageLabels.findIndex((l) => l > PUBLISHED.classes);
  if (beyond >= 0) throw new Error(`flowers102: expected labels 1..${PUBLISHED.classes} (Flowers102's classes) in "labels" of ${labelFile.path}, got ${imageLabels[beyond]} at position ${beyond + 1}`);
  const numClasses = imageLabels.reduce((a, b) => Math.max(a, b), 0);
  const setFile = await readMat5(join(dir, "setid.mat"));
  const complete = imageLabels.length === PUBLISHED.images;
  const why = `imagelabels.mat labels all ${PUBLISHED.images} images`;
  if (complete) checkPublishedCount("flowers102", labelFile.path, "classes", numClasses, PUBLISHED.classes, why);

  const chosen: { id: number; listedAt: string }[] = [];
  const listed: { key: string; at: string }[] = [];
  for (const name of ["trnid", "valid", "tstid"] as const) {
    const ids = positiveIntegers(setFile, name);
    if (complete) checkPublishedCount("flowers102", setFile.path, `ids in "${name}"`, ids.length, PUBLISHED[name], why);
    const beyond = ids.findIndex((id) => id > imageLabels.length);
    if (beyond >= 0) throw new Error(`flowers102: expected image numbers in [1, ${imageLabels.length}] (the images imagelabels.mat labels) in "${name}" of ${setFile.path}, got ${ids[beyond]} at position ${beyond + 1}`);
    ids.forEach((id, k) => listed.push({ key: `image ${id}`, at: `"${name}" position ${k + 1}` }));
    if (sets.includes(name)) ids.forEach((id, k) => chosen.push({ id, listedAt: `${setFile.path} "${name}" position ${k + 1}` }));
  }
  checkOnce("flowers102", `image number once in "trnid", "valid" and "tstid" of ${setFile.path} (the splits are disjoint)`, listed);
  if (chosen.length === 0) throw new Error(`flowers102: expected image numbers in "${sets.join('" and "')}" of ${setFile.path}, found none`);
  const rel = (id: number) => `jpg/image_${String(id).padStart(5, "0")}.jpg`;
  const paths = chosen.map((c) => join(dir, rel(c.id)));
  await checkListed("flowers102", chosen.map((c, k) => ({ path: paths[k], listedAt: c.listedAt })));
  const labels = Int32Array.from(chosen, (c) => imageLabels[c.id - 1] - 1);
  const classes = Array.from({ length: numClasses }, (_, k) => String(k + 1));
  const hash = hashLines(chosen.map((c, k) => `${rel(c.id)}\t${labels[k]}`));
  const identity = { name: "flowers102", root: dir, split, count: chosen.length, hash };
  return new ImageFiles(identity, classes, labels, paths);
}
