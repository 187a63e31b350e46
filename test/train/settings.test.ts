// train/settings.ts: the identity rule shared by checkpoints, cached backbones and run folders.
import { describe, expect, it } from "vitest";
import { runIdentity } from "../../train/settings.js";

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
