// eval/optimizer-memory.ts on the tiny ViT fixture (full fine-tuning, 6 classes): a kept step's optimiser state read
// as autograd/optim.ts stateStep makes it (test/autograd/optim.test.ts checks that against the optimisers' kernels)
// for each tensor the file holds state of: SGD's -momentum * buffer, AdamW's with its step count from the file's
// `optimizer.step` where it has one and from the kept step's number where not; the patch projection's laid out as
// [W | b], a bias without state moving by 0; none without state; a manifest that does not name the optimiser
// refused, naming the file. Then compareBackbones' patchMemory: patchMove of it on each image set's moments (a move of
// -2 D: twice the change, turn -1), none without it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stateStep } from "../../autograd/optim.js";
import { Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { compareBackbones } from "../../eval/block-analysis.js";
import { blockMap } from "../../eval/block-map.js";
import { type PatchMoments, apartFromBias, besideBias, patchChange, patchMoments, patchMove, patchProjection } from "../../eval/patch-directions.js";
import { optimizerMemory, patchMemoryOf } from "../../eval/optimizer-memory.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { loadVit } from "../../vit/load.js";
import type { F32Tensor } from "../../vit/safetensors.js";
import type { VisionTransformer } from "../../vit/model.js";
import { randn, useEngine } from "../helpers.js";
import { useSyntheticData } from "../train/synthetic.js";

useEngine();

const [SIZE, P, CLASSES] = [16, 4, 6];
const data = useSyntheticData("optimizer-memory-test-", { size: SIZE, perClass: { train: 4 }, seed: 7, noise: 160 });
const PATH = "cells/full_lr0.1_s0/step-5.safetensors";
let loader: Loader;
let moments: PatchMoments;
let model: VisionTransformer;

beforeAll(async () => {
  loader = new Loader(data.train, new Transform({ kind: "eval", size: SIZE }), { batchSize: 8 });
  moments = await patchMoments(loader, P);
  model = (await loadVit("test/fixtures/vit-tiny.safetensors", { heads: 2 })).model;
  applyStrategy(model, parseStrategy("full"), CLASSES, 1);
});

afterAll(async () => {
  model.dispose();
});

// A kept step's tensors: the patch projection's optimiser state, slot by slot (each seeded; exp_avg_sq positive).
function state(slots: string[], withBias = true, seed = 10): Map<string, F32Tensor> {
  const { weight, bias } = model.patchEmbed;
  const out = new Map<string, F32Tensor>();
  for (const [i, slot] of slots.entries()) {
    for (const t of withBias ? [weight, bias!] : [weight]) {
      const data = randn(t.size, seed + 2 * i + (t === weight ? 0 : 1), 0.1);
      out.set(`optimizer.${t.name}.${slot}`, { shape: [...t.shape], data: slot === "exp_avg_sq" ? data.map((x) => x * x) : data });
    }
  }
  return out;
}

const slotOf = (tensors: Map<string, F32Tensor>, name: string, slot: string) => new Map([[slot, tensors.get(`optimizer.${name}.${slot}`)!.data]]);

describe("optimizerMemory", () => {
  it("is SGD's -momentum * buffer of the weight and the bias, as [W | b]", () => {
    const { weight, bias } = model.patchEmbed;
    const tensors = state(["momentum"]);
    const [w, b] = [tensors.get(`optimizer.${weight.name}.momentum`)!.data, tensors.get(`optimizer.${bias!.name}.momentum`)!.data];
    const memory = optimizerMemory(model, tensors, { optimizer: "sgd", momentum: 0.9 }, 5, PATH);
    expect([...memory.keys()]).toEqual([weight, bias]);
    const got = patchMemoryOf(model, memory)!;
    expect(got).toEqual(besideBias(Float64Array.from(w, (x) => -0.9 * x), Float64Array.from(b, (x) => -0.9 * x), weight.shape[0]));
    // A bias without state moves by 0.
    const bare = patchMemoryOf(model, optimizerMemory(model, state(["momentum"], false), { optimizer: "sgd", momentum: 0.9 }, 5, PATH))!;
    expect(bare).toEqual(besideBias(Float64Array.from(w, (x) => -0.9 * x), undefined, weight.shape[0]));
  });

  it("is AdamW's at the step after the file's count, else after the kept step's number", () => {
    const { weight, bias } = model.patchEmbed;
    const tensors = state(["exp_avg", "exp_avg_sq"]);
    const slots = (name: string) => new Map([...slotOf(tensors, name, "exp_avg"), ...slotOf(tensors, name, "exp_avg_sq")]);
    const want = (steps: number) => besideBias(stateStep({ optimizer: "adamw" }, slots(weight.name!), steps)!, stateStep({ optimizer: "adamw" }, slots(bias!.name!), steps), weight.shape[0]);
    expect(patchMemoryOf(model, optimizerMemory(model, tensors, { optimizer: "adamw", momentum: 0.9 }, 5, PATH))).toEqual(want(5));
    tensors.set("optimizer.step", { shape: [1], data: new Float32Array([2]) }); // loss scaling skipped 3 of 5
    expect(patchMemoryOf(model, optimizerMemory(model, tensors, { optimizer: "adamw" }, 5, PATH))).toEqual(want(2));
    expect(want(2)).not.toEqual(want(5));
  });

  it("is none without state or momentum; a manifest that does not name the optimiser is refused", () => {
    expect(optimizerMemory(model, new Map(), { lr: 0.1 }, 5, PATH).size).toBe(0);
    expect(patchMemoryOf(model, new Map())).toBeUndefined();
    expect(optimizerMemory(model, state(["momentum"]), { optimizer: "sgd", momentum: 0 }, 5, PATH).size).toBe(0);
    expect(() => optimizerMemory(model, state(["momentum"]), { lr: 0.1 }, 5, PATH)).toThrow(`optimizer memory: ${PATH}: expected the manifest's hyperParameters to name the optimiser (sgd with its momentum, or adamw), got optimizer undefined, momentum undefined`);
  });
});

describe("the optimiser's memory in compareBackbones", () => {
  it("is patchMove of it on each image set's moments: -2 D moves twice the change back; none without it", async () => {
    const original = (await loadVit("test/fixtures/vit-tiny.safetensors", { heads: 2 })).model;
    applyStrategy(original, parseStrategy("full"), CLASSES, 1);
    const { weight, bias } = model.patchEmbed;
    weight.write(randn(weight.size, 30, 0.3));
    bias!.write(randn(bias!.size, 31, 0.3));
    const [w0, w] = [await patchProjection(original), await patchProjection(model)];
    const memory = w.map((x, i) => -2 * (x - w0[i]));
    const { weight: mw, bias: mb } = apartFromBias(memory, weight.shape[0]);
    const data = { queries: loader, bank: loader, k: 3, temperature: 0.07, classes: CLASSES, gridImages: 1, patches: { source: moments, target: moments } };
    const c = await compareBackbones(original, model, blockMap(parseStrategy("full"), 2), data, undefined, new Map([[weight, Float64Array.from(mw)], [bias!, Float64Array.from(mb)]]));
    const want = patchMove(w0, w, besideBias(mw, mb, weight.shape[0]), moments); // the move as float32 holds it
    expect(c.patchMemory).toEqual({ source: want, target: want });
    const { change } = patchChange(w0, w, moments);
    for (const part of ["along", "rest"] as const) {
      expect(Math.abs(want[part].turn + 1)).toBeLessThan(1e-6);
      expect(Math.abs(want[part].change - 2 * change[part]) / change[part]).toBeLessThan(1e-6);
    }
    expect((await compareBackbones(original, model, blockMap(parseStrategy("full"), 2), data)).patchMemory).toBeUndefined();
    original.dispose();
  });
});
