// `data`: what a dataset holds (count, classes, per-class counts, image size, identity), optionally a PNG contact
// sheet of a few images per class, to check a dataset and its labels by eye, and its images after a transform as
// .npy with their labels: the input of `features` and `knn`, to score a backbone on a study's data by hand.
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { type Flags, checkOutputFile, decimal, parseArgs, required } from "../util/args.js";
import { writeFileAtomic } from "../util/atomic.js";
import { DATASET_NAMES, describeDatasets, openDataset } from "../data/registry.js";
import { parseClassList, subset } from "../data/subset.js";
import { type DatasetSummary, summarize } from "../data/summary.js";
import { type Sheet, contactSheet } from "../data/sheet.js";
import { type DataSpec, transformFor } from "../data/spec.js";
import { INTERPOLATIONS, RESAMPLERS, type Interpolation, type Resampler, Transform, type TransformSpec } from "../data/transforms.js";
import { Loader } from "../data/loader.js";
import { writeNpy } from "../data/npy.js";
import type { Dataset } from "../data/dataset.js";
import { joined } from "../util/typed-arrays.js";

export const FLAGS = {
  dataset: "string",
  root: "string",
  split: "string",
  json: "boolean",
  sheet: "string",
  "sheet-per-class": "int",
  "sheet-classes": "int",
  tile: "int",
  check: "boolean",
  "skip-corrupt": "boolean",
  classes: "string",
  first: "int",
  "skip-per-class": "int",
  fraction: "number",
  seed: "int",
  npy: "string",
  "npy-labels": "string",
  transform: "string",
  size: "int",
  mean: "list",
  std: "list",
  interpolation: "string",
  resampler: "string",
} as const;

// What --npy may apply: the transforms that draw nothing, so the file is the images a study's k-NN or evaluation sees.
const NPY_TRANSFORMS = ["eval", "knn"] as const;
const NPY_FLAGS = ["npy-labels", "transform", "size", "mean", "std", "interpolation", "resampler"] as const;

const SHEET = { perClass: 8, classes: 20, tile: 64 }; // defaults
const MAX_TILE = 1024;
// Past this the canvas (3 bytes a pixel) is hundreds of MB, and sharp refuses raw images of 268 megapixels.
const MAX_SHEET_PIXELS = 100e6;

