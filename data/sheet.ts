// A contact sheet: one row per class (in label order), the first few images of each class as square tiles, for
// looking at a dataset and its labels by eye. Tiles are the centre square of each image resized by libvips:
// nearest neighbour for whole-number enlargements (28 -> 56 keeps Fashion-MNIST's pixels sharp), Catmull-Rom
// otherwise.
import type { Dataset, SkippedImage } from "./dataset.js";
import { CorruptImageError, type RawImage, cropResize, encodePng } from "./image.js";
import { mapLimit } from "./concurrency.js";

export interface SheetOptions {
  perClass?: number; // tiles per row; default 8
  maxClasses?: number; // rows: the first this many classes; default 20
  tile?: number; // tile side in pixels; default 64
  skipCorrupt?: boolean; // take the class's next image in place of an undecodable one
}

export interface Sheet {
  png: Buffer;
  width: number;
  height: number;
  rows: number[]; // class index of each row
  perClass: number;
  skipped: SkippedImage[];
}

const GAP = 2; // pixels between tiles
const BACKGROUND = 40;

async function tileOf(img: RawImage, tile: number): Promise<RawImage> {
  const side = Math.min(img.width, img.height);
  const crop = { left: Math.floor((img.width - side) / 2), top: Math.floor((img.height - side) / 2), width: side, height: side };
  const kernel = tile % side === 0 ? "nearest" : "cubic";
  return cropResize(img, { width: img.width, height: img.height, hasAlpha: false }, crop, tile, tile, kernel);
}

export async function contactSheet(ds: Dataset, opts: SheetOptions = {}): Promise<Sheet> {
  const perClass = opts.perClass ?? 8;
  const tile = opts.tile ?? 64;
  const rows = Array.from({ length: Math.min(opts.maxClasses ?? 20, ds.classes.length) }, (_, c) => c);
  if (!(Number.isInteger(perClass) && perClass >= 1)) throw new Error(`sheet: expected perClass >= 1, got ${perClass}`);
  if (!(Number.isInteger(tile) && tile >= 1)) throw new Error(`sheet: expected tile >= 1, got ${tile}`);
  const members: number[][] = rows.map(() => []);
  for (let i = 0; i < ds.length; i++) if (ds.labels[i] < rows.length) members[ds.labels[i]].push(i);

  const width = perClass * (tile + GAP) + GAP;
  const height = rows.length * (tile + GAP) + GAP;
  const canvas = new Uint8Array(width * height * 3).fill(BACKGROUND);
  const skipped: SkippedImage[] = [];
  await mapLimit(rows.length, 4, async (c) => {
    let col = 0;
    let next = 0;
    // Candidates in batches of the tiles still missing; a corrupt one (when skipping) is replaced by the next.
    while (col < perClass && next < members[c].length) {
      const take = members[c].slice(next, next + perClass - col);
      next += take.length;
      const tiles = await Promise.all(
        take.map(async (i) => {
          try {
            return await tileOf(await ds.image(i), tile);
          } catch (err) {
            if (!(opts.skipCorrupt && err instanceof CorruptImageError)) throw err;
            skipped.push({ index: i, source: ds.source(i), message: err.message });
            return undefined;
          }
        }),
      );
      for (const t of tiles) {
        if (!t) continue;
        const x0 = GAP + col * (tile + GAP);
        const y0 = GAP + c * (tile + GAP);
        for (let y = 0; y < tile; y++) canvas.set(t.data.subarray(y * tile * 3, (y + 1) * tile * 3), ((y0 + y) * width + x0) * 3);
        col++;
      }
    }
  });
  skipped.sort((a, b) => a.index - b.index);
  const png = await encodePng({ width, height, channels: 3, data: canvas });
  return { png, width, height, rows, perClass, skipped };
}
