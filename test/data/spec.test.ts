// A data spec's transform: the settings it gives, and nothing for those it leaves to the transform's defaults.
import { describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { type DataSpec, type OpenedDatasets, openData, transformFor } from "../../data/spec.js";
import { Transform } from "../../data/transforms.js";
import { idxBytes, pattern, useTmpDir, writeFile } from "./fixtures.js";

const tmp = useTmpDir("spec");

describe("transformFor", () => {
  const spec: DataSpec = { dataset: "npy", split: "train", transform: "train" };

  it("gives the kind and size, and only the settings the spec sets", () => {
    expect(transformFor(spec, 28)).toEqual({ kind: "train", size: 28 });
    expect(Object.keys(transformFor(spec, 28))).toEqual(["kind", "size"]);
    const full: DataSpec = { ...spec, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], interpolation: "bicubic", scale: [0.2, 1] };
    expect(transformFor(full, 224)).toEqual({ kind: "train", size: 224, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], interpolation: "bicubic", scale: [0.2, 1] });
  });

  it("normalises with the spec's statistics", async () => {
    const pixel = { width: 1, height: 1, channels: 3 as const, data: Uint8Array.from([255, 0, 51]) }; // one RGB pixel
    const t = new Transform(transformFor({ ...spec, transform: "eval", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, 1));
    expect(Array.from(await t.tensor(pixel))).toEqual([1, -1, Math.fround(Math.fround(Math.fround(51 / 255) - 0.5) / 0.5)]);
  });
});

describe("openData", () => {
  // 12 Fashion-MNIST-shaped images of 3x2 pixels, labels 0..3 in turn.
  const root = join(tmp, "fashion");
  const write = () => {
    writeFile(join(root, "train-images-idx3-ubyte"), idxBytes([12, 3, 2], pattern(72, 5)));
    writeFile(join(root, "train-labels-idx1-ubyte"), idxBytes([12], Uint8Array.from({ length: 12 }, (_, i) => i % 4)));
  };
  const spec = (classes: number[]): DataSpec => ({ dataset: "fashion-mnist", root, split: "train", classes, transform: "eval" });

  it("with `opened`, reads a dataset's files once for every spec drawn from them", async () => {
    write();
    const opened: OpenedDatasets = new Map();
    const a = await openData(spec([0, 1]), 0, opened);
    rmSync(root, { recursive: true });
    const b = await openData(spec([2, 3]), 0, opened); // the files are gone: taken from `opened`
    expect([a.length, b.length]).toEqual([6, 6]);
    expect(Array.from(b.labels)).toEqual([0, 1, 0, 1, 0, 1]);
    // Its first image is the file's third (label 2), gray as RGB.
    expect(Array.from((await b.image(0)).data)).toEqual(Array.from(pattern(72, 5).subarray(12, 18)).flatMap((v) => [v, v, v]));
    expect(opened.size).toBe(1);
    await expect(openData(spec([2, 3]), 0)).rejects.toThrow(`data: expected the fashion-mnist root folder ${root}, it does not exist`);
  });
});

