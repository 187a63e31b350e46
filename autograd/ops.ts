// Differentiable operations: each calls its kernel's forward, and when an input requires grad (and grad mode
// is on) attaches a GradNode whose backward calls the kernel's backward. Ops never submit or read back.
// vit/, peft/, train/ and eval/ use these, never kernels/ directly.
import { Tensor, type Shape } from "../engine/tensor.js";
import { gradEnabled, noBackward, record, recordSumming } from "./tape.js";
import { type BinaryOp, type UnaryOp, axpyInPlace, binaryForward, unaryForward } from "../kernels/elementwise.js";
import type { Rng } from "../util/random.js";
import { fill } from "../kernels/fill.js";
import { reduceForward } from "../kernels/reduce.js";
import { matmulForward } from "../kernels/matmul.js";
import { im2colIndex } from "../kernels/im2col.js";
import { matmulPrecision } from "./precision.js";
import { type NormAfter, layernormBackward, layernormForward } from "../kernels/layernorm.js";
import { softmaxBackward, softmaxForward } from "../kernels/softmax.js";
import { checkLabels, crossEntropyBackward, crossEntropyForward } from "../kernels/cross-entropy.js";
import {
  type AttentionOptions,
  attentionBackward,
  attentionForward,
  attentionProbs as attentionProbsKernel,
  releaseSaved,
} from "../kernels/attention.js";
import { inversePermutation, permuteForward } from "../kernels/permute.js";
import { type PlacedBlock, blockOf, concatForward, placeBlocks as placeBlocksForward, sliceBackward, sliceForward } from "../kernels/slice.js";
import { tokenSequenceBackward, tokenSequenceForward } from "../kernels/tokens.js";
import { gatherRows as gatherRowsKernel, scatterAddRows } from "../kernels/gather.js";
import { type KnnOptions, knnTopK } from "../kernels/knn.js";

export function zeros(shape: Shape): Tensor {
  return fill(shape, 0);
}

export function ones(shape: Shape): Tensor {
  return fill(shape, 1);
}

export function full(shape: Shape, value: number): Tensor {
  return fill(shape, value);
}

// ---- elementwise ----

function unary(op: UnaryOp, a: Tensor, alpha: number, grad: (a: Tensor, y: Tensor, dy: Tensor) => Tensor): Tensor {
  const y = unaryForward(op, a, alpha);
  return record(y, op, [a], (dy) => [grad(a, y, dy)]);
}

export const neg = (a: Tensor) => unary("neg", a, 0, (_a, _y, dy) => unaryForward("neg", dy));
export const exp = (a: Tensor) => unary("exp", a, 0, (_a, y, dy) => binaryForward("mul", dy, y));
export const log = (a: Tensor) => unary("log", a, 0, (a, _y, dy) => binaryForward("div", dy, a));
export const sqrt = (a: Tensor) =>
  unary("sqrt", a, 0, (_a, y, dy) => unaryForward("scale", binaryForward("div", dy, y), 0.5));
export const square = (a: Tensor) =>
  unary("square", a, 0, (a, _y, dy) => unaryForward("scale", binaryForward("mul", dy, a), 2));
export const relu = (a: Tensor) => unary("relu", a, 0, (a, _y, dy) => binaryForward("reluGrad", a, dy));
export const gelu = (a: Tensor) => unary("gelu", a, 0, (a, _y, dy) => binaryForward("geluGrad", a, dy));
export const tanh = (a: Tensor) => unary("tanh", a, 0, (_a, y, dy) => binaryForward("tanhGrad", y, dy));
export const sigmoid = (a: Tensor) => unary("sigmoid", a, 0, (_a, y, dy) => binaryForward("sigmoidGrad", y, dy));
export const scale = (a: Tensor, s: number) => unary("scale", a, s, (_a, _y, dy) => unaryForward("scale", dy, s));
export const addScalar = (a: Tensor, s: number) => unary("addScalar", a, s, (_a, _y, dy) => dy);

function binary(op: BinaryOp, a: Tensor, b: Tensor, grads: (dy: Tensor) => [Tensor | undefined, Tensor | undefined]): Tensor {
  const y = binaryForward(op, a, b);
  return record(y, op, [a, b], (dy) => {
    const [da, db] = grads(dy);
    return [da && a.requiresGrad ? sumTo(da, a.shape) : undefined, db && b.requiresGrad ? sumTo(db, b.shape) : undefined];
  });
}

