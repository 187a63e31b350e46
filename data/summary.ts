// What `data` reports about a dataset: per-class counts, image size, and (with check) the images that cannot be
// decoded. Image files are only decoded when asked to check them; otherwise sizes come from the headers of a few.
import type { Dataset, DatasetIdentity, SkippedImage } from "./dataset.js";
import { CorruptImageError, decodeImage, imageInfo } from "./image.js";
import { mapLimit } from "./concurrency.js";

export interface SizeRange {
  minWidth: number;
  maxWidth: number;
  minHeight: number;
  maxHeight: number;
  measured: number; // images whose size was read
}

export interface DatasetSummary {
  identity: DatasetIdentity;
  classes: string[];
  counts: number[]; // (classes.length) samples per class
  imageSize?: { width: number; height: number }; // every image has this size
  sizes?: SizeRange; // otherwise, the range seen over the measured images
  checked: number; // images fully decoded
  corrupt: SkippedImage[]; // of the decoded or measured images
}

export interface SummaryOptions {
  check?: boolean; // decode every image (slow for large image folders)
  sample?: number; // without check: read the header of this many evenly spaced images; default 32
  concurrency?: number; // default 8
}

export function classCounts(ds: Dataset): number[] {
  const counts = new Array<number>(ds.classes.length).fill(0);
  for (const y of ds.labels) counts[y]++;
  return counts;
}

export async function summarize(ds: Dataset, opts: SummaryOptions = {}): Promise<DatasetSummary> {
  const base = { identity: ds.identity, classes: ds.classes, counts: classCounts(ds) };
  const corrupt: SkippedImage[] = [];
  let which: number[] = [];
  if (opts.check) which = Array.from({ length: ds.length }, (_, i) => i);
  else if (!ds.imageSize) {
    const n = Math.min(opts.sample ?? 32, ds.length);
    which = Array.from({ length: n }, (_, k) => Math.floor((k * ds.length) / n));
  }
  const sizes = await mapLimit(which.length, opts.concurrency ?? 8, async (k) => {
    const i = which[k];
    try {
      const input = await ds.read(i);
      return opts.check ? await decodeImage(input) : await imageInfo(input);
    } catch (err) {
      if (!(err instanceof CorruptImageError)) throw err;
      corrupt.push({ index: i, source: ds.source(i), message: err.message });
      return undefined;
    }
  });
  corrupt.sort((a, b) => a.index - b.index);
  const seen = sizes.filter((s) => s !== undefined);
  let range: SizeRange | undefined;
  if (seen.length > 0) {
    range = { minWidth: Infinity, maxWidth: 0, minHeight: Infinity, maxHeight: 0, measured: seen.length };
    for (const s of seen) {
      range.minWidth = Math.min(range.minWidth, s.width);
      range.maxWidth = Math.max(range.maxWidth, s.width);
      range.minHeight = Math.min(range.minHeight, s.height);
      range.maxHeight = Math.max(range.maxHeight, s.height);
    }
  }
  const checked = opts.check ? seen.length : 0;
  if (ds.imageSize) return { ...base, imageSize: ds.imageSize, checked, corrupt };
  return { ...base, sizes: range, checked, corrupt };
}
