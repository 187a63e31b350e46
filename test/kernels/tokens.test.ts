// The ViT's input sequence [cls; tokens] + pos (kernels/tokens.ts, autograd/ops.ts tokenSequence) against a plain
// CPU reference, and against the composition it replaces (zeros + cls, concat, + pos): values and gradients equal to
// the bit, since the kernel adds the same pairs. Shapes: vec4 channels and not, one token, one image, odd sizes.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { backward } from "../../autograd/tape.js";
import { tokenSequenceForward } from "../../kernels/tokens.js";
import { expectClose, randn, useEngine } from "../helpers.js";

useEngine();

// y[b, 0, c] = cls[c] + pos[0, c]; y[b, 1 + g, c] = tokens[b, g, c] + pos[1 + g, c], in float64.
function tokenSequenceRef(tokens: Float32Array, cls: Float32Array, pos: Float32Array, B: number, G: number, C: number): number[] {
  const y: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t <= G; t++) {
      for (let c = 0; c < C; c++) y.push((t === 0 ? cls[c] : tokens[(b * G + t - 1) * C + c]) + pos[t * C + c]);
    }
  }
  return y;
}

const SHAPES = [[32, 16, 64], [1, 1, 4], [3, 5, 7], [2, 1, 3], [5, 196, 12], [1, 3, 1]];

describe("tokenSequence", () => {
  for (const [B, G, C] of SHAPES) {
    it(`equals the reference and the composition, forward and backward (B ${B}, G ${G}, C ${C})`, async () => {
      const [tokens, cls, pos, dy] = [randn(B * G * C, B + G, 1), randn(C, 2, 0.02), randn((1 + G) * C, 3, 0.02), randn(B * (1 + G) * C, 4)];
      const y = tokenSequenceForward(Tensor.fromArray(tokens, [B, G, C]), Tensor.fromArray(cls, [1, 1, C]), Tensor.fromArray(pos, [1, 1 + G, C]));
      expect(y.shape).toEqual([B, 1 + G, C]);
      expectClose("y", await y.data(), tokenSequenceRef(tokens, cls, pos, B, G, C), { atol: 1e-6, rtol: 1e-6 });

      const run = async (fused: boolean) => {
        const leaves = [Tensor.fromArray(tokens, [B, G, C]), Tensor.fromArray(cls, [1, 1, C]), Tensor.fromArray(pos, [1, 1 + G, C])];
        for (const t of leaves) t.requireGrad();
        const [tk, ct, pt] = leaves;
        const out = fused ? ops.tokenSequence(tk, ct, pt) : ops.add(ops.concat([ops.add(ops.zeros([B, 1, C]), ct), tk], 1), pt);
        backward(out, Tensor.fromArray(dy, [B, 1 + G, C]));
        return [await out.data(), ...(await Promise.all(leaves.map((t) => t.grad!.data())))];
      };
      const [fused, composed] = [await run(true), await run(false)];
      expect(fused).toEqual(composed);
    });
  }

  it("rejects shapes that do not make a sequence, naming the tensors", () => {
    const tokens = Tensor.empty([2, 3, 4]);
    expect(() => tokenSequenceForward(tokens, Tensor.empty([1, 1, 5]), Tensor.empty([1, 4, 4]))).toThrow(/tokens: expected .* cls of C .* got tokens/);
    expect(() => tokenSequenceForward(tokens, Tensor.empty([1, 1, 4]), Tensor.empty([1, 3, 4]))).toThrow(/pos of \(1 \+ G\) \* C/);
    expect(() => tokenSequenceForward(Tensor.empty([6, 4]), Tensor.empty([4]), Tensor.empty([2, 4]))).toThrow(/tokens \(B, G, C\)/);
  });
});
