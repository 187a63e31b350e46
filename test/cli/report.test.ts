// `report`: its run folders and flags, and what it refuses as usage errors or errors. Drawing the figures from real
// runs: test/study/paper-presets.test.ts; the plan and the table: test/study/paper-report.test.ts; pre-training
// curves: test/study/pretrain-report.test.ts.
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { mkdtempSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { report } from "../../cli/report.js";
import { configJson } from "../../study/config.js";
import { HelpRequested, UsageError } from "../../util/command.js";
import { baseline, cells, config } from "../study/fixture.js";

const root = mkdtempSync(join(tmpdir(), "report-cli-"));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
afterEach(() => vi.restoreAllMocks());

describe("report", () => {
  it("refuses no run folder, a missing --out and unknown flags as usage errors", async () => {
    await expect(report.run(["--out", root])).rejects.toThrow(new UsageError("expected one or more run folders, got none"));
    await expect(report.run(["runs/a"])).rejects.toThrow(new UsageError("missing required flag --out"));
    await expect(report.run(["runs/a", "--out", root, "--outt", "x"])).rejects.toThrow(new UsageError("unknown flag --outt"));
    await expect(report.run(["--help"])).rejects.toThrow(HelpRequested);
  });

  it("draws pre-training runs' curves without a study among them", async () => {
    const run = join(root, "dino-grid");
    await mkdir(run, { recursive: true });
    await writeFile(join(run, "metrics.json"), JSON.stringify({ rows: [], knn: [{ step: 0, accuracy: 64.6 }, { step: 500, accuracy: 66 }] }));
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await report.run([run, "--out", join(root, "curves")]);
    const lines = log.mock.calls.map((c) => String(c[0]));
    expect(lines[0]).toBe("engine: dino-grid: 2 k-NN scores, the last 66.0% at step 500");
    expect(lines.at(-1)).toContain(join(root, "curves", "pretrain-knn.png"));
    expect(await readFile(join(root, "curves", "pretrain-knn.csv"), "utf8")).toBe('step,"engine: dino-grid"\n0,64.60\n500,66.00\n');
  });

  it("names a folder that is not a run", async () => {
    await expect(report.run([join(root, "nothing"), "--out", join(root, "out")])).rejects.toThrow(
      /^report: expected a run folder holding config\.json \(experiment's\), or a pretrain folder \(DINO's metrics\.json from its first checkpoint on, or a finished run's backbone\.json\), got .*nothing \(it does not exist\)$/,
    );
  });

  it("takes run folders before and among its flags, once each, and says what it wrote and left out", async () => {
    const dir = join(root, "run");
    await mkdir(join(dir, "cells", cells[0].id), { recursive: true });
    await writeFile(join(dir, "config.json"), JSON.stringify(configJson(config)));
    await writeFile(join(dir, "baseline.json"), JSON.stringify(baseline));
    await writeFile(join(dir, "cells", cells[0].id, "result.json"), JSON.stringify(cells[0]));
    const out = join(root, "out");
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await report.run(["--json", dir, "--out", out, dir]);
    const summary = JSON.parse(String(log.mock.calls[0][0]));
    expect(summary.runs).toEqual([{ dir, name: config.name, backbone: "ViT (patch 7, width 64, depth 4)", data: "fashion-mnist", finished: 1, diverged: 0, missing: cells.slice(1).map((c) => c.id) }]);
    expect(summary.drew).toEqual([]);
    expect(summary.notDrawn.map((l: string) => l.split(":")[0])).toEqual(["figure2", "figure3", "figure4"]);
    expect(summary.files).toEqual([join(out, "table1.md"), join(out, "table1.csv")]);
    expect(await readFile(join(out, "table1.md"), "utf8")).toContain(`1 of 8 cells finished; missing: ${cells.slice(1).map((c) => c.id).join(", ")}`);
    log.mockClear();
    await report.run([dir, "--out", out]);
    const lines = log.mock.calls.map((c) => String(c[0]));
    expect(lines[0]).toBe(`${config.name} (${dir}): ViT (patch 7, width 64, depth 4), fashion-mnist, 1 of 8 cells; missing: ${cells.slice(1).map((c) => c.id).join(", ")}`);
    expect(lines.filter((l) => l.startsWith("not drawn: "))).toHaveLength(3);
    expect(lines.at(-1)).toBe(`wrote ${join(out, "table1.md")}, ${join(out, "table1.csv")}`);
  });
});