export const data: Command = {
  summary: "describe a dataset: counts, classes, image size, identity, and a PNG contact sheet",
  usage: `usage: node dist/run.js data --dataset NAME [--root DIR] [--split S] [--json] [--sheet out.png] [flags]

  --dataset NAME        one of:
${describeDatasets(" ".repeat(24))}
  --root DIR            the dataset's folder (default as above)
  --split S             train (default) or test; val, trainval for dtd and flowers102; for dtd each with a fold 1-10
                        appended, e.g. train3 (train = train1); for imagefolder a split folder (default train/ if
                        present); for npy the files' prefix
  --json                print the summary as JSON
  --sheet FILE          write a PNG contact sheet: one row per class, the first images of each
  --sheet-per-class N   images per row (default ${SHEET.perClass})
  --sheet-classes N     rows: the first N classes (default ${SHEET.classes})
  --tile N              tile size in pixels, at most ${MAX_TILE} (default ${SHEET.tile}); the sheet's tiles at most
                        ${MAX_SHEET_PIXELS / 1e6} megapixels
  --check               decode every image, reporting undecodable ones (exit 1 if any, unless --skip-corrupt)
  --skip-corrupt        count undecodable images and go on (check, sheet and npy)
  --classes LIST        keep these classes, renumbered from 0 in the order given, e.g. 0-4 or 5-9
  --first N             keep the first N images of each class
  --skip-per-class N    leave out the first N images of each class first (a data spec's skipPerClass)
  --fraction F          keep a seeded fraction F of each class
  --seed N              seed for --fraction (default 0; a study draws with its first seed)
  --npy X.npy           write the images after --transform as float32 (N, 3, S, S), in dataset order, and their
                        labels as int32 (N) to --npy-labels (default X-labels.npy): what \`features\` and \`knn\` read.
                        With the flags of a study's data spec (classes, perClass as --first, skipPerClass, fraction and
                        seed, transform and its settings) and the model's image size, these are the study's images and
                        labels
  --transform T         ${NPY_TRANSFORMS.join(" or ")}: eval (default: resize to S), knn (DINO's resize and centre crop);
                        train draws at random, so not here
  --size S              the output size (required with --npy): the backbone's image size
  --mean, --std R,G,B   the normalisation (default ImageNet's), as a data spec's mean and std
  --interpolation I     ${INTERPOLATIONS.join(", ")} (default bilinear, bicubic for knn)
  --resampler R         ${RESAMPLERS.join(", ")} (default libvips)`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const name = required(flags.dataset, "dataset");
    if (!DATASET_NAMES.includes(name)) throw new UsageError(`--dataset: expected one of ${DATASET_NAMES.join(", ")}, got "${name}"`);
    for (const f of ["sheet-per-class", "sheet-classes", "tile", "first"] as const) {
      const v = flags[f];
      if (v !== undefined && v < 1) throw new UsageError(`--${f}: expected a positive integer, got ${v}`);
    }
    const tile = flags.tile ?? SHEET.tile;
    const perClass = flags["sheet-per-class"] ?? SHEET.perClass;
    if (tile > MAX_TILE) throw new UsageError(`--tile: expected at most ${MAX_TILE} pixels, got ${tile}`);
    if (flags["skip-per-class"] !== undefined && flags["skip-per-class"] < 0) throw new UsageError(`--skip-per-class: expected a non-negative integer, got ${flags["skip-per-class"]}`);
    if (flags.fraction !== undefined && !(flags.fraction > 0 && flags.fraction <= 1)) throw new UsageError(`--fraction: expected a number in (0, 1], got ${flags.fraction}`);
    if (flags.seed !== undefined && flags.seed < 0) throw new UsageError(`--seed: expected a non-negative integer, as a study's seeds are, got ${flags.seed}`);
    let classes: number[] | undefined;
    if (flags.classes !== undefined) {
      try {
        classes = parseClassList(flags.classes);
      } catch (err) {
        throw new UsageError(`--classes: ${(err as Error).message}`);
      }
    }

    const npy = flags.npy === undefined ? undefined : npyOutput(flags);
    if (flags.npy === undefined) {
      const stray = NPY_FLAGS.find((f) => flags[f] !== undefined);
      if (stray) throw new UsageError(`--${stray}: expected only with --npy`);
    }
    if (flags.sheet !== undefined) {
      // The sheet is a PNG whatever its name: sheet.jpg would hold PNG bytes, and x.npy could be --npy's own file.
      await checkOutputFile(flags.sheet, "sheet");
      if (!flags.sheet.toLowerCase().endsWith(".png")) throw new UsageError(`--sheet: expected a file name ending in .png, got ${flags.sheet}`);
    }
    if (npy) for (const [path, flag] of [[npy.images, "npy"], [npy.labels, "npy-labels"]] as const) await checkOutputFile(path, flag);
    let ds = await openDataset({ name, root: flags.root, split: flags.split });
    if (classes || flags.first !== undefined || flags["skip-per-class"] !== undefined || flags.fraction !== undefined) {
      try {
        ds = subset(ds, { classes, firstPerClass: flags.first, skipPerClass: flags["skip-per-class"], fraction: flags.fraction, seed: flags.seed });
      } catch (err) {
        // The other flags were checked above: only the class list can disagree with the dataset.
        throw new UsageError(`--classes: ${(err as Error).message}`);
      }
      // A study refuses data of no images; a file of none is no description either.
      if (ds.length === 0) {
        const given = (["classes", "first", "skip-per-class", "fraction"] as const).filter((f) => flags[f] !== undefined).map((f) => `--${f}`);
        throw new UsageError(`${given.join(", ")}: expected a subset of at least one image, got none of ${name} ${flags.split ?? "train"}`);
      }
    }
    const rows = Math.min(flags["sheet-classes"] ?? SHEET.classes, ds.classes.length);
    if (flags.sheet && rows * perClass * tile * tile > MAX_SHEET_PIXELS) {
      throw new UsageError(
        `--tile, --sheet-per-class, --sheet-classes: expected a sheet of at most ${MAX_SHEET_PIXELS / 1e6} megapixels, got ${rows} rows of ${perClass} tiles of ${tile} x ${tile} pixels`,
      );
    }
    const skipCorrupt = flags["skip-corrupt"] === true;
    const summary = await summarize(ds, { check: flags.check });
    // Corrupt images found by --check stop here (after the report) unless accepted.
    const fail = summary.corrupt.length > 0 && !skipCorrupt;
    const sheet =
      flags.sheet && !fail ? await contactSheet(ds, { perClass, maxClasses: rows, tile, skipCorrupt }) : undefined;
    // Atomic, creating missing folders; a failure names the path.
    if (sheet && flags.sheet) await writeFileAtomic(flags.sheet, sheet.png);
    const written = npy && !fail ? await writeImages(ds, npy, skipCorrupt) : undefined;
    report(summary, sheet && { ...sheet, path: flags.sheet! }, flags.json === true, flags.check === true, written);
    if (fail) throw new Error(`data: expected every image to decode, got ${summary.corrupt.length} corrupt (listed above; --skip-corrupt to accept)`);
  },
};

