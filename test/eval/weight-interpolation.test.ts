// A fine-tuned backbone moved back along the straight line to where fine-tuning started: every trained tensor but
// the head's at (1 - α) · start + α · fine-tuned while a point is measured, α = 0 and 1 the two ends bit for bit,
// LoRA's adapted weight on the straight line between the original's and the merged fine-tuned one (A kept, B
// moved), and every tensor's fine-tuned bytes after, a failed measure's too.
import { describe, expect, it } from "vitest";
import type { VisionTransformer } from "../../vit/model.js";
import { mergeLora } from "../../peft/lora.js";
import { interpolated, interpolationPoints, withEachInterpolation } from "../../eval/weight-interpolation.js";
import { randn, useEngine } from "../helpers.js";
import { parameterValues as values, tunedModels } from "./tuned-models.js";

useEngine();

describe("interpolationPoints", () => {
  it("moves every trainable tensor but the head's, at each weight; none where only the head trains; refuses a weight outside [0, 1]", () => {
    const trainable = ["cls_token", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.lora_q.A", "norm.weight", "head.weight", "head.bias"];
    expect(interpolationPoints(trainable, [0, 0.5])).toEqual([0, 0.5].map((alpha) => ({ alpha, tensors: ["cls_token", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.lora_q.A", "norm.weight"] })));
    expect(interpolationPoints(["head.weight", "head.bias"], [0.5])).toEqual([]);
    for (const bad of [-0.1, 1.5, NaN]) expect(() => interpolationPoints(trainable, [bad]), String(bad)).toThrow(`weight interpolation: expected weights in [0, 1], got ${bad}`);
  });
});

describe("interpolated", () => {
  it("is (1 - α) · start + α · fine-tuned, rounded once to float32; the ends exactly; LoRA's A its fine-tuned value", () => {
    const [tuned, start] = [randn(257, 1), randn(257, 2)];
    const half = interpolated(0.3, "blocks.1.mlp.fc1.weight", tuned, start);
    for (let i = 0; i < tuned.length; i++) expect(half[i]).toBe(Math.fround(0.7 * start[i] + 0.3 * tuned[i]));
    expect(interpolated(0, "pos_embed", tuned, start)).toEqual(start);
    expect(interpolated(1, "pos_embed", tuned, start)).toEqual(tuned);
    expect(interpolated(0.3, "blocks.1.attn.qkv.lora_v.A", tuned, start)).toBe(tuned);
    expect(Array.from(interpolated(0.3, "blocks.1.attn.qkv.lora_v.B", tuned, start))).toEqual(Array.from(half));
  });
});

describe("withEachInterpolation", () => {
  it("holds every moved tensor at its weight while the point is measured, the head fine-tuned, and restores every byte", async () => {
    for (const strategy of ["full", "lora-r2", "block-p1", "top-1"]) {
      const { tuned, initial, trainable } = await tunedModels(strategy, 0.1);
      const [before, start] = [await values(tuned), await values(initial)];
      const points = interpolationPoints(trainable, [0, 0.25, 1]);
      const seen = await withEachInterpolation(tuned, initial, points, async (p) => {
        for (const [name, v] of await values(tuned)) {
          const expected = p.tensors.includes(name) ? interpolated(p.alpha, name, before.get(name)!, start.get(name)!) : before.get(name)!;
          expect(Array.from(v), `${strategy} at ${p.alpha}: ${name}`).toEqual(Array.from(expected));
        }
        return p.alpha;
      });
      expect(seen).toEqual([0, 0.25, 1]);
      expect(points[0].tensors.some((n) => n.startsWith("head."))).toBe(false);
      for (const [name, v] of await values(tuned)) expect(Array.from(v), `${strategy}: ${name} after`).toEqual(Array.from(before.get(name)!));
      await expect(withEachInterpolation(tuned, initial, points, async () => Promise.reject(new Error("measure failed")))).rejects.toThrow("measure failed");
      for (const [name, v] of await values(tuned)) expect(Array.from(v), `${strategy}: ${name} after a failure`).toEqual(Array.from(before.get(name)!));
      tuned.dispose();
      initial.dispose();
    }
  });

  it("puts LoRA's merged weight on the straight line between the original's and the fine-tuned model's", async () => {
    const { tuned, initial, trainable } = await tunedModels("lora-r2", 0.1);
    const merged = async (m: VisionTransformer) => {
      mergeLora(m);
      return (await values(m)).get("blocks.1.attn.qkv.weight")!;
    };
    const original = (await values(initial)).get("blocks.1.attn.qkv.weight")!; // B is zero at step 0
    const [alpha] = [0.4];
    const [point] = interpolationPoints(trainable, [alpha]);
    // The model at the point, merged, against the fine-tuned model merged (a copy: merging writes the weights).
    const atPoint = await withEachInterpolation(tuned, initial, [point], async () => {
      const copy = await tunedModels("lora-r2", 0.1);
      const now = await values(tuned);
      for (const [name, t] of copy.tuned.parameters()) t.write(now.get(name)!);
      const w = await merged(copy.tuned);
      copy.tuned.dispose();
      copy.initial.dispose();
      return w;
    });
    const end = await merged(tuned);
    let worst = 0;
    for (let i = 0; i < end.length; i++) worst = Math.max(worst, Math.abs(atPoint[0][i] - ((1 - alpha) * original[i] + alpha * end[i])));
    // float32 rounding of B · α and of the merge's sums: a few ulps of weights about 0.1.
    expect(worst).toBeLessThan(1e-6);
    // Moving A too would not be the straight line: its change is of the same size as B's.
    expect(Math.max(...Array.from(end, (e, i) => Math.abs(e - original[i])))).toBeGreaterThan(1e-3);
    tuned.dispose();
    initial.dispose();
  });
});
