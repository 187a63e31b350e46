// Food-101 as distributed (food-101.tar.gz, extracted to food-101/):
//   images/<class>/<id>.jpg   101 classes of 1,000 images of varied sizes (at most 512 pixels a side)
//   meta/classes.txt          the class names, one a line, in label order
//   meta/train.txt, test.txt  "<class>/<id>" (no extension) one a line: 75,750 train and 25,250 test images
// Splits: train, test (the set has no validation split). Labels follow classes.txt (alphabetical, as torchvision's
// sorted class names) and samples the order of the split file. The root may be food-101/ or the folder holding it.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { hashLines } from "./dataset.js";
import { ImageFiles } from "./image-files.js";
import { checkListed, checkOnce, checkPublishedCount, readClassNames, readLines } from "./list-files.js";

const PUBLISHED: { classes: number; train: number; test: number } = { classes: 101, train: 75750, test: 25250 };

export async function openFood101(root: string, split = "train"): Promise<ImageFiles> {
  if (split !== "train" && split !== "test") throw new Error(`food101: expected a split train or test, got "${split}"`);
  root = resolve(root);
  const dir = !existsSync(join(root, "meta")) && existsSync(join(root, "food-101", "meta")) ? join(root, "food-101") : root;
  const classFile = join(dir, "meta", "classes.txt");
  const classes = await readClassNames("food101", classFile, "Food-101's class list");
  const index = new Map(classes.map((c, i) => [c, i]));
  if (classes.length === 0) throw new Error(`food101: expected class names in ${classFile}, found none`);
  const file = join(dir, "meta", `${split}.txt`);
  const lines = await readLines("food101", file, "Food-101's split file");
  if (classes.length === PUBLISHED.classes) checkPublishedCount("food101", file, "images", lines.length, PUBLISHED[split], `classes.txt names all ${PUBLISHED.classes} classes`);
  if (lines.length === 0) throw new Error(`food101: expected images listed in ${file}, found none`);
  const samples = lines.map(({ text, line }) => {
    const m = /^([^/]+)\/([^/]+)$/.exec(text);
    const label = m ? index.get(m[1]) : undefined;
    if (label === undefined) throw new Error(`food101: expected "<class>/<id>" with a class of ${classFile} at ${file} line ${line}, got "${text}"`);
    return { rel: `images/${text}.jpg`, label, listedAt: `${file} line ${line}` };
  });
  // The other split's list too, where it is there: the published splits are disjoint, and an image in both would
  // be tested on after training on it.
  const otherFile = join(dir, "meta", `${split === "train" ? "test" : "train"}.txt`);
  const other = existsSync(otherFile) ? await readLines("food101", otherFile, "Food-101's split file") : [];
  checkOnce("food101", "image once in the split files", [
    ...samples.map((s) => ({ key: s.rel, at: s.listedAt })),
    ...other.map(({ text, line }) => ({ key: `images/${text}.jpg`, at: `${otherFile} line ${line}` })),
  ]);
  const paths = samples.map((s) => join(dir, s.rel));
  await checkListed("food101", samples.map((s, k) => ({ path: paths[k], listedAt: s.listedAt })));
  const labels = Int32Array.from(samples, (s) => s.label);
  const hash = hashLines(samples.map((s) => `${s.rel}\t${s.label}`));
  const identity = { name: "food101", root: dir, split, count: samples.length, hash };
  return new ImageFiles(identity, classes, labels, paths);
}
