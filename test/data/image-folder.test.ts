// ImageFolder: class discovery and order, PNG variants decoded exactly (gray, RGB, RGBA, gray+alpha, palette,
// 16-bit), JPEG within codec error, split folders, symbolic links, and each bad input named in its error.
import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import type { Dataset } from "../../data/dataset.js";
import { ImageFolder } from "../../data/image-folder.js";
import { CorruptImageError } from "../../data/image.js";
import { PNG_GRAY, PNG_GRAY_ALPHA, PNG_PALETTE, PNG_RGB, PNG_RGBA, pattern, pngBytes, useTmpDir, writeFile } from "./fixtures.js";
import { refRgb } from "./ref.js";

const tmp = useTmpDir("folder");
const W = 7; // prime sizes
const H = 5;
const n = W * H;

// Expected 8-bit RGB of each fixture, from the PNG definition: gray -> 3 channels, alpha dropped, palette
// expanded, 16-bit samples keep their high byte.
const gray = pattern(n, 1);
const rgb = pattern(3 * n, 2);
const rgba = pattern(4 * n, 3);
const grayAlpha = pattern(2 * n, 4);
const palette = pattern(3 * 16, 5);
const indices = Uint8Array.from(pattern(n, 6), (v) => v % 16);
const gray16 = Uint16Array.from(pattern(2 * n, 7).subarray(0, n), (v, i) => v * 256 + ((i * 37) % 256));
const rgb16 = Uint16Array.from(pattern(3 * n, 8), (v, i) => v * 256 + ((i * 91) % 256));
const dropAlpha = (s: Uint8Array, ch: number) => Uint8Array.from({ length: (s.length / ch) * (ch - 1) }, (_, k) => s[Math.floor(k / (ch - 1)) * ch + (k % (ch - 1))]);

const CASES: { name: string; file: Uint8Array; want: Uint8Array }[] = [
  { name: "gray8.png", file: pngBytes(W, H, PNG_GRAY, 8, gray), want: refRgb(gray, 1, n) },
  { name: "rgb8.png", file: pngBytes(W, H, PNG_RGB, 8, rgb), want: rgb },
  { name: "rgba8.png", file: pngBytes(W, H, PNG_RGBA, 8, rgba), want: dropAlpha(rgba, 4) },
  { name: "grayalpha8.png", file: pngBytes(W, H, PNG_GRAY_ALPHA, 8, grayAlpha), want: refRgb(dropAlpha(grayAlpha, 2), 1, n) },
  { name: "palette.png", file: pngBytes(W, H, PNG_PALETTE, 8, indices, palette), want: Uint8Array.from({ length: 3 * n }, (_, k) => palette[3 * indices[Math.floor(k / 3)] + (k % 3)]) },
  { name: "gray16.png", file: pngBytes(W, H, PNG_GRAY, 16, gray16), want: refRgb(Uint8Array.from(gray16, (v) => v >> 8), 1, n) },
  { name: "rgb16.png", file: pngBytes(W, H, PNG_RGB, 16, rgb16), want: Uint8Array.from(rgb16, (v) => v >> 8) },
];