interface NpyOutput {
  images: string; // (N, 3, S, S) float32
  labels: string; // (N) int32
  transform: TransformSpec;
}

interface NpyWritten {
  images: string;
  labels: string;
  shape: number[];
  transform: TransformSpec;
}

// --npy's files and transform from the flags, checked before any work. The transform is built as a study builds a
// data spec's (transformFor), so the defaults are the same.
function npyOutput(flags: Flags<typeof FLAGS>): NpyOutput {
  const images = flags.npy!;
  if (!images.endsWith(".npy")) throw new UsageError(`--npy: expected a file name ending in .npy, got ${images}`);
  const labels = flags["npy-labels"] ?? `${images.slice(0, -".npy".length)}-labels.npy`;
  if (labels === images) throw new UsageError(`--npy-labels: expected a file other than --npy, got ${labels}`);
  const kind = flags.transform ?? "eval";
  if (!(NPY_TRANSFORMS as readonly string[]).includes(kind)) throw new UsageError(`--transform: expected ${NPY_TRANSFORMS.join(" or ")} (train draws at random), got "${kind}"`);
  const size = required(flags.size, "size");
  if (size < 1) throw new UsageError(`--size: expected a positive integer, got ${size}`);
  const rgb = (flag: "mean" | "std") => {
    const list = flags[flag];
    if (list === undefined) return undefined;
    const values = list.map((v) => decimal(v) ?? NaN);
    const ok = values.length === 3 && values.every((v) => Number.isFinite(v) && (flag === "mean" || v > 0));
    if (!ok) throw new UsageError(`--${flag}: expected 3 ${flag === "mean" ? "numbers" : "numbers > 0"} (R,G,B), got "${list.join(",")}"`);
    return values as [number, number, number];
  };
  const choice = <T extends string>(flag: "interpolation" | "resampler", known: readonly T[]): T | undefined => {
    const v = flags[flag];
    if (v !== undefined && !(known as readonly string[]).includes(v)) throw new UsageError(`--${flag}: expected one of ${known.join(", ")}, got "${v}"`);
    return v as T | undefined;
  };
  const spec: DataSpec = {
    dataset: flags.dataset!,
    split: flags.split ?? "train",
    transform: kind as DataSpec["transform"],
    mean: rgb("mean"),
    std: rgb("std"),
    interpolation: choice<Interpolation>("interpolation", INTERPOLATIONS),
    resampler: choice<Resampler>("resampler", RESAMPLERS),
  };
  return { images, labels, transform: transformFor(spec, size) };
}

