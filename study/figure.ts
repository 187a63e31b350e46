// Figure 2 of the paper for one study: source k-NN accuracy against transfer accuracy, one labelled point per
// strategy (coloured by family), the original backbone's k-NN accuracy as a dashed reference line; as SVG text.
import { type Strategy, strategyName } from "../peft/strategy.js";
import type { StudyResults } from "./results.js";

const FAMILIES: Record<Strategy["kind"], { color: string; name: string }> = {
  full: { color: "#d62728", name: "full fine-tuning" },
  "top-k": { color: "#ff7f0e", name: "top-k blocks" },
  linear: { color: "#7f7f7f", name: "linear probing" },
  lora: { color: "#1f77b4", name: "LoRA" },
  block: { color: "#2ca02c", name: "Block Expansion" },
};

function family(strategy: Strategy): { color: string; name: string } {
  return FAMILIES[strategy.kind];
}

// Round tick steps (1, 2, 5 x 10^n) covering [lo, hi] with about `count` ticks.
function ticks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toFixed(6)));
  return out;
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function figureSvg(r: StudyResults): string {
  const W = 760;
  const H = 500;
  const m = { left: 72, right: 200, top: 56, bottom: 64 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const base = r.baseline.knn[String(r.reportK)].top1;
  const xs = r.table.map((row) => row.transfer);
  const ys = [...r.table.map((row) => row.knn), base];
  const pad = (lo: number, hi: number): [number, number] => {
    const span = Math.max(hi - lo, 4);
    return [Math.max(0, lo - 0.12 * span), Math.min(100, hi + 0.12 * span)];
  };
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const X = (v: number) => m.left + ((v - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => m.top + ph - ((v - y0) / (y1 - y0)) * ph;
  const font = `font-family="DejaVu Sans, Arial, Helvetica, sans-serif"`;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.left + pw / 2}" y="28" text-anchor="middle" ${font} font-size="16" font-weight="bold">${escapeXml(`Forgetting vs. transfer: ${r.name}`)}</text>`,
  ];
  for (const t of ticks(x0, x1, 6)) {
    out.push(`<line x1="${X(t)}" y1="${m.top}" x2="${X(t)}" y2="${m.top + ph}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${X(t)}" y="${m.top + ph + 18}" text-anchor="middle" ${font} font-size="12">${t}</text>`);
  }
  for (const t of ticks(y0, y1, 6)) {
    out.push(`<line x1="${m.left}" y1="${Y(t)}" x2="${m.left + pw}" y2="${Y(t)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 8}" y="${Y(t) + 4}" text-anchor="end" ${font} font-size="12">${t}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 18}" text-anchor="middle" ${font} font-size="13">Transfer accuracy (%), linear head on the new domain</text>`);
  out.push(
    `<text transform="translate(20 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" ${font} font-size="13">Source k-NN accuracy (%), ${r.reportK}-NN</text>`,
  );
  // The original backbone's k-NN accuracy: what no forgetting would keep.
  out.push(`<line x1="${m.left}" y1="${Y(base)}" x2="${m.left + pw}" y2="${Y(base)}" stroke="#333" stroke-dasharray="6 4" stroke-width="1.5"/>`);
  // Points first, then each label at the first candidate spot (right, left, above, below, then further down on
  // the right) that overlaps no point and no earlier label: close points stay readable.
  const boxes: Box[] = r.table.map((row) => ({ x: X(row.transfer) - 7, y: Y(row.knn) - 7, w: 14, h: 14 }));
  for (const row of r.table) {
    out.push(`<circle cx="${X(row.transfer)}" cy="${Y(row.knn)}" r="6" fill="${family(row.strategy).color}" stroke="#222" stroke-width="1"/>`);
  }
  for (const row of [...r.table].sort((a, b) => b.knn - a.knn)) {
    const px = X(row.transfer);
    const py = Y(row.knn);
    const label = strategyName(row.strategy);
    const w = 7.2 * label.length;
    const candidates: [number, number, "start" | "end" | "middle"][] = [
      [px + 10, py + 4, "start"],
      [px - 10, py + 4, "end"],
      [px, py - 11, "middle"],
      [px, py + 20, "middle"],
      ...[1, 2, 3, 4, 5].map((k): [number, number, "start"] => [px + 10, py + 4 + 14 * k, "start"]),
    ];
    const boxOf = ([x, y, anchor]: [number, number, string]): Box => ({ x: anchor === "start" ? x : anchor === "end" ? x - w : x - w / 2, y: y - 11, w, h: 14 });
    const inside = (b: Box) => b.x >= m.left && b.x + b.w <= m.left + pw && b.y >= m.top && b.y + b.h <= m.top + ph;
    const spot = candidates.find((c) => inside(boxOf(c)) && !boxes.some((b) => overlaps(b, boxOf(c)))) ?? candidates[0];
    boxes.push(boxOf(spot));
    // A white halo keeps a label readable where it crosses the reference line or a grid line.
    const halo = `stroke="white" stroke-width="3" paint-order="stroke"`;
    out.push(`<text x="${spot[0]}" y="${spot[1]}" text-anchor="${spot[2]}" ${font} font-size="12" ${halo}>${escapeXml(label)}</text>`);
  }
  // Legend: the strategy families present, and the reference line.
  const lx = m.left + pw + 16;
  let ly = m.top + 8;
  out.push(`<text x="${lx}" y="${ly}" ${font} font-size="13" font-weight="bold">Strategy</text>`);
  const families = [...new Map(r.table.map((row) => [family(row.strategy).name, family(row.strategy).color]))];
  for (const [name, color] of families) {
    ly += 22;
    out.push(`<circle cx="${lx + 7}" cy="${ly - 4}" r="6" fill="${color}" stroke="#222" stroke-width="1"/>`);
    out.push(`<text x="${lx + 20}" y="${ly}" ${font} font-size="12">${escapeXml(name)}</text>`);
  }
  ly += 26;
  out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 16}" y2="${ly - 4}" stroke="#333" stroke-dasharray="6 4" stroke-width="1.5"/>`);
  out.push(`<text x="${lx + 20}" y="${ly}" ${font} font-size="12">original backbone</text>`);
  out.push(`<text x="${lx + 20}" y="${ly + 15}" ${font} font-size="12">k-NN: ${base.toFixed(2)}%</text>`);
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