export const add = (a: Tensor, b: Tensor) => binary("add", a, b, (dy) => [dy, dy]);
export const sub = (a: Tensor, b: Tensor) => binary("sub", a, b, (dy) => [dy, b.requiresGrad ? unaryForward("neg", dy) : undefined]);
export const mul = (a: Tensor, b: Tensor) =>
  binary("mul", a, b, (dy) => [
    a.requiresGrad ? binaryForward("mul", dy, b) : undefined,
    b.requiresGrad ? binaryForward("mul", dy, a) : undefined,
  ]);
export const div = (a: Tensor, b: Tensor) =>
  binary("div", a, b, (dy) => [
    a.requiresGrad ? binaryForward("div", dy, b) : undefined,
    // d(a/b)/db = -a / b^2
    b.requiresGrad ? unaryForward("neg", binaryForward("div", binaryForward("mul", dy, a), unaryForward("square", b))) : undefined,
  ]);

// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p). The mask comes from
// the seeded CPU generator, so runs are reproducible on any device.
export function dropout(x: Tensor, p: number, rng: Rng): Tensor {
  if (p === 0) return x;
  const keep = 1 / (1 - p);
  const mask = Tensor.fromArray(rng.fill(x.size, () => (rng.next() < p ? 0 : keep)), x.shape);
  return mul(x, mask);
}

// target += alpha * x in place, outside autograd (weight merging, manual updates).
export function addInPlace(target: Tensor, x: Tensor, alpha: number): void {
  noBackward("add_in_place", [x]);
  axpyInPlace(target, x, alpha);
}

// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.size === shapeSize(shape) && g.shape.length === shape.length) return g;
  if (g.size === shapeSize(shape)) return g.reshape(shape);
  return reduceToShape(g, shape);
}

function reduceToShape(g: Tensor, shape: Shape): Tensor {
  const rank = g.shape.length;
  const target = [...new Array(rank - shape.length).fill(1), ...shape];
  let out = g;
  for (let axis = 0; axis < rank; axis++) {
    if (target[axis] === 1 && out.shape[axis] !== 1) out = sum(out, axis, true);
    else if (target[axis] !== out.shape[axis]) throw new Error(`sumTo: cannot reduce ${g} to (${shape.join(", ")})`);
  }
  return out.reshape(shape);
}

// ---- reductions ----

function keepShape(x: Tensor, axis: number, keepdim: boolean): number[] {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  return keepdim ? x.shape.map((d, i) => (i === ax ? 1 : d)) : x.shape.filter((_, i) => i !== ax);
}

export function sum(x: Tensor, axis: number, keepdim = false): Tensor {
  const y = reduceForward("sum", x, axis).reshape(keepShape(x, axis, keepdim));
  // d sum / dx: the gradient broadcast back along the reduced axis.
  return record(y, "sum", [x], (dy) => [binaryForward("add", zeros(x.shape), dy.reshape(keepShape(x, axis, true)))]);
}

export function mean(x: Tensor, axis: number, keepdim = false): Tensor {
  const n = x.shape[axis < 0 ? axis + x.shape.length : axis];
  const y = reduceForward("mean", x, axis).reshape(keepShape(x, axis, keepdim));
  return record(y, "mean", [x], (dy) => [
    binaryForward("add", zeros(x.shape), unaryForward("scale", dy, 1 / n).reshape(keepShape(x, axis, true))),
  ]);
}

// Max along an axis. Ties share the gradient equally.
export function max(x: Tensor, axis: number, keepdim = false): Tensor {
  const y = reduceForward("max", x, axis).reshape(keepShape(x, axis, keepdim));
  return record(y, "max", [x], (dy) => {
    const kept = keepShape(x, axis, true);
    const mask = binaryForward("eq", x, y.reshape(kept));
    const count = reduceForward("sum", mask, axis).reshape(kept);
    return [binaryForward("mul", mask, binaryForward("div", dy.reshape(kept), count))];
  });
}

