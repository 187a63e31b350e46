// `data --npy`: a dataset's images after a transform, with their labels, as `features` and `knn` read them: the
// images a study's data spec of the same settings gives its k-NN and evaluations.
import { existsSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { data } from "../../cli/data.js";
import { UsageError } from "../../util/command.js";
import { readNpy, writeNpy } from "../../data/npy.js";
import { type DataSpec, openData, transformFor } from "../../data/spec.js";
import { Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";

afterEach(() => vi.restoreAllMocks());

// An npy dataset of 3 classes, 4 images each, 6 x 6 RGB bytes, classes interleaved.
async function npyDataset(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "peft-data-npy-"));
  const n = 12;
  const pixels = Uint8Array.from({ length: n * 6 * 6 * 3 }, (_, i) => (i * 37) % 256);
  await writeNpy(join(root, "train_images.npy"), pixels, [n, 6, 6, 3]);
  await writeNpy(join(root, "train_labels.npy"), Int32Array.from({ length: n }, (_, i) => i % 3), [n]);
  return root;
}

describe("data --npy", () => {
  it("writes the images and labels a study's data spec of the same settings gives", async () => {
    vi.spyOn(console, "log").mockImplementation(() => {});
    const root = await npyDataset();
    const out = join(root, "out.npy");
    await data.run(["--dataset", "npy", "--root", root, "--classes", "2,0", "--skip-per-class", "1", "--first", "3", "--npy", out, "--transform", "knn", "--size", "4", "--mean", "0.5,0.4,0.3", "--std", "0.2,0.25,0.3"]);
    const spec: DataSpec = { dataset: "npy", root, split: "train", classes: [2, 0], skipPerClass: 1, perClass: 3, transform: "knn", mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
    const images: number[] = [];
    const labels: number[] = [];
    for await (const b of new Loader(await openData(spec, 0), new Transform(transformFor(spec, 4)), { batchSize: 5 }).epoch(0)) {
      images.push(...b.images);
      labels.push(...b.labels);
    }
    const x = await readNpy(out);
    expect([x.dtype, x.shape]).toEqual(["float32", [6, 3, 4, 4]]);
    expect(Array.from(x.data as Float32Array)).toEqual(images);
    const y = await readNpy(join(root, "out-labels.npy"));
    expect([y.dtype, y.shape]).toEqual(["int32", [6]]);
    expect(Array.from(y.data as Int32Array)).toEqual(labels);
    expect([...labels].sort()).toEqual([0, 0, 0, 1, 1, 1]); // class 2 renumbered 0, class 0 renumbered 1
  });

  it("refuses a transform that draws, a missing size, bad statistics and its flags without --npy, as usage errors", async () => {
    const root = await npyDataset();
    const run = (...flags: string[]) => data.run(["--dataset", "npy", "--root", root, ...flags]);
    const out = join(root, "x.npy");
    await expect(run("--npy", out, "--size", "4", "--transform", "train")).rejects.toThrow(new UsageError('--transform: expected eval or knn (train draws at random), got "train"'));
    await expect(run("--npy", out)).rejects.toThrow(UsageError);
    await expect(run("--npy", out, "--size", "4", "--mean", "0.5,0.5")).rejects.toThrow(new UsageError('--mean: expected 3 numbers (R,G,B), got "0.5,0.5"'));
    await expect(run("--npy", out, "--size", "4", "--std", "1,0,1")).rejects.toThrow(new UsageError('--std: expected 3 numbers > 0 (R,G,B), got "1,0,1"'));
    await expect(run("--npy", out, "--size", "4", "--interpolation", "lanczos")).rejects.toThrow(UsageError);
    await expect(run("--npy", join(root, "x.bin"), "--size", "4")).rejects.toThrow(new UsageError(`--npy: expected a file name ending in .npy, got ${join(root, "x.bin")}`));
    await expect(run("--size", "4")).rejects.toThrow(new UsageError("--size: expected only with --npy"));
    // A sheet is a PNG: another name would hold PNG bytes under it, or --npy's file.
    for (const sheet of ["sheet.jpg", "x.npy"]) await expect(run("--npy", out, "--size", "4", "--sheet", join(root, sheet))).rejects.toThrow(new UsageError(`--sheet: expected a file name ending in .png, got ${join(root, sheet)}`));
  });

  it("refuses a subset that leaves no image, and writes nothing", async () => {
    const root = await npyDataset();
    const out = join(root, "none.npy");
    const run = (...flags: string[]) => data.run(["--dataset", "npy", "--root", root, "--npy", out, "--size", "4", ...flags]);
    await expect(run("--skip-per-class", "100")).rejects.toThrow(new UsageError("--skip-per-class: expected a subset of at least one image, got none of npy train"));
    await expect(run("--classes", "1", "--first", "2", "--skip-per-class", "100")).rejects.toThrow("--classes, --first, --skip-per-class: expected a subset");
    expect(existsSync(out)).toBe(false);
    await expect(run("--fraction", "0.5", "--seed", "-1")).rejects.toThrow(new UsageError("--seed: expected a non-negative integer, as a study's seeds are, got -1"));
  });
});
