// DTD in its distributed layout: classes from the image folders, labels from the listed paths, every split name of
// the 10 folds, trainval, the identity, decoding of its varied-size images through every transform, `data`, and an
// error naming the file for each damage (a missing split file or image, a bad line, an image listed twice in a fold,
// a class folder no split file lists, a complete-looking set of the wrong size, an unknown split).
import { describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DTD_SPLITS, openDtd } from "../../data/dtd.js";
import { openDataset } from "../../data/registry.js";
import { Loader } from "../../data/loader.js";
import { IMAGENET_MEAN, IMAGENET_STD, Transform } from "../../data/transforms.js";
import { classColour, writeDtd } from "./layouts.js";
import { useTmpDir } from "./fixtures.js";
import { runCli } from "../bad-input/harness.js";

const tmp = useTmpDir("dtd");
let n = 0;
const fresh = async (opts?: Parameters<typeof writeDtd>[1]) => writeDtd(join(tmp, `copy${n++}`), opts);
const lines = (root: string, file: string) => readFileSync(join(root, "labels", file), "utf8").trim().split("\n");

describe("openDtd", () => {
  it("reads fold 1 as train, val and test: sorted classes, labels from the listed paths, the split file's order", async () => {
    const root = await fresh({ classes: 3, perClass: 6 });
    const ds = await openDataset({ name: "dtd", root });
    expect(ds.classes).toEqual(["banded", "blotchy", "braided"]);
    expect(ds.identity).toMatchObject({ name: "dtd", root, split: "train1", count: 6 });
    const listed = lines(root, "train1.txt");
    expect(Array.from({ length: ds.length }, (_, i) => ds.source(i))).toEqual(listed.map((l) => join(root, "images", l)));
    expect(Array.from(ds.labels)).toEqual(listed.map((l) => ds.classes.indexOf(l.split("/")[0])));
    expect(Array.from(ds.labels)).toEqual([0, 0, 1, 1, 2, 2]);
    for (const part of ["val", "test"]) expect((await openDtd(root, part)).identity.split).toBe(`${part}1`);
    expect((await openDtd(root, "train")).identity.hash).toBe((await openDtd(root, "train1")).identity.hash);
  });

  it("opens every split of every fold, and trainval as train then val", async () => {
    const root = await fresh();
    expect(DTD_SPLITS).toHaveLength(44);
    for (const split of DTD_SPLITS) {
      const ds = await openDtd(root, split);
      const fold = split.match(/\d+$/)?.[0] ?? "1";
      const parts = split.startsWith("trainval") ? ["train", "val"] : [split.replace(/\d+$/, "")];
      const want = parts.flatMap((p) => lines(root, `${p}${fold}.txt`)).map((l) => join(root, "images", l));
      expect([split, ds.identity.split, ds.paths]).toEqual([split, `${parts.join("")}${fold}`, want]);
    }
    const hashes = new Set(await Promise.all(["train1", "train2", "val1", "trainval1"].map(async (s) => (await openDtd(root, s)).identity.hash)));
    expect(hashes.size).toBe(4);
  });

  it("takes the folder holding dtd/ as the root too", async () => {
    const root = await fresh();
    const ds = await openDtd(join(root, ".."), "test3");
    expect([ds.identity.root, ds.length]).toEqual([root, 3]);
  });

  it("decodes its varied-size images through the train, eval and k-NN transforms", async () => {
    const ds = await openDtd(await fresh(), "trainval");
    const sizes = await Promise.all(Array.from({ length: ds.length }, async (_, i) => ((img) => `${img.width}x${img.height}`)(await ds.image(i))));
    expect(new Set(sizes).size).toBeGreaterThan(1);
    for (const kind of ["train", "eval", "knn"] as const) {
      const loader = new Loader(ds, new Transform({ kind, size: 6 }), { batchSize: ds.length });
      for await (const b of loader.epoch(0)) {
        expect([kind, b.images.length]).toEqual([kind, ds.length * 3 * 36]);
        // Solid colours: every pixel of sample 0 is its class's colour, normalised (JPEG error within 3 levels).
        const want = Object.values(classColour(b.labels[0]));
        for (let c = 0; c < 3; c++)
          for (let p = 0; p < 36; p++) expect(Math.abs(b.images[c * 36 + p] * IMAGENET_STD[c] + IMAGENET_MEAN[c] - want[c] / 255)).toBeLessThan(3.5 / 255);
      }
    }
  });

  it("names a missing split file, a listed image that is missing, and bad lines", async () => {
    let root = await fresh();
    rmSync(join(root, "labels", "test1.txt"));
    await expect(openDtd(root, "train")).rejects.toThrow(`dtd: expected DTD's split file ${join(root, "labels", "test1.txt")}, it does not exist`);
    root = await fresh();
    const gone = lines(root, "val2.txt")[1];
    rmSync(join(root, "images", gone));
    await expect(openDtd(root, "val2")).rejects.toThrow(`dtd: expected the image ${join(root, "images", gone)} listed in ${join(root, "labels", "val2.txt")} line 2, it does not exist`);
    await expect(openDtd(root, "train2")).resolves.toBeDefined(); // only the opened split's images must exist
    for (const [bad, at] of [
      ["banded_0001.jpg", 2],
      ["waffled/waffled_0001.jpg", 2],
      ["banded/sub/banded_0001.jpg", 2],
    ] as const) {
      root = await fresh();
      const file = join(root, "labels", "train1.txt");
      const l = lines(root, "train1.txt");
      l[at - 1] = bad;
      writeFileSync(file, l.join("\r\n") + "\r\n");
      await expect(openDtd(root, "val")).rejects.toThrow(`dtd: expected "<class>/<image>.jpg" with a class folder of ${join(root, "images")} at ${file} line ${at}, got "${bad}"`);
    }
    root = await fresh();
    writeFileSync(join(root, "labels", "val1.txt"), "\n");
    await expect(openDtd(root, "val")).rejects.toThrow(`dtd: expected images listed in ${join(root, "labels", "val1.txt")}, found none`);
    const empty = join(tmp, "empty");
    mkdirSync(join(empty, "images"), { recursive: true });
    await expect(openDtd(empty)).rejects.toThrow(`dtd: expected class folders in ${join(empty, "images")}, found none`);
    await expect(openDtd(tmp)).rejects.toThrow(`dtd: expected the folder images/ of DTD in ${tmp}, it does not exist`);
  });

  it("names an image listed twice in a split or in two splits of a fold, and a class folder the fold does not list", async () => {
    let root = await fresh();
    const file = (f: string) => join(root, "labels", f);
    const train = lines(root, "train1.txt");
    writeFileSync(file("train1.txt"), [...train, train[0]].join("\n") + "\n");
    const why = "expected each image once in the split files of fold 1 (train, val and test are disjoint)";
    await expect(openDtd(root, "val")).rejects.toThrow(`dtd: ${why}, got images/${train[0]} at ${file("train1.txt")} line 1 and again at ${file("train1.txt")} line ${train.length + 1}`);
    await expect(openDtd(root, "val2")).resolves.toBeDefined(); // fold 2's files are its own
    root = await fresh();
    const test = lines(root, "test1.txt");
    writeFileSync(file("test1.txt"), [train[1], ...test].join("\n") + "\n");
    await expect(openDtd(root, "test")).rejects.toThrow(`dtd: ${why}, got images/${train[1]} at ${file("train1.txt")} line 2 and again at ${file("test1.txt")} line 1`);
    root = await fresh();
    mkdirSync(join(root, "images", "zigzagged"));
    await expect(openDtd(root)).rejects.toThrow(`dtd: expected the split files of fold 1 in ${join(root, "labels")} to list images of each class folder, got none of ${join(root, "images", "zigzagged")}`);
  });

  it("checks a set with all 47 class folders against the published 1,880 images per split file", async () => {
    const root = await fresh();
    for (let k = 0; k < 44; k++) mkdirSync(join(root, "images", `texture${k}`));
    await expect(openDtd(root)).rejects.toThrow(`dtd: expected 1880 images in ${join(root, "labels", "train1.txt")} (the published size; images/ holds all 47 classes), got 3`);
  });

  it("names an unknown split", async () => {
    const root = await fresh();
    for (const split of ["train0", "train11", "trainval01", "validation", "all"])
      await expect(openDtd(root, split)).rejects.toThrow(`dtd: expected a split train, val, test or trainval, optionally with a fold 1..10 (e.g. train3), got "${split}"`);
  });
});

describe("data --dataset dtd", () => {
  it("describes a split: counts per class, image sizes, identity, and a contact sheet", async () => {
    const root = await fresh({ classes: 3, perClass: 6 });
    const sheet = join(tmp, "sheet.png");
    const r = await runCli(["data", "--dataset", "dtd", "--root", root, "--split", "trainval4", "--sheet", sheet]);
    expect(r.code).toBe(0);
    const ds = await openDtd(root, "trainval4");
    expect(r.out).toContain(`dataset   dtd, split trainval4, ${root}`);
    expect(r.out).toMatch(/images {4}12 in 3 classes, size 9\.\.16 x 7\.\.16 \(12 measured\)/);
    expect(r.out).toContain(`identity  hash ${ds.identity.hash}`);
    expect(r.out).toMatch(/ 1 {2}blotchy +4/);
    expect(r.out).toMatch(new RegExp(`sheet {5}${sheet}: \\d+x\\d+, rows = classes 0..2`));
    const bad = await runCli(["data", "--dataset", "dtd", "--root", root, "--split", "fold1"]);
    expect([bad.code, bad.err]).toEqual([1, expect.stringContaining(`got "fold1"`)]);
  });
});
