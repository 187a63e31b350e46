// data/grid-crop.ts against PyTorch's affine_grid + grid_sample (test/fixtures/generate-grid-crop.py, float64):
// every value within 1e-6 absolute (float32 storage of values in [0, 1]); and the boxes drawn: in range, seeded.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type GridBox, drawGridBox, gridCrop } from "../../data/grid-crop.js";
import { Rng } from "../../util/random.js";
import { expectClose } from "../helpers.js";

interface Fixture {
  image: { width: number; height: number; bytes: number[] };
  cases: { box: GridBox; size: number; out: number[] }[];
}

const fix: Fixture = JSON.parse(readFileSync("test/fixtures/grid-crop.json", "utf8"));

describe("gridCrop equals grid_sample", () => {
  const img = { width: fix.image.width, height: fix.image.height, channels: 3 as const, data: Uint8Array.from(fix.image.bytes) };
  for (const c of fix.cases) {
    const b = c.box;
    it(`w ${b.w} h ${b.h} at (${b.cx}, ${b.cy})${b.flip ? " flipped" : ""} to ${c.size}`, () => {
      const out = new Float32Array(2 + 3 * c.size * c.size);
      gridCrop(img, b, c.size, out, 2);
      expectClose("crop", out.subarray(2), Float32Array.from(c.out), { atol: 1e-6, rtol: 0 });
    });
  }

  it("refuses an output array without room, naming the sizes", () => {
    expect(() => gridCrop(img, fix.cases[0].box, 4, new Float32Array(47), 0)).toThrow("grid crop: expected room for (3, 4, 4) at offset 0, got an array of 47");
  });
});

describe("drawGridBox", () => {
  it("draws half-extents and centres that keep the box inside, aspect within 3/4..4/3 unless clamped, both flips", () => {
    const rng = new Rng([7]);
    const flips = new Set<boolean>();
    for (let n = 0; n < 2000; n++) {
      const b = drawGridBox([0.05, 1], rng);
      flips.add(b.flip);
      expect(b.w).toBeGreaterThan(0);
      expect(b.w).toBeLessThanOrEqual(1);
      expect(b.h).toBeLessThanOrEqual(1);
      expect(Math.abs(b.cx) + b.w).toBeLessThanOrEqual(1 + 1e-12);
      expect(Math.abs(b.cy) + b.h).toBeLessThanOrEqual(1 + 1e-12);
      const area = b.w * b.h;
      if (b.w < 1 && b.h < 1) {
        expect(area).toBeGreaterThanOrEqual(0.05 - 1e-12);
        expect(b.w / b.h).toBeGreaterThanOrEqual(3 / 4 - 1e-12);
        expect(b.w / b.h).toBeLessThanOrEqual(4 / 3 + 1e-12);
      }
    }
    expect([...flips].sort()).toEqual([false, true]);
    expect(drawGridBox([0.2, 0.4], new Rng([1, 2]))).toEqual(drawGridBox([0.2, 0.4], new Rng([1, 2])));
  });
});
