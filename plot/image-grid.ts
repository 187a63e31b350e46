// A grid of small images with a title, a label above each column and one left of each row, for pictures that are
// not charts (attention maps beside their image). Built as SVG with each tile embedded as a PNG data URI, so that
// the SVG alone shows it; tiles are enlarged with nearest-neighbour sampling first (a patch stays a sharp square,
// where a viewer would blur it) and renderPng rasterises the whole. Text in the figures' font (plot/style.ts). The
// grid is as wide as its title and subtitle, and each column as wide as its label (a strategy such as
// "top-3-frozen-norm" is wider than a tile): text that an SVG's width cuts off, or that runs into its neighbour, is
// lost without a warning.
import sharp from "sharp";
import { FIGURE_CONFIG } from "./style.js";

export interface Tile {
  rgb: Uint8Array; // (height, width, 3), 8-bit
  width: number;
  height: number;
}

export interface ImageGrid {
  title: string;
  subtitle?: string;
  columns: string[]; // a label per column
  rows: string[]; // a label per row
  tiles: Tile[][]; // [row][column]
  tileSize: number; // pixels of the enlarged tile's longer side
}

const PAD = 6;
const LABEL_WIDTH = 90; // the row labels' column, at least
const HEAD = 62; // title, subtitle and column labels

// Text width in pixels, over-estimated (0.6 em a character; DejaVu Sans averages about 0.55), as librsvg draws it
// without measuring it here.
function textWidth(text: string, fontSize: number): number {
  return Math.ceil(text.length * fontSize * 0.6);
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export async function imageGridSvg(g: ImageGrid): Promise<string> {
  if (g.tiles.length !== g.rows.length || g.tiles.some((r) => r.length !== g.columns.length)) {
    throw new Error(`image grid: expected ${g.rows.length} rows of ${g.columns.length} tiles, got rows of ${g.tiles.map((r) => r.length).join(", ")}`);
  }
  const s = g.tileSize;
  const font = `font-family="${FIGURE_CONFIG.font}"`;
  const parts: string[] = [];
  // A column's pitch: the tile, or its widest label, and the gap; the row labels' column: its widest label.
  const pitch = Math.max(s, ...g.columns.map((label) => textWidth(label, 12))) + PAD;
  const left = Math.max(LABEL_WIDTH, ...g.rows.map((label) => textWidth(label, 12) + 2 * PAD));
  const width = Math.max(left + g.columns.length * pitch + PAD, PAD + textWidth(g.title, 15) + PAD, PAD + textWidth(g.subtitle ?? "", 12) + PAD);
  const height = HEAD + g.rows.length * (s + PAD) + PAD;
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${PAD}" y="20" font-size="15" ${font}>${escape(g.title)}</text>`);
  if (g.subtitle) parts.push(`<text x="${PAD}" y="38" font-size="12" fill="#444" ${font}>${escape(g.subtitle)}</text>`);
  g.columns.forEach((label, j) => {
    const x = left + j * pitch + (pitch - PAD) / 2;
    parts.push(`<text x="${x}" y="${HEAD - 8}" font-size="12" text-anchor="middle" ${font}>${escape(label)}</text>`);
  });
  for (const [i, row] of g.tiles.entries()) {
    for (const [j, tile] of row.entries()) {
      if (tile.rgb.length !== tile.width * tile.height * 3) throw new Error(`image grid: expected tile [${i}][${j}] of ${tile.width} x ${tile.height} x 3 bytes, got ${tile.rgb.length}`);
    }
  }
  // Every tile enlarged and encoded at once, on libuv's pool (one after another, the analysis waited on each).
  const sized = g.tiles.map((row) =>
    row.map((tile) => {
      const scale = s / Math.max(tile.width, tile.height);
      return [Math.round(tile.width * scale), Math.round(tile.height * scale)] as const;
    }),
  );
  const pngs = await Promise.all(
    g.tiles.map((row, i) =>
      Promise.all(row.map((tile, j) => sharp(Buffer.from(tile.rgb), { raw: { width: tile.width, height: tile.height, channels: 3 } }).resize(...sized[i][j], { kernel: "nearest" }).png().toBuffer())),
    ),
  );
  for (const [i, row] of pngs.entries()) {
    const y = HEAD + i * (s + PAD);
    parts.push(`<text x="${left - PAD}" y="${y + s / 2 + 4}" font-size="12" text-anchor="end" ${font}>${escape(g.rows[i])}</text>`);
    for (const [j, png] of row.entries()) {
      const [w, h] = sized[i][j];
      parts.push(`<image x="${left + j * pitch + (pitch - PAD - w) / 2}" y="${y}" width="${w}" height="${h}" href="data:image/png;base64,${png.toString("base64")}"/>`);
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join("")}</svg>\n`;
}

// A colour map: each value in [0, 1] to RGB by linear interpolation between viridis's five key colours; a value that
// is no number (NaN: an attention map of a model whose outputs are not finite) grey, outside the map, not a crash.
const VIRIDIS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

const NO_VALUE = [128, 128, 128];

export function viridis(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 3);
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) {
      out.set(NO_VALUE, i * 3);
      continue;
    }
    const v = Math.min(1, Math.max(0, values[i])) * (VIRIDIS.length - 1);
    const k = Math.min(VIRIDIS.length - 2, Math.floor(v));
    const f = v - k;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(VIRIDIS[k][c] * (1 - f) + VIRIDIS[k + 1][c] * f);
  }
  return out;
}
