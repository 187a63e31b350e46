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
    // Each column as wide as its widest label ("original": 8 characters of 12 px at 0.6 em, 58 px) and the gap.
    expect(meta.width).toBe(90 + 2 * (58 + 6) + 6);
  });

  it("is as wide as its title, subtitle and labels: none is cut off or runs into its neighbour", async () => {
    const subtitle = "mean over heads; each row on its own scale, dark 0 to bright its largest weight; fashion-mnist test images";
    const svg = await imageGridSvg({ title: "CLS attention in the last block", subtitle, columns: ["image", "top-3-frozen-norm", "block@1,2,3"], rows: ["a row label longer than its column"], tiles: [[checker, checker, checker]], tileSize: 96 });
    const width = Number(/<svg[^>]* width="(\d+)"/.exec(svg)![1]);
    expect(width).toBeGreaterThanOrEqual(6 + subtitle.length * 12 * 0.6);
    // Column centres at least a label's width apart; the tiles as large as asked, each centred under its label.
    const centres = [...svg.matchAll(/<text x="([\d.]+)" y="54"/g)].map((m) => Number(m[1]));
    expect(centres).toHaveLength(3);
    expect(centres[2] - centres[1]).toBeGreaterThanOrEqual("top-3-frozen-norm".length * 12 * 0.6);
    const images = [...svg.matchAll(/<image x="([\d.]+)" y="\d+" width="(\d+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(images.map(([, w]) => w)).toEqual([96, 96, 96]);
    images.forEach(([x, w], j) => expect(x + w / 2).toBeCloseTo(centres[j], 6));
    // The row label starts inside the picture.
    const row = /<text x="([\d.]+)" y="\d+" font-size="12" text-anchor="end"[^>]*>a row label/.exec(svg)!;
    expect(Number(row[1])).toBeGreaterThanOrEqual("a row label longer than its column".length * 12 * 0.6);
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
