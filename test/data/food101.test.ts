// Food-101 as distributed: class order from meta/classes.txt, labels and order from meta/train.txt and test.txt,
// the published sizes of a complete set, `data`, and an error naming the file for each damage (a missing list, a
// listed image that is missing, a bad line, an unknown or repeated class, an image listed twice, an unknown split).
import { describe, expect, it } from "vitest";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openFood101 } from "../../data/food101.js";
import { openDataset } from "../../data/registry.js";
import { writeFood101 } from "./layouts.js";
import { useTmpDir } from "./fixtures.js";
import { runCli } from "../bad-input/harness.js";

const tmp = useTmpDir("food");
let n = 0;
const fresh = async (opts?: Parameters<typeof writeFood101>[1]) => writeFood101(join(tmp, `copy${n++}`), opts);
const lines = (root: string, file: string) => readFileSync(join(root, "meta", file), "utf8").trim().split("\n");

describe("openFood101", () => {
  it("reads train and test in the split file's order, labels in classes.txt's order", async () => {
    const root = await fresh({ classes: 3, perClass: 4 });
    // classes.txt in an order of its own: labels must follow it, not the folder names' order.
    writeFileSync(join(root, "meta", "classes.txt"), "baklava\napple_pie\r\nbaby_back_ribs\n\n");
    for (const split of ["train", "test"]) {
      const ds = await openDataset({ name: "food101", root, split });
      const listed = lines(root, `${split}.txt`);
      expect(ds.identity).toMatchObject({ name: "food101", root, split, count: split === "train" ? 9 : 3 });
      expect(ds.classes).toEqual(["baklava", "apple_pie", "baby_back_ribs"]);
      expect(Array.from({ length: ds.length }, (_, i) => ds.source(i))).toEqual(listed.map((l) => join(root, "images", `${l}.jpg`)));
      expect(Array.from(ds.labels)).toEqual(listed.map((l) => ds.classes.indexOf(l.split("/")[0])));
    }
    expect(Array.from((await openFood101(root, "test")).labels)).toEqual([1, 2, 0]);
    expect((await openFood101(join(root, ".."))).identity.root).toBe(root); // the folder holding food-101/
  });

  it("names a missing list, a listed image that is missing, bad lines and classes", async () => {
    let root = await fresh();
    rmSync(join(root, "meta", "test.txt"));
    await expect(openFood101(root, "test")).rejects.toThrow(`food101: expected Food-101's split file ${join(root, "meta", "test.txt")}, it does not exist`);
    await expect(openFood101(root, "train")).resolves.toBeDefined();
    rmSync(join(root, "meta", "classes.txt"));
    await expect(openFood101(root, "train")).rejects.toThrow(`food101: expected Food-101's class list ${join(root, "meta", "classes.txt")}, it does not exist`);

    root = await fresh();
    const gone = lines(root, "train.txt")[3];
    rmSync(join(root, "images", `${gone}.jpg`));
    await expect(openFood101(root)).rejects.toThrow(`food101: expected the image ${join(root, "images", `${gone}.jpg`)} listed in ${join(root, "meta", "train.txt")} line 4, it does not exist`);
    rmSync(join(root, "images", "baklava"), { recursive: true });
    await expect(openFood101(root, "test")).rejects.toThrow(/food101: expected the image .*baklava.* listed in .*test\.txt line 3, it does not exist \(nor its folder\)/);

    for (const bad of ["apple_pie", "apple_pie/1/2", "sushi/1000003", "/1000003"]) {
      root = await fresh();
      const file = join(root, "meta", "test.txt");
      writeFileSync(file, `${lines(root, "test.txt")[0]}\n${bad}\n`);
      await expect(openFood101(root, "test")).rejects.toThrow(`food101: expected "<class>/<id>" with a class of ${join(root, "meta", "classes.txt")} at ${file} line 2, got "${bad}"`);
    }
    root = await fresh();
    writeFileSync(join(root, "meta", "classes.txt"), "apple_pie\nbaklava\napple_pie\n");
    await expect(openFood101(root)).rejects.toThrow(`food101: expected each class once in ${join(root, "meta", "classes.txt")}, got "apple_pie" at line 1 and again at line 3`);
    root = await fresh();
    const train = join(root, "meta", "train.txt");
    const listed = lines(root, "train.txt");
    writeFileSync(train, [...listed, listed[1]].join("\n") + "\n");
    await expect(openFood101(root)).rejects.toThrow(
      `food101: expected each image once in the split files, got images/${listed[1]}.jpg at ${train} line 2 and again at ${train} line ${listed.length + 1}`,
    );
    // In both splits: refused when either is opened.
    root = await fresh();
    const [trainFile, testFile] = ["train.txt", "test.txt"].map((f) => join(root, "meta", f));
    const tested = lines(root, "test.txt");
    writeFileSync(testFile, [...tested, lines(root, "train.txt")[0]].join("\n") + "\n");
    const both = `images/${lines(root, "train.txt")[0]}.jpg at ${trainFile} line 1 and again at ${testFile} line ${tested.length + 1}`;
    await expect(openFood101(root)).rejects.toThrow(`food101: expected each image once in the split files, got ${both}`);
    await expect(openFood101(root, "test")).rejects.toThrow(`food101: expected each image once in the split files, got images/${lines(root, "train.txt")[0]}.jpg at ${testFile} line ${tested.length + 1} and again at ${trainFile} line 1`);
    writeFileSync(join(root, "meta", "classes.txt"), "\n");
    await expect(openFood101(root)).rejects.toThrow(`food101: expected class names in ${join(root, "meta", "classes.txt")}, found none`);
    await expect(openFood101(root, "val")).rejects.toThrow(`food101: expected a split train or test, got "val"`);
  });

  it("checks a set whose classes.txt names 101 classes against the published 75,750 / 25,250 images", async () => {
    const root = await fresh();
    const names = lines(root, "classes.txt");
    writeFileSync(join(root, "meta", "classes.txt"), [...names, ...Array.from({ length: 98 }, (_, k) => `dish_${k}`)].join("\n") + "\n");
    await expect(openFood101(root, "test")).rejects.toThrow(`food101: expected 25250 images in ${join(root, "meta", "test.txt")} (the published size; classes.txt names all 101 classes), got 3`);
  });
});

describe("data --dataset food101", () => {
  it("describes a split", async () => {
    const root = await fresh({ classes: 2, perClass: 3 });
    const r = await runCli(["data", "--dataset", "food101", "--root", root, "--split", "test"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`dataset   food101, split test, ${root}`);
    expect(r.out).toContain("images    2 in 2 classes, size 16..16 x 16..16 (2 measured)");
    expect(r.out).toMatch(/ 1 {2}baby_back_ribs {2}1/);
    const bad = await runCli(["data", "--dataset", "food101", "--root", join(root, "images")]);
    expect([bad.code, bad.err]).toEqual([1, expect.stringContaining(join(root, "images", "meta", "classes.txt"))]);
  });
});
