// The study's output files: results.json (everything, study/results.ts), results.csv (one row per cell, plus the
// original backbone), table.md (the paper's Table 1 layout: strategy, #trainable params, transfer accuracy, source
// k-NN accuracy and their mean, at each strategy's best learning rate) and Figure 2 (study/figure.ts) as SVG and as
// PNG rendered from the SVG by sharp (librsvg). All written atomically.
import { join } from "node:path";
import sharp from "sharp";
import type { DatasetIdentity } from "../data/dataset.js";
import { strategyName } from "../peft/strategy.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { type KnnScores, type StudyResults, resultsJson } from "./results.js";
import { ratesFor } from "./config.js";
import { figureSvg } from "./figure.js";

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

function learningRatesText(r: StudyResults): string {
  const rates = r.config.learningRates;
  if (Array.isArray(rates)) return rates.join(", ");
  return r.config.strategies.map((s) => `${strategyName(s)} ${ratesFor(r.config, s).join(", ")}`).join("; ");
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
    `- Learning rates tried: ${learningRatesText(r)}; each row shows the one with the best ${r.selectBy === "transfer" ? "transfer accuracy" : "mean"}${seeds > 1 ? `, mean ± std over ${seeds} seeds` : ` (seed ${r.config.seeds[0]})`}.`,
    "- #Trainable params: the tensors actually updated, the new linear head included (results.json also has the paper's counting).",
    "",
  );
  return lines.join("\n");
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
