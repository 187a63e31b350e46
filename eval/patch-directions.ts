// The patch projection's output change along the input directions it reads. Its output on a patch p is W p + b, so
// over a set of images its change is a quadratic form in the weights' change D = [dW | db] (C x (K + 1), K = 3 P^2):
//   sum over the patches of ||D [p; 1]||^2 = n tr(D M D^T),   M = the patches' uncentred second moment, [p; 1] [p; 1]^T,
// and M's eigenvectors split it exactly: direction u_k carries lambda_k ||D u_k||^2. Its first one, u_1, is where the
// patches lie most (on Fashion-MNIST's, measured: the flat patch, a patch's mean intensity in each
// channel; `flatness` is the share of u_1's pixel part that is constant in each channel). Measured
// against the original's output on the same patches, ||W_0 [p; 1]||:
//   along  the change along u_1: sqrt(lambda_1 ||D u_1||^2 / tr(W_0 M W_0^T))
//   rest   the change along every other direction: sqrt((tr(D M D^T) - lambda_1 ||D u_1||^2) / tr(W_0 M W_0^T))
// so that along^2 + rest^2 is the patch tokens' squared relative change. With the same cell's patch projection at
// an earlier step (D' its change), each one's change since then (D - D' over the same reference) and its turn: the
// cosine between that change and D' in the same inner product (-1: back the way it came; not a number where it had
// not moved by then). Gradient descent's next move, minus the training loss's gradient on [W | b], splits the same
// way, its turn against the change so far, and its batches' spread about it. The moment is summed on the device
// batch by batch (float32 products, float64 sums); the rest, with the weights, on the host in float64.
import { readTensors, tidyAsync } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { noGrad } from "../autograd/tape.js";
import type { Loader } from "../data/loader.js";
import { batchImages } from "../train/batch-images.js";
import type { VisionTransformer } from "../vit/model.js";
import type { PartSince } from "./output-change.js";

// The patches of a set of images: their second moment's first eigenvector and what it holds.
export interface PatchMoments {
  dims: number; // K + 1: the pixels of a patch (the convolution weight's order), then 1 for the bias
  moment: Float64Array; // (dims x dims): the mean of [p; 1] [p; 1]^T over every patch
  direction: Float64Array; // (dims): u_1, unit length, its largest entry positive
  lambda: number; // its eigenvalue
  share: number; // lambda_1 / tr(M): how much of the patches' second moment lies along u_1
  flatness: number; // of u_1's pixel part, the share (of its squared norm) constant in each channel
}

export interface PatchChange {
  along: number;
  rest: number;
}

export interface PatchSince {
  along: PartSince;
  rest: PartSince;
}

// Gradient descent's next move on a part: its size and turn as a change's since (PartSince), and `spread`, how far
// one batch's move lies from the batches' mean, relative the same way: the square root of the part's squared
// difference summed over the full batches / (batches - 1), the unbiased estimate of the noise a minibatch step adds.
export type DescentPart = PartSince & { spread: number };

export interface PatchDescent {
  along: DescentPart;
  rest: DescentPart;
}

const POWER_ITERATIONS = 10_000;
const POWER_TOLERANCE = 1e-13;

// The second moment of every patch of every image of `loader` (P: the model's patch size) and its first direction.
export async function patchMoments(loader: Loader, patchSize: number): Promise<PatchMoments> {
  const size = loader.transform.spec.size;
  const k = 3 * patchSize * patchSize;
  const dims = k + 1;
  const sums = new Float64Array(dims * dims);
  let count = 0;
  for await (const batch of loader.epoch(0)) {
    await tidyAsync(async () => {
      const [products, totals] = await readTensors(
        noGrad(() => {
          const p = ops.reshape(ops.im2col(batchImages(batch, size), patchSize), [-1, k]); // (R, K)
          return [ops.matmul(ops.permute(p, [1, 0]), p), ops.sum(p, 0)];
        }),
      );
      const rows = batch.labels.length * (size / patchSize) ** 2;
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < k; j++) sums[i * dims + j] += products[i * k + j];
        sums[i * dims + k] += totals[i];
        sums[k * dims + i] += totals[i];
      }
      sums[k * dims + k] += rows;
      count += rows;
    });
  }
  if (count === 0) throw new Error("patch directions: no images to read the patches of");
  const moment = sums.map((x) => x / count);
  const { direction, value } = firstEigenvector(moment, dims);
  let trace = 0;
  for (let i = 0; i < dims; i++) trace += moment[i * dims + i];
  return { dims, moment, direction, lambda: value, share: value / trace, flatness: flatness(direction, patchSize) };
}

