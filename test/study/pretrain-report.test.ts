// study/pretrain-report.ts: pre-training curves from an engine run folder (metrics.json) and a PyTorch reference
// curve (scripts/dino-torch-reference.py --out), told apart from study run folders; the CSV by step (a blank where
// a run has no score), the figure's files, and malformed curves refused naming the file.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPretrainRun, readPretrainCurve, writePretrainReport } from "../../study/pretrain-report.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "peft-pretrain-report-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function engineRun(name: string, knn: unknown): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "metrics.json"), JSON.stringify({ rows: [], knn }));
  return dir;
}

describe("pre-training curves", () => {
  it("reads the engine's and PyTorch's curves and writes them side by side", async () => {
    const engine = await engineRun("grid-s0", [{ step: 0, accuracy: 64.6 }, { step: 500, accuracy: 67.3 }, { step: 1000, accuracy: 70.25 }]);
    const torchFile = join(root, "torch-50ep-s0.json");
    await writeFile(torchFile, JSON.stringify({ device: "NVIDIA H200", knn: [{ step: 0, knn20: 65 }, { step: 1000, knn20: 71.7 }, { step: 2000, knn20: 74.5 }] }));
    const study = join(root, "study");
    await mkdir(study);
    await writeFile(join(study, "config.json"), "{}");
    await writeFile(join(study, "metrics.json"), "{}");
    expect([engine, torchFile, study, join(root, "nowhere"), join(root, "x.csv")].map(isPretrainRun)).toEqual([true, true, false, false, false]);

    const curves = [await readPretrainCurve(engine), await readPretrainCurve(torchFile)];
    expect(curves.map((c) => c.run)).toEqual(["engine: grid-s0", "PyTorch: torch-50ep-s0, NVIDIA H200"]);
    const out = join(root, "out");
    const files = await writePretrainReport(out, curves);
    expect(files.map((f) => f.slice(out.length + 1))).toEqual(["pretrain-knn.csv", "pretrain-knn.vl.json", "pretrain-knn.svg", "pretrain-knn.png"]);
    for (const f of files) expect(existsSync(f), f).toBe(true);
    expect(await readFile(join(out, "pretrain-knn.csv"), "utf8")).toBe(
      'step,"engine: grid-s0","PyTorch: torch-50ep-s0, NVIDIA H200"\n0,64.60,65.00\n500,67.30,\n1000,70.25,71.70\n2000,,74.50\n',
    );
    const svg = await readFile(join(out, "pretrain-knn.svg"), "utf8");
    for (const text of ["Pre-training step", "Source k-NN top-1 (%)", "engine: grid-s0"]) expect(svg).toContain(text);
  });

  it("refuses a curve without scores or with a malformed one, naming the file", async () => {
    const none = await engineRun("none", undefined);
    await expect(readPretrainCurve(none)).rejects.toThrow(`report: expected a "knn" list in ${join(none, "metrics.json")}, got none`);
    const bad = await engineRun("bad", [{ step: 0, accuracy: 64.6 }, { step: "500" }]);
    await expect(readPretrainCurve(bad)).rejects.toThrow(`report: expected knn[1] of ${bad} to have a step and an accuracy, got {"step":"500"}`);
  });
});
