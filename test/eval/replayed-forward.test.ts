// eval/replayed-forward.ts: a function of image batches (here the head's logits) replayed computes what its runs
// compute, bit for bit; its output takes the function's shape; another batch shape starts afresh.
import { describe, expect, it } from "vitest";
import { validateConfig } from "../../vit/config.js";
import { buildVit, initialiser } from "../../vit/model.js";
import { applyStrategy } from "../../peft/strategy.js";
import { ReplayedForward } from "../../eval/replayed-forward.js";
import { Tensor, tidy } from "../../engine/tensor.js";
import { noGrad } from "../../autograd/tape.js";
import { randn, useEngine } from "../helpers.js";

useEngine();

describe("ReplayedForward", () => {
  it("gives each batch's logits as a run forward does, running only to warm up and capture", async () => {
    const model = buildVit(validateConfig({ imageSize: 8, patchSize: 4, width: 16, depth: 2, heads: 2, mlpHidden: 32, classes: 0, eps: 1e-6 }), initialiser(2));
    applyStrategy(model, { kind: "linear" }, 5, 1);
    let forwards = 0;
    const replayed = new ReplayedForward((x) => (forwards++, model.forward(x)), "test: not replayed");
    try {
      for (const [n, batches] of [[3, 5], [4, 4]]) {
        for (let k = 0; k < batches; k++) {
          const images = randn(n * 3 * 64, 10 * n + k);
          const run = tidy(() => noGrad(() => model.forward(Tensor.fromArray(images, [n, 3, 8, 8]))));
          const want = await run.data();
          run.dispose();
          const got = await (await replayed.call(images, [n, 3, 8, 8])).data();
          expect(got.length).toBe(n * 5);
          expect(got).toEqual(want);
        }
      }
      // Per shape: run, captured (two runs), then replays.
      expect(forwards).toBe(3 + 3);
    } finally {
      replayed.dispose();
      model.dispose();
    }
  });
});