// The eigenvector of the largest eigenvalue of a symmetric positive semi-definite matrix, by power iteration from the
// all-ones vector (deterministic), its sign set so that its largest entry is positive.
export function firstEigenvector(m: Float64Array, n: number): { direction: Float64Array; value: number } {
  let v = new Float64Array(n).fill(1 / Math.sqrt(n));
  let value = 0;
  for (let it = 0; it < POWER_ITERATIONS; it++) {
    const w = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += m[i * n + j] * v[j];
      w[i] = s;
    }
    const norm = Math.hypot(...w);
    if (norm === 0) return { direction: v, value: 0 };
    const next = w.map((x) => x / norm);
    const moved = Math.hypot(...next.map((x, i) => x - v[i]));
    v = next;
    value = norm;
    if (moved < POWER_TOLERANCE) break;
  }
  let largest = 0;
  for (let i = 1; i < n; i++) if (Math.abs(v[i]) > Math.abs(v[largest])) largest = i;
  return { direction: v[largest] < 0 ? v.map((x) => -x) : v, value };
}

// Of the pixel part of u (3 channels of P x P, then the bias), the share of its squared norm in each channel's mean.
function flatness(u: Float64Array, patchSize: number): number {
  const pixels = patchSize * patchSize;
  let flat = 0;
  let whole = 0;
  for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let j = 0; j < pixels; j++) {
      s += u[c * pixels + j];
      whole += u[c * pixels + j] ** 2;
    }
    flat += (s * s) / pixels;
  }
  return whole > 0 ? flat / whole : 0;
}

// A model's patch projection as [W | b] (C x (K + 1)), in float64.
export async function patchProjection(model: VisionTransformer): Promise<Float64Array> {
  const { weight, bias } = model.patchEmbed;
  const [w, b] = await readTensors([weight, ...(bias ? [bias] : [])]);
  return besideBias(w, b, weight.shape[0]);
}

// The rows of w (C x K) each followed by b's entry (0 without a bias): [w | b], in float64.
export function besideBias(w: ArrayLike<number>, b: ArrayLike<number> | undefined, c: number): Float64Array {
  const k = w.length / c;
  const out = new Float64Array(c * (k + 1));
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < k; j++) out[i * (k + 1) + j] = w[i * k + j];
    out[i * (k + 1) + k] = b ? b[i] : 0;
  }
  return out;
}

// besideBias's inverse: [w | b] (C rows) as the weight (C x K) and the bias (C), in float32.
export function apartFromBias(x: Float64Array, c: number): { weight: Float32Array; bias: Float32Array } {
  const dims = x.length / c;
  const weight = new Float32Array(c * (dims - 1));
  for (let r = 0; r < c; r++) weight.set(x.subarray(r * dims, (r + 1) * dims - 1), r * (dims - 1));
  return { weight, bias: Float32Array.from({ length: c }, (_, r) => x[(r + 1) * dims - 1]) };
}