// Sum of every element, as a scalar tensor of shape ().
export function sumAll(x: Tensor): Tensor {
  return sum(reshape(x, [x.size]), 0);
}

function shapeSize(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---- matrix products ----

// a (..., M, K) · b (..., K, N) or b (K, N) shared over the batch -> (..., M, N).
export function matmul(a: Tensor, b: Tensor): Tensor {
  const precision = matmulPrecision(); // the forward's, for the backward too
  const y = matmulForward(a, b, { inputs: precision });
  return record(y, "matmul", [a, b], (dy) => {
    const da = a.requiresGrad ? matmulForward(dy, b, { inputs: precision, transB: true }) : undefined;
    let db: Tensor | undefined;
    if (b.requiresGrad) {
      const k = a.shape[a.shape.length - 1];
      const n = b.shape[b.shape.length - 1];
      // A shared 2-D b sums its gradient over the batch: fold the batch into the rows.
      db = b.shape.length === 2 ? matmulForward(a.reshape([-1, k]), dy.reshape([-1, n]), { inputs: precision, transA: true }) : matmulForward(a, dy, { inputs: precision, transA: true });
    }
    return [da, db];
  });
}

export interface LinearOptions {
  gelu?: boolean; // y = gelu(x·Wᵀ + b), fused into the matmul epilogue
  residual?: Tensor; // (..., N): added last, fused into the epilogue
}

// The layernorm that a pre-norm block applies to a residual product's output (attn.proj's, then norm2; mlp.fc2's,
// then the next block's norm1).
export interface NormParams {
  gamma: Tensor; // (N)
  beta: Tensor; // (N)
  eps: number;
}

// x (..., K) · w (N, K)ᵀ + bias (N), PyTorch's nn.Linear layout, with optional fused GELU and residual add.
export function linear(x: Tensor, w: Tensor, bias?: Tensor, opts: LinearOptions = {}): Tensor {
  return linearNormed(x, w, bias, opts)[0];
}

// linear, then the layernorm of its output: [y, layernorm(y)]. The norm is computed in the product's epilogue where
// the kernel can (kernels/matmul.ts `norm`), saving a dispatch, else by its own; on the tape the two are the
// product's node and a layernorm node with y as its input, as if composed.
export function linearThenNorm(x: Tensor, w: Tensor, bias: Tensor | undefined, opts: LinearOptions, norm: NormParams): [Tensor, Tensor] {
  const [y, normed] = linearNormed(x, w, bias, opts, norm);
  return [y, normed!];
}

function linearNormed(x: Tensor, w: Tensor, bias: Tensor | undefined, opts: LinearOptions, norm?: NormParams): [Tensor, Tensor | undefined] {
  const k = x.shape[x.shape.length - 1];
  if (w.shape.length !== 2 || w.shape[1] !== k) {
    throw new Error(`linear: expected weight (N, ${k}) for input (${x.shape.join(", ")}), got (${w.shape.join(", ")})`);
  }
  const n = w.shape[0];
  const precision = matmulPrecision();
  const needGrad = gradEnabled() && [x, w, bias, opts.residual].some((t) => t?.requiresGrad);
  const x2 = x.reshape([-1, k]);
  const preact = opts.gelu && needGrad ? Tensor.empty([x2.shape[0], n]) : undefined;
  const residual = opts.residual?.reshape([-1, n]);
  const after = norm && normOutputs(x2.shape[0], norm);
  const y2 = matmulForward(x2, w, { inputs: precision, transB: true, bias, gelu: opts.gelu, preact, residual, norm: after });
  const y = y2.reshape([...x.shape.slice(0, -1), n]);
  y2.dispose();
  x2.dispose();
  residual?.dispose();
  const inputs = [x, w, ...(bias ? [bias] : []), ...(opts.residual ? [opts.residual] : [])];
  const recorded = record(y, opts.gelu ? "linear+gelu" : "linear", inputs, (dy) => {
    const dy2 = dy.reshape([-1, n]);
    const dz = preact ? binaryForward("geluGrad", preact, dy2) : dy2;
    // The bias gradient, dz's column sums, comes with the weight gradient's product dzᵀ·x when both are needed.
    const db = bias?.requiresGrad && w.requiresGrad ? Tensor.empty([n]) : undefined;
    const grads: (Tensor | undefined)[] = [
      x.requiresGrad ? matmulForward(dz, w, { inputs: precision }).reshape(x.shape) : undefined,
      w.requiresGrad ? matmulForward(dz, x.reshape([-1, k]), { inputs: precision, transA: true, rowSums: db }) : undefined,
    ];
    if (bias) grads.push(bias.requiresGrad ? (db ?? reduceForward("sum", dz, 0)) : undefined);
    if (opts.residual) grads.push(opts.residual.requiresGrad ? dy : undefined);
    return grads;
  });
  return [recorded, after && recordedNorm(recorded, after)];
}

// What matmulForward writes a norm's results into, for `rows` rows of the norm's width.
function normOutputs(rows: number, p: NormParams): NormAfter {
  const n = p.gamma.shape[0];
  return { out: Tensor.empty([rows, n]), mean: Tensor.empty([rows]), rstd: Tensor.empty([rows]), ...p };
}

// The norm's result (y's shape) on the tape, as a layernorm of y.
function recordedNorm(y: Tensor, after: NormAfter): Tensor {
  const normed = after.out.reshape(y.shape);
  after.out.dispose();
  return recordLayernorm(y, after.gamma, after.beta, normed, after.mean, after.rstd);
}

// A ViT's patch embedding, a convolution with stride P: images (B, ch, H, W) -> tokens (B, G, N), G = (H/P)(W/P),
// the linear layer w (N, ch*P*P), bias (N) applied to each P x P patch flattened as (ch, P, P). Its product reads
// the patches from the images in place (kernels/im2col.ts through matmul's gatherA), without the im2col copy, and
// so does the weight gradient's. Images that need a gradient take the composition (im2col, then linear) instead.
export function patchEmbed(images: Tensor, w: Tensor, bias: Tensor | undefined, P: number): Tensor {
  const [B, ch, H, W] = images.shape;
  if (images.shape.length !== 4 || !(P > 0) || H % P !== 0 || W % P !== 0 || w.shape.length !== 2 || w.shape[1] !== ch * P * P) {
    throw new Error(`patchEmbed: expected images (B, ch, H, W) with H and W multiples of ${P} and weight (N, ch*${P}*${P}), got (${images.shape.join(", ")}) and (${w.shape.join(", ")})`);
  }
  const [gh, gw, n] = [H / P, W / P, w.shape[0]];
  if (gradEnabled() && images.requiresGrad) return linear(im2col(images, P), w, bias);
  const precision = matmulPrecision();
  const index = im2colIndex(B, ch, H, W, P);
  const y2 = matmulForward(images, w, { inputs: precision, transB: true, bias, gatherA: index });
  const y = y2.reshape([B, gh * gw, n]);
  y2.dispose();
  return record(y, "patchEmbed", [images, w, ...(bias ? [bias] : [])], (dy) => {
    const dz = dy.reshape([-1, n]);
    let dw: Tensor | undefined;
    if (w.requiresGrad) {
      // dwᵀ = patchesᵀ·dz, patchesᵀ read in place as the same index with its tables swapped, then transposed: the
      // patches materialised (and packed, 147 columns not being a multiple of 4) cost the default model's step
      // twice as much (1.04 against 0.48 ms by census).
      const dwT = matmulForward(images, dz, { inputs: precision, gatherA: { rows: index.cols, cols: index.rows } });
      dw = permuteForward(dwT, [1, 0]);
      dwT.dispose();
    }
    return [undefined, dw, ...(bias ? [bias.requiresGrad ? reduceForward("sum", dz, 0) : undefined] : [])];
  });
}

// The patches of images (B, ch, H, W) as rows: (B, ch, gh, P, gw, P) -> (B, gh, gw, ch, P, P) -> (B, G, ch*P*P), a
// convolution weight's layout; a strided copy.
export function im2col(images: Tensor, P: number): Tensor {
  const [B, ch, H, W] = images.shape;
  const [gh, gw] = [H / P, W / P];
  return reshape(permute(reshape(images, [B, ch, gh, P, gw, P]), [0, 2, 4, 1, 3, 5]), [B, gh * gw, ch * P * P]);
}

export interface MlpWeights {
  w1: Tensor; // (hidden, K)
  b1?: Tensor; // (hidden)
  w2: Tensor; // (N, hidden)
  b2?: Tensor; // (N)
}

// A transformer block's MLP, linear(linear(x, w1, b1, { gelu }), w2, b2, { residual }), recorded as one node so that
// GELU's backward rides in the product that makes its incoming gradient (matmul's dgelu epilogue) instead of an
// elementwise pass of its own over the hidden activations: one dispatch less per block in a training step.
export function mlp(x: Tensor, m: MlpWeights, residual?: Tensor): Tensor {
  return mlpNormed(x, m, residual)[0];
}

// mlp, then the layernorm of its output: [y, layernorm(y)], as linearThenNorm.
export function mlpThenNorm(x: Tensor, m: MlpWeights, residual: Tensor | undefined, norm: NormParams): [Tensor, Tensor] {
  const [y, normed] = mlpNormed(x, m, residual, norm);
  return [y, normed!];
}

function mlpNormed(x: Tensor, m: MlpWeights, residual?: Tensor, norm?: NormParams): [Tensor, Tensor | undefined] {
  const { w1, b1, w2, b2 } = m;
  const k = x.shape[x.shape.length - 1];
  if (w1.shape.length !== 2 || w1.shape[1] !== k || w2.shape.length !== 2 || w2.shape[1] !== w1.shape[0]) {
    throw new Error(`mlp: expected w1 (H, ${k}) and w2 (N, H) for input (${x.shape.join(", ")}), got (${w1.shape.join(", ")}) and (${w2.shape.join(", ")})`);
  }
  const [hiddenWidth, n] = [w1.shape[0], w2.shape[0]];
  const precision = matmulPrecision();
  const needGrad = gradEnabled() && [x, w1, b1, w2, b2, residual].some((t) => t?.requiresGrad);
  const x2 = x.reshape([-1, k]);
  const preact = needGrad ? Tensor.empty([x2.shape[0], hiddenWidth]) : undefined;
  const hidden = matmulForward(x2, w1, { inputs: precision, transB: true, bias: b1, gelu: true, preact });
  x2.dispose();
  const residual2 = residual?.reshape([-1, n]);
  const after = norm && normOutputs(hidden.shape[0], norm);
  const y2 = matmulForward(hidden, w2, { inputs: precision, transB: true, bias: b2, residual: residual2, norm: after });
  const y = y2.reshape([...x.shape.slice(0, -1), n]);
  y2.dispose();
  residual2?.dispose();
  if (!needGrad) hidden.dispose();
  const inputs = [x, w1, ...(b1 ? [b1] : []), w2, ...(b2 ? [b2] : []), ...(residual ? [residual] : [])];
  const recorded = record(y, "mlp", inputs, (dy) => {
    const dy2 = dy.reshape([-1, n]);
    // Bias gradients come with their weight gradients' products when both are needed (see linear).
    const db2 = b2?.requiresGrad && w2.requiresGrad ? Tensor.empty([n]) : undefined;
    const dw2 = w2.requiresGrad ? matmulForward(dy2, hidden, { inputs: precision, transA: true, rowSums: db2 }) : undefined;
    const below = x.requiresGrad || w1.requiresGrad || b1?.requiresGrad;
    const dz1 = below ? matmulForward(dy2, w2, { inputs: precision, dgelu: preact }) : undefined; // the gradient at fc1's preactivation
    const db1 = b1?.requiresGrad && w1.requiresGrad ? Tensor.empty([hiddenWidth]) : undefined;
    const grads: (Tensor | undefined)[] = [
      x.requiresGrad ? matmulForward(dz1!, w1, { inputs: precision }).reshape(x.shape) : undefined,
      w1.requiresGrad ? matmulForward(dz1!, x.reshape([-1, k]), { inputs: precision, transA: true, rowSums: db1 }) : undefined,
    ];
    if (b1) grads.push(b1.requiresGrad ? (db1 ?? reduceForward("sum", dz1!, 0)) : undefined);
    grads.push(dw2);
    if (b2) grads.push(b2.requiresGrad ? (db2 ?? reduceForward("sum", dy2, 0)) : undefined);
    if (residual) grads.push(residual.requiresGrad ? dy : undefined);
    return grads;
  });
  return [recorded, after && recordedNorm(recorded, after)];
}

// ---- normalisation and losses ----

// LayerNorm over the last axis; gamma, beta (C) optional.
export function layernorm(x: Tensor, gamma: Tensor | undefined, beta: Tensor | undefined, eps: number): Tensor {
  const { y, mean, rstd } = layernormForward(x, gamma, beta, eps);
  return recordLayernorm(x, gamma, beta, y, mean, rstd);
}

// y = layernorm(x) with its saved mean and rstd, on the tape (mean and rstd disposed when no gradient is needed).
function recordLayernorm(x: Tensor, gamma: Tensor | undefined, beta: Tensor | undefined, y: Tensor, mean: Tensor, rstd: Tensor): Tensor {
  const inputs = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
  if (!gradEnabled() || !inputs.some((t) => t.requiresGrad)) {
    mean.dispose();
    rstd.dispose();
    return y;
  }
  // x's gradient from its other uses (a pre-norm block's residual) is added in the kernel's dx pass.
  return recordSumming(y, "layernorm", inputs, (dy, earlier) => {
    const dxAdd = x.requiresGrad ? earlier[0] : undefined;
    const g = layernormBackward(dy, x, gamma, mean, rstd, {
      dx: x.requiresGrad,
      dgamma: gamma?.requiresGrad ?? false,
      dbeta: beta?.requiresGrad ?? false,
      dxAdd: dxAdd?.reshape(x.shape),
    });
    // gamma and beta used elsewhere too (rare): an add of their own.
    const plus = (t: Tensor | undefined, k: number) => {
      const other = earlier[k];
      return t && other ? binaryForward("add", t, other.reshape(t.shape)) : t;
    };
    return [g.dx, ...(gamma ? [plus(g.dgamma, 1)] : []), ...(beta ? [plus(g.dbeta, gamma ? 2 : 1)] : [])];
  });
}

// Softmax over the last axis.
export function softmax(x: Tensor): Tensor {
  const y = softmaxForward(x);
  return record(y, "softmax", [x], (dy) => [softmaxBackward(y, dy)]);
}

// Mean cross-entropy of logits (B, C) against integer labels (B): a Tensor (i32) or an Int32Array, which is
// range-checked on the CPU first (labels on the GPU cannot be checked without a read-back; they give NaN).
export function crossEntropy(logits: Tensor, labels: Tensor | Int32Array, opts: { labelSmoothing?: number } = {}): Tensor {
  let labelTensor: Tensor;
  if (labels instanceof Tensor) labelTensor = labels;
  else {
    checkLabels(labels, logits.shape[logits.shape.length - 1], "cross_entropy");
    labelTensor = Tensor.fromArray(labels, [labels.length], "i32");
  }
  const { loss, lse } = crossEntropyForward(logits, labelTensor, opts);
  return record(loss, "cross_entropy", [logits], (dloss) => [crossEntropyBackward(logits, labelTensor, lse, dloss, opts)]);
}

// ---- attention ----

// Scaled-dot-product attention straight from the packed qkv (B, N, 3*H*D) to o (B, N, H*D), in the version
// kernels/attention.ts resolves (a fused kernel, or unfused from matmul and softmax); the backward runs the same.
// Under withPrecision("f16") its operands are f16 where that version is mma (autograd/precision.ts).
export function attention(qkv: Tensor, heads: number, opts: AttentionOptions = {}): Tensor {
  const { o, saved } = attentionForward(qkv, heads, { inputs: matmulPrecision(), ...opts });
  if (!gradEnabled() || !qkv.requiresGrad) {
    releaseSaved(saved);
    return o;
  }
  return record(o, "attention", [qkv], (dout) => [attentionBackward(saved, dout)]);
}

// The attention probabilities (B, H, N, N), materialised for inspection; no backward (call under noGrad).
export function attentionProbs(qkv: Tensor, heads: number, scale?: number): Tensor {
  noBackward("attention_probs", [qkv]);
  return attentionProbsKernel(qkv, heads, { scale });
}

// ---- layout ----

// A view of x with another shape (-1 infers one dimension); the gradient is reshaped back.
export function reshape(x: Tensor, shape: Shape): Tensor {
  const from = x.shape;
  return record(x.reshape(shape), "reshape", [x], (dy) => [dy.reshape(from)]);
}

export function permute(x: Tensor, perm: number[]): Tensor {
  const y = permuteForward(x, perm);
  return record(y, "permute", [x], (dy) => [permuteForward(dy, inversePermutation(perm))]);
}

// x[..., start:end, ...] along `axis`, as a new contiguous tensor.
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const y = sliceForward(x, axis, start, end);
  return record(y, "slice", [x], (dy) => [sliceBackward(dy, x.shape, axis, start)]);
}

