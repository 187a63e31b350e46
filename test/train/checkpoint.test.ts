// train/checkpoint.ts's fingerprint: what a checkpoint must share with a run to be resumed by it. The precision is
// part of it (an f32 checkpoint is not resumed in f16, int8 or int8x2, nor one of those in another), absent in f32
// so that checkpoints from before the key still match; cadences are not.
import { describe, expect, it } from "vitest";
import type { Loader } from "../../data/loader.js";
import { fingerprint } from "../../train/checkpoint.js";
import { TRAIN_DEFAULTS, type TrainSettings } from "../../train/settings.js";

const LOADER = { batchSize: 4, seed: 0, dataset: { identity: { hash: "data" } } } as unknown as Loader;
const SETTINGS: TrainSettings = { ...TRAIN_DEFAULTS, steps: 8, lr: 0.01, batchSize: 4, evalEvery: 4 };
const print = (s: Partial<TrainSettings>) => fingerprint({ ...SETTINGS, ...s }, LOADER, []);

describe("checkpoint fingerprint", () => {
  it("holds the precision, f32 as if the key were absent", () => {
    const prints = [print({}), print({ precision: "f16" }), print({ precision: "int8" }), print({ precision: "int8x2" })];
    expect(new Set(prints).size).toBe(4);
    expect(print({ precision: "f32" })).toBe(prints[0]);
    expect(print({ precision: "f16", lossScale: { init: 8 } })).not.toBe(prints[1]);
  });

  it("holds a constant rate after the warm-up, the cosine decay as if the key were absent", () => {
    expect(print({ schedule: "constant" })).not.toBe(print({}));
    expect(print({ schedule: undefined })).toBe(print({}));
  });

  it("ignores the cadences", () => {
    expect(print({ evalEvery: 3, lossEvery: 2 })).toBe(print({}));
  });
});
