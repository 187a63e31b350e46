// The study's outputs: results.json (everything), results.csv (one row per cell, plus the original backbone),
// table.md (the paper's Table 1 layout: strategy, #trainable params, transfer accuracy, source k-NN accuracy and
// their mean, at each strategy's best learning rate) and Figure 2 (source k-NN accuracy against transfer accuracy,
// one labelled point per strategy, the original backbone's k-NN accuracy as a reference line) as SVG and as PNG
// rendered from the SVG by sharp (librsvg). All written atomically.
import { join } from "node:path";
import sharp from "sharp";
import type { DatasetIdentity } from "../data/dataset.js";
import { type StudyConfig, configJson } from "./config.js";
import { type Strategy, strategyName } from "../peft/strategy.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { meanStd } from "../util/stats.js";

export type KnnScores = Record<string, { top1: number; top5: number }>; // by k, percent

export interface BaselineResult {
  knn: KnnScores;
  seconds: number;
}

export interface CellResult {
  id: string;
  strategy: string; // its name (strategyName): result.json is a file format
  lr: number;
  seed: number;
  trainableParams: number; // elements of the tensors actually trained (head included)
  paperParams: number; // as the paper's Table 1 counts them (peft/count.ts)
  totalParams: number; // the fine-tuned model's parameters (added blocks and adapters included)
  transferAccuracy: number; // best transfer test accuracy during fine-tuning, percent
  finalTransferAccuracy: number; // at the last step
  bestStep: number;
  finalLoss: number;
  knn: KnnScores; // of the best checkpoint's backbone on the source domain
  trainSeconds: number;
  imagesPerSecond: number;
  knnSeconds: number;
}

// One strategy at its chosen learning rate, averaged over seeds.
export interface TableRow {
  strategy: Strategy;
  lr: number;
  seeds: number;
  trainableParams: number;
  transfer: number; // mean over seeds, percent
  transferStd: number; // sample standard deviation over seeds (0 for one seed)
  knn: number; // source k-NN top-1 at reportK, mean over seeds
  knnStd: number;
  mean: number; // (transfer + knn) / 2
}

export interface StudyNotes {
  backbone: string;
  data: Record<string, DatasetIdentity>;
  imageSize: number;
}

export interface StudyResults {
  name: string;
  reportK: number;
  temperature: number;
  selectBy: "transfer" | "mean";
  notes: StudyNotes;
  baseline: BaselineResult;
  table: TableRow[]; // config order of strategies; only strategies with finished cells
  cells: CellResult[];
  config: StudyConfig;
}

// For each strategy, the learning rate with the best seed-averaged transfer accuracy (selectBy "transfer", what a
// practitioner can select without source data) or the best mean of transfer and source k-NN accuracy ("mean").
export function summarize(config: StudyConfig, baseline: BaselineResult, cells: CellResult[], notes: StudyNotes): StudyResults {
  const k = String(config.knn.reportK);
  const table: TableRow[] = [];
  for (const strategy of config.strategies) {
    const name = strategyName(strategy);
    let best: TableRow | undefined;
    for (const lr of config.learningRates) {
      const group = cells.filter((c) => c.strategy === name && c.lr === lr);
      if (group.length === 0) continue;
      const [transfer, transferStd] = meanStd(group.map((c) => c.transferAccuracy));
      const [knn, knnStd] = meanStd(group.map((c) => c.knn[k].top1));
      const row = { strategy, lr, seeds: group.length, trainableParams: group[0].trainableParams, transfer, transferStd, knn, knnStd, mean: (transfer + knn) / 2 };
      const score = (r: TableRow) => (config.selectBy === "transfer" ? r.transfer : r.mean);
      if (!best || score(row) > score(best)) best = row;
    }
    if (best) table.push(best);
  }
  return { name: config.name, reportK: config.knn.reportK, temperature: config.knn.temperature, selectBy: config.selectBy, notes, baseline, table, cells, config };
}

// ---- CSV ----