// The dataset's images through the transform, in dataset order, and their labels (corrupt images left out where
// skipCorrupt allows). All are held in memory: 4 x 3 x S x S bytes an image.
async function writeImages(ds: Dataset, out: NpyOutput, skipCorrupt: boolean): Promise<NpyWritten> {
  const loader = new Loader(ds, new Transform(out.transform), { batchSize: 64, skipCorrupt });
  const images: Float32Array[] = [];
  const labels: Int32Array[] = [];
  // A batch's images may be a view of a buffer the loader reuses: copied.
  for await (const b of loader.epoch(0)) {
    images.push(b.images.slice());
    labels.push(b.labels.slice());
  }
  const all = joined(labels, Int32Array);
  const shape = [all.length, 3, out.transform.size, out.transform.size];
  await writeNpy(out.images, joined(images, Float32Array), shape);
  await writeNpy(out.labels, all, [all.length]);
  return { images: out.images, labels: out.labels, shape, transform: out.transform };
}

function report(summary: DatasetSummary, sheet: (Sheet & { path: string }) | undefined, json: boolean, checked: boolean, npy: NpyWritten | undefined): void {
  const skipped = new Map([...summary.corrupt, ...(sheet?.skipped ?? [])].map((s) => [s.index, s]));
  if (json) {
    const out = {
      identity: summary.identity,
      classes: summary.classes.map((c, i) => ({ index: i, name: c, count: summary.counts[i] })),
      imageSize: summary.imageSize,
      sizes: summary.sizes,
      checked: summary.checked,
      corrupt: [...skipped.values()],
      sheet: sheet && { path: sheet.path, width: sheet.width, height: sheet.height, rows: sheet.rows, perClass: sheet.perClass },
      npy,
    };
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  const id = summary.identity;
  console.log(`dataset   ${id.name}, split ${id.split}, ${id.root}`);
  if (id.subset) console.log(`subset    ${id.subset}`);
  const sz = summary.sizes;
  const size = summary.imageSize
    ? `${summary.imageSize.width}x${summary.imageSize.height}`
    : sz
      ? `${sz.minWidth}..${sz.maxWidth} x ${sz.minHeight}..${sz.maxHeight} (${sz.measured} measured)`
      : "unknown";
  console.log(`images    ${id.count} in ${summary.classes.length} classes, size ${size}`);
  console.log(`identity  hash ${id.hash}`);
  const width = Math.max(5, ...summary.classes.map((c) => c.length));
  console.log(`classes   ${"#".padStart(4)}  ${"name".padEnd(width)}  count`);
  summary.classes.forEach((c, i) => console.log(`          ${String(i).padStart(4)}  ${c.padEnd(width)}  ${summary.counts[i]}`));
  if (checked) console.log(`checked   ${summary.checked} decoded, ${summary.corrupt.length} corrupt`);
  for (const s of skipped.values()) console.log(`corrupt   ${s.message}`);
  if (sheet) {
    const rows = `rows = classes ${sheet.rows[0]}..${sheet.rows[sheet.rows.length - 1]}, ${sheet.perClass} per row`;
    console.log(`sheet     ${sheet.path}: ${sheet.width}x${sheet.height}, ${rows}${sheet.skipped.length ? `, ${sheet.skipped.length} corrupt skipped` : ""}`);
  }
  if (npy) console.log(`npy       ${npy.images} (${npy.shape.join(" x ")}, float32, transform ${npy.transform.kind} at ${npy.transform.size} px), ${npy.labels} (${npy.shape[0]}, int32)`);
}
