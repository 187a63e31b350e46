// The report from hand-made cell results: learning-rate selection, seed averaging, CSV, Table 1, Figure 2.
import { describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { DEFAULT_STUDY, parseStudyConfig } from "../../study/config.js";
import { strategyName } from "../../peft/strategy.js";
import { formatCount, resultsCsv, tableMarkdown, writeReport } from "../../study/report.js";
import { type CellResult, summarize } from "../../study/results.js";
import { figureSvg } from "../../study/figure.js";

const config = parseStudyConfig({ ...DEFAULT_STUDY, strategies: ["full", "linear"], learningRates: [0.1, 0.01], seeds: [0, 1] });

function cell(strategy: string, lr: number, seed: number, transfer: number, knn: number): CellResult {
  return {
    id: `${strategy}_lr${lr}_s${seed}`,
    strategy,
    lr,
    seed,
    trainableParams: strategy === "full" ? 210_000 : 325,
    paperParams: strategy === "full" ? 210_000 : 325,
    totalParams: 210_000,
    transferAccuracy: transfer,
    finalTransferAccuracy: transfer - 1,
    bestStep: 40,
    finalLoss: 0.5,
    knn: { "10": { top1: knn + 1, top5: 99 }, "20": { top1: knn, top5: 98 } },
    trainSeconds: 10,
    imagesPerSecond: 100,
    knnSeconds: 2,
  };
}

const cells = [
  cell("full", 0.1, 0, 90, 40),
  cell("full", 0.1, 1, 92, 42), // mean transfer 91, knn 41: best transfer
  cell("full", 0.01, 0, 85, 70),
  cell("full", 0.01, 1, 87, 72), // mean transfer 86, knn 71: best mean (78.5 vs 66)
  cell("linear", 0.1, 0, 60, 80),
  cell("linear", 0.1, 1, 62, 80),
  cell("linear", 0.01, 0, 50, 80),
  cell("linear", 0.01, 1, 52, 80),
];
const baseline = { knn: { "10": { top1: 81, top5: 99 }, "20": { top1: 80, top5: 99 } }, seconds: 1 };
const notes = { backbone: "test backbone", data: {}, imageSize: 28 };

describe("summarize", () => {
  it("picks each strategy's learning rate by seed-averaged transfer accuracy", () => {
    const r = summarize(config, baseline, cells, notes);
    expect(r.table.map((row) => [strategyName(row.strategy), row.lr])).toEqual([["full", 0.1], ["linear", 0.1]]);
    const full = r.table[0];
    expect(full.transfer).toBe(91);
    expect(full.transferStd).toBeCloseTo(Math.SQRT2, 12); // sample std of 90 and 92
    expect(full.knn).toBe(41);
    expect(full.mean).toBe(66);
    expect(full.seeds).toBe(2);
  });

  it("or by the mean of transfer and source k-NN accuracy", () => {
    const r = summarize({ ...config, selectBy: "mean" }, baseline, cells, notes);
    expect(r.table.map((row) => [strategyName(row.strategy), row.lr])).toEqual([["full", 0.01], ["linear", 0.1]]);
  });

  it("leaves out strategies without finished cells", () => {
    expect(summarize(config, baseline, cells.slice(0, 4), notes).table.map((row) => strategyName(row.strategy))).toEqual(["full"]);
  });
});

describe("report files", () => {
  const r = summarize(config, baseline, cells, notes);

  it("CSV: a header, the original backbone and one row per cell, all the same width", () => {
    const lines = resultsCsv(r).trim().split("\n").map((l) => l.split(","));
    expect(lines[0]).toEqual([
      "id", "strategy", "lr", "seed", "trainable_params", "paper_params", "transfer_acc", "final_transfer_acc", "best_step",
      "knn10_top1", "knn10_top5", "knn20_top1", "knn20_top5", "mean", "train_seconds", "images_per_second",
    ]);
    expect(lines.length).toBe(2 + cells.length);
    expect(lines.every((l) => l.length === lines[0].length)).toBe(true);
    expect(lines[1].slice(0, 2)).toEqual(["original", "original"]);
    expect(lines[2]).toContain("90.00");
  });

  it("Table 1: the original backbone, then one row per strategy with mean ± std over seeds", () => {
    const md = tableMarkdown(r);
    const rows = md.split("\n").filter((l) => l.startsWith("| "));
    expect(rows[0]).toBe("| Strategy | #Trainable params | Transfer acc. (%) | Source k-NN acc. (%) | Mean (%) | lr |");
    expect(rows[1]).toBe("| original backbone (not fine-tuned) | 0 | – | 80.00 | – | – |");
    expect(rows[2]).toBe("| full | 210.0K | 91.00 ± 1.41 | 41.00 ± 1.41 | 66.00 | 0.1 |");
    expect(rows[3]).toBe("| linear | 325 | 61.00 ± 1.41 | 80.00 ± 0.00 | 70.50 | 0.1 |");
    expect(md).toContain("20-NN top-1");
    expect(md).toContain("mean ± std over 2 seeds");
  });

  it("Figure 2: labelled points, axes, legend and the reference line", () => {
    const svg = figureSvg(r);
    expect(svg.startsWith("<svg")).toBe(true);
    expect((svg.match(/<circle /g) ?? []).length).toBe(2 + 2); // two points, two legend markers
    for (const text of [">full<", ">linear<", "Transfer accuracy (%)", "Source k-NN accuracy (%), 20-NN", "original backbone", "k-NN: 80.00%", "stroke-dasharray"]) {
      expect(svg).toContain(text);
    }
  });

  it("writes every file; the PNG is the SVG rendered at 2x", async () => {
    const dir = await mkdtemp(join(tmpdir(), "report-test-"));
    try {
      const files = await writeReport(dir, r);
      expect(files.map((f) => f.slice(dir.length + 1))).toEqual(["results.json", "results.csv", "table.md", "figure2.svg", "figure2.png"]);
      const json = JSON.parse(await readFile(join(dir, "results.json"), "utf8"));
      expect(Object.keys(json)).toEqual(["name", "reportK", "temperature", "selectBy", "notes", "baseline", "table", "cells", "config"]);
      const meta = await sharp(join(dir, "figure2.png")).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(["png", 1520, 1000]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("formatCount", () => {
  it("writes parameter counts compactly", () => {
    expect([formatCount(325), formatCount(9999), formatCount(210_000), formatCount(85_800_000)]).toEqual(["325", "9999", "210.0K", "85.80M"]);
  });
});
