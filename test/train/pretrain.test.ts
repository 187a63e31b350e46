// Pre-training's cache key: what changes the trained backbone (the images' transform too), and nothing else.
import { describe, expect, it } from "vitest";
import { SUPERVISED_STUDY, parseStudyConfig } from "../../study/config.js";
import { type PretrainSpec, pretrainHash } from "../../train/pretrain.js";
import type { Dataset } from "../../data/dataset.js";

describe("pretrainHash", () => {
  const spec = parseStudyConfig(SUPERVISED_STUDY).backbone.pretrain! as PretrainSpec;
  const data = { identity: { hash: "data-a" } } as unknown as Dataset;

  it("covers the training settings and the data's identity", () => {
    expect(pretrainHash({ ...spec, steps: spec.steps + 1 }, data)).not.toBe(pretrainHash(spec, data));
    expect(pretrainHash(spec, { identity: { hash: "data-b" } } as unknown as Dataset)).not.toBe(pretrainHash(spec, data));
  });

  it("covers the transform of the data: its kind and every setting the spec gives", () => {
    const withData = (edit: Partial<typeof spec.data>) => pretrainHash({ ...spec, data: { ...spec.data, ...edit } }, data);
    const before = pretrainHash(spec, data);
    expect(withData({ transform: "train" })).not.toBe(before);
    expect(withData({ mean: [0.5, 0.5, 0.5] })).not.toBe(before);
    expect(withData({ std: [0.5, 0.5, 0.5] })).not.toBe(before);
    expect(withData({ interpolation: "bicubic" })).not.toBe(before);
    expect(withData({ transform: "train", scale: [0.5, 1] })).not.toBe(withData({ transform: "train" }));
    // Settings the spec leaves out add nothing to the key.
    expect(withData({ mean: undefined, std: undefined, interpolation: undefined, scale: undefined })).toBe(before);
  });

  it("ignores where the cache lives and microBatch, which changes only how a step's gradient is summed", () => {
    expect(pretrainHash({ ...spec, cacheDir: "/elsewhere" }, data)).toBe(pretrainHash(spec, data));
    expect(pretrainHash({ ...spec, microBatch: 4 }, data)).toBe(pretrainHash(spec, data));
  });
});
