// linearProbe.headNorm: an -lpft cell's fine-tuning starts from its probe's head scaled by one factor, weight and bias
// alike, to that Frobenius norm of head.weight, or with "drawn" to the norm of the head the cell drew; the probe's own
// checkpoint keeps the head as trained, and the interpolation with the head "probe" starts from the scaled head, as
// the fine-tuning did.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type StudyConfig, configJson, parseStudyConfig } from "../../study/config.js";
import { startingHead } from "../../study/probe-head.js";
import { runExperiment } from "../../study/runner.js";
import { analyzeRun } from "../../study/analysis.js";
import { readSafetensors, writeSafetensors } from "../../vit/safetensors.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { miniStudy } from "./program.js";

useEngine();

const norm = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0));

describe("startingHead", () => {
  const heads = new Map([
    ["head.weight", new Float32Array([3, 0, 0, 4])],
    ["head.bias", new Float32Array([1, -2])],
  ]);
  const drawn = new Map([
    ["head.weight", new Float32Array([0, 1.5, 2, 0])],
    ["head.bias", new Float32Array([9, 9])],
  ]);

  it("is the probe's head without a norm, and scaled by one factor to the norm with one, or to the drawn head's", () => {
    expect(startingHead(heads, undefined, drawn, "p")).toBe(heads);
    const scaled = startingHead(heads, 10, drawn, "p");
    expect(Array.from(scaled.get("head.weight")!)).toEqual([6, 0, 0, 8]);
    expect(Array.from(scaled.get("head.bias")!)).toEqual([2, -4]);
    expect(Array.from(heads.get("head.weight")!)).toEqual([3, 0, 0, 4]); // the probe's own values untouched
    const toDrawn = startingHead(heads, "drawn", drawn, "p"); // the drawn head.weight's norm is 2.5
    expect(Array.from(toDrawn.get("head.weight")!)).toEqual([1.5, 0, 0, 2]);
    expect(Array.from(toDrawn.get("head.bias")!)).toEqual([0.5, -1]);
  });

  it("names a head without weight, or with none to scale", () => {
    expect(() => startingHead(new Map([["head.bias", new Float32Array(2)]]), 1, drawn, "probe.safetensors")).toThrow("linearProbe.headNorm: expected head.weight in probe.safetensors, found none");
    expect(() => startingHead(new Map([["head.weight", new Float32Array(4)]]), 1, drawn, "probe.safetensors")).toThrow("linearProbe.headNorm: probe.safetensors's head.weight has norm 0, which no factor scales to 1");
    expect(() => startingHead(heads, "drawn", new Map(), "probe.safetensors")).toThrow("linearProbe.headNorm: expected head.weight in the head probe.safetensors's cell drew, found none");
  });
});

// A miniature study of -lpft cells (and others) in `root`/run, with the config's other keys as given.
async function probedStudy(root: string, overrides: Record<string, unknown>): Promise<StudyConfig> {
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 16, test: 8 }, seed: 4, noise: 160 });
  const config = parseStudyConfig({ ...miniStudy(join(root, "data"), join(root, "cache")), ...overrides });
  expect((await runExperiment({ config, out: join(root, "run") })).complete).toBe(true);
  return config;
}

// The interpolation's answers (a = 0.25, 0.5, 0.75, the head "probe") of full-lpft at 0.05, as the run left it and in
// a copy whose probe's head is a millionth the size: the same where the interpolation starts from the head as
// linearProbe.headNorm scales it.
const MOVING = "full-lpft_lr0.05_s0";
async function pointsOfProbeAndSmaller(root: string): Promise<[unknown, unknown]> {
  const [run, smaller] = [join(root, "run"), join(root, "smaller-probe")];
  await cp(run, smaller, { recursive: true });
  const path = join(smaller, "cells", MOVING, "probe", "last.safetensors");
  const { tensors, metadata } = await readSafetensors(path);
  for (const [name, t] of tensors) if (name.startsWith("head.")) tensors.set(name, { shape: t.shape, data: t.data.map((x) => 1e-6 * x) });
  await writeSafetensors(path, tensors, metadata);
  const points = async (dir: string, out: string) => {
    const { analysis } = await analyzeRun(dir, { out: join(root, out), strategies: ["full-lpft"], interpolate: [0.25, 0.5, 0.75], interpolateHead: "probe" });
    return analysis.cells.find((c) => c.id === MOVING)!.interpolation!.points.map((p) => [p.transferCorrect.bits, p.knnCorrect.bits]);
  };
  return [await points(run, "as-trained"), await points(smaller, "smaller")];
}

