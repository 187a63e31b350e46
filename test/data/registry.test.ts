// Opening datasets by name: unknown names, missing or file roots, datasets without a default root.
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { DATASET_NAMES, defaultRoot, openDataset } from "../../data/registry.js";
import { idxBytes, pattern, useTmpDir, writeFile } from "./fixtures.js";

const tmp = useTmpDir("registry");

describe("openDataset", () => {
  it("knows the formats of the issue", () => {
    expect(DATASET_NAMES).toEqual(["fashion-mnist", "mnist", "cifar10", "cifar100", "cifar100-coarse", "dtd", "flowers102", "food101", "imagefolder", "npy"]);
    expect(defaultRoot("fashion-mnist")).toBe("/usr/share/datasets/fashion-mnist");
  });

  it("names an unknown dataset, a missing root, a file root and a missing --root", async () => {
    await expect(openDataset({ name: "imagenet" })).rejects.toThrow(`data: expected a dataset name (${DATASET_NAMES.join(", ")}), got "imagenet"`);
    const missing = join(tmp, "nowhere");
    await expect(openDataset({ name: "imagefolder", root: missing })).rejects.toThrow(`data: expected the imagefolder root folder ${missing}, it does not exist`);
    const file = writeFile(join(tmp, "file"), "x");
    await expect(openDataset({ name: "cifar10", root: file })).rejects.toThrow(`data: expected the cifar10 root ${file} to be a folder, got a file`);
    await expect(openDataset({ name: "cifar10" })).rejects.toThrow("data: dataset cifar10 needs a root folder");
  });

  it("opens a format by name with the split", async () => {
    const dir = join(tmp, "mnist");
    writeFile(join(dir, "t10k-images-idx3-ubyte"), idxBytes([2, 4, 4], pattern(32, 1)));
    writeFile(join(dir, "t10k-labels-idx1-ubyte"), idxBytes([2], Uint8Array.from([4, 2])));
    const ds = await openDataset({ name: "mnist", root: dir, split: "test" });
    expect(ds.identity).toMatchObject({ name: "mnist", split: "test", count: 2, root: dir });
  });
});
