// Replaying a recorded run (engine/replay.ts): a training step captured once and replayed computes what running it
// computes, bit for bit, with new inputs written before each step; runs that a replay cannot repeat are refused at
// the capture, and a replay whose tensors went away throws. ReplayedRun: the run, capture, replay sequence.
import { describe, expect, it, vi } from "vitest";
import { runtime, warnings } from "../../engine/runtime.js";
import { Replay, ReplayedRun } from "../../engine/replay.js";
import { Tensor, tidyAsync } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { SGD } from "../../autograd/optim.js";
import { backward } from "../../autograd/tape.js";
import { validateConfig } from "../../vit/config.js";
import { buildVit, initialiser } from "../../vit/model.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { randn, useEngine } from "../helpers.js";

useEngine();

const CONFIG = validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 2, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 });
const B = 4;

// A model, its optimiser and a training step that reads its inputs from two tensors made once.
function trainer(strategy: string) {
  const model = buildVit(CONFIG, initialiser(0));
  const trainable = applyStrategy(model, parseStrategy(strategy), 3);
  const opt = new SGD(trainable.map(([, t]) => t), { lr: 0.1, momentum: 0.9 });
  const images = Tensor.empty([B, 3, 8, 8]).keep();
  const labels = Tensor.empty([B], "i32").keep();
  const step = () =>
    tidyAsync(async () => {
      opt.zeroGrad();
      backward(ops.crossEntropy(model.forward(images), labels));
      opt.step();
    });
  const feed = (k: number) => {
    images.write(randn(B * 3 * 8 * 8, 100 + k));
    labels.write(Int32Array.from({ length: B }, (_, i) => (i + k) % 3));
  };
  const dispose = () => {
    opt.zeroGrad();
    for (const t of [images, labels, ...opt.state().values()]) t.dispose();
  };
  return { trainable, opt, step, feed, dispose };
}