export function concat(xs: Tensor[], axis: number): Tensor {
  const y = concatForward(xs, axis);
  const ax = axis < 0 ? axis + xs[0].shape.length : axis;
  return record(y, "concat", xs, (dy) => {
    let start = 0;
    return xs.map((x) => {
      const g = x.requiresGrad ? sliceForward(dy, ax, start, start + x.shape[ax]) : undefined;
      start += x.shape[ax];
      return g;
    });
  });
}

// A (rows, cols) matrix of zeros with the blocks written in (kernels/slice.ts placeBlocks); a block's gradient is
// its block of dy.
export function placeBlocks(shape: [number, number], blocks: PlacedBlock[]): Tensor {
  const y = placeBlocksForward(shape, blocks);
  return record(y, "placeBlocks", blocks.map((b) => b.x), (dy) =>
    blocks.map(({ x, row, col }) => (x.requiresGrad ? blockOf(dy, row, col, x.shape[0], x.shape[1]) : undefined)),
  );
}

// The ViT's input sequence [cls; tokens] + pos in one kernel (kernels/tokens.ts): tokens (B, G, C), cls (1, 1, C),
// pos (1, 1 + G, C) -> (B, 1 + G, C). The gradients are those of the composition cat(cls + zeros, tokens) + pos.
export function tokenSequence(tokens: Tensor, cls: Tensor, pos: Tensor): Tensor {
  return tokenSequenceNormed(tokens, cls, pos)[0];
}

