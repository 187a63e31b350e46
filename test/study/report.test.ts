// study/report.ts: the output files from hand-made cell results (./fixture.ts): CSV, Table 1, the files written.
import { describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { formatCount, resultsCsv, tableMarkdown, writeReport } from "../../study/report.js";
import { cells, results } from "./fixture.js";

describe("report files", () => {
  const r = results();

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
