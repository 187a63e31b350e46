// `bench data`: images per second read, decoded and transformed to size x size (224 by default) through the
// Loader, per transform (train: RandomResizedCrop + flip; eval: Resize((s, s)); knn: Resize + CenterCrop).
// Decoding and, with --resampler libvips (the default), resizing run in libvips on libuv's thread pool
// (UV_THREADPOOL_SIZE, default 4); the main thread plans crops and normalises into the batch, and with
// --resampler pil also resizes (data/resample.ts, Pillow's arithmetic). --synthetic N writes N ImageNet-like JPEGs (500x375)
// to a temp image folder when no dataset is at hand.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { DATASET_NAMES, openDataset } from "../data/registry.js";
import { DEFAULT_PREFETCH, Loader } from "../data/loader.js";
import { RESAMPLERS, type Resampler, Transform, type TransformKind } from "../data/transforms.js";
import { readSettings } from "../engine/settings.js";
import { checkMemoryFits } from "./harness.js";
import { makeFolder } from "../util/make-folder.js";

// --size at most this: 9 times ViT's 224 per side, far past any model here. One batch is one Float32Array, which
// holds at most MAX_BATCH_VALUES (V8's typed arrays end at 2^32 values: "Invalid typed array length").
const MAX_SIZE = 2048;
const MAX_BATCH_VALUES = 2 ** 31;
const TRANSFORM_KINDS: TransformKind[] = ["train", "eval", "knn"];

export const FLAGS = {
  dataset: "string",
  root: "string",
  split: "string",
  size: "int",
  batch: "int",
  batches: "int",
  transform: "list",
  resampler: "list",
  prefetch: "int",
  concurrency: "int",
  synthetic: "int",
  json: "boolean",
} as const;

// N JPEGs of 500x375 (ImageNet's most common size) in 10 class folders: smooth colour fields plus noise, so that
// the files are about ImageNet's size (100-150 KB at quality 90) and decode at a realistic cost.
async function syntheticFolder(n: number): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "peft-bench-data-"));
  const [w, h] = [500, 375];
  for (let i = 0; i < n; i++) {
    const px = new Uint8Array(w * h * 3);
    let s = (i + 1) * 2654435761;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0;
          const base = 128 + 100 * Math.sin((x * (c + 1)) / 60 + i) * Math.cos((y * (3 - c)) / 45 + i);
          px[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, base + ((s >>> 24) - 128) / 6));
        }
    const dir = join(root, `class${i % 10}`);
    await makeFolder(dir);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toFile(join(dir, `${i}.jpg`));
  }
  return root;
}

