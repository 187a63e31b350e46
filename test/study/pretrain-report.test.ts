// study/pretrain-report.ts: pre-training curves from an engine run folder (DINO's metrics.json, a finished supervised
// run's backbone.json) and a PyTorch reference curve (scripts/dino-torch-reference.py --out), told apart from study
// run folders; the CSV by step (a blank where a run has no score), the figure's files, and malformed curves, runs
// without scores, supervised runs under way and a study's config.json refused naming the folder or file, and a
// malformed point naming the file, its index and the value.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPretrainRun, readPretrainCurve, writePretrainReport } from "../../study/pretrain-report.js";
import { writeBackboneManifest } from "../../train/backbone-manifest.js";

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
    await expect(readPretrainCurve(bad)).rejects.toThrow(`report: ${join(bad, "metrics.json")}: knn[1]: expected an object with a step and an accuracy, got {"step":"500"}`);
  });

  it("refuses a point that is not an object, a step below 0, not whole or given twice, and an accuracy outside 0-100", async () => {
    const curve = async (name: string, json: string) => {
      const file = join(root, `${name}.json`);
      await writeFile(file, json);
      return file;
    };
    const cases: [string, string, string][] = [
      ["null-point", '{"knn":[null]}', 'knn[0]: expected an object with a step and an accuracy, got null'],
      ["number-point", '{"knn":[5]}', "knn[0]: expected an object with a step and an accuracy, got 5"],
      ["over-100", '{"knn":[{"step":0,"knn20":500}]}', "knn[0].knn20: expected a top-1 accuracy in % (0 to 100), got 500"],
      ["below-0", '{"knn":[{"step":0,"accuracy":50},{"step":10,"accuracy":-3}]}', "knn[1].accuracy: expected a top-1 accuracy in % (0 to 100), got -3"],
      ["negative-step", '{"knn":[{"step":0,"knn20":50},{"step":-10,"knn20":50}]}', "knn[1].step: expected an integer >= 0, got -10"],
      ["fractional-step", '{"knn":[{"step":0.5,"knn20":50}]}', "knn[0].step: expected an integer >= 0, got 0.5"],
      ["step-twice", '{"knn":[{"step":0,"knn20":50},{"step":10,"knn20":60},{"step":10,"knn20":61}]}', "knn[2].step: expected each step once, got 10 again (knn[1] has it)"],
    ];
    for (const [name, json, message] of cases) {
      const file = await curve(name, json);
      await expect(readPretrainCurve(file), name).rejects.toThrow(`report: ${file}: ${message}`);
    }
    const nullList = await curve("null-list", '{"knn":null}');
    await expect(readPretrainCurve(nullList)).rejects.toThrow(`report: expected a "knn" list in ${nullList}, got null`);
    const notObject = await curve("not-object", "[1]");
    await expect(readPretrainCurve(notObject)).rejects.toThrow(`report: expected an object with a "knn" list in ${notObject}, got an array of 1`);
  });

  it("says a study's config.json passed instead of its run folder is one, and names the folder", async () => {
    const study = join(root, "a-study");
    await mkdir(study);
    const config = join(study, "config.json");
    await writeFile(config, JSON.stringify({ name: "s", backbone: {}, knn: { bank: {}, atSteps: [0, 10] }, strategies: [] }));
    await expect(readPretrainCurve(config)).rejects.toThrow(`report: ${config} looks like a study's config, not a k-NN curve: pass its run folder, ${study}`);
    const preset = join(root, "preset.json");
    await writeFile(preset, JSON.stringify({ name: "s", backbone: {}, strategies: [] })); // no "knn": the defaults
    await expect(readPretrainCurve(preset)).rejects.toThrow(`report: ${preset} looks like a study's config, not a k-NN curve: pass the run folder it wrote (experiment --out)`);
  });

  it("reads a finished supervised run's scores from its manifest, and says why a supervised run has none", async () => {
    const supervised = async (name: string) => {
      const dir = join(root, name);
      await mkdir(join(dir, "train"), { recursive: true });
      await writeFile(join(dir, "train", "last.safetensors"), "");
      await writeFile(join(dir, "train", "metrics.json"), JSON.stringify({ rows: [] })); // the trainer's, no k-NN
      return dir;
    };
    const finish = async (dir: string, knn: unknown[]) => {
      await writeFile(join(dir, "backbone.safetensors"), "weights");
      const data = { name: "npy", root: "/data", split: "train", count: 4, hash: "0123456789abcdef" };
      await writeBackboneManifest(join(dir, "backbone.safetensors"), { method: "supervised", hyperParameters: {}, data, seed: 0, metrics: { finalLoss: 0.5, knn } });
    };
    const sup = await supervised("sup");
    expect(isPretrainRun(sup)).toBe(true);
    await expect(readPretrainCurve(sup)).rejects.toThrow(`report: ${sup} holds a pre-training under way with no k-NN scores yet (a supervised one writes them to backbone.json when it finishes)`);
    await finish(sup, [{ step: 0, accuracy: 40 }, { step: 400, accuracy: 80.5 }]);
    expect(await readPretrainCurve(sup)).toEqual({ run: "engine: sup", points: [{ step: 0, knn: 40 }, { step: 400, knn: 80.5 }] });

    const none = await supervised("sup-no-knn");
    await finish(none, []);
    await expect(readPretrainCurve(none)).rejects.toThrow(`report: ${none} has no k-NN curve: ${join(none, "backbone.json")} holds no k-NN scores (a pre-training scores its backbone only with "knn" in its config)`);
    const dino = await engineRun("dino-no-knn", []);
    await expect(readPretrainCurve(dino)).rejects.toThrow(`report: ${dino} has no k-NN curve: ${join(dino, "metrics.json")} holds no k-NN scores`);
  });
});