describe("linearProbe.headNorm in a study", () => {
  let root: string;
  const run = () => join(root, "run");
  const HEAD_NORM = 0.5;
  const STILL = "full-lpft_lr1e-30_s0"; // a rate at which the fine-tuning leaves every weight where it started
  const cellFile = (dir: string, id: string, ...name: string[]) => join(dir, "cells", id, ...name);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "probe-head-test-"));
    const linearProbe = { lr: 0.1, steps: 4, headNorm: HEAD_NORM };
    const config = await probedStudy(root, { strategies: ["full-lpft"], learningRates: [1e-30, 0.05], linearProbe });
    expect(configJson(config).linearProbe).toEqual(linearProbe);
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("starts the fine-tuning from the probe's head scaled to the norm; the probe's checkpoint keeps it as trained", async () => {
    const probe = (await readSafetensors(cellFile(run(), STILL, "probe", "last.safetensors"))).tensors;
    const tuned = (await readSafetensors(cellFile(run(), STILL, "last.safetensors"))).tensors;
    const [w, b] = [probe.get("head.weight")!.data, probe.get("head.bias")!.data];
    expect(Math.abs(norm(w) - HEAD_NORM)).toBeGreaterThan(0.1);
    const factor = HEAD_NORM / norm(w);
    expect(norm(tuned.get("head.weight")!.data)).toBeCloseTo(HEAD_NORM, 5);
    tuned.get("head.weight")!.data.forEach((x, i) => expect(x, `head.weight[${i}]`).toBeCloseTo(w[i] * factor, 6));
    tuned.get("head.bias")!.data.forEach((x, i) => expect(x, `head.bias[${i}]`).toBeCloseTo(b[i] * factor, 6));
    const manifest = JSON.parse((await readSafetensors(cellFile(run(), MOVING, "best.safetensors"))).metadata.manifest);
    expect(manifest.hyperParameters.linearProbe).toEqual({ lr: 0.1, steps: 4, headNorm: HEAD_NORM });
  });

  it("moves the interpolation's head from the scaled probe's: a probe a millionth the size changes nothing", async () => {
    const [asTrained, smaller] = await pointsOfProbeAndSmaller(root);
    expect(smaller).toEqual(asTrained);
  });
});

describe('linearProbe.headNorm "drawn" in a study', () => {
  let root: string;
  const cellFile = (id: string, ...name: string[]) => join(root, "run", "cells", id, ...name);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "probe-head-drawn-test-"));
    // At a rate of 1e-30 no weight moves: full fine-tuning's head is the one the seed drew, full-lpft's the one its
    // fine-tuning started from.
    await probedStudy(root, { strategies: ["full", "full-lpft"], learningRates: [1e-30, 0.05], linearProbe: { lr: 1, steps: 4, headNorm: "drawn" } });
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("starts the fine-tuning from the probe's head scaled to the norm of the head the cell drew", async () => {
    const head = async (path: string) => (await readSafetensors(path)).tensors.get("head.weight")!.data;
    const [drawn, probe, start] = [await head(cellFile("full_lr1e-30_s0", "last.safetensors")), await head(cellFile("full-lpft_lr1e-30_s0", "probe", "last.safetensors")), await head(cellFile("full-lpft_lr1e-30_s0", "last.safetensors"))];
    expect(Math.abs(norm(probe) - norm(drawn))).toBeGreaterThan(0.1);
    expect(norm(start)).toBeCloseTo(norm(drawn), 5);
    start.forEach((x, i) => expect(x, `head.weight[${i}]`).toBeCloseTo((probe[i] * norm(drawn)) / norm(probe), 6));
  });

  it("moves the interpolation's head from the probe's scaled to the drawn head's norm: a probe a millionth the size changes nothing", async () => {
    const [asTrained, smaller] = await pointsOfProbeAndSmaller(root);
    expect(smaller).toEqual(asTrained);
  });
});
