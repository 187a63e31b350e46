// plot/image-grid.ts: a labelled grid of tiles as SVG with embedded PNGs, rasterised like every figure; tiles
// enlarged without blurring; the colour map's ends and middle.
import { describe, expect, it } from "vitest";
import sharp from "sharp";
import { type Tile, imageGridSvg, viridis } from "../../plot/image-grid.js";
import { renderPng } from "../../plot/render.js";

// A 2 x 2 tile: black, white / white, black.
const checker: Tile = { width: 2, height: 2, rgb: Uint8Array.from([0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0]) };

describe("imageGridSvg", () => {
  it("draws a title, the labels and every tile, enlarged with sharp edges", async () => {
    const svg = await imageGridSvg({ title: "Maps <&>", columns: ["image", "original"], rows: ["#0", "#1"], tiles: [[checker, checker], [checker, checker]], tileSize: 40 });
    expect(svg).toContain(">Maps &lt;&amp;&gt;<");
    expect(svg).toContain(">original<");
    expect(svg).toContain(">#1<");
    const uris = [...svg.matchAll(/href="data:image\/png;base64,([^"]+)"/g)].map((m) => m[1]);
    expect(uris).toHaveLength(4);
    const { data, info } = await sharp(Buffer.from(uris[0], "base64")).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([40, 40]);
    // Nearest-neighbour: a 20 x 20 black square, then white, with no grey between.
    expect([data[(19 * 40 + 19) * info.channels], data[(19 * 40 + 20) * info.channels]]).toEqual([0, 255]);
    const png = await renderPng(svg, 1);
    const meta = await sharp(png).metadata();
    expect(meta.width).toBe(90 + 2 * 46 + 6);
  });

  it("names a grid whose tiles do not match its labels", async () => {
    await expect(imageGridSvg({ title: "t", columns: ["a", "b"], rows: ["r"], tiles: [[checker]], tileSize: 10 })).rejects.toThrow("image grid: expected 1 rows of 2 tiles, got rows of 1");
    const bad = { ...checker, rgb: new Uint8Array(5) };
    await expect(imageGridSvg({ title: "t", columns: ["a"], rows: ["r"], tiles: [[bad]], tileSize: 10 })).rejects.toThrow("image grid: expected tile [0][0] of 2 x 2 x 3 bytes, got 5");
  });
});

describe("viridis", () => {
  it("maps 0, 0.5 and 1 (and values outside, clamped) to viridis's key colours", () => {
    expect(Array.from(viridis([0, 0.5, 1, -3, 7]))).toEqual([68, 1, 84, 33, 145, 140, 253, 231, 37, 68, 1, 84, 253, 231, 37]);
    expect(Array.from(viridis([NaN, Infinity, -Infinity]))).toEqual([128, 128, 128, 253, 231, 37, 68, 1, 84]); // NaN: grey
  });
});