export const dataBench: Command = {
  summary: "input pipeline: images/s decoded and transformed (per transform)",
  usage: `usage: node dist/run.js bench data [--dataset NAME] [--root DIR | --synthetic N] [flags]

  --dataset NAME     ${DATASET_NAMES.join(", ")} (default imagefolder)
  --root DIR         the dataset's folder
  --synthetic N      instead of --root: N generated 500x375 JPEGs in 10 classes, in a temp folder
  --split S          split (default train; for imagefolder without train/, val/ or test/ the folder itself)
  --size N           output size, at most ${MAX_SIZE} (default 224)
  --batch N          batch size (default 32)
  --batches N        batches timed per transform, after one warm-up batch (default 8)
  --transform LIST   ${TRANSFORM_KINDS.join(",")} (default all three)
  --resampler LIST   ${RESAMPLERS.join(",")}: who resizes (default libvips)
  --prefetch N       loader prefetch (default ${DEFAULT_PREFETCH})
  --concurrency N    samples in flight per batch (default 16)
  --json             print the rows as JSON`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const { threadpool } = readSettings(); // up front: a bad setting is refused before minutes of decoding
    const name = flags.dataset ?? "imagefolder";
    if (!DATASET_NAMES.includes(name)) throw new UsageError(`--dataset: expected one of ${DATASET_NAMES.join(", ")}, got "${name}"`);
    if (flags.synthetic !== undefined && flags.root !== undefined) throw new UsageError("--synthetic and --root exclude each other");
    if (flags.synthetic !== undefined && name !== "imagefolder") throw new UsageError("--synthetic makes an imagefolder dataset");
    const kinds = (flags.transform ?? TRANSFORM_KINDS) as TransformKind[];
    for (const k of kinds) if (!TRANSFORM_KINDS.includes(k)) throw new UsageError(`--transform: expected one of ${TRANSFORM_KINDS.join(", ")}, got "${k}"`);
    const resamplers = (flags.resampler ?? ["libvips"]) as Resampler[];
    for (const r of resamplers) if (!RESAMPLERS.includes(r)) throw new UsageError(`--resampler: expected ${RESAMPLERS.join(" or ")}, got "${r}"`);
    for (const f of ["size", "batch", "batches", "synthetic", "concurrency"] as const) {
      const v = flags[f];
      if (v !== undefined && v < 1) throw new UsageError(`--${f}: expected a positive integer, got ${v}`);
    }
    if (flags.prefetch !== undefined && flags.prefetch < 0) throw new UsageError(`--prefetch: expected an integer >= 0, got ${flags.prefetch}`);
    const size = flags.size ?? 224;
    const batchSize = flags.batch ?? 32;
    const timed = flags.batches ?? 8;
    const prefetch = flags.prefetch ?? DEFAULT_PREFETCH;
    if (size > MAX_SIZE) throw new UsageError(`--size: expected at most ${MAX_SIZE}, got ${size}`);
    const batchValues = batchSize * 3 * size * size;
    if (batchValues > MAX_BATCH_VALUES) throw new UsageError(`--batch, --size: expected a batch (${batchSize}, 3, ${size}, ${size}) of at most 2^31 values, got ${batchValues}`);
    // The loader holds the batch in hand and the prefetched ones.
    checkMemoryFits("--batch, --size, --prefetch", `${prefetch + 1} batches of (${batchSize}, 3, ${size}, ${size}) f32`, 4 * batchValues * (prefetch + 1));

    const synthetic = flags.synthetic !== undefined ? await syntheticFolder(flags.synthetic) : undefined;
    try {
      const ds = await openDataset({ name, root: synthetic ?? flags.root, split: flags.split });
      if (ds.length < batchSize) throw new UsageError(`--batch: expected at most the dataset's ${ds.length} images, got ${batchSize}`);
      const rows = [];
      for (const kind of kinds)
      for (const resampler of resamplers) {
        const transform = new Transform({ kind, size, resampler });
        const loader = new Loader(ds, transform, { batchSize, shuffle: true, seed: 0, prefetch, concurrency: flags.concurrency });
        // Epochs as needed: a small dataset is cycled (the OS cache then holds the files, as in training).
        let epoch = 0;
        let it = loader.epoch(epoch);
        const nextBatch = async () => {
          for (;;) {
            const r = await it.next();
            if (!r.done) return r.value;
            it = loader.epoch(++epoch);
          }
        };
        // Validate once: shape and finite values.
        const first = await nextBatch();
        if (first.images.length !== first.labels.length * 3 * size * size || !first.images.every(Number.isFinite))
          throw new Error(`bench data: expected a finite (${first.labels.length}, 3, ${size}, ${size}) batch, got ${first.images.length} values`);
        let images = 0;
        const t0 = performance.now();
        for (let b = 0; b < timed; b++) images += (await nextBatch()).labels.length;
        const seconds = (performance.now() - t0) / 1000;
        rows.push({ transform: kind, resampler, size, batch: batchSize, images, seconds, imagesPerSecond: images / seconds, msPerBatch: (1000 * seconds) / timed });
      }
      const id = ds.identity;
      if (flags.json) console.log(JSON.stringify({ identity: id, threadpool: threadpool ?? 4, rows }, null, 2));
      else {
        console.log(`${id.name} ${id.split} (${id.count} images, ${synthetic ? "synthetic 500x375 JPEG" : id.root}), UV_THREADPOOL_SIZE ${threadpool ?? "4 (default)"}`);
        console.log("transform  resampler  size  batch  images   seconds  images/s  ms/batch");
        for (const r of rows)
          console.log(
            `${r.transform.padEnd(9)}  ${r.resampler.padEnd(9)}  ${String(r.size).padStart(4)}  ${String(r.batch).padStart(5)}  ${String(r.images).padStart(6)}  ${r.seconds.toFixed(2).padStart(8)}  ${r.imagesPerSecond.toFixed(1).padStart(8)}  ${r.msPerBatch.toFixed(1).padStart(8)}`,
          );
      }
    } finally {
      if (synthetic) await rm(synthetic, { recursive: true, force: true });
    }
  },
};
