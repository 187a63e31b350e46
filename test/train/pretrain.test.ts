// Pre-training's cache key: what changes the trained backbone, and nothing else.
import { describe, expect, it } from "vitest";
import { DEFAULT_STUDY, parseStudyConfig } from "../../study/config.js";
import { pretrainHash } from "../../train/pretrain.js";
import type { Dataset } from "../../data/dataset.js";

describe("pretrainHash", () => {
  const spec = parseStudyConfig(DEFAULT_STUDY).backbone.pretrain!;
  const data = { identity: { hash: "data-a" } } as unknown as Dataset;

  it("covers the training settings and the data's identity", () => {
    expect(pretrainHash({ ...spec, steps: spec.steps + 1 }, data)).not.toBe(pretrainHash(spec, data));
    expect(pretrainHash(spec, { identity: { hash: "data-b" } } as unknown as Dataset)).not.toBe(pretrainHash(spec, data));
  });

  it("ignores where the cache lives and microBatch, which changes only how a step's gradient is summed", () => {
    expect(pretrainHash({ ...spec, cacheDir: "/elsewhere" }, data)).toBe(pretrainHash(spec, data));
    expect(pretrainHash({ ...spec, microBatch: 4 }, data)).toBe(pretrainHash(spec, data));
  });
});
