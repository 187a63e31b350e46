// Replayed training steps (train/replayed-loss.ts): a run whose steps are replayed computes what a run whose steps
// are all run computes, bit for bit: the losses, the learning rates and every parameter, across epochs whose last
// batch is short (run by the trainer, then captured again), a warm-up and cosine schedule (the optimiser stays
// outside the replay), momentum, weight decay, evaluations between steps and frozen blocks (top-k: kept packs); in
// precision f16 with loss scaling (the seed a tensor the scaler updates in place, overflowed steps skipped); and in
// precision int8 (subgroup matrices emulated), whose products slice their operands in dispatches of their own.
import { beforeEach, describe, expect, it } from "vitest";
import { join } from "node:path";
import { validateConfig } from "../../vit/config.js";
import { buildVit, initialiser } from "../../vit/model.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { train } from "../../train/train.js";
import { TRAIN_DEFAULTS, type TrainSettings } from "../../train/settings.js";
import { runtime, warnings } from "../../engine/runtime.js";
import { evaluateAccuracy } from "../../eval/accuracy.js";
import { skipWithoutF16, useEngine } from "../helpers.js";
import { useEmulatedSubgroupMatrices } from "../subgroup-matrix-emulation.js";
import { Tensor } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { PATTERNS, useSyntheticData } from "./synthetic.js";

useEngine();

const CONFIG = validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 2, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 });
const data = useSyntheticData("replayed-loss-test-", { size: 8, perClass: { train: 7, test: 3 }, seed: 2 });

// One training run, its steps replayed or not; returns its metrics and final parameters.
async function run(dir: string, replay: boolean, strategy: string, uploads = false, precision: "f32" | "f16" | "int8" = "f32") {
  const { settings } = runtime();
  const outer = settings.replay;
  settings.replay = replay;
  const model = buildVit(CONFIG, initialiser(4));
  const trainable = applyStrategy(model, parseStrategy(strategy), PATTERNS.length, 4);
  const transform = new Transform({ kind: "eval", size: 8 });
  let forwards = 0; // training passes: batches of 5, or the short one of 2 (evaluation's are of 7, 7 and 4)
  const forward = model.forward.bind(model);
  model.forward = (x) => {
    if (x.shape[0] === 5 || x.shape[0] === 2) forwards++;
    return forward(uploads ? ops.add(x, Tensor.fromArray(new Float32Array(x.size), x.shape)) : x);
  };
  const s: TrainSettings = { ...TRAIN_DEFAULTS, steps: 16, batchSize: 5, lr: 0.05, warmupSteps: 3, weightDecay: 0.01, evalEvery: 5, lossEvery: 4, precision };
  // f16: loss scaling from 2^40, so that the first steps' gradients overflow and are skipped (test/train/train.test.ts).
  if (precision === "f16") s.lossScale = { init: 2 ** 40, backoff: 2 ** -12 };
  try {
    const r = await train({
      model,
      trainable,
      train: new Loader(data.train, transform, { batchSize: s.batchSize, shuffle: true, seed: 5 }), // short last batch
      settings: s,
      evaluate: () => evaluateAccuracy(model, new Loader(data.test, transform, { batchSize: 7 })),
      dir: join(data.root, dir),
    });
    const params = new Map<string, number[]>();
    for (const [name, t] of model.parameters()) params.set(name, Array.from(await t.data()));
    model.dispose();
    return { metrics: r.metrics.map(({ imagesPerSecond: _, ...m }) => m), params, forwards, batchesPerEpoch: Math.ceil(data.train.length / s.batchSize) };
  } finally {
    settings.replay = outer;
  }
}

