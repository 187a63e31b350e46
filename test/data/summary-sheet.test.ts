// The `data` command's library side: summaries (counts, sizes, corrupt images under check) and the contact
// sheet's layout and pixels (nearest-neighbour 2x tiles, so every pixel is known exactly).
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import sharp from "sharp";
import { ArrayDataset } from "../../data/dataset.js";
import { ImageFolder } from "../../data/image-folder.js";
import { contactSheet } from "../../data/sheet.js";
import { summarize } from "../../data/summary.js";
import { PNG_GRAY, PNG_RGB, pattern, pngBytes, useTmpDir, writeFile } from "./fixtures.js";

const tmp = useTmpDir("sheet");

// Classes a, b, c with 3, 1 and 2 images of 4x4 RGB.
const labels = Int32Array.from([0, 2, 0, 1, 0, 2]);
const pixels = pattern(6 * 48, 4);
const mem = new ArrayDataset({ name: "mem", root: "/mem", split: "train", count: 6, hash: "0" }, ["a", "b", "c"], labels, pixels, { offset: 0, stride: 48, width: 4, height: 4, channels: 3, planar: false }, (i) => `/mem#${i}`);

describe("summarize", () => {
  it("counts per class and reports the fixed size", async () => {
    const s = await summarize(mem);
    expect(s.counts).toEqual([3, 1, 2]);
    expect(s.imageSize).toEqual({ width: 4, height: 4 });
    expect([s.checked, s.corrupt.length]).toEqual([0, 0]);
  });

  it("measures image-folder sizes from headers, and with check decodes all and lists corrupt files", async () => {
    const root = join(tmp, "folder");
    writeFile(join(root, "x", "1.png"), pngBytes(7, 3, PNG_RGB, 8, pattern(63, 1)));
    writeFile(join(root, "x", "2.png"), pngBytes(2, 11, PNG_GRAY, 8, pattern(22, 2)));
    const bad = writeFile(join(root, "y", "3.png"), "not a png");
    const ds = await ImageFolder.open(root);
    const quick = await summarize(ds, { sample: 2 });
    expect(quick.sizes).toEqual({ minWidth: 2, maxWidth: 7, minHeight: 3, maxHeight: 11, measured: 2 });
    const full = await summarize(ds, { check: true });
    expect(full.checked).toBe(2);
    expect(full.corrupt.map((c) => [c.index, c.source])).toEqual([[2, bad]]);
    expect(full.counts).toEqual([2, 1]);
  });
});

describe("contactSheet", () => {
  it("one row per class, tiles in dataset order, background where a class runs out", async () => {
    const sheet = await contactSheet(mem, { perClass: 2, tile: 8 });
    expect([sheet.width, sheet.height, sheet.rows]).toEqual([22, 32, [0, 1, 2]]);
    const { data, info } = await sharp(sheet.png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([22, 32, 3]);
    const px = (x: number, y: number, c: number) => data[(y * 22 + x) * 3 + c];
    const placed: [number, number, number][] = [
      [0, 0, 0], // row 0 (class a): images 0 and 2
      [0, 1, 2],
      [1, 0, 3], // row 1 (class b): image 3 only
      [2, 0, 1], // row 2 (class c): images 1 and 5
      [2, 1, 5],
    ];
    for (const [row, col, i] of placed)
      for (let y = 0; y < 8; y++)
        for (let x = 0; x < 8; x++)
          for (let c = 0; c < 3; c++) {
            const want = pixels[i * 48 + ((y >> 1) * 4 + (x >> 1)) * 3 + c];
            const got = px(2 + col * 10 + x, 2 + row * 10 + y, c);
            if (got !== want) throw new Error(`sheet: row ${row} col ${col} (${x}, ${y}, ${c}): expected ${want}, got ${got}`);
          }
    expect([px(12, 12, 0), px(0, 0, 0), px(19, 15, 2)]).toEqual([40, 40, 40]); // empty tile, border, empty tile
  });

  it("fails on a corrupt image, or replaces it by the class's next image when skipping", async () => {
    const root = join(tmp, "sheet-corrupt");
    const bad = writeFile(join(root, "a", "0.png"), "broken");
    writeFile(join(root, "a", "1.png"), pngBytes(3, 3, PNG_RGB, 8, pattern(27, 5)));
    writeFile(join(root, "a", "2.png"), pngBytes(3, 3, PNG_RGB, 8, pattern(27, 6)));
    const ds = await ImageFolder.open(root);
    await expect(contactSheet(ds, { perClass: 2, tile: 6 })).rejects.toThrow(`image: expected a readable JPEG or PNG image in ${bad}, got`);
    const sheet = await contactSheet(ds, { perClass: 2, tile: 6, skipCorrupt: true });
    expect(sheet.skipped.map((s) => s.source)).toEqual([bad]);
    const { data } = await sharp(sheet.png).raw().toBuffer({ resolveWithObject: true });
    // Tiles are 1.png then 2.png: 3x3 images at 2x, so each tile's top-left pixel is its image's first.
    expect([data[(2 * sheet.width + 2) * 3], data[(2 * sheet.width + 2 + 8) * 3]]).toEqual([pattern(27, 5)[0], pattern(27, 6)[0]]);
  });
});
