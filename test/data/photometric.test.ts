// data/photometric.ts: each adjustment against a float64 reference written from its formula (tolerance 1e-6, f32
// storage), hue against known colours, the blur against a direct 2-D Gaussian; applyPhotometric's probabilities,
// seeded determinism, range, and grayscale data staying gray.
import { describe, expect, it } from "vitest";
import { Rng } from "../../util/random.js";
import { applyPhotometric, blur, brightness, contrast, gaussianKernel, hue, saturation, solarize, toGray } from "../../data/photometric.js";
import { expectClose, randu } from "../helpers.js";

const TOL = { atol: 1e-6, rtol: 1e-6 };
const S = 5;
const P = S * S;
const image = (seed: number) => randu(3 * P, seed, 0, 1);
const clamp = (v: number) => Math.min(1, Math.max(0, v));
const lumaRef = (x: ArrayLike<number>, i: number) => 0.299 * x[i] + 0.587 * x[P + i] + 0.114 * x[2 * P + i];

describe("photometric adjustments", () => {
  it("brightness scales and clamps", () => {
    const x0 = image(1);
    const x = x0.slice();
    brightness(x, 1.3);
    expectClose("brightness", x, Array.from(x0, (v) => clamp(1.3 * v)), TOL);
  });

  it("contrast blends with the mean luma", () => {
    const x0 = image(2);
    let m = 0;
    for (let i = 0; i < P; i++) m += lumaRef(x0, i) / P;
    const x = x0.slice();
    contrast(x, P, 0.7);
    expectClose("contrast", x, Array.from(x0, (v) => clamp(m + 0.7 * (v - m))), TOL);
  });

  it("saturation blends with each pixel's luma; grayscale is saturation 0", () => {
    const x0 = image(3);
    const want = Array.from(x0, (v, j) => clamp(lumaRef(x0, j % P) + 1.4 * (v - lumaRef(x0, j % P))));
    const x = x0.slice();
    saturation(x, P, 1.4);
    expectClose("saturation", x, want, TOL);
    const g = x0.slice();
    toGray(g, P);
    const s0 = x0.slice();
    saturation(s0, P, 0);
    expectClose("grayscale", g, s0, TOL);
  });

  it("hue turns the colour wheel and keeps grays", () => {
    const px = (r: number, g: number, b: number) => Float32Array.from([r, g, b]);
    const turned = px(1, 0.2, 0.2);
    hue(turned, 1, 1 / 3);
    expectClose("red turned a third", turned, [0.2, 1, 0.2], TOL);
    const back = px(0.3, 0.6, 0.9);
    hue(back, 1, 0.25);
    hue(back, 1, -0.25);
    expectClose("turned and back", back, [0.3, 0.6, 0.9], TOL);
    const gray = px(0.4, 0.4, 0.4);
    hue(gray, 1, 0.3);
    expectClose("gray", gray, [0.4, 0.4, 0.4], TOL);
  });

  it("solarisation inverts values from 0.5 up", () => {
    const x = Float32Array.from([0, 0.49, 0.5, 0.8, 1]);
    solarize(x);
    expectClose("solarized", x, [0, 0.49, 0.5, 0.2, 0], TOL);
  });

  it("blur is a normalised Gaussian with clamped borders", () => {
    const sigma = 0.8;
    const x0 = image(4);
    const x = x0.slice();
    blur(x, S, sigma);
    const r = Math.ceil(3 * sigma);
    const want = new Float64Array(3 * P);
    const at = (v: number) => Math.min(S - 1, Math.max(0, v));
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < S; y++)
        for (let xx = 0; xx < S; xx++) {
          let s = 0;
          let w = 0;
          for (let dy = -r; dy <= r; dy++)
            for (let dx = -r; dx <= r; dx++) {
              const k = Math.exp(-(dy * dy + dx * dx) / (2 * sigma * sigma));
              w += k;
              s += k * x0[c * P + at(y + dy) * S + at(xx + dx)];
            }
          want[c * P + y * S + xx] = s / w;
        }
    expectClose("blurred", x, want, { atol: 1e-5, rtol: 1e-5 });
    expect(gaussianKernel(2).length).toBe(13);
  });
});

describe("applyPhotometric", () => {
  const rgb = { jitter: { p: 1, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 }, grayscale: 0.2, blur: 0.5, solarize: 0.2 };

  it("is seeded and keeps values in [0, 1]", () => {
    const a = image(5);
    const b = a.slice();
    applyPhotometric(a, S, rgb, new Rng(7), false);
    applyPhotometric(b, S, rgb, new Rng(7), false);
    expect(a).toEqual(b);
    expect(a.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(a).not.toEqual(image(5));
  });

  it("does nothing at probability 0", () => {
    const x = image(6);
    applyPhotometric(x, S, { jitter: { ...rgb.jitter, p: 0 }, grayscale: 0, blur: 0, solarize: 0 }, new Rng(1), false);
    expect(x).toEqual(image(6));
  });

  it("keeps grayscale data gray", () => {
    const x = new Float32Array(3 * P);
    const g = randu(P, 8, 0, 1);
    for (let c = 0; c < 3; c++) x.set(g, c * P);
    for (let seed = 0; seed < 5; seed++) applyPhotometric(x, S, rgb, new Rng(seed), true);
    expect(x.subarray(0, P)).toEqual(x.subarray(P, 2 * P));
    expect(x.subarray(0, P)).toEqual(x.subarray(2 * P));
  });

  it("refuses an image of another size", () => {
    expect(() => applyPhotometric(new Float32Array(10), S, rgb, new Rng(1), false)).toThrow("photometric: expected an image of 3 x 5 x 5 values, got 10");
  });
});
