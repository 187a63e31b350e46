// permute (the strided-copy kernel) against test/ref/permute.ts. Data movement is exact: atol 0, rtol 0.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { inversePermutation, permuteForward } from "../../kernels/permute.js";
import { expectClose, randn, useEngine } from "../helpers.js";
import { permuteRef } from "../ref/permute.js";

useEngine();

const EXACT = { atol: 0, rtol: 0 };
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

describe("permute", () => {
  const cases: [string, number[], number[]][] = [
    ["rank 1", [7], [0]],
    ["rank 2 transpose", [3, 5], [1, 0]],
    ["rank 2 transpose, large", [1031, 37], [1, 0]],
    ["rank 3 rotate", [2, 3, 5], [2, 0, 1]],
    ["rank 3 rotate back", [2, 3, 5], [1, 2, 0]],
    ["rank 3 keeps a vec4 last axis", [3, 5, 12], [1, 0, 2]],
    ["rank 4 reverse", [2, 3, 4, 5], [3, 2, 1, 0]],
    ["ViT heads (B, H, N, D) -> (B, N, H, D)", [2, 3, 17, 64], [0, 2, 1, 3]],
    ["ViT heads, odd head dim", [2, 3, 17, 7], [0, 2, 1, 3]],
    ["ViT qkv (B, N, 3, H, D) -> (3, B, H, N, D)", [2, 197, 3, 3, 8], [2, 0, 3, 1, 4]],
    ["extent-1 axes", [1, 4, 1, 3], [3, 2, 1, 0]],
    ["identity", [4, 6], [0, 1]],
    ["rank 6", [2, 1, 3, 2, 5, 3], [5, 0, 4, 2, 3, 1]],
    ["rank 8 reversed, the most after merging", [2, 3, 2, 3, 2, 2, 3, 5], [7, 6, 5, 4, 3, 2, 1, 0]],
    ["ViT im2col (B, 3, gh, P, gw, P) -> (B, gh, gw, 3, P, P): rows of 7, one per invocation", [2, 3, 4, 7, 4, 7], [0, 2, 4, 1, 3, 5]],
    ["rows of 9: four words per invocation", [2, 3, 9], [1, 0, 2]],
  ];
  for (const [name, shape, perm] of cases) {
    it(`${name}: (${shape}) by [${perm}]`, async () => {
      const x = randn(numel(shape), shape.length);
      const y = permuteForward(Tensor.fromArray(x, shape), perm);
      const want = permuteRef(x, shape, perm);
      expect(y.shape).toEqual(want.shape);
      expectClose("y", await y.data(), want.y, EXACT);
    });
  }

  it("moves i32 values bit-exactly", async () => {
    const x = Int32Array.from({ length: 60 }, (_, i) => (i * 2654435761) | 0);
    const y = permuteForward(Tensor.fromArray(x, [3, 4, 5], "i32"), [2, 0, 1]);
    expect(y.dtype).toBe("i32");
    expect(Array.from(await y.dataInt())).toEqual(Array.from(permuteRef(x, [3, 4, 5], [2, 0, 1]).y));
  });

  it("handles empty and rank-0 tensors", async () => {
    expect(permuteForward(Tensor.fromArray([], [0, 3]), [1, 0]).shape).toEqual([3, 0]);
    expect(Array.from(await permuteForward(Tensor.fromArray([2.5], []), []).data())).toEqual([2.5]);
  });

  it("backward: permuting by the inverse restores x", async () => {
    const shape = [2, 5, 3, 4, 6];
    const perm = [2, 0, 3, 1, 4];
    const x = randn(numel(shape), 9);
    const back = permuteForward(permuteForward(Tensor.fromArray(x, shape), perm), inversePermutation(perm));
    expect(back.shape).toEqual(shape);
    expectClose("x", await back.data(), x, EXACT);
    expect(inversePermutation([2, 0, 3, 1, 4])).toEqual([1, 3, 0, 2, 4]);
  });

  it("spans a folded 2-D grid (more than 65535 workgroups)", async () => {
    // The transpose of (2, N) has N rows of 2: 65538 workgroups of 64 rows. Plain loops instead of permuteRef
    // keep this 8M-element case fast; the general reference is exercised above.
    const N = 4194400;
    const x = new Float32Array(2 * N);
    for (let i = 0; i < x.length; i++) x[i] = (i % 9973) - 4000;
    const want = new Float32Array(2 * N);
    for (let i = 0; i < N; i++) for (let j = 0; j < 2; j++) want[i * 2 + j] = x[j * N + i];
    const y = permuteForward(Tensor.fromArray(x, [2, N]), [1, 0]);
    expectClose("y", await y.data(), want, EXACT);
  });

  it("rejects a bad permutation, naming it and the tensor", () => {
    const x = Tensor.fromArray(new Float32Array(6), [2, 3]);
    expect(() => permuteForward(x, [0, 0])).toThrow("permute: expected a permutation of 0..1 for Tensor(");
    expect(() => permuteForward(x, [1])).toThrow("got [1]");
    expect(() => inversePermutation([0, 2])).toThrow("permute: expected a permutation of 0..1");
  });
});
