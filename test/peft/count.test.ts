// The paper's Table 1 column, as exact integers, and the analytic counts against the tensors that
// applyStrategy really marks trainable on a small model.
import { describe, expect, it } from "vitest";
import { namedConfig, validateConfig, type VitConfig } from "../../vit/config.js";
import { buildVit, initialiser } from "../../vit/model.js";
import { countFor } from "../../peft/count.js";
import { applyStrategy, countParameters, parseStrategy } from "../../peft/strategy.js";
import { useEngine } from "../helpers.js";

useEngine();

describe("the paper's parameter table (ViT-B/16, 100 classes)", () => {
  const c = namedConfig("vit-b16", 100);
  const table: [string, number, number][] = [
    // strategy, exact trainable, as the paper counts it
    ["full", 85_875_556, 85_875_556], // 85.9M
    ["top-3", 21_342_052, 21_342_052], // 21.3M: 3 blocks, the final norm and the head
    ["top-3-frozen-norm", 21_340_516, 21_340_516], // 21.3M too: the norm's 1,536 do not show
    ["linear", 76_900, 76_900], // 76.9K
    ["lora-r4", 224_356, 301_256], // 301K in the paper (head counted twice)
    ["lora-r8", 371_812, 448_712], // 448K
    ["lora-r16", 666_724, 743_624], // 743K
    ["block-p1", 7_164_772, 7_164_772], // 7.2M
    ["block-p2", 14_252_644, 14_252_644], // 14.3M
    ["block-p3", 21_340_516, 21_340_516], // 21.3M
    ["block-p4", 28_428_388, 28_428_388], // 28.4M
  ];
  for (const [name, exact, paper] of table) {
    it(name, () => {
      const counts = countFor(c, parseStrategy(name));
      expect(counts.trainable).toBe(exact);
      expect(counts.paper).toBe(paper);
    });
  }
});

describe("analytic counts match the tensors applyStrategy trains", () => {
  const small: VitConfig = validateConfig({ imageSize: 16, patchSize: 4, width: 32, depth: 4, heads: 2, mlpHidden: 128, classes: 0, eps: 1e-6 });
  for (const name of ["full", "top-2", "top-2-frozen-norm", "top-0", "linear", "lora-r2", "lora-r3", "block-p1", "block-p2", "block@1,3"]) {
    it(name, () => {
      const model = buildVit(small, initialiser(1));
      const strategy = parseStrategy(name);
      const trainable = applyStrategy(model, strategy, 7);
      expect(countParameters(trainable)).toBe(countFor({ ...small, classes: 7 }, strategy).trainable);
      const total = model.parameters().reduce((n, [, t]) => n + t.size, 0);
      expect(total).toBe(countFor({ ...small, classes: 7 }, strategy).total);
      for (const [, t] of model.parameters()) expect(t.requiresGrad).toBe(trainable.some(([, x]) => x === t));
    });
  }
});
