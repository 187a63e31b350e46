// eval/accuracy.ts: top-1 accuracy of a model's head over every batch of a loader, on a model whose predictions
// are known: a head of zero weights and a one-hot bias predicts its class for every image.
import { describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateConfig } from "../../vit/config.js";
import { buildVit, initialiser } from "../../vit/model.js";
import { applyStrategy } from "../../peft/strategy.js";
import { openNpyImages } from "../../data/npy-dataset.js";
import { Loader } from "../../data/loader.js";
import { Transform } from "../../data/transforms.js";
import { evaluateAccuracy, evaluateCorrect } from "../../eval/accuracy.js";
import { useEngine } from "../helpers.js";
import { runtime } from "../../engine/runtime.js";
import { writeSynthetic } from "../train/synthetic.js";

useEngine();

describe("evaluateAccuracy", () => {
  it("counts the images whose label is the head's best class, across uneven batches", async () => {
    const root = await mkdtemp(join(tmpdir(), "accuracy-test-"));
    try {
      await writeSynthetic(root, { size: 8, perClass: { train: 2, test: 3 }, seed: 1 });
      const data = await openNpyImages(root, "test");
      const model = buildVit(validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 1, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 }), initialiser(0));
      const classes = data.classes.length;
      applyStrategy(model, { kind: "linear" }, classes, 0);
      const loader = new Loader(data, new Transform({ kind: "eval", size: 8 }), { batchSize: 4 }); // 4 + 4 + ... + a partial batch
      const labels = Array.from(data.labels);
      for (const c of [0, classes - 1]) {
        model.head!.weight.write(new Float32Array(model.head!.weight.size));
        model.head!.bias!.write(Float32Array.from({ length: classes }, (_, j) => (j === c ? 1 : 0)));
        const want = (100 * labels.filter((l) => l === c).length) / labels.length;
        expect(await evaluateAccuracy(model, loader)).toBeCloseTo(want, 10);
        // Image by image, in the loader's order: right exactly where the label is that class.
        const { accuracy, correct } = await evaluateCorrect(model, loader);
        expect(Array.from(correct)).toEqual(labels.map((l) => (l === c ? 1 : 0)));
        expect(accuracy).toBe(await evaluateAccuracy(model, loader));
      }
      model.dispose();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("replays full batches with the run batches' result", async () => {
    const root = await mkdtemp(join(tmpdir(), "accuracy-test-"));
    const { settings } = runtime();
    const outer = settings.replay;
    try {
      await writeSynthetic(root, { size: 8, perClass: { train: 2, test: 9 }, seed: 2 });
      const data = await openNpyImages(root, "test");
      const model = buildVit(validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 1, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 }), initialiser(5));
      applyStrategy(model, { kind: "linear" }, data.classes.length, 3); // a random head: some right, some wrong
      let forwards = 0;
      const forward = model.forward.bind(model);
      model.forward = (x) => (forwards++, forward(x));
      const loader = new Loader(data, new Transform({ kind: "eval", size: 8 }), { batchSize: 4 });
      const full = Math.floor(data.length / 4);
      expect(data.length % 4).not.toBe(0);
      settings.replay = false;
      const ran = await evaluateAccuracy(model, loader);
      expect(forwards).toBe(full + 1);
      settings.replay = true;
      forwards = 0;
      expect(await evaluateAccuracy(model, loader)).toBe(ran);
      expect(ran).toBeGreaterThan(0);
      expect(ran).toBeLessThan(100);
      expect(forwards).toBe(3 + 1); // run, captured (two runs), the rest replayed; the short batch run
      model.dispose();
    } finally {
      settings.replay = outer;
      await rm(root, { recursive: true, force: true });
    }
  });
});
