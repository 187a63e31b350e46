// analysis.interpolate: every best backbone moved back towards where fine-tuning started, at each weight, and scored
// as the study scores a cell. At weight 1 each cell gives its result.json's answers image by image; at 0 the original
// backbone's source k-NN answers (baseline.json), whatever the strategy, as the resets' "all" does; linear probing
// has no point; the models are left as they were found (the other measures equal an analysis without it); each row
// is summarised against its own fine-tuned answers, in the log, the CSV and a figure; the weights are part of the
// key; with the head "probe" the head moves too, from linear probing's, and weight 0 is linear probing whole; bad
// weights and heads are refused, in the config and on the command line.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configJson, parseStudyConfig, type StudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import { analysisFileNames, analyzeRun } from "../../study/analysis.js";
import type { RunAnalysis } from "../../study/analysis-results.js";
import { cellResultPath } from "../../study/cells.js";
import type { CellResult } from "../../study/results.js";
import { readJsonFile } from "../../util/json-file.js";
import { useEngine } from "../helpers.js";
import { runCli } from "../bad-input/harness.js";
import { writeMiniStudy } from "./program.js";

useEngine();

let root: string;
let config: StudyConfig;
const out = () => join(root, "run");
const read = async <T>(path: string) => (await readJsonFile(path, "test")) as T;
const readAnalysis = (dir = out()) => read<RunAnalysis>(join(dir, "analysis.json"));
const WEIGHTS = [0, 0.25, 1];
const log: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "analysis-interpolation-"));
  const study = await writeMiniStudy(root);
  config = parseStudyConfig({
    ...study,
    strategies: ["full", "top-1", "lora-r2", "block-p1", "linear"],
    analysis: { images: 12, gridImages: 2, interpolate: WEIGHTS },
  });
  const r = await runExperiment({ config, out: out(), log: (l) => log.push(l) });
  expect(r.complete).toBe(true);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("analysis.interpolate in a study", () => {
  it("scores each cell at every weight: 1 is the fine-tuned model as the study scored it, 0 the original backbone's source k-NN", async () => {
    const a = await readAnalysis();
    expect(a.key.interpolate).toEqual(WEIGHTS);
    const baseline = await read<{ knn: Record<string, { top1: number }>; correct: { bits: string } }>(join(out(), "baseline.json"));
    for (const c of a.cells) {
      const result = await read<CellResult>(cellResultPath(out(), c.id));
      const r = c.interpolation!;
      const asStudied = [result.transferAccuracy, result.correct!.transfer, result.knn["5"].top1, result.correct!.knn];
      expect([r.tuned.transfer, r.tuned.transferCorrect, r.tuned.knn, r.tuned.knnCorrect], c.id).toEqual(asStudied);
      if (c.strategy === "linear") {
        expect(r.points).toEqual([]);
        continue;
      }
      expect(r.points.map((p) => p.alpha), c.id).toEqual(WEIGHTS);
      const [start, between, end] = r.points;
      expect([end.transfer, end.transferCorrect, end.knn, end.knnCorrect], `${c.id} at 1`).toEqual(asStudied);
      expect([start.knn, start.knnCorrect.bits], `${c.id} at 0`).toEqual([baseline.knn["5"].top1, baseline.correct.bits]);
      // At 0 the model is the resets' "all": the original backbone under the fine-tuned head.
      expect(between.alpha).toBe(0.25);
    }
    // A quarter of the way is neither end for full fine-tuning: the scores are not the ends' over and over.
    const full = a.cells.find((c) => c.strategy === "full")!.interpolation!;
    const bits = (p: (typeof full.points)[number]) => p.knnCorrect.bits + p.transferCorrect.bits;
    expect([bits(full.points[0]), bits(full.points[2])]).not.toContain(bits(full.points[1]));
  });

  it("leaves every model as it found it: the other measures are those of an analysis without it", async () => {
    const plain = join(root, "plain");
    const { analysis } = await analyzeRun(out(), { out: plain, interpolate: false });
    expect(analysis.key.interpolate).toBeUndefined();
    expect(analysis.cells.every((c) => c.interpolation === undefined)).toBe(true);
    const without = ({ interpolation: _, ...rest }: RunAnalysis["cells"][number]) => rest;
    // As analysis.json holds them (a NaN, the spread of gradients where no batch is full, as null).
    expect((await readAnalysis()).cells.map(without)).toEqual(JSON.parse(JSON.stringify(analysis.cells)));
  });

  it("with the resets beside it, gives the same points, the model as it is scored once for both", async () => {
    const { analysis } = await analyzeRun(out(), { out: join(root, "with-resets"), resets: true });
    const alone = await readAnalysis();
    for (const c of analysis.cells) {
      const only = alone.cells.find((a) => a.id === c.id)!.interpolation!;
      expect(c.interpolation, c.id).toEqual(only);
      expect(c.interpolation!.tuned, c.id).toEqual(c.resets!.tuned);
    }
  });

  it("summarises each row's weights, paired with its own fine-tuned answers, in the log, the CSV and a figure", async () => {
    const a = await readAnalysis();
    for (const f of analysisFileNames({ interpolate: WEIGHTS })) expect(existsSync(join(out(), f)), f).toBe(true);
    const row = a.strategies.find((s) => s.strategy === "full")!.interpolation!;
    const cell = a.cells.find((c) => c.strategy === "full")!.interpolation!;
    expect(row.points.map((p) => [p.alpha, p.seeds, p.knn.mean, p.transfer.mean])).toEqual(cell.points.map((p) => [p.alpha, 1, p.knn, p.transfer]));
    // One seed: the change is that seed's, its interval over the images alone; none at 1.
    for (const [i, p] of row.points.entries()) {
      expect(p.knnChange.mean).toBeCloseTo(cell.points[i].knn - cell.tuned.knn, 9);
      expect(p.transferChange.mean).toBeCloseTo(cell.points[i].transfer - cell.tuned.transfer, 9);
    }
    expect([row.points[2].knnChange.mean, row.points[2].transferChange.mean]).toEqual([0, 0]);
    expect(a.strategies.find((s) => s.strategy === "linear")!.interpolation!.points).toEqual([]);
    const csv = (await readFile(join(out(), "analysis.csv"), "utf8")).split("\n");
    const id = a.cells.find((c) => c.strategy === "full")!.id;
    expect(csv).toContain(`${id},full,0.3,0,interpolated_knn_top1,0.25,,${cell.points[1].knn.toPrecision(6)}`);
    expect(csv).toContain(`${id},full,0.3,0,interpolated_transfer,0,,${cell.points[0].transfer.toPrecision(6)}`);
    expect(csv.some((l) => l.includes(",linear,") && l.includes(",interpolated_"))).toBe(false);
    const svg = await readFile(join(out(), "analysis-interpolation.svg"), "utf8");
    for (const text of [">Part of the way back to where fine-tuning started<", ">Weight α<", ">0.25<", ">block-p1<", ">linear<", ">Transfer accuracy (%), the fine-tuned linear head<"]) expect(svg).toContain(text);
    expect(log.some((l) => l.startsWith("analysis: each best backbone moved back to (1 - a) start + a fine-tuned"))).toBe(true);
    expect(log).toContainEqual(expect.stringMatching(/^ {2}full: a 0 \d+\.\d \([+-]\d+\.\d \[.*\]\) \/ \d+\.\d \([+-]\d+\.\d \[.*\]\); a 0\.25 /));
    expect(log).toContainEqual(expect.stringMatching(/ full_lr0\.3_s0: .*; at weight 0, 0\.25, 1: source k-NN \d+\.\d, \d+\.\d, \d+\.\d%, transfer /));
  });

  it("is part of the key: a rerun with the same weights reuses it, other weights make it anew", async () => {
    expect((await analyzeRun(out(), { reuse: true })).reused).toBe(true);
    const other = await analyzeRun(out(), { out: join(root, "other"), interpolate: [0.5], reuse: true });
    expect(other.reused).toBe(false);
    expect(other.analysis.cells.find((c) => c.strategy === "full")!.interpolation!.points.map((p) => p.alpha)).toEqual([0.5]);
  });

  it("with the head \"probe\": the head moves from linear probing's, so weight 0 is linear probing's cell of the seed, answer for answer", async () => {
    const probe = join(root, "probe");
    const { analysis: a } = await analyzeRun(out(), { out: probe, interpolateHead: "probe" });
    expect(a.key.interpolateHead).toBe("probe");
    const linear = await read<CellResult>(cellResultPath(out(), a.cells.find((c) => c.strategy === "linear")!.id));
    const tuned = await readAnalysis();
    for (const c of a.cells.filter((c) => c.strategy !== "linear")) {
      const [start, , end] = c.interpolation!.points;
      expect([start.transfer, start.transferCorrect, start.knn, start.knnCorrect], `${c.id} at 0`).toEqual([linear.transferAccuracy, linear.correct!.transfer, linear.knn["5"].top1, linear.correct!.knn]);
      // The backbone moves as with the fine-tuned head: the source k-NN does not read the head.
      const withTunedHead = tuned.cells.find((t) => t.id === c.id)!.interpolation!;
      expect(c.interpolation!.points.map((p) => p.knnCorrect), c.id).toEqual(withTunedHead.points.map((p) => p.knnCorrect));
      expect([end.transferCorrect, end.knnCorrect], `${c.id} at 1`).toEqual([withTunedHead.points[2].transferCorrect, withTunedHead.points[2].knnCorrect]);
    }
    const svg = await readFile(join(probe, "analysis-interpolation.svg"), "utf8");
    expect(svg).toContain(">Transfer accuracy (%), the interpolated linear head<");
    // Not the same analysis as the fine-tuned head's: the key tells them apart.
    expect((await analyzeRun(out(), { out: probe, reuse: true })).reused).toBe(false);
  });

  it("refuses the head \"probe\" without a finished linear probing cell, and a head without weights", async () => {
    const gone = join(root, "no-probe");
    await cp(out(), gone, { recursive: true });
    const linear = (await readAnalysis()).cells.find((c) => c.strategy === "linear")!;
    await rm(cellResultPath(gone, linear.id));
    await expect(analyzeRun(gone, { out: join(root, "no-probe-out"), interpolateHead: "probe", strategies: ["full"] })).rejects.toThrow(
      `analyze: the head "probe" moves each cell's head from linear probing's, and ${join(gone, "config.json")} has no finished linear probing cell`,
    );
    await expect(analyzeRun(out(), { out: join(root, "no-weights"), interpolate: false, interpolateHead: "probe" })).rejects.toThrow('analyze: the head "probe" is the interpolation\'s, and there are no weights to interpolate at');
  });

  it("refuses weights outside [0, 1] or out of order, and a head of another name or without weights, in the config and on the command line", async () => {
    const problems = (interpolate: unknown) => {
      try {
        parseStudyConfig({ ...JSON.parse(JSON.stringify(configJson(config))), analysis: { interpolate } });
        return "";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(problems([0, 1.5])).toContain("analysis.interpolate[1]: expected a number in [0, 1], got 1.5");
    expect(problems([0.5, 0.25])).toContain("analysis.interpolate[1]: expected a weight above 0.5 (ascending, distinct), got 0.25");
    expect(problems([0.5, 0.5])).toContain("analysis.interpolate[1]: expected a weight above 0.5 (ascending, distinct), got 0.5");
    expect(problems([])).toContain("analysis.interpolate: expected a non-empty array, got");
    expect(problems("0.5")).toContain('analysis.interpolate: expected a non-empty array, got "0.5"');
    const headProblems = (analysis: unknown) => {
      try {
        parseStudyConfig({ ...JSON.parse(JSON.stringify(configJson(config))), analysis });
        return "";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(headProblems({ interpolate: [0.5], interpolateHead: "probe" })).toBe("");
    expect(headProblems({ interpolate: [0.5], interpolateHead: "zero-shot" })).toContain('analysis.interpolateHead: expected one of tuned, probe, got "zero-shot"');
    expect(headProblems({ interpolateHead: "probe" })).toContain("analysis.interpolateHead: expected analysis.interpolate beside it (the weights to move the head at), got none");
    const r = await runCli(["analyze", out(), "--interpolate", "0.5", "--interpolate-head", "zero"]);
    expect([r.code, r.err]).toEqual([2, expect.stringContaining('flag --interpolate-head: expected tuned or probe, got "zero"')]);
    for (const [flag, message] of [
      ["1.5", 'flag --interpolate: expected weights in [0, 1], got "1.5"'],
      ["0,x", 'flag --interpolate: expected weights in [0, 1], got "x"'],
      ["0.5,0.25", "flag --interpolate: expected ascending, distinct weights, got 0.25 after 0.5"],
    ]) {
      const r = await runCli(["analyze", out(), "--interpolate", flag]);
      expect([r.code, r.err], flag).toEqual([2, expect.stringContaining(message)]);
    }
  });
});