describe("replay", () => {
  for (const strategy of ["full", "lora-r2"]) {
    it(`trains like the run it replays, bit for bit (${strategy}, new inputs every step)`, async () => {
      const steps = 7;
      const ran = trainer(strategy);
      for (let k = 0; k < steps; k++) {
        ran.feed(k);
        await ran.step();
      }
      const replayed = trainer(strategy);
      replayed.feed(0);
      await replayed.step(); // the optimiser's state exists before the capture
      let k = 1;
      const captured = await Replay.capture(replayed.step, () => replayed.feed(k++)); // steps 1 and 2
      for (; k < steps; k++) {
        replayed.feed(k);
        captured.run();
      }
      await runtime().batch.sync();
      for (const [i, [name, p]] of replayed.trainable.entries()) {
        expect(Array.from(await p.data()), name).toEqual(Array.from(await ran.trainable[i][1].data()));
      }
      captured.dispose();
      ran.dispose();
      replayed.dispose();
    });
  }

  it("makes its bind groups once, at its first run, with its uniforms in a buffer of its own", async () => {
    const { device } = runtime().gpu;
    const t = trainer("full");
    t.feed(0);
    await t.step();
    const replay = await Replay.capture(t.step);
    const made = vi.spyOn(device, "createBindGroup");
    try {
      replay.run();
      const first = made.mock.calls.length;
      expect(first).toBeGreaterThan(0); // one per dispatch
      expect(first).toBeLessThanOrEqual(replay.length);
      expect(made.mock.calls.every(([d]) => [...d.entries].every((e) => !("buffer" in e.resource) || e.resource.buffer.label !== "uniforms"))).toBe(true);
      replay.run();
      replay.run();
      expect(made.mock.calls.length).toBe(first);
    } finally {
      made.mockRestore();
      replay.dispose();
      t.dispose();
    }
  });

  it("refuses a run that uploads, naming the upload", async () => {
    const error = await refusal((t) => t.feed(1)); // inputs are written before a replay, not by it
    expect(error).toMatch(
      /^replay: expected a run without uploads or read-backs, which a replay cannot repeat, got a write into Tensor\(#\d+, f32, \(4, 3, 8, 8\)\); write inputs into tensors made before the capture, read results after a replay$/,
    );
  });

  it("refuses a run whose sizes change from run to run, naming the command", async () => {
    const error = await refusal((t) => (t.opt.lr *= 0.5)); // a schedule's learning rate is one of the optimiser's sizes
    expect(error).toMatch(/^replay: expected the run to encode the same commands twice, got other sizes at command \d+, sgd\//);
  });

  it("throws once a tensor the run used is gone, and unpins its buffers when disposed", async () => {
    const { pool } = runtime();
    const t = trainer("linear");
    t.feed(0);
    await t.step();
    const pinned = pool.getStats().pinnedBytes;
    const replay = await Replay.capture(t.step);
    expect(replay.length).toBeGreaterThan(0);
    expect(pool.getStats().pinnedBytes).toBeGreaterThan(pinned); // the step's temporaries
    replay.run();
    t.opt.zeroGrad(); // the gradients the recorded step wrote are released
    expect(() => replay.run()).toThrow("replay: expected the tensors the recorded run used to stay, got one released since the capture");
    replay.dispose();
    expect(pool.getStats().pinnedBytes).toBe(pinned);
    expect(() => replay.run()).toThrow("replay: used after dispose");
    t.dispose();
  });
});

// The message with which a capture of a linear-probe step refuses it when `change` runs before each recorded step.
async function refusal(change: (t: ReturnType<typeof trainer>) => void): Promise<string> {
  const t = trainer("linear");
  t.feed(0);
  await t.step();
  try {
    (
      await Replay.capture(async () => {
        change(t);
        await t.step();
      })
    ).dispose();
  } catch (e) {
    return (e as Error).message;
  } finally {
    t.dispose();
  }
  throw new Error("expected the capture to fail");
}

// ReplayedRun: run, captured (two runs), replayed; after dispose() afresh; a refused capture warns once and runs.
describe("ReplayedRun", () => {
  const counting = (uploads: boolean) => {
    const x = Tensor.fromArray([1, 2, 3, 4], [4]).keep();
    const y = Tensor.empty([4]).keep();
    let runs = 0;
    const run = () => {
      runs++;
      const t = ops.mul(uploads ? ops.add(x, Tensor.fromArray([0, 0, 0, 0], [4])) : x, x);
      runtime().batch.copy(t.buffer, 0, y.buffer, 0, 16);
      t.dispose();
    };
    return { x, y, run, runs: () => runs };
  };

  it("runs the first call, captures the second (two runs), replays the rest, and starts afresh after dispose", async () => {
    const c = counting(false);
    const r = new ReplayedRun(c.run, "test: run, not replayed");
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      c.x.write(Float32Array.from([1, 2, 3, 4], (v) => v + i));
      await r.call();
      seen.push((await c.y.data())[0], c.runs());
    }
    expect(seen).toEqual([1, 1, 4, 3, 9, 3, 16, 3, 25, 3]);
    r.dispose();
    await r.call();
    expect([r.refused, c.runs()]).toEqual([false, 4]);
    r.dispose();
    for (const t of [c.x, c.y]) t.dispose();
  });

  it("runs every call after a refused capture, with one warning", async () => {
    const c = counting(true);
    const warned = warnings.length;
    const r = new ReplayedRun(c.run, "test: run, not replayed");
    for (let i = 0; i < 4; i++) await r.call();
    expect([r.refused, c.runs()]).toEqual([true, 1 + 2 + 1 + 1]); // run, captured (two), run, run
    expect(warnings.slice(warned)).toEqual([expect.stringMatching(/^test: run, not replayed: replay: expected a run without uploads/)]);
    for (const t of [c.x, c.y]) t.dispose();
  });
});
