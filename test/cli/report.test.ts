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

  // A run folder of the fixture's config with one finished cell, its backbone recorded as `sha256`.
  async function runFolder(name: string, sha256: string): Promise<string> {
    const dir = join(root, name);
    await mkdir(join(dir, "cells", cells[0].id), { recursive: true });
    await writeFile(join(dir, "config.json"), JSON.stringify(configJson(config)));
    await writeFile(join(dir, "baseline.json"), JSON.stringify(baseline));
    await writeFile(join(dir, "backbone.json"), JSON.stringify({ kind: "checkpoint", path: "/nowhere/backbone.safetensors", sha256 }));
    await writeFile(join(dir, "cells", cells[0].id, "result.json"), JSON.stringify(cells[0]));
    return dir;
  }

  it("takes a folder once however it is spelled, and refuses an --out within a run", async () => {
    const dir = await runFolder("spelled", "a".repeat(64));
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await report.run(["--json", dir, `${dir}/`, join(dir, "..", "spelled"), "--out", join(root, "spelled-out")]);
    expect(JSON.parse(String(log.mock.calls[0][0])).runs).toHaveLength(1);
    for (const out of [dir, join(dir, "cells", cells[0].id), join(dir, "new")]) {
      await expect(report.run([dir, "--out", out])).rejects.toThrow(new UsageError(`--out: expected a folder outside the runs reported (it would overwrite their own figures and files), got ${out}, within ${dir}`));
    }
  });

  it("names the backbone from the file backbone.json records, whatever folder config.json's relative path was from", async () => {
    const dir = await runFolder("moved", "c".repeat(64));
    const shipped = join(import.meta.dirname, "../..", config.backbone.checkpoint!);
    await writeFile(join(dir, "config.json"), JSON.stringify(configJson({ ...config, backbone: { ...config.backbone, checkpoint: "started/elsewhere/backbone.safetensors" } })));
    await writeFile(join(dir, "backbone.json"), JSON.stringify({ kind: "checkpoint", path: shipped, sha256: "c".repeat(64) }));
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await report.run(["--json", dir, "--out", join(root, "moved-out")]);
    expect(JSON.parse(String(log.mock.calls[0][0])).runs[0].backbone).toBe("ViT (patch 7, width 64, depth 4)");
  });

  it("tells apart two backbones of one architecture by their SHA-256, in the runs, the table and the figures", async () => {
    const a = await runFolder("backbone-a", "a".repeat(64));
    const b = await runFolder("backbone-b", "b".repeat(64));
    const same = await runFolder("backbone-a2", "a".repeat(64));
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    await report.run(["--json", a, b, same, "--out", join(root, "backbones-out")]);
    const summary = JSON.parse(String(log.mock.calls[0][0]));
    const label = "ViT (patch 7, width 64, depth 4)";
    expect(summary.runs.map((r: { backbone: string }) => r.backbone)).toEqual([`${label}, backbone aaaaaaaa`, `${label}, backbone bbbbbbbb`, `${label}, backbone aaaaaaaa`]);
    const table = await readFile(join(root, "backbones-out", "table1.md"), "utf8");
    expect(table).toContain(`| ${label}, backbone bbbbbbbb | fashion-mnist | original backbone |`);
  });
});
