// The ViT's input sequence [cls; tokens] + pos (kernels/tokens.ts, autograd/ops.ts tokenSequence) against a plain
// CPU reference, and against the composition it replaces (zeros + cls, concat, + pos): values and gradients equal to
// the bit, since the kernels add the same pairs in the same order (the backward sums over the batch in order, as the
// reductions it replaces). Shapes: vec4 channels and not, one token, one image, odd sizes.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { backward } from "../../autograd/tape.js";
import { tokenSequenceBackward, tokenSequenceForward } from "../../kernels/tokens.js";
import { expectClose, randn, recordKernels, useEngine } from "../helpers.js";
import { runtime } from "../../engine/runtime.js";
import { layernorm as layernormRef } from "../ref/layernorm.js";

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

  it("backward writes only the gradients asked for, in the shapes given", async () => {
    const [B, G, C] = [3, 4, 6];
    const dy = randn(B * (1 + G) * C, 21);
    const sums = Array.from({ length: (1 + G) * C }, (_, i) => [0, 1, 2].reduce((s, b) => s + dy[b * (1 + G) * C + i], 0));
    const only = tokenSequenceBackward(Tensor.fromArray(dy, [B, 1 + G, C]), { tokens: false, cls: [1, 1, C] });
    expect(only.dtokens).toBeUndefined();
    expect(only.dpos).toBeUndefined();
    expect(only.dcls!.shape).toEqual([1, 1, C]);
    expectClose("dcls", await only.dcls!.data(), sums.slice(0, C), { atol: 1e-6, rtol: 1e-6 });
    const tokensOnly = tokenSequenceBackward(Tensor.fromArray(dy, [B, 1 + G, C]), { tokens: true });
    const want = Array.from({ length: B }, (_, b) => Array.from(dy.slice((b * (1 + G) + 1) * C, (b + 1) * (1 + G) * C))).flat();
    expect(Array.from(await tokensOnly.dtokens!.data())).toEqual(want);
    expect(() => tokenSequenceBackward(Tensor.fromArray(dy, [B, 1 + G, C]), { tokens: false, pos: [G, C] })).toThrow("tokens: expected pos of 5 * 6 elements, got (4, 6)");
  });

  it("rejects shapes that do not make a sequence, naming the tensors", () => {
    const tokens = Tensor.empty([2, 3, 4]);
    expect(() => tokenSequenceForward(tokens, Tensor.empty([1, 1, 5]), Tensor.empty([1, 4, 4]))).toThrow(/tokens: expected .* cls of C .* got tokens/);
    expect(() => tokenSequenceForward(tokens, Tensor.empty([1, 1, 4]), Tensor.empty([1, 3, 4]))).toThrow(/pos of \(1 \+ G\) \* C/);
    expect(() => tokenSequenceForward(Tensor.empty([6, 4]), Tensor.empty([4]), Tensor.empty([2, 4]))).toThrow(/tokens \(B, G, C\)/);
  });
});

// With a norm: the sequence and its layernorm, made and normalised in one pass by kernels/layernorm.ts's lane kernel
// where it holds rows in registers (C % 4 == 0, C <= 128, subgroups of exactly 8 lanes), else by the tokens kernel and
// a layernorm dispatch. The sequence equals the reference to 1e-6 (the same sums); the norm, mean and rstd the
// reference layernorm of it with layernorm's tolerance (test/kernels/layernorm.test.ts).
describe("tokenSequence with a norm", () => {
  const NORM_TOL = { atol: 2e-5, rtol: 1e-4 };
  for (const [B, G, C] of [[32, 16, 64], [3, 5, 12], [2, 3, 7], [1, 2, 132]]) {
    it(`equals the reference sequence and its layernorm (B ${B}, G ${G}, C ${C})`, async () => {
      const [tokens, cls, pos, gamma, beta] = [randn(B * G * C, 5, 1), randn(C, 6, 0.02), randn((1 + G) * C, 7, 0.02), randn(C, 8), randn(C, 9)];
      const rows = B * (1 + G);
      const norm = { out: Tensor.empty([B, 1 + G, C]), mean: Tensor.empty([rows]), rstd: Tensor.empty([rows]), gamma: Tensor.fromArray(gamma, [C]), beta: Tensor.fromArray(beta, [C]), eps: 1e-6 };
      const { gpu } = runtime();
      const { result: y, kernels: dispatched } = recordKernels(() =>
        tokenSequenceForward(Tensor.fromArray(tokens, [B, G, C]), Tensor.fromArray(cls, [C]), Tensor.fromArray(pos, [1 + G, C]), norm),
      );
      const seq = tokenSequenceRef(tokens, cls, pos, B, G, C);
      expectClose("y", await y.data(), seq, { atol: 1e-6, rtol: 1e-6 });
      const ref = layernormRef(seq, gamma, beta, rows, C, 1e-6);
      expectClose("out", await norm.out.data(), ref.y, NORM_TOL);
      expectClose("mean", await norm.mean.data(), ref.mean, NORM_TOL);
      expectClose("rstd", await norm.rstd.data(), ref.rstd, { atol: 0, rtol: NORM_TOL.rtol });
      const kernels = dispatched.map((k) => k.name);
      const oneSubgroup = gpu.isCpu && gpu.features.has("subgroups") && gpu.subgroupMinSize === 8 && gpu.subgroupMaxSize === 8;
      expect(kernels).toEqual(oneSubgroup && C % 4 === 0 && C <= 128 ? ["layernorm"] : ["tokens", "layernorm"]);
    });
  }
});

// ops.tokenSequenceThenNorm against tokenSequence then layernorm: both outputs in the loss, every gradient.
describe("tokenSequenceThenNorm", () => {
  it("matches tokenSequence, then layernorm, forward and backward", async () => {
    const [B, G, C] = [3, 5, 16];
    const values = [randn(B * G * C, 11, 1), randn(C, 12, 0.02), randn((1 + G) * C, 13, 0.02), randn(C, 14), randn(C, 15)];
    const [dy, dn] = [randn(B * (1 + G) * C, 16), randn(B * (1 + G) * C, 17)];
    const run = async (fused: boolean) => {
      const shapes = [[B, G, C], [1, 1, C], [1, 1 + G, C], [C], [C]];
      const leaves = values.map((v, i) => Tensor.fromArray(v, shapes[i]).requireGrad());
      const [tk, ct, pt, gamma, beta] = leaves;
      const [seq, normed] = fused
        ? ops.tokenSequenceThenNorm(tk, ct, pt, { gamma, beta, eps: 1e-6 })
        : (() => {
            const s = ops.tokenSequence(tk, ct, pt);
            return [s, ops.layernorm(s, gamma, beta, 1e-6)];
          })();
      const weighted = (a: Tensor, w: Float32Array) => ops.sumAll(ops.mul(a, Tensor.fromArray(w, [B, 1 + G, C])));
      backward(ops.add(weighted(seq, dy), weighted(normed, dn)));
      return [await seq.data(), await normed.data(), ...(await Promise.all(leaves.map((t) => t.grad!.data())))];
    };
    const [fused, composed] = [await run(true), await run(false)];
    const names = ["seq", "normed", "dtokens", "dcls", "dpos", "dgamma", "dbeta"];
    fused.forEach((got, i) => expectClose(names[i], got, composed[i], { atol: 1e-4, rtol: 1e-3 }));
  });
});