// tokenSequence, then the layernorm of the sequence (the first block's norm1): [seq, layernorm(seq)], made and
// normalised in one pass where the kernels can (kernels/tokens.ts), as linearThenNorm.
export function tokenSequenceThenNorm(tokens: Tensor, cls: Tensor, pos: Tensor, norm: NormParams): [Tensor, Tensor] {
  const [seq, normed] = tokenSequenceNormed(tokens, cls, pos, norm);
  return [seq, normed!];
}

function tokenSequenceNormed(tokens: Tensor, cls: Tensor, pos: Tensor, norm?: NormParams): [Tensor, Tensor | undefined] {
  const [B, G] = tokens.shape;
  const after = norm && normOutputs(B * (1 + G), norm);
  const y = tokenSequenceForward(tokens, cls, pos, after);
  const recorded = record(y, "token_sequence", [tokens, cls, pos], (dy) => {
    const g = tokenSequenceBackward(dy, { tokens: tokens.requiresGrad, cls: cls.requiresGrad ? cls.shape : undefined, pos: pos.requiresGrad ? pos.shape : undefined });
    return [g.dtokens, g.dcls, g.dpos];
  });
  return [recorded, after && recordedNorm(recorded, after)];
}

// Rows of x (R, C) picked by index (M) -> (M, C).
export function gatherRows(x: Tensor, index: Tensor): Tensor {
  const y = gatherRowsKernel(x, index);
  return record(y, "gather_rows", [x], (dy) => [scatterAddRows(dy, index, x.shape[0])]);
}

// The k nearest bank rows of each query by inner product, or cosine with opts.normalize (kernels/knn.ts).
// queries (Q, D), bank (N, D) or row chunks (N_i, D) -> sims (Q, K), indices (Q, K) i32; -Infinity and -1 past N.
export function knn(queries: Tensor, bank: Tensor | Tensor[], k: number, opts: KnnOptions = {}): { sims: Tensor; indices: Tensor } {
  noBackward("knn", [queries, ...(Array.isArray(bank) ? bank : [bank])]);
  return knnTopK(queries, bank, k, opts);
}
