// Linear CKA (centred kernel alignment, Kornblith et al., 2019, eq. 5) between two representations of the same n
// inputs, X (n, p) and Y (n, q), streamed in batches of rows so that memory does not grow with n:
//
//   CKA(X, Y) = ||Ycᵀ Xc||²_F / (||Xcᵀ Xc||_F · ||Ycᵀ Yc||_F),   Xc = X with each column's mean removed.
//
// It is 1 for identical representations and invariant to orthogonal transforms and isotropic scaling of either,
// not to arbitrary invertible linear maps (the property that makes it a similarity of representations, not of
// subspaces). The feature-space form needs only the (p + q)² second moments of the joined rows Z = [X | Y]:
// with S = Σ zᵢzᵢᵀ and s = Σ zᵢ, the centred products are S - s sᵀ / n, whose blocks are XcᵀXc, YcᵀXc and YcᵀYc.
//
// Where each part runs: every batch's Zᵀ Z and column sums on the device (the engine's matmul), accumulated there in
// float32; the centring correction and the Frobenius norms on the host in float64. The rows are shifted by the
// first batch's column means (kept on the device: nothing is read back before the end) before the products, so
// that the correction subtracts two numbers of the size of the spread, not of the (possibly large) mean: a
// residual stream's features are far from centred.
import { type Tensor, tidy } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { noGrad } from "../autograd/tape.js";

export class CkaAccumulator {
  private rows = 0;
  private shift: Tensor | undefined; // (p + q): minus the first batch's column means
  private moments: Tensor | undefined; // (p + q, p + q): Σ zᵢzᵢᵀ of the shifted rows
  private sums: Tensor | undefined; // (p + q): Σ zᵢ of the shifted rows

  constructor(
    readonly p: number, // columns of X
    readonly q: number, // columns of Y
  ) {}

  get n(): number {
    return this.rows;
  }

  // One batch of paired rows: x (B, p), y (B, q), on the device; they stay the caller's.
  add(x: Tensor, y: Tensor): void {
    const [b, p] = x.shape;
    if (x.shape.length !== 2 || y.shape.length !== 2 || p !== this.p || y.shape[1] !== this.q || y.shape[0] !== b) {
      throw new Error(`cka: expected x (B, ${this.p}) and y (B, ${this.q}) with the same B, got ${x} and ${y}`);
    }
    this.shift ??= tidy(() => noGrad(() => ops.scale(ops.mean(ops.concat([x, y], 1), 0), -1))).keep();
    const shift = this.shift;
    const { moments, sums } = tidy(() =>
      noGrad(() => {
        const z = ops.add(ops.concat([x, y], 1), shift); // (B, p + q)
        return { moments: ops.matmul(ops.permute(z, [1, 0]), z), sums: ops.sum(z, 0) };
      }),
    );
    if (!this.moments || !this.sums) {
      this.moments = moments.keep();
      this.sums = sums.keep();
    } else {
      ops.addInPlace(this.moments, moments, 1);
      ops.addInPlace(this.sums, sums, 1);
      moments.dispose();
      sums.dispose();
    }
    this.rows += b;
  }

  // The accumulated moments (p + q, p + q) and sums (p + q) on the device, for ckaFromMoments: a caller with many
  // accumulators reads them all back at once.
  state(): [Tensor, Tensor] {
    if (this.rows < 2 || !this.moments || !this.sums) throw new Error(`cka: expected at least 2 rows, got ${this.rows}`);
    return [this.moments, this.sums];
  }

  // CKA of the rows added so far (at least two: one row has no spread).
  async value(): Promise<number> {
    const [moments, sums] = this.state();
    return ckaFromMoments(await moments.data(), await sums.data(), this.rows, this.p, this.q);
  }

  dispose(): void {
    for (const t of [this.shift, this.moments, this.sums]) t?.dispose();
    this.shift = this.moments = this.sums = undefined;
  }
}

// CKA from the uncentred second moments of Z = [X | Y]: moments (d, d) = Σ zᵢzᵢᵀ, sums (d) = Σ zᵢ, d = p + q; in
// float64. Representations without spread (a constant X or Y) have no defined CKA: NaN.
export function ckaFromMoments(moments: ArrayLike<number>, sums: ArrayLike<number>, n: number, p: number, q: number): number {
  const d = p + q;
  if (moments.length !== d * d || sums.length !== d) throw new Error(`cka: expected moments (${d}, ${d}) and sums (${d}), got ${moments.length} and ${sums.length} values`);
  let xx = 0;
  let yy = 0;
  let xy = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const c = moments[i * d + j] - (sums[i] * sums[j]) / n;
      const c2 = c * c;
      if (i < p && j < p) xx += c2;
      else if (i >= p && j >= p) yy += c2;
      else if (i >= p && j < p) xy += c2; // the YᵀX block (its mirror XᵀY holds the same values)
    }
  }
  return xy / Math.sqrt(xx * yy);
}
