// How far a block's attention moved: the Jensen-Shannon divergence between the original's and the fine-tuned
// model's attention distribution of the CLS token (its row of the attention probabilities, over every token, CLS
// included), per head, averaged over images. In bits, so in [0, 1]: 0 for the same distribution, 1 for
// distributions on disjoint tokens. Summed in float64.
//   JS(P, Q) = ½ KL(P ‖ M) + ½ KL(Q ‖ M),  M = ½ (P + Q)

// JS(p, q) of two distributions over the same tokens.
export function jensenShannon(p: ArrayLike<number>, q: ArrayLike<number>): number {
  if (p.length !== q.length) throw new Error(`attention drift: expected distributions of the same length, got ${p.length} and ${q.length}`);
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i] + q[i]) / 2;
    if (p[i] > 0) s += p[i] * Math.log2(p[i] / m);
    if (q[i] > 0) s += q[i] * Math.log2(q[i] / m);
  }
  // Rounding can leave a tiny negative sum for equal distributions.
  return Math.max(0, s / 2);
}

// The mean JS divergence per head over the images added so far.
export class AttentionDrift {
  private sums: Float64Array;
  private images = 0;

  constructor(readonly heads: number) {
    this.sums = new Float64Array(heads);
  }

  // CLS attention rows of one batch: original and fine-tuned, each (B, H, T).
  add(original: Float32Array, tuned: Float32Array, batch: number): void {
    const h = this.heads;
    if (original.length !== tuned.length || original.length % (batch * h) !== 0) {
      throw new Error(`attention drift: expected two (${batch}, ${h}, T) arrays, got ${original.length} and ${tuned.length} values`);
    }
    const t = original.length / (batch * h);
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < h; j++) {
        const at = (b * h + j) * t;
        this.sums[j] += jensenShannon(original.subarray(at, at + t), tuned.subarray(at, at + t));
      }
    }
    this.images += batch;
  }

  // (H): the mean divergence of each head, in bits.
  value(): number[] {
    if (this.images === 0) throw new Error("attention drift: expected at least one image, got none");
    return Array.from(this.sums, (s) => s / this.images);
  }
}