// The quadratic forms of two changes (C x dims each) under the moment and along its first direction.
function forms(x: Float64Array, y: Float64Array, m: PatchMoments): { whole: number; along: number } {
  const { dims, moment, direction } = m;
  const c = x.length / dims;
  let whole = 0;
  let along = 0;
  const my = new Float64Array(dims);
  for (let r = 0; r < c; r++) {
    const xr = x.subarray(r * dims, (r + 1) * dims);
    const yr = y.subarray(r * dims, (r + 1) * dims);
    for (let i = 0; i < dims; i++) {
      let s = 0;
      for (let j = 0; j < dims; j++) s += moment[i * dims + j] * yr[j];
      my[i] = s;
    }
    let xu = 0;
    let yu = 0;
    for (let i = 0; i < dims; i++) {
      whole += xr[i] * my[i];
      xu += xr[i] * direction[i];
      yu += yr[i] * direction[i];
    }
    along += xu * yu;
  }
  return { whole, along: m.lambda * along };
}

const minus = (x: Float64Array, y: Float64Array) => x.map((v, i) => v - y[i]);
const split = (f: { whole: number; along: number }) => ({ along: f.along, rest: f.whole - f.along });

// The change of `tuned`'s patch projection from `original`'s along the first direction and the rest (and since
// `before`, with its turn), each [W | b] as patchProjection gives it.
export function patchChange(original: Float64Array, tuned: Float64Array, m: PatchMoments, before?: Float64Array): { change: PatchChange; since?: PatchSince } {
  const reference = forms(original, original, m).whole;
  const d = minus(tuned, original);
  const whole = split(forms(d, d, m));
  const change = { along: Math.sqrt(whole.along / reference), rest: Math.sqrt(Math.max(0, whole.rest) / reference) };
  return before ? { change, since: againstEarlier(minus(tuned, before), minus(before, original), m, reference) } : { change };
}

// Gradient descent's next move on `tuned`'s patch projection, -G (G: the training loss's gradient on [W | b],
// eval/patch-gradient.ts), split as a change is: along the first direction and the rest, the output change a step of
// rate 1 along it would make (relative as patchChange's), its turn, the cosine with the change from `original` so
// far (+1: further the way it came, -1: back; not a number where that part had not moved), and its batches' spread
// about their own mean (DescentPart; not a number without two full batches). `g`: eval/patch-gradient.ts's
// PatchGradient.
export function patchDescent(original: Float64Array, tuned: Float64Array, g: { gradient: Float64Array; batches: Float64Array[] }, m: PatchMoments): PatchDescent {
  const reference = forms(original, original, m).whole;
  const move = againstEarlier(g.gradient.map((x) => -x), minus(tuned, original), m, reference);
  const k = g.batches.length;
  const mean = new Float64Array(g.gradient.length);
  for (const batch of g.batches) batch.forEach((x, i) => (mean[i] += x / k));
  const spread = { along: 0, rest: 0 };
  for (const batch of g.batches) {
    const d = minus(batch, mean);
    const off = split(forms(d, d, m));
    spread.along += off.along / (k - 1);
    spread.rest += off.rest / (k - 1);
  }
  const part = (key: "along" | "rest"): DescentPart => ({ ...move[key], spread: k >= 2 ? Math.sqrt(Math.max(0, spread[key]) / reference) : NaN });
  return { along: part("along"), rest: part("rest") };
}

// A move of `tuned`'s patch projection ([W | b]: e.g. the optimiser's memory, eval/optimizer-memory.ts) split as a change
// is, each part's output change relative to the original's output and its turn against the change from `original`.
export function patchMove(original: Float64Array, tuned: Float64Array, move: Float64Array, m: PatchMoments): PatchSince {
  return againstEarlier(move, minus(tuned, original), m, forms(original, original, m).whole);
}

// A move and the change before it, each part's size relative to `reference` and its cosine with the earlier change's.
function againstEarlier(move: Float64Array, earlier: Float64Array, m: PatchMoments, reference: number): PatchSince {
  const [s, u, su] = [split(forms(move, move, m)), split(forms(earlier, earlier, m)), split(forms(move, earlier, m))];
  const part = (key: "along" | "rest"): PartSince => ({ change: Math.sqrt(Math.max(0, s[key]) / reference), turn: su[key] / Math.sqrt(s[key] * u[key]) });
  return { along: part("along"), rest: part("rest") };
}