export function resultsCsv(r: StudyResults): string {
  const ks = Object.keys(r.baseline.knn);
  const header = ["id", "strategy", "lr", "seed", "trainable_params", "paper_params", "transfer_acc", "final_transfer_acc", "best_step"];
  header.push(...ks.flatMap((k) => [`knn${k}_top1`, `knn${k}_top5`]), "mean", "train_seconds", "images_per_second");
  const knnCols = (s: KnnScores) => ks.flatMap((k) => [s[k].top1.toFixed(2), s[k].top5.toFixed(2)]);
  const lines = [header.join(",")];
  lines.push(["original", "original", "", "", "0", "0", "", "", "", ...knnCols(r.baseline.knn), "", "", ""].join(","));
  for (const c of r.cells) {
    const mean = (c.transferAccuracy + c.knn[String(r.reportK)].top1) / 2;
    lines.push(
      [c.id, c.strategy, c.lr, c.seed, c.trainableParams, c.paperParams, c.transferAccuracy.toFixed(2), c.finalTransferAccuracy.toFixed(2), c.bestStep, ...knnCols(c.knn), mean.toFixed(2), c.trainSeconds.toFixed(1), c.imagesPerSecond.toFixed(1)].join(","),
    );
  }
  return lines.join("\n") + "\n";
}

// ---- Table 1 ----

function pct(m: number, s: number, seeds: number): string {
  return seeds > 1 ? `${m.toFixed(2)} ± ${s.toFixed(2)}` : m.toFixed(2);
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function describeData(d: DatasetIdentity | undefined): string {
  if (!d) return "?";
  return `${d.name} ${d.split}${d.subset ? ` (${d.subset})` : ""}, ${d.count} images`;
}

export function tableMarkdown(r: StudyResults): string {
  const base = r.baseline.knn[String(r.reportK)].top1;
  const lines = [
    `# ${r.name}: transfer accuracy and forgetting (Table 1 layout)`,
    "",
    "| Strategy | #Trainable params | Transfer acc. (%) | Source k-NN acc. (%) | Mean (%) | lr |",
    "|---|---:|---:|---:|---:|---:|",
    `| original backbone (not fine-tuned) | 0 | – | ${base.toFixed(2)} | – | – |`,
  ];
  for (const row of r.table) {
    lines.push(
      `| ${strategyName(row.strategy)} | ${formatCount(row.trainableParams)} | ${pct(row.transfer, row.transferStd, row.seeds)} | ${pct(row.knn, row.knnStd, row.seeds)} | ${row.mean.toFixed(2)} | ${row.lr} |`,
    );
  }
  const d = r.notes.data;
  const seeds = r.config.seeds.length;
  lines.push(
    "",
    "What was measured:",
    `- Backbone: ${r.notes.backbone}. Images at ${r.notes.imageSize} px.`,
    `- Transfer accuracy: top-1 of the linear head on ${describeData(d.transferTest)}, the best of the evaluations every ${r.config.training.evalEvery} steps of ${r.config.training.steps} (fine-tuned on ${describeData(d.transferTrain)}, batch ${r.config.training.batchSize}, ${r.config.training.optimizer}).`,
    `- Source k-NN accuracy: DINO's weighted ${r.reportK}-NN top-1 (T = ${r.temperature}) of that best checkpoint's backbone, bank ${describeData(d.bank)}, queries ${describeData(d.queries)}.`,
    `- Learning rates tried: ${r.config.learningRates.join(", ")}; each row shows the one with the best ${r.selectBy === "transfer" ? "transfer accuracy" : "mean"}${seeds > 1 ? `, mean ± std over ${seeds} seeds` : ` (seed ${r.config.seeds[0]})`}.`,
    "- #Trainable params: the tensors actually updated, the new linear head included (results.json also has the paper's counting).",
    "",
  );
  return lines.join("\n");
}

// ---- Figure 2 ----

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

// results.json: everything, with strategies by name.
export function resultsJson(r: StudyResults): Record<string, unknown> {
  return { ...r, table: r.table.map((row) => ({ ...row, strategy: strategyName(row.strategy) })), config: configJson(r.config) };
}

// Writes every report file into `out`; returns their paths.
export async function writeReport(out: string, r: StudyResults): Promise<string[]> {
  const svg = figureSvg(r);
  const png = await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
  const files: [string, string | Uint8Array][] = [
    ["results.csv", resultsCsv(r)],
    ["table.md", tableMarkdown(r)],
    ["figure2.svg", svg],
    ["figure2.png", png],
  ];
  const paths: string[] = [join(out, "results.json")];
  await writeJsonAtomic(paths[0], resultsJson(r));
  for (const [name, data] of files) {
    await writeFileAtomic(join(out, name), data);
    paths.push(join(out, name));
  }
  return paths;
}
