// train/flat-response.ts: an optimizer step's change of a patch projection weight with its mean over each output's
// and channel's pixels taken off, against the change worked out on the host (float32 tolerance), and a weight of
// another shape refused. Training with it: test/train/train.test.ts.
import { describe, expect, it } from "vitest";
import * as ops from "../../autograd/ops.js";
import { Tensor } from "../../engine/tensor.js";
import { withFlatResponseHeld } from "../../train/flat-response.js";
import { expectClose, randn, useEngine } from "../helpers.js";

useEngine();

describe("withFlatResponseHeld", () => {
  it("takes each step's mean change over each output's and channel's pixels off, the rest of the change kept", async () => {
    const [c, pixels] = [4, 9];
    const w = Tensor.fromArray(randn(c * 3 * pixels, 1), [c, 3 * pixels]);
    const before = await w.data();
    const delta = randn(c * 3 * pixels, 2);
    withFlatResponseHeld(w, pixels, () => ops.addInPlace(w, Tensor.fromArray(delta, [c, 3 * pixels]), 1));
    const after = await w.data();
    const want = new Float32Array(before.length);
    for (let g = 0; g < c * 3; g++) {
      const d = delta.subarray(g * pixels, (g + 1) * pixels);
      const mean = d.reduce((a, x) => a + x, 0) / pixels;
      for (let j = 0; j < pixels; j++) want[g * pixels + j] = before[g * pixels + j] + d[j] - mean;
    }
    expectClose("held", after, want, { atol: 1e-6, rtol: 0 });
    expect(() => withFlatResponseHeld(w, 5, () => undefined)).toThrow("flat response: expected a patch projection weight (C, channels x 5), got (4, 27)");
    w.dispose();
  });
});