describe("replayed training steps", () => {
  for (const strategy of ["full", "top-1"]) {
    it(`train as the run steps do, bit for bit (${strategy})`, async () => {
      const warned = warnings.length;
      const ran = await run(`${strategy}-ran`, false, strategy);
      const replayed = await run(`${strategy}-replayed`, true, strategy);
      expect(data.train.length % 5).not.toBe(0); // an epoch ends with a short batch, run, and the replay captured again
      expect(ran.batchesPerEpoch).toBeLessThan(16 - 3); // ... with replayed steps after it
      expect(replayed.metrics).toEqual(ran.metrics);
      expect([...replayed.params.keys()]).toEqual([...ran.params.keys()]);
      for (const [name, values] of ran.params) expect(replayed.params.get(name), name).toEqual(values);
      expect(warnings.length).toBe(warned); // no step was refused
      // Steps 1-8, 9 (short), 10-16: 8 and 7 batches of 5. Replayed: run, captured (two passes), six replayed; run;
      // run, captured, five replayed.
      expect([ran.forwards, replayed.forwards]).toEqual([16, 1 + 2 + 1 + 1 + 2]);
    });
  }

  it("runs every step, with one warning, where the step cannot be replayed (its forward uploads)", async () => {
    const warned = warnings.length;
    const ran = await run("uploads-ran", false, "full", true);
    const refused = await run("uploads-refused", true, "full", true);
    expect(refused.metrics).toEqual(ran.metrics);
    for (const [name, values] of ran.params) expect(refused.params.get(name), name).toEqual(values);
    // The evaluations (steps 5, 10, 15, 16) cannot replay the same forward either: each runs its batches after a warning.
    const evaluation = expect.stringMatching(/^accuracy: batches are run, not replayed: replay: expected a run without uploads or read-backs, which a replay cannot repeat, got Tensor.fromArray \(7, 3, 8, 8\);/);
    expect(warnings.slice(warned)).toEqual([
      expect.stringMatching(/^train: steps are run, not replayed: replay: expected a run without uploads or read-backs, which a replay cannot repeat, got Tensor.fromArray \(5, 3, 8, 8\);/),
      ...Array(4).fill(evaluation),
    ]);
    expect(refused.forwards).toBe(16 + 1); // the refused capture ran its step twice
  });
});

describe("replayed training steps in precision f16, with loss scaling", () => {
  beforeEach((ctx) => skipWithoutF16(ctx));
  it("train as the run steps do, bit for bit, the skipped steps and the scale too", async () => {
    const warned = warnings.length;
    const ran = await run("f16-ran", false, "full", false, "f16");
    const replayed = await run("f16-replayed", true, "full", false, "f16");
    expect(ran.metrics.map((m) => m.skippedSteps).at(-1)).toBeGreaterThan(0); // overflows were skipped
    expect(replayed.metrics).toEqual(ran.metrics);
    for (const [name, values] of ran.params) expect(replayed.params.get(name), name).toEqual(values);
    expect(warnings.length).toBe(warned);
    expect([ran.forwards, replayed.forwards]).toEqual([16, 1 + 2 + 1 + 1 + 2]);
  });
});

describe("replayed training steps in precision int8 (subgroup matrices emulated)", () => {
  useEmulatedSubgroupMatrices({ matmul: { left: "Ws", right: "Ws", uniform: "p.M" } });
  beforeEach((ctx) => skipWithoutF16(ctx));
  it("train as the run steps do, bit for bit", async () => {
    const warned = warnings.length;
    const ran = await run("int8-ran", false, "full", false, "int8");
    const replayed = await run("int8-replayed", true, "full", false, "int8");
    expect(replayed.metrics).toEqual(ran.metrics);
    for (const [name, values] of ran.params) expect(replayed.params.get(name), name).toEqual(values);
    expect(warnings.length).toBe(warned);
    expect([ran.forwards, replayed.forwards]).toEqual([16, 1 + 2 + 1 + 1 + 2]);
    const f32 = await run("int8-f32", true, "full");
    expect(ran.metrics.map((m) => m.loss)).not.toEqual(f32.metrics.map((m) => m.loss)); // the products were int8's
  });
});
