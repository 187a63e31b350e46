// Flowers102 as downloaded: image numbers from setid.mat in their order, labels 1..102 of imagelabels.mat as
// 0..101, both .mat files in either byte order, plain or compressed, the published sizes of a complete set, `data`,
// and an error naming the file for each damage (a missing or truncated .mat, a v7.3 file, a struct or cell where
// the numbers belong, a missing variable, a label past 102, an id past the labels or in two sets, a listed image
// that is missing).
import { describe, expect, it } from "vitest";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openFlowers102 } from "../../data/flowers102.js";
import { openDataset } from "../../data/registry.js";
import { flowersSets, writeFlowers102 } from "./layouts.js";
import { type MatArray, mat5Bytes, mat73Bytes } from "./mat5-writer.js";
import { useTmpDir } from "./fixtures.js";
import { runCli } from "../bad-input/harness.js";

const tmp = useTmpDir("flowers");
let n = 0;
const fresh = async (opts?: Parameters<typeof writeFlowers102>[1]) => writeFlowers102(join(tmp, `copy${n++}`), opts);
const image = (root: string, id: number) => join(root, "jpg", `image_${String(id).padStart(5, "0")}.jpg`);

describe("openFlowers102", () => {
  for (const mat of [{ compress: true }, { bigEndian: true }, { bigEndian: true, compress: true }, {}])
    it(`reads train, val, test and trainval in setid.mat's order (.mat ${JSON.stringify(mat)})`, async () => {
      const root = await fresh({ classes: 3, perClass: 4, mat });
      const sets = flowersSets(3, 4);
      const want = { train: sets.trnid, val: sets.valid, test: sets.tstid, trainval: [...sets.trnid, ...sets.valid] };
      for (const [split, ids] of Object.entries(want)) {
        const ds = await openDataset({ name: "flowers102", root, split });
        expect(ds.identity).toMatchObject({ name: "flowers102", root, split, count: ids.length });
        expect(Array.from({ length: ds.length }, (_, i) => ds.source(i))).toEqual(ids.map((id) => image(root, id)));
        // Image k of class c is number 4c + k + 1 with label c + 1 in the .mat, c here.
        expect(Array.from(ds.labels)).toEqual(ids.map((id) => Math.floor((id - 1) / 4)));
        expect(ds.classes).toEqual(["1", "2", "3"]);
      }
    });

  it("counts classes up to the largest label of imagelabels.mat, the same for every split", async () => {
    const root = await fresh();
    writeFileSync(join(root, "imagelabels.mat"), mat5Bytes([{ name: "labels", values: [1, 1, 1, 5, 5, 5, 2, 2, 2] }]));
    const train = await openFlowers102(root, "train");
    expect([train.classes.length, Array.from(train.labels)]).toEqual([5, [1, 4, 0]]); // trnid lists 7, 4, 1
    expect((await openFlowers102(root, "test")).classes).toEqual(["1", "2", "3", "4", "5"]);
  });

  it("takes the folder holding flowers-102/ (torchvision's) as the root too", async () => {
    const root = await fresh();
    const parent = join(root, "..");
    renameSync(root, join(parent, "flowers-102"));
    expect((await openFlowers102(parent, "val")).identity.root).toBe(join(parent, "flowers-102"));
  });

  it("names each damaged or missing file", async () => {
    const cases: [string, (root: string) => void, (root: string) => string | RegExp][] = [
      ["missing setid.mat", (r) => rmSync(join(r, "setid.mat")), (r) => `flowers102: expected ${join(r, "setid.mat")} (from the Flowers102 download page), it does not exist`],
      ["missing jpg/", (r) => rmSync(join(r, "jpg"), { recursive: true }), (r) => `flowers102: expected ${join(r, "jpg")} (from the Flowers102 download page), it does not exist`],
      [
        "truncated imagelabels.mat",
        (r) => writeFileSync(join(r, "imagelabels.mat"), readFileSync(join(r, "imagelabels.mat")).subarray(0, 150)),
        (r) => new RegExp(`^mat5: expected a MAT v5 file in ${join(r, "imagelabels.mat")}, got a file truncated at byte 150`),
      ],
      [
        "zeroed setid.mat",
        (r) => writeFileSync(join(r, "setid.mat"), new Uint8Array(readFileSync(join(r, "setid.mat")).length)),
        (r) => `mat5: expected a MAT v5 file in ${join(r, "setid.mat")}, got no endian indicator "IM" or "MI" at byte 126`,
      ],
      ["v7.3 setid.mat", (r) => writeFileSync(join(r, "setid.mat"), mat73Bytes()), (r) => `mat5: expected a MAT v5 file in ${join(r, "setid.mat")}, got a MATLAB v7.3 (HDF5) file`],
      [
        "setid.mat as a struct",
        (r) => writeFileSync(join(r, "setid.mat"), mat5Bytes([{ name: "trnid", className: "struct", cells: [{ name: "ids", values: [1] }] }], { compress: true })),
        (r) => `mat5: expected "trnid" in ${join(r, "setid.mat")} to be a real numeric array, got a struct array`,
      ],
      [
        "labels in a cell",
        (r) => writeFileSync(join(r, "imagelabels.mat"), mat5Bytes([{ name: "labels", className: "cell", cells: [{ name: "", values: [1, 2, 3] }] }])),
        (r) => `mat5: expected "labels" in ${join(r, "imagelabels.mat")} to be a real numeric array, got a cell array`,
      ],
      [
        "a set missing",
        (r) => writeFileSync(join(r, "setid.mat"), mat5Bytes([{ name: "trnid", values: [1] }, { name: "tstid", values: [2] }])),
        (r) => `mat5: expected a variable "valid" in ${join(r, "setid.mat")}, found trnid, tstid`,
      ],
      [
        "a label of 0",
        (r) => writeFileSync(join(r, "imagelabels.mat"), mat5Bytes([{ name: "labels", values: [1, 1, 0, 2, 2, 2, 3, 3, 3] }])),
        (r) => `flowers102: expected positive integers in "labels" of ${join(r, "imagelabels.mat")}, got 0 at position 3`,
      ],
      [
        "a label past 102",
        (r) => writeFileSync(join(r, "imagelabels.mat"), mat5Bytes([{ name: "labels", values: [1, 1, 1, 2, 2, 2, 3, 3, 4e9] }])),
        (r) => `flowers102: expected labels 1..102 (Flowers102's classes) in "labels" of ${join(r, "imagelabels.mat")}, got 4000000000 at position 9`,
      ],
      [
        "an image in two sets",
        (r) => writeFileSync(join(r, "setid.mat"), mat5Bytes(Object.entries({ ...flowersSets(3, 3), tstid: [9, 6, 3, 1] }).map(([name, values]) => ({ name, values })))),
        (r) => `flowers102: expected each image number once in "trnid", "valid" and "tstid" of ${join(r, "setid.mat")} (the splits are disjoint), got image 1 at "trnid" position 3 and again at "tstid" position 4`,
      ],
      [
        "an image twice in one set",
        (r) => writeFileSync(join(r, "setid.mat"), mat5Bytes(Object.entries({ ...flowersSets(3, 3), trnid: [7, 4, 1, 4] }).map(([name, values]) => ({ name, values })))),
        (r) => `of ${join(r, "setid.mat")} (the splits are disjoint), got image 4 at "trnid" position 2 and again at "trnid" position 4`,
      ],
      [
        "labels as a matrix",
        (r) => writeFileSync(join(r, "imagelabels.mat"), mat5Bytes([{ name: "labels", dims: [3, 3], values: [1, 1, 1, 2, 2, 2, 3, 3, 3] }])),
        (r) => `flowers102: expected "labels" in ${join(r, "imagelabels.mat")} to be a vector, got dimensions 3x3`,
      ],
      [
        "an id past the labelled images",
        (r) => writeFileSync(join(r, "setid.mat"), mat5Bytes(Object.entries({ ...flowersSets(3, 3), valid: [2, 10] }).map(([name, values]) => ({ name, values })))),
        (r) => `flowers102: expected image numbers in [1, 9] (the images imagelabels.mat labels) in "valid" of ${join(r, "setid.mat")}, got 10 at position 2`,
      ],
      [
        "a listed image missing",
        (r) => rmSync(image(r, 5)),
        (r) => `flowers102: expected the image ${image(r, 5)} listed in ${join(r, "setid.mat")} "valid" position 2, it does not exist`,
      ],
    ];
    for (const [what, damage, says] of cases) {
      const root = await fresh();
      damage(root);
      await expect(openFlowers102(root, "val"), what).rejects.toThrow(says(root));
    }
    await expect(openFlowers102(await fresh(), "all")).rejects.toThrow(`flowers102: expected a split train, val, test, trainval, got "all"`);
  });

  it("checks a set whose imagelabels.mat labels 8,189 images against the published sizes", async () => {
    const root = await fresh();
    const labels = Array.from({ length: 8189 }, (_, i) => 1 + (i % 102));
    const sets: MatArray[] = [
      { name: "trnid", values: Array.from({ length: 1020 }, (_, i) => i + 1) },
      { name: "valid", values: Array.from({ length: 1020 }, (_, i) => i + 1021) },
      { name: "tstid", values: Array.from({ length: 6148 }, (_, i) => i + 2041) },
    ];
    writeFileSync(join(root, "imagelabels.mat"), mat5Bytes([{ name: "labels", values: labels, storedAs: "uint8" }], { compress: true }));
    writeFileSync(join(root, "setid.mat"), mat5Bytes(sets, { compress: true }));
    await expect(openFlowers102(root, "train")).rejects.toThrow(
      `flowers102: expected 6149 ids in "tstid" in ${join(root, "setid.mat")} (the published size; imagelabels.mat labels all 8189 images), got 6148`,
    );
    writeFileSync(join(root, "imagelabels.mat"), mat5Bytes([{ name: "labels", values: labels.map((l) => Math.min(l, 101)) }]));
    await expect(openFlowers102(root, "train")).rejects.toThrow(`flowers102: expected 102 classes in ${join(root, "imagelabels.mat")} (the published size; imagelabels.mat labels all 8189 images), got 101`);
  });
});

describe("data --dataset flowers102", () => {
  it("describes a split", async () => {
    const root = await fresh({ classes: 4, perClass: 3 });
    const r = await runCli(["data", "--dataset", "flowers102", "--root", root, "--split", "trainval", "--json"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out);
    expect(out.identity).toMatchObject({ name: "flowers102", split: "trainval", count: 8, root });
    expect(out.classes).toEqual(["1", "2", "3", "4"].map((name, index) => ({ index, name, count: 2 })));
    expect(out.sizes).toMatchObject({ minWidth: 9, maxWidth: 12, minHeight: 8, maxHeight: 14, measured: 8 });
    writeFileSync(join(root, "setid.mat"), mat73Bytes());
    const bad = await runCli(["data", "--dataset", "flowers102", "--root", root]);
    expect([bad.code, bad.err]).toEqual([1, expect.stringContaining(`${join(root, "setid.mat")}, got a MATLAB v7.3 (HDF5) file`)]);
  });
});