describe("ImageFolder", () => {
  // Classes "b_png" (all PNG variants), "a_jpeg" (JPEG, one nested), "c_mixed" (upper-case extension, ignored files).
  const root = join(tmp, "flat");
  for (const c of CASES) writeFile(join(root, "b_png", c.name), c.file);
  const solid = { r: 200, g: 40, b: 90 };
  beforeAll(async () => {
    const jpeg = await sharp({ create: { width: 16, height: 8, channels: 3, background: solid } }).jpeg({ quality: 95 }).toBuffer();
    const grayJpeg = await sharp({ create: { width: 9, height: 11, channels: 3, background: { r: 77, g: 77, b: 77 } } }).grayscale().jpeg().toBuffer();
    writeFile(join(root, "a_jpeg", "z.jpg"), jpeg);
    writeFile(join(root, "a_jpeg", "deeper", "y.jpeg"), grayJpeg);
    writeFile(join(root, "a_jpeg", "notes.txt"), "not an image");
    writeFile(join(root, "c_mixed", "IMG_1.JPG"), jpeg);
    writeFile(join(root, "c_mixed", ".hidden.png"), CASES[0].file);
    writeFile(join(root, ".cache", "x.png"), CASES[0].file);
  });

  it("finds classes and images in sorted order, ignoring other and hidden files", async () => {
    const ds = await ImageFolder.open(root);
    expect(ds.classes).toEqual(["a_jpeg", "b_png", "c_mixed"]);
    expect(ds.identity).toMatchObject({ name: "imagefolder", root, split: "all", count: 2 + CASES.length + 1 });
    expect(ds.paths.slice(0, 2)).toEqual([join(root, "a_jpeg", "z.jpg"), join(root, "a_jpeg", "deeper", "y.jpeg")]);
    expect(ds.paths.slice(2, 2 + CASES.length)).toEqual(CASES.map((c) => join(root, "b_png", c.name)).sort());
    expect(Array.from(ds.labels)).toEqual([0, 0, ...CASES.map(() => 1), 2]);
    expect((ds as Dataset).imageSize).toBeUndefined();
  });

  it("decodes every PNG variant to the exact 8-bit RGB the format defines", async () => {
    const ds = await ImageFolder.open(root);
    for (const c of CASES) {
      const img = await ds.image(ds.paths.indexOf(join(root, "b_png", c.name)));
      expect([c.name, img.width, img.height, img.channels]).toEqual([c.name, W, H, 3]);
      const bad = Array.from(img.data).findIndex((v, k) => v !== c.want[k]);
      expect(bad, `${c.name}: first wrong byte ${bad}: got ${img.data[bad]}, want ${c.want[bad]}`).toBe(-1);
    }
  });

  it("decodes JPEG (colour and grayscale) within 2 levels of the encoded colour", async () => {
    const ds = await ImageFolder.open(root);
    const color = await ds.image(0);
    expect([color.width, color.height]).toEqual([16, 8]);
    const want = [solid.r, solid.g, solid.b];
    expect(Math.max(...Array.from(color.data, (v, k) => Math.abs(v - want[k % 3])))).toBeLessThanOrEqual(2);
    const g = await ds.image(1);
    expect([g.width, g.height, g.channels]).toEqual([9, 11, 3]);
    expect(Math.max(...Array.from(g.data, (v) => Math.abs(v - 77)))).toBeLessThanOrEqual(2);
  });

  it("uses split folders: train/ by default, any named one, and names a missing one", async () => {
    const sroot = join(tmp, "splits");
    writeFile(join(sroot, "train", "cat", "1.png"), CASES[0].file);
    writeFile(join(sroot, "train", "dog", "1.png"), CASES[1].file);
    writeFile(join(sroot, "val", "cat", "1.png"), CASES[2].file);
    const train = await ImageFolder.open(sroot);
    expect([train.identity.split, train.length, train.classes]).toEqual(["train", 2, ["cat", "dog"]]);
    const val = await ImageFolder.open(sroot, "val");
    expect([val.identity.split, val.length, val.classes]).toEqual(["val", 1, ["cat"]]);
    await expect(ImageFolder.open(sroot, "test")).rejects.toThrow(`imagefolder: expected split folder ${join(sroot, "test")}, it does not exist (split folders present: train, val)`);
    expect(train.identity.hash).not.toBe(val.identity.hash);
  });

  it("never takes split folders as classes: a root of val/ and test/ without train/, or with train a file", async () => {
    const r = join(tmp, "no-train");
    writeFile(join(r, "val", "cat", "1.png"), CASES[0].file);
    writeFile(join(r, "test", "cat", "1.png"), CASES[0].file);
    await expect(ImageFolder.open(r)).rejects.toThrow(`imagefolder: expected split folder ${join(r, "train")} (the default split), it does not exist (split folders present: test, val)`);
    expect((await ImageFolder.open(r, "val")).classes).toEqual(["cat"]);
    writeFile(join(r, "train"), "a file where the split folder belongs");
    await expect(ImageFolder.open(r)).rejects.toThrow(`imagefolder: expected split folder ${join(r, "train")} (the default split), it is a file (split folders present: test, val)`);
    await expect(ImageFolder.open(r, "train")).rejects.toThrow(`imagefolder: expected split folder ${join(r, "train")}, it is a file`);
  });

  it("names a symbolic link back to a folder above it, and links that lead nowhere or only to links", async () => {
    const r = join(tmp, "links");
    writeFile(join(r, "a", "1.png"), CASES[0].file);
    writeFile(join(r, "b", "1.png"), CASES[0].file);
    symlinkSync("..", join(r, "a", "up"));
    await expect(ImageFolder.open(r)).rejects.toThrow(`imagefolder: expected folders without symbolic-link loops, got ${join(r, "a", "up")}, which leads back to ${r}`);
    rmSync(join(r, "a", "up"));
    symlinkSync(".", join(r, "a", "here"));
    await expect(ImageFolder.open(r)).rejects.toThrow(`imagefolder: expected folders without symbolic-link loops, got ${join(r, "a", "here")}, which leads back to ${join(r, "a")}`);
    rmSync(join(r, "a", "here"));
    symlinkSync("../b", join(r, "a", "sibling")); // not a loop: b's images are also a's, as torchvision has them
    expect((await ImageFolder.open(r)).paths).toEqual([join(r, "a", "1.png"), join(r, "a", "sibling", "1.png"), join(r, "b", "1.png")]);
    symlinkSync("self", join(r, "b", "self"));
    await expect(ImageFolder.open(r)).rejects.toThrow(`imagefolder: cannot read ${join(r, "b", "self")}: a loop of symbolic links (ELOOP)`);
    rmSync(join(r, "b", "self"));
    symlinkSync("/nonexistent/target", join(r, "b", "dead"));
    await expect(ImageFolder.open(r)).rejects.toThrow(`imagefolder: cannot read ${join(r, "b", "dead")}: no such file or folder (ENOENT)`);
  });

  it("names a pipe where an image should be, which reading would wait on for ever", async () => {
    const r = join(tmp, "fifo");
    writeFile(join(r, "a", "1.png"), CASES[0].file);
    execFileSync("mkfifo", [join(r, "a", "2.png")]);
    await expect(ImageFolder.open(r)).rejects.toThrow(`imagefolder: expected files and folders in ${join(r, "a")}, got ${join(r, "a", "2.png")}, a pipe, socket or device`);
  });

  it("names an empty class folder and a root without class folders", async () => {
    const e = join(tmp, "empty-class");
    writeFile(join(e, "full", "1.png"), CASES[0].file);
    writeFile(join(e, "empty", "readme.txt"), "no images here");
    await expect(ImageFolder.open(e)).rejects.toThrow(`imagefolder: expected at least one .jpg/.jpeg/.png image in ${join(e, "empty")}, found none`);
    const f = join(tmp, "no-classes");
    writeFile(join(f, "loose.png"), CASES[0].file);
    await expect(ImageFolder.open(f)).rejects.toThrow(`imagefolder: expected class folders in ${f}, found none`);
  });

  it("reports an undecodable or truncated image with its path", async () => {
    const c = join(tmp, "corrupt");
    const garbage = writeFile(join(c, "a", "garbage.png"), "this is not a png");
    const truncated = writeFile(join(c, "a", "truncated.png"), CASES[1].file.subarray(0, 60));
    const jpeg = await sharp(Buffer.from(pattern(64 * 48 * 3, 9)), { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toBuffer();
    const halfJpeg = writeFile(join(c, "a", "z-half.jpg"), jpeg.subarray(0, jpeg.length >> 1));
    const ds = await ImageFolder.open(c);
    for (const [i, path] of [
      [0, garbage],
      [1, truncated],
      [2, halfJpeg],
    ] as const) {
      const err = await ds.image(i).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CorruptImageError);
      expect((err as CorruptImageError).path).toBe(path);
      expect((err as Error).message).toContain(`image: expected a readable JPEG or PNG image in ${path}, got `);
      expect((err as Error).message).not.toContain("\n"); // one line, whatever libvips said
    }
  });

  it("the identity hash changes when a file is added", async () => {
    const h = join(tmp, "hash");
    writeFile(join(h, "x", "1.png"), CASES[0].file);
    const before = (await ImageFolder.open(h)).identity.hash;
    expect((await ImageFolder.open(h)).identity.hash).toBe(before);
    writeFile(join(h, "x", "2.png"), CASES[0].file);
    expect((await ImageFolder.open(h)).identity.hash).not.toBe(before);
  });
});
