// The attention-map figure: for the first few analysed images, the image and the CLS token's attention over the
// patches in the last original block (mean over heads) of the original backbone and of each strategy at its
// selected learning rate (its first seed's cell). The maps of one image share one colour scale, 0 to the largest
// weight among them, so that a map that faded or sharpened shows it.
import { type ImageGrid, type Tile, viridis } from "../../plot/image-grid.js";
import type { RunAnalysis } from "../analysis-results.js";

// An image as the model saw it (normalised, (3, S, S)), stretched to 0..255 over its own range for display.
function imageTile(pixels: Float32Array, size: number): Tile {
  let [lo, hi] = [Infinity, -Infinity];
  for (const v of pixels) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const range = hi > lo ? hi - lo : 1;
  const plane = size * size;
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round((255 * (pixels[c * plane + i] - lo)) / range);
  return { rgb, width: size, height: size };
}

export function attentionGrid(a: RunAnalysis, images: Float32Array, imageShape: number[]): ImageGrid {
  const [g, , size] = imageShape;
  const side = Math.round(Math.sqrt(a.gridTokens));
  if (side * side !== a.gridTokens) throw new Error(`attention grid: expected a square grid of patches, got ${a.gridTokens}`);
  const shown = a.strategies.map((s) => a.cells.find((c) => c.strategy === s.strategy && c.lr === s.lr)!);
  const models = [{ label: "original", grid: a.original.grid }, ...shown.map((c) => ({ label: c.strategy, grid: c.grid }))];
  // One seed's maps, not a mean over seeds: which one, said in the subtitle.
  const seeds = [...new Set(shown.map((c) => c.seed))];
  const tiles: Tile[][] = [];
  for (let i = 0; i < g; i++) {
    const maps = models.map((m) => m.grid.slice(i * a.gridTokens, (i + 1) * a.gridTokens));
    const top = Math.max(...maps.flat()) || 1;
    tiles.push([
      imageTile(images.subarray(i * 3 * size * size, (i + 1) * 3 * size * size), size),
      ...maps.map((m) => ({ rgb: viridis(m.map((v) => v / top)), width: side, height: side })),
    ]);
  }
  return {
    title: "CLS attention in the last block, before and after fine-tuning",
    subtitle: `mean over heads; each row on its own scale, dark 0 to bright its largest weight; ${a.images.name} ${a.images.split} images; seed ${seeds.join(" or ")}`,
    columns: ["image", ...models.map((m) => m.label)],
    rows: Array.from({ length: g }, (_, i) => `image ${i + 1}`),
    tiles,
    tileSize: 96,
  };
}
