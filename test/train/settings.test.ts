// train/settings.ts: the identity rule shared by checkpoints, cached backbones and run folders.
import { describe, expect, it } from "vitest";
import { identityChanges, runIdentity } from "../../train/settings.js";

describe("runIdentity", () => {
  it("is the value's JSON without microBatch, at any depth", () => {
    const a = { steps: 10, training: { batchSize: 8, microBatch: 2 }, backbone: { pretrain: { lr: 1, microBatch: 4 } } };
    expect(runIdentity(a)).toBe(JSON.stringify({ steps: 10, training: { batchSize: 8 }, backbone: { pretrain: { lr: 1 } } }));
    expect(runIdentity({ ...a, training: { batchSize: 8, microBatch: 1 } })).toBe(runIdentity(a));
  });

  it("keeps every other difference, key order included", () => {
    expect(runIdentity({ steps: 10, lr: 0.1 })).not.toBe(runIdentity({ steps: 11, lr: 0.1 }));
    expect(runIdentity({ steps: 10, lr: 0.1 })).not.toBe(runIdentity({ lr: 0.1, steps: 10 }));
  });
});

describe("identityChanges", () => {
  it("names each key path that differs, with both values", () => {
    const saved = runIdentity({ steps: 10, lr: 0.001, data: "ab", trainable: ["w:2x3"] });
    const now = runIdentity({ steps: 10, lr: 0.002, data: "cd", trainable: ["w:2x3"], clipNorm: 1 });
    expect(identityChanges(saved, now)).toEqual(['lr: 0.001 -> 0.002', 'data: "ab" -> "cd"', "clipNorm: absent -> 1"]);
    expect(identityChanges(saved, saved)).toEqual([]);
    const model = (heads: number) => runIdentity({ model: { width: 64, heads }, lr: 1 });
    expect(identityChanges(model(2), model(4))).toEqual(["model.heads: 2 -> 4"]);
  });

  it("shows identities that are not JSON objects whole", () => {
    expect(identityChanges("abc", "abd")).toEqual(['"abc" -> "abd"']);
    expect(identityChanges("[1]", "{}")).toEqual(["[1] -> {}"]);
  });
});
