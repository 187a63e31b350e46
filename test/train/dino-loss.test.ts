// dinoLoss against a float64 transcription of DINOLoss.forward (loops over the 2 (V - 1) pairs, as main_dino.py),
// with only the two global views (V = 2) and with three local views, and the student's gradient against finite
// differences of that reference; refused shapes. The full step with locals is checked against PyTorch in
// test/train/dino.test.ts. Tolerance atol 1e-5 + rtol 1e-4.
import { describe, expect, it } from "vitest";
import { Tensor, tidyAsync } from "../../engine/tensor.js";
import { backward } from "../../autograd/tape.js";
import { dinoLoss } from "../../train/dino-loss.js";
import { expectClose, numericGrad, randn, useEngine } from "../helpers.js";

useEngine();

// DINOLoss.forward in float64: mean over pairs (iq, v != iq) of mean_b -sum q log_softmax(s / ts).
function dinoLossRef(s: ArrayLike<number>, t: ArrayLike<number>, c: ArrayLike<number>, B: number, K: number, tt: number, ts: number): { loss: number; entropy: number } {
  const V = s.length / (B * K);
  const row = (x: ArrayLike<number>, r: number, f: (v: number, k: number) => number) => Array.from({ length: K }, (_, k) => f(x[r * K + k], k));
  const softmax = (z: number[]) => {
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  };
  let total = 0;
  let pairs = 0;
  let entropy = 0;
  for (let iq = 0; iq < 2; iq++) {
    for (let b = 0; b < B; b++) entropy -= softmax(row(t, iq * B + b, (v, k) => (v - c[k]) / tt)).reduce((a, q) => a + q * Math.log(q), 0) / (2 * B);
    for (let v = 0; v < V; v++) {
      if (v === iq) continue;
      let l = 0;
      for (let b = 0; b < B; b++) {
        const q = softmax(row(t, iq * B + b, (x, k) => (x - c[k]) / tt));
        const p = softmax(row(s, v * B + b, (x) => x / ts));
        l -= q.reduce((a, qk, k) => a + qk * Math.log(p[k]), 0);
      }
      total += l / B;
      pairs++;
    }
  }
  return { loss: total / pairs, entropy };
}

describe("dinoLoss", () => {
  for (const V of [2, 5]) {
    it(`${V} views`, async () => {
      const [B, K] = [3, 7];
      const s0 = randn(V * B * K, V);
      const t0 = randn(2 * B * K, V + 1);
      const c0 = randn(K, V + 2, 0.3);
      const { loss, entropy, kl, ds } = await tidyAsync(async () => {
        const s = Tensor.fromArray(s0, [V * B, K]).requireGrad();
        const out = dinoLoss(s, Tensor.fromArray(t0, [2 * B, K]), Tensor.fromArray(c0, [1, K]), 0.05, 0.1);
        backward(out.loss);
        const r = { loss: await out.loss.item(), entropy: await out.entropy.item(), kl: await out.kl.item(), ds: await s.grad!.data() };
        s.grad!.dispose();
        return r;
      });
      const ref = dinoLossRef(s0, t0, c0, B, K, 0.05, 0.1);
      expectClose("loss", [loss, entropy, kl], [ref.loss, ref.entropy, ref.loss - ref.entropy], { atol: 1e-5, rtol: 1e-4 });
      const fd = numericGrad((x) => dinoLossRef(x, t0, c0, B, K, 0.05, 0.1).loss, s0, 1e-6);
      expectClose("d loss / d student", ds, fd, { atol: 1e-5, rtol: 1e-3 });
    });
  }

  it("refuses outputs that do not fit together", () => {
    const t = Tensor.fromArray(new Float32Array(12), [4, 3]);
    const c = Tensor.fromArray(new Float32Array(3), [1, 3]);
    expect(() => dinoLoss(Tensor.fromArray(new Float32Array(9), [3, 3]), Tensor.fromArray(new Float32Array(9), [3, 3]), c, 0.04, 0.1)).toThrow("dino loss: expected teacher outputs (2B, K), got");
    expect(() => dinoLoss(Tensor.fromArray(new Float32Array(6), [2, 3]), t, c, 0.04, 0.1)).toThrow("dino loss: expected student outputs (V*2, 3) with V >= 2 views, got");
    expect(() => dinoLoss(Tensor.fromArray(new Float32Array(15), [5, 3]), t, c, 0.04, 0.1)).toThrow("dino loss: expected student outputs (V*2, 3)");
    expect(() => dinoLoss(Tensor.fromArray(new Float32Array(12), [4, 3]), t, Tensor.fromArray([0, 0], [1, 2]), 0.04, 0.1)).toThrow("dino loss: expected a centre of 3 values");
    expect(() => dinoLoss(Tensor.fromArray(new Float32Array(12), [4, 3]), t, c, 0, 0.1)).toThrow("dino loss: expected positive temperatures, got teacher 0, student 0.1");
  });
});
