// Pillow's resize in JS against Pillow itself (test/fixtures/generate-pil-resize.py, Pillow 9.4): every byte equal,
// tolerance 0, for nearest, bilinear and bicubic on awkward crops and sizes, and for every crop size of DINO's
// multi-crop on a 28x28 image (by hash).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { RawImage } from "../../data/image.js";
import { type PilFilter, pilResize } from "../../data/resample.js";

interface Fixture {
  pillow: string;
  image: { width: number; height: number; bytes: string };
  cases: { filter: PilFilter; crop: [number, number, number, number]; size: [number, number]; bytes: string }[];
  gray28: string;
  sweep: [PilFilter, number, number, number, number, number, string][];
}

const fix: Fixture = JSON.parse(readFileSync("test/fixtures/pil-resize.json", "utf8"));
const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));
const box = ([left, top, width, height]: number[]) => ({ left, top, width, height });

describe("pilResize equals Pillow byte for byte", () => {
  const img: RawImage = { width: fix.image.width, height: fix.image.height, channels: 3, data: bytes(fix.image.bytes) };

  for (const c of fix.cases) {
    it(`${c.filter} crop ${c.crop[2]}x${c.crop[3]} at (${c.crop[0]}, ${c.crop[1]}) to ${c.size[0]}x${c.size[1]}`, () => {
      const out = pilResize(img, box(c.crop), c.size[0], c.size[1], c.filter);
      expect(out.width).toBe(c.size[0]);
      expect(out.height).toBe(c.size[1]);
      expect(Array.from(out.data)).toEqual(Array.from(bytes(c.bytes)));
    });
  }

  it(`every crop size of a 28x28 image to 28 and 14 (bicubic) and 28 (bilinear): ${fix.sweep.length} cases`, () => {
    const gray = bytes(fix.gray28);
    const rgb = new Uint8Array(28 * 28 * 3);
    for (let p = 0; p < 28 * 28; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = gray[p];
    const image: RawImage = { width: 28, height: 28, channels: 3, data: rgb };
    const wrong: string[] = [];
    for (const [filter, size, left, top, w, h, hash] of fix.sweep) {
      const out = pilResize(image, { left, top, width: w, height: h }, size, size, filter);
      if (createHash("sha256").update(out.data).digest("hex").slice(0, 16) !== hash) wrong.push(`${filter} ${w}x${h} -> ${size}`);
    }
    expect(wrong).toEqual([]);
  });
});

describe("pilResize inputs", () => {
  const img: RawImage = { width: 4, height: 3, channels: 3, data: new Uint8Array(36).map((_, i) => i * 7) };

  it("copies when the size is the crop's", () => {
    const out = pilResize(img, box([1, 1, 2, 2]), 2, 2, "bicubic");
    expect(Array.from(out.data)).toEqual([...img.data.subarray(15, 21), ...img.data.subarray(27, 33)]);
  });

  it("refuses a crop outside the image or an empty output, naming the sizes", () => {
    expect(() => pilResize(img, box([3, 0, 2, 1]), 2, 2, "bilinear")).toThrow("expected a crop inside 4x3, got 2x1 at (3, 0)");
    expect(() => pilResize(img, box([0, 0, 2, 2]), 0, 2, "bilinear")).toThrow("expected an output size of positive integers, got 0x2");
  });
});
