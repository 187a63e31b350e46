// libvips resampling through data/image.ts, against references for the cases where the result is defined
// exactly: identity, constant images (every kernel, including a 1031-pixel-wide one), integer nearest-neighbour
// enlargement, crops, and the interior of 2x reductions, which equal PIL's filter weights applied vertically
// then horizontally with rounding to bytes between the passes (exactly: tolerance 0). PIL itself runs the
// horizontal pass first; that order is also checked, within 3 levels of 255 on noise.
import { describe, expect, it } from "vitest";
import { type Kernel, type RawImage, cropResize, decodeImage, decoderReason, imageInfo } from "../../data/image.js";
import { PNG_RGBA, pattern, pngBytes } from "./fixtures.js";
import { catmullRom, refResample, triangle } from "./ref.js";

const raw = (width: number, height: number, data: Uint8Array): RawImage => ({ width, height, channels: 3, data });
const info = (img: RawImage) => ({ width: img.width, height: img.height, hasAlpha: false });
const full = (img: RawImage) => ({ left: 0, top: 0, width: img.width, height: img.height });
const KERNELS: Kernel[] = ["nearest", "linear", "cubic", "lanczos3"];

describe("cropResize", () => {
  it("identity resize returns the pixels unchanged, for every kernel", async () => {
    const img = raw(13, 7, pattern(13 * 7 * 3, 1));
    for (const k of KERNELS) expect(Buffer.from((await cropResize(img, info(img), full(img), 13, 7, k)).data).equals(Buffer.from(img.data)), k).toBe(true);
  });

  it("a constant image stays constant at every size and kernel", async () => {
    for (const [w, h] of [
      [1, 1],
      [13, 11],
      [1031, 3],
    ]) {
      const img = raw(w, h, Uint8Array.from({ length: w * h * 3 }, (_, k) => [201, 7, 255][k % 3]));
      for (const k of KERNELS)
        for (const [ow, oh] of [
          [1, 1],
          [5, 4],
          [31, 29],
          [224, 224],
        ]) {
          const out = await cropResize(img, info(img), full(img), ow, oh, k);
          expect([out.width, out.height]).toEqual([ow, oh]);
          const bad = Array.from(out.data).findIndex((v, i) => v !== [201, 7, 255][i % 3]);
          expect(bad, `${w}x${h} -> ${ow}x${oh} ${k}: byte ${bad} is ${out.data[bad]}`).toBe(-1);
        }
    }
  });

  it("nearest-neighbour 2x enlargement of a crop repeats each pixel of the crop", async () => {
    const img = raw(11, 9, pattern(11 * 9 * 3, 2));
    const box = { left: 2, top: 3, width: 7, height: 5 };
    const out = await cropResize(img, info(img), box, 14, 10, "nearest");
    for (let y = 0; y < 10; y++)
      for (let x = 0; x < 14; x++)
        for (let c = 0; c < 3; c++) {
          const want = img.data[((box.top + (y >> 1)) * 11 + box.left + (x >> 1)) * 3 + c];
          if (out.data[(y * 14 + x) * 3 + c] !== want) throw new Error(`nearest 2x: (${x}, ${y}, ${c}) expected ${want}, got ${out.data[(y * 14 + x) * 3 + c]}`);
        }
  });

  for (const [kernel, filter, support] of [
    ["linear", triangle, 1],
    ["cubic", catmullRom, 2],
  ] as const) {
    it(`2x reduction with ${kernel} equals PIL's antialiased filter (vertical pass first) away from the borders`, async () => {
      const W = 38;
      const H = 30;
      const img = raw(W, H, pattern(W * H * 3, 3));
      const out = await cropResize(img, info(img), full(img), W / 2, H / 2, kernel);
      const vips = refResample(img, W / 2, H / 2, filter, support, "vh");
      const pil = refResample(img, W / 2, H / 2, filter, support, "hv");
      let checked = 0;
      vips.inside.forEach((inside, p) => {
        if (!inside) return;
        checked++;
        for (let c = 0; c < 3; c++) {
          const got = out.data[3 * p + c];
          if (got !== vips.data[3 * p + c]) throw new Error(`${kernel} 2x: pixel ${p} channel ${c}: expected ${vips.data[3 * p + c]}, got ${got} (vertical pass first)`);
          if (Math.abs(got - pil.data[3 * p + c]) > 3) throw new Error(`${kernel} 2x: pixel ${p} channel ${c}: expected ${pil.data[3 * p + c]} within 3, got ${got} (PIL's order)`);
        }
      });
      expect(checked).toBeGreaterThan(100);
    });
  }

  it("drops alpha before resampling: an RGBA PNG resizes like its RGB pixels", async () => {
    const rgba = pattern(9 * 8 * 4, 4);
    const input = { path: "mem.png", bytes: pngBytes(9, 8, PNG_RGBA, 8, rgba) };
    const inf = await imageInfo(input);
    expect(inf).toEqual({ width: 9, height: 8, hasAlpha: true });
    const rgb = raw(9, 8, Uint8Array.from({ length: 9 * 8 * 3 }, (_, k) => rgba[Math.floor(k / 3) * 4 + (k % 3)]));
    expect(Buffer.from((await decodeImage(input)).data).equals(Buffer.from(rgb.data))).toBe(true);
    const box = { left: 1, top: 2, width: 7, height: 5 };
    const a = await cropResize(input, inf, box, 4, 3, "linear");
    const b = await cropResize(rgb, info(rgb), box, 4, 3, "linear");
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
  });

  it("rejects a crop outside the image", async () => {
    const img = raw(5, 4, pattern(60, 5));
    await expect(cropResize(img, info(img), { left: 2, top: 0, width: 4, height: 4 }, 3, 3, "linear")).rejects.toThrow(
      "image: expected a crop inside 5x4, got 4x4 at (2, 0)",
    );
  });
});

describe("decoderReason", () => {
  it("turns libvips' repeated lines into one phrase of the tool's words", () => {
    const vips = "Input buffer has corrupt header: VipsJpeg: premature end of JPEG image\nVipsJpeg: JPEG datastream contains no image\nVipsJpeg: premature end of JPEG image\n";
    expect(decoderReason(vips)).toBe("a truncated or damaged image (premature end of JPEG image)");
    expect(decoderReason("Input buffer contains unsupported image format")).toBe("a file of another format");
    expect(decoderReason("something new\nmore")).toBe("an error of the decoder (something new)");
  });
});
