// DTD, the Describable Textures Dataset, as distributed (dtd-r1.0.1.tar.gz, extracted to dtd/):
//   images/<class>/<image>.jpg          47 classes, 5,640 images of varied sizes
//   labels/train1.txt .. test10.txt     10 folds, each listing 1,880 train, 1,880 val and 1,880 test images
//                                       as "<class>/<image>.jpg", one a line
//   labels/labels_joint_anno.txt        multi-label annotations (not read)
// Splits: train, val, test, trainval (train then val) of fold 1, the standard; train<N>, val<N>, test<N>,
// trainval<N> of fold N = 1..10. As torchvision's DTD: classes are the class folders sorted, a sample's label is the
// class folder in its listed path, and samples follow the order of the split file. A fold's three files list every
// class and are disjoint (the published ones are), so a class folder none lists and an image listed twice are
// refused. The root may be dtd/ or the folder holding it.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { hashLines } from "./dataset.js";
import { ImageFiles, entries, isDir } from "./image-files.js";
import { type Listed, checkListed, checkOnce, checkPublishedCount, readLines } from "./list-files.js";

const PUBLISHED = { classes: 47, perSplit: 1880 };
const FOLDS = 10;
const PARTS = ["train", "val", "test"] as const;

export const DTD_SPLITS = ["train", "val", "test", "trainval"].flatMap((s) => [s, ...Array.from({ length: FOLDS }, (_, k) => `${s}${k + 1}`)]);

// "train" -> train of fold 1; "trainval7" -> train and val of fold 7.
function parseSplit(split: string): { parts: string[]; fold: number } {
  const m = /^(train|val|test|trainval)([1-9]\d*)?$/.exec(split);
  const fold = m?.[2] === undefined ? 1 : Number(m[2]);
  if (!m || fold > FOLDS) throw new Error(`dtd: expected a split train, val, test or trainval, optionally with a fold 1..${FOLDS} (e.g. train3), got "${split}"`);
  return { parts: m[1] === "trainval" ? ["train", "val"] : [m[1]], fold };
}

export async function openDtd(root: string, split = "train"): Promise<ImageFiles> {
  const { parts, fold } = parseSplit(split);
  root = resolve(root);
  const dir = !existsSync(join(root, "images")) && existsSync(join(root, "dtd", "images")) ? join(root, "dtd") : root;
  const images = join(dir, "images");
  if (!existsSync(images)) throw new Error(`dtd: expected the folder images/ of DTD in ${dir}, it does not exist`);
  if (!(await isDir("dtd", images))) throw new Error(`dtd: expected ${images} to be the folder of DTD's class folders, got a file`);
  const classes = (await entries("dtd", images)).dirs;
  if (classes.length === 0) throw new Error(`dtd: expected class folders in ${images}, found none`);
  const index = new Map(classes.map((c, i) => [c, i]));

  // All three files of the fold are read, so that a complete set is checked whichever split is opened.
  const lists = new Map<string, { rel: string; label: number; listed: Listed }[]>();
  for (const part of PARTS) {
    const rel = `labels/${part}${fold}.txt`;
    const file = join(dir, rel);
    const lines = await readLines("dtd", file, "DTD's split file");
    if (classes.length === PUBLISHED.classes) checkPublishedCount("dtd", file, "images", lines.length, PUBLISHED.perSplit, `images/ holds all ${PUBLISHED.classes} classes`);
    lists.set(
      part,
      lines.map(({ text, line }) => {
        const m = /^([^/]+)\/([^/]+)$/.exec(text);
        const label = m ? index.get(m[1]) : undefined;
        if (label === undefined) throw new Error(`dtd: expected "<class>/<image>.jpg" with a class folder of ${images} at ${file} line ${line}, got "${text}"`);
        return { rel: `images/${text}`, label, listed: { path: join(dir, "images", text), listedAt: `${file} line ${line}` } };
      }),
    );
  }
  const all = [...lists.values()].flat();
  checkOnce("dtd", `image once in the split files of fold ${fold} (train, val and test are disjoint)`, all.map((s) => ({ key: s.rel, at: s.listed.listedAt })));
  const listedClasses = new Set(all.map((s) => s.label));
  const unlisted = classes.findIndex((_, c) => !listedClasses.has(c));
  if (unlisted >= 0) throw new Error(`dtd: expected the split files of fold ${fold} in ${join(dir, "labels")} to list images of each class folder, got none of ${join(images, classes[unlisted])}`);
  const chosen = parts.flatMap((p) => lists.get(p)!);
  if (chosen.length === 0) throw new Error(`dtd: expected images listed in ${parts.map((p) => join(dir, `labels/${p}${fold}.txt`)).join(" and ")}, found none`);
  await checkListed("dtd", chosen.map((s) => s.listed));
  const labels = Int32Array.from(chosen, (s) => s.label);
  const hash = hashLines(chosen.map((s) => `${s.rel}\t${s.label}`));
  const identity = { name: "dtd", root: dir, split: `${parts.join("")}${fold}`, count: chosen.length, hash };
  return new ImageFiles(identity, classes, labels, chosen.map((s) => s.listed.path));
}
