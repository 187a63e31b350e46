// Optimiser updates, in place, with PyTorch's semantics, several parameter tensors per dispatch. Every update may
// scale the gradient first by a 1-element tensor `gradScale` (the clip coefficient of gradient-norm clipping,
// computed on the GPU by sumOfSquares + clipCoefficient, so clipping needs no read-back):
//
//   g = grad * gradScale
//   SGD (torch.optim.SGD):      g += wd * p
//                               buf = g on the first step, else momentum * buf + (1 - dampening) * g
//                               g = nesterov ? g + momentum * buf : buf          (when momentum != 0)
//                               p -= lr * g
//   AdamW (torch.optim.AdamW):  p *= 1 - lr * wd                                  (decoupled decay)
//                               m += (1 - beta1) * (g - m);  v = beta2 * v + (1 - beta2) * g^2
//                               p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//   sumOfSquares(ts) = sum over every element of every tensor of x^2, a (1) tensor
//   clipCoefficient(s, maxNorm) = min(1, maxNorm / (sqrt(s) + 1e-6)), a (1) tensor (torch clip_grad_norm_)
//   sumsOfSquares(ts), clipCoefficients(s, maxNorm), scaleEach(ts, f): the same per tensor, (T) tensors, and
//     ts[k] *= f[k] in place: clipping every gradient by its own norm (DINO's clip_gradients)
//   lossScaleStep(s, scale, goodSteps): dynamic loss scaling (torch.amp.GradScaler) on the device, from the sum of
//     squares s of the scaled gradients: s not finite (an inf or NaN gradient, or squares past f32's range) is an
//     overflow: gradScale = 0, scale *= backoff, goodSteps = 0; else gradScale = clip / scale (clip as
//     clipCoefficient of the unscaled norm sqrt(s) / scale, or 1), goodSteps += 1, and after `interval` good steps
//     scale *= growth, goodSteps = 0. With skipZero the updates leave param and state untouched where gradScale is
//     0: the overflowed step is skipped, with no read-back.
//   adamwUpdates with `counter`: AdamW's step count t lives on the device, advanced only where gradScale is not 0,
//     as PyTorch's GradScaler calls optimizer.step() only for steps without an overflow. One one-invocation kernel
//     (`adamw-count`) advances it and writes (gradScale, 1 - beta1^t, sqrt(1 - beta2^t)), which the updates bind
//     in gradScale's place. 1 - beta^t is computed as -expm1(t ln beta): by its Taylor series up to x^7 where
//     |t ln beta| < 0.1 (truncated below 3e-12 relative, so f32 rounding dominates, where 1 - exp would cancel),
//     1 - exp otherwise (a few ulp, the result being above 0.09 there); t is an f32, exact to 2^24 steps.
//
//   Each tensor may have a rate of its own, lr * lrScale (layer-wise rate decay, peft/layer-decay.ts), as PyTorch's
//   parameter groups: the tensors of one scale go together, each scale's dispatches with that rate (and AdamW's
//   decoupled decay 1 - lr * lrScale * wd).
//   sgd/adamw v2: up to `tensors` parameters per dispatch (as many as their param, state and grad bindings fit in
//     the adapter's storage buffers per stage: 5 for SGD with momentum, 3 for AdamW at 16), their elements laid end
//     to end in one index space whose tensor boundaries are in the uniform; each tensor keeps its own weight decay.
//     One invocation per 4 elements, as one vec4 when every size of the dispatch is a multiple of 4 and otherwise a
//     loop of 4 scalars spaced a workgroup apart (adjacent lanes touch adjacent elements); tensors are grouped by
//     that; workgroup 64, 1-D grid folded into (x, y). Scalars of the update that do not depend on the element (bias
//     corrections, 1 - beta) are computed on the CPU in float64 and passed in the uniform. A step of the default
//     study's model updated its 56 tensors in 56 dispatches with v1 (one per tensor), 12 with SGD in v2; on lavapipe
//     a dispatch costs ~60 us beside its work, and these are a few microseconds of work each.
//   sumsq v1: each level reduces n values to ceil(n / SPAN) partials, invocation t summing x[t], x[t + T], ...
//     (T partials; adjacent lanes read adjacent elements); every tensor writes its partials into one buffer, several
//     tensors per dispatch as the updates do, then levels repeat until one value remains. Deterministic (no
//     atomics), no barriers.
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { fill } from "./fill.js";
import { FLAT_GROUP, flatMain, grid1d, packUniform, storageBindings, uniformStruct, type UniformFields } from "./wgsl.js";
import { type Access, MAX_TENSORS, type UpdateItem, type UpdateSpec, WG, eachTensor, encodeUpdates, tensorFields, tensorValues, updateWgsl } from "./multi-tensor.js";

const SPAN = 256; // values summed per invocation in one sumsq level

const SGD_FIELDS = { lr: "f32", momentum: "f32", dampening: "f32", first: "u32" } as const;
// a1 = 1 - beta1, a2 = 1 - beta2, stepSize = lr / (1 - beta1^t), bc2sqrt = sqrt(1 - beta2^t); per tensor
// decay = 1 - lr * wd
const ADAMW_FIELDS = { a1: "f32", beta2: "f32", a2: "f32", stepSize: "f32", bc2sqrt: "f32", eps: "f32" } as const;
const SUMSQ_FIELDS = { outOffset: "u32" } as const;
const CLIPS_FIELDS = { maxNorm: "f32", n: "u32" } as const;
const LOSS_SCALE_FIELDS = { maxNorm: "f32", clip: "u32", backoff: "f32", growth: "f32", interval: "f32" } as const;

interface AdamwSpec extends UpdateSpec {
  counted: boolean; // gradScale holds (factor, 1 - beta1^t, sqrt(1 - beta2^t)) from the device's count
}

interface SgdSpec extends UpdateSpec {
  momentum: boolean; // a momentum buffer is bound per tensor
  nesterov: boolean;
}

// w<k>: tensor k's weight decay.
function sgdWgsl(spec: SgdSpec): string {
  const buffers: [string, Access][] = spec.momentum
    ? [["param", "read_write"], ["buf", "read_write"], ["grad", "read"]]
    : [["param", "read_write"], ["grad", "read"]];
  const body = (k: number) => {
    const momentum = spec.momentum
      ? `      var b = g;
      if (p.first == 0u) { b = p.momentum * buf${k}[i] + (1.0 - p.dampening) * g; }
      buf${k}[i] = b;
      g = ${spec.nesterov ? "g + p.momentum * b" : "b"};`
      : "";
    return `      let w = param${k}[i];
      var g = grad${k}[i] * scale + p.w${k} * w;
${momentum}
      param${k}[i] = w - p.lr * g;`;
  };
  return updateWgsl(spec, SGD_FIELDS, buffers, body);
}

// w<k>: tensor k's decay factor 1 - lr * wd.
function adamwWgsl(spec: AdamwSpec): string {
  // Counted on the device: stepSize holds lr, the corrections come after the factor.
  const stepSize = spec.counted ? "(p.stepSize / gradScale[1])" : "p.stepSize";
  const bc2sqrt = spec.counted ? "gradScale[2]" : "p.bc2sqrt";
  const body = (k: number) => `      let g = grad${k}[i] * scale;
      let mi = m${k}[i] + p.a1 * (g - m${k}[i]);
      let vi = p.beta2 * v${k}[i] + p.a2 * g * g;
      m${k}[i] = mi;
      v${k}[i] = vi;
      param${k}[i] = param${k}[i] * p.w${k} - ${stepSize} * mi / (sqrt(vi) / ${bc2sqrt} + p.eps);`;
  const buffers: [string, Access][] = [["param", "read_write"], ["m", "read_write"], ["v", "read_write"], ["grad", "read"]];
  return updateWgsl(spec, ADAMW_FIELDS, buffers, body);
}

// Every state tensor must match the parameter in size, be f32 and live in its own storage; `seen` holds the
// storage of the tensors checked before in the same update, which must not be bound twice either.
function checkState(op: string, param: Tensor, state: Record<string, Tensor>, gradScale: Tensor | undefined, seen: Set<GPUBuffer>): void {
  if (param.dtype !== "f32") throw new Error(`${op}: expected an f32 param, got ${param}`);
  if (seen.has(param.buffer)) throw new Error(`${op}: expected param ${param} in its own storage, got one shared with another tensor of the update`);
  seen.add(param.buffer);
  for (const [name, t] of Object.entries(state)) {
    if (t.dtype !== "f32" || t.size !== param.size) {
      throw new Error(`${op}: expected ${name} f32 of ${param.size} elements like ${param}, got ${t}`);
    }
    if (seen.has(t.buffer)) throw new Error(`${op}: expected ${name} ${t} in its own storage`);
    seen.add(t.buffer);
  }
  if (gradScale && (gradScale.dtype !== "f32" || gradScale.size !== 1)) {
    throw new Error(`${op}: expected gradScale f32 of 1 element, got ${gradScale}`);
  }
}

function checkSkip(op: string, o: { gradScale?: Tensor; skipZero?: boolean }): boolean {
  if (o.skipZero && !o.gradScale) throw new Error(`${op}: expected gradScale with skipZero, got none`);
  return !!o.skipZero;
}

export interface SgdTensor {
  param: Tensor;
  grad: Tensor; // same size (any shape)
  momentumBuf?: Tensor; // required when momentum != 0; starts at zero
  weightDecay: number;
  lrScale?: number; // this tensor's rate is lr * lrScale; default 1
}

// The tensors by rate scale (see the header), in the order each scale first appears; a scale must be finite and > 0.
function byRate<T extends { param: Tensor; lrScale?: number }>(op: string, tensors: T[]): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const t of tensors) {
    const scale = t.lrScale ?? 1;
    if (!(Number.isFinite(scale) && scale > 0)) throw new Error(`${op}: expected ${t.param}'s lrScale to be a finite number > 0, got ${scale}`);
    const group = groups.get(scale);
    if (group) group.push(t);
    else groups.set(scale, [t]);
  }
  return groups;
}

export interface SgdUpdateOptions {
  lr: number;
  momentum: number;
  nesterov?: boolean;
  dampening?: number;
  first?: boolean;
  gradScale?: Tensor;
  skipZero?: boolean; // with gradScale: where it is 0, leave param and state as they are (see the header)
}

// One SGD step of every tensor, in as few dispatches as the bindings allow. `first` marks PyTorch's first step,
// where buf = g; otherwise buf = momentum * buf + (1 - dampening) * g, which for a zero buffer equals the first
// step only when dampening = 0, so a non-zero dampening requires `first` to be given (true or false).
export function sgdUpdates(tensors: SgdTensor[], o: SgdUpdateOptions): void {
  const dampening = o.dampening ?? 0;
  const nesterov = o.nesterov ?? false;
  const hasMomentum = o.momentum !== 0;
  if (nesterov && (!hasMomentum || dampening !== 0)) {
    throw new Error(`sgd: expected momentum > 0 and dampening 0 for nesterov, got momentum ${o.momentum}, dampening ${dampening}`);
  }
  if (hasMomentum && dampening !== 0 && o.first === undefined) {
    throw new Error(`sgd: expected \`first\` with dampening ${dampening} (the first step skips dampening), got none`);
  }
  const seen = new Set<GPUBuffer>();
  const spec = { scaled: o.gradScale !== undefined, skipZero: checkSkip("sgd", o), momentum: hasMomentum, nesterov };
  // Every tensor checked before the first dispatch: a refused update changes nothing.
  const groups = [...byRate("sgd", tensors)].map(([scale, group]) => {
    const items = group.map(({ param, grad, momentumBuf, weightDecay }): UpdateItem => {
      if (hasMomentum && !momentumBuf) throw new Error(`sgd: expected a momentum buffer for momentum ${o.momentum}, got none`);
      const state: Record<string, Tensor> = { grad };
      if (hasMomentum) state.momentumBuf = momentumBuf!;
      checkState("sgd", param, state, o.gradScale, seen);
      return { buffers: [param.buffer, ...(hasMomentum ? [momentumBuf!.buffer] : []), grad.buffer], size: param.size, perTensor: weightDecay };
    });
    return { lr: o.lr * scale, items };
  });
  for (const { lr, items } of groups) {
    const values = { lr, momentum: o.momentum, dampening, first: o.first ? 1 : 0 };
    encodeUpdates<SgdSpec>("sgd", spec, sgdWgsl, SGD_FIELDS, values, items, o.gradScale);
  }
}

// param, grad, momentumBuf: same size (any shape); one tensor's SGD step (see sgdUpdates).
export function sgdUpdate(
  param: Tensor,
  grad: Tensor,
  momentumBuf: Tensor | undefined,
  o: SgdUpdateOptions & { weightDecay: number },
): void {
  sgdUpdates([{ param, grad, momentumBuf, weightDecay: o.weightDecay }], o);
}

export interface AdamwTensor {
  param: Tensor;
  grad: Tensor; // same size (any shape)
  m: Tensor; // starts at zero
  v: Tensor; // starts at zero
  weightDecay: number;
  lrScale?: number; // as SgdTensor's
}

export interface AdamwUpdateOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  step?: number; // counts from 1; for the bias corrections, unless counted on the device
  // (1): the count of steps taken, on the device; advanced by this update where gradScale is not 0 and giving its
  // bias corrections (needs gradScale and skipZero, and no `step`)
  counter?: Tensor;
  gradScale?: Tensor;
  skipZero?: boolean; // as SgdUpdateOptions'
}

const ADAMW_COUNT_FIELDS = { lnBeta1: "f32", lnBeta2: "f32" } as const;

function adamwCountWgsl(): string {
  return /* wgsl */ `
${uniformStruct(ADAMW_COUNT_FIELDS)}
${storageBindings([["y", "array<f32>", "read_write"], ["counter", "array<f32>", "read_write"], ["gradScale", "array<f32>", "read"]])}

// 1 - beta^t from x = t ln beta <= 0 (see the header).
fn oneMinusExp(x: f32) -> f32 {
  if (x > -0.1) {
    return -x * (1.0 + x / 2.0 * (1.0 + x / 3.0 * (1.0 + x / 4.0 * (1.0 + x / 5.0 * (1.0 + x / 6.0 * (1.0 + x / 7.0))))));
  }
  return 1.0 - exp(x);
}

@compute @workgroup_size(1)
fn main() {
  let s = gradScale[0];
  var t = counter[0];
  if (s != 0.0) {
    t = t + 1.0;
    counter[0] = t;
  }
  y[0] = s;
  y[1] = oneMinusExp(t * p.lnBeta1);
  y[2] = sqrt(oneMinusExp(t * p.lnBeta2));
}`;
}

// One AdamW step of every tensor, in as few dispatches as the bindings allow.
export function adamwUpdates(tensors: AdamwTensor[], o: AdamwUpdateOptions): void {
  const skipZero = checkSkip("adamw", o);
  const counter = o.counter;
  if (counter) {
    if (o.step !== undefined) throw new Error(`adamw: expected either step or counter, got both (step ${o.step})`);
    if (!skipZero) throw new Error("adamw: expected skipZero with a counter (the count advances only on steps not skipped), got none");
    if (counter.dtype !== "f32" || counter.size !== 1) throw new Error(`adamw: expected counter f32 of 1 element, got ${counter}`);
  } else if (!Number.isInteger(o.step) || o.step! < 1) {
    throw new Error(`adamw: expected an integer step >= 1, got ${o.step}`);
  }
  const seen = new Set<GPUBuffer>(counter ? [counter.buffer] : []);
  // Every tensor checked before the first dispatch, as sgdUpdates'.
  const groups = [...byRate("adamw", tensors)].map(([scale, group]) => {
    const lr = o.lr * scale;
    const items = group.map(({ param, grad, m, v, weightDecay }): UpdateItem => {
      checkState("adamw", param, { grad, m, v }, o.gradScale, seen);
      return { buffers: [param.buffer, m.buffer, v.buffer, grad.buffer], size: param.size, perTensor: 1 - lr * weightDecay };
    });
    return { lr, items };
  });
  const t = o.step ?? 1; // unused when counted
  let factors = o.gradScale;
  if (counter) {
    factors = Tensor.empty([3]);
    const uniform = packUniform(ADAMW_COUNT_FIELDS, { lnBeta1: Math.log(o.beta1), lnBeta2: Math.log(o.beta2) });
    runtime().batch.dispatch(getKernel("adamw-count", {}, adamwCountWgsl), [factors.buffer, counter.buffer, o.gradScale!.buffer], uniform, [1], 16);
  }
  const spec = { scaled: factors !== undefined, skipZero, counted: counter !== undefined };
  for (const { lr, items } of groups) {
    const values = {
      a1: 1 - o.beta1,
      beta2: o.beta2,
      a2: 1 - o.beta2,
      stepSize: counter ? lr : lr / (1 - o.beta1 ** t),
      bc2sqrt: Math.sqrt(1 - o.beta2 ** t),
      eps: o.eps,
    };
    encodeUpdates<AdamwSpec>("adamw", spec, adamwWgsl, ADAMW_FIELDS, values, items, factors);
  }
  if (counter) factors!.dispose();
}

// param, grad, m, v: same size (any shape); one tensor's AdamW step (see adamwUpdates).
export function adamwUpdate(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, o: AdamwUpdateOptions & { weightDecay: number }): void {
  adamwUpdates([{ param, grad, m, v, weightDecay: o.weightDecay }], o);
}


// Tensor k of a dispatch: its partials end at end<k> in the dispatch's space of partials; it has n<k> elements.
function sumsqFields(tensors: number): UniformFields {
  return tensorFields(SUMSQ_FIELDS, tensors, "n", "u32");
}

// With `segmented` the inputs are segments of one buffer x (segment k: n<k> values from s<k> on; segmentFields)
// rather than tensors x<k>: a level of sumsOfSquares.
function sumsqWgsl(spec: { square: boolean; tensors: number; segmented: boolean }): string {
  const at = (k: number) => (spec.segmented ? `x[p.s${k} + i]` : `x${k}[i]`);
  const branches = eachTensor(
    spec.tensors,
    (k, first) => `      let outputs = p.end${k} - ${first};
      for (var i = u - ${first}; i < p.n${k}; i += outputs) {
        let v = ${at(k)};
        acc += ${spec.square ? "v * v" : "v"};
      }`,
  );
  const xs: [string, string, "read"][] = spec.segmented ? [["x", "array<f32>", "read"]] : Array.from({ length: spec.tensors }, (_, k) => [`x${k}`, "array<f32>", "read"]);
  return /* wgsl */ `
${uniformStruct(spec.segmented ? segmentFields(spec.tensors) : sumsqFields(spec.tensors))}
${storageBindings([["y", "array<f32>", "read_write"], ...xs])}
${FLAT_GROUP}
// Thread mapping: invocation u of tensor (segment) k's partials (t = u - end<k-1>, T = end<k> - end<k-1>) sums
// x<k>[t], x<k>[t + T], ... into y[outOffset + u].
${flatMain(WG, `p.end${spec.tensors - 1}`, "u")}
  var acc = 0.0;
  ${branches}
  y[p.outOffset + u] = acc;
}`;
}

// Sums (of squares) of xs, each into ceil(size / SPAN) partials laid end to end in y from outOffset on.
function encodeSum(square: boolean, y: Tensor, xs: Tensor[], outOffset: number): void {
  const { uniform: values, end } = tensorValues({ outOffset }, "n", xs.map((x) => Math.ceil(x.size / SPAN)), xs.map((x) => x.size));
  const kernel = getKernel("sumsq", { square, tensors: xs.length, segmented: false }, sumsqWgsl);
  const uniform = packUniform(sumsqFields(xs.length), values);
  const work = xs.reduce((s, x) => s + x.size * 4, 0);
  runtime().batch.dispatch(kernel, [y.buffer, ...xs.map((x) => x.buffer)], uniform, grid1d(Math.ceil(end / WG)), work);
}

// The first level of sums of squares: each tensor's partials laid end to end in `partials`, up to MAX_TENSORS
// tensors per dispatch (as many as the adapter's storage bindings allow beside y).
function encodeSquares(partials: Tensor, tensors: Tensor[]): void {
  const perDispatch = Math.min(MAX_TENSORS, runtime().gpu.limits.maxStorageBuffersPerShaderStage - 1);
  for (let first = 0, offset = 0; first < tensors.length; first += perDispatch) {
    const group = tensors.slice(first, first + perDispatch);
    encodeSum(true, partials, group, offset);
    offset += group.reduce((s, t) => s + Math.ceil(t.size / SPAN), 0);
  }
}

// tensors: any shapes, f32 -> (1): the sum of the squares of all their elements. The first level reads up to
// MAX_TENSORS tensors per dispatch (as many as the adapter's storage bindings allow beside y): the default study's
// model's 56 gradients in 7 dispatches, where one per tensor took 58 with the levels.
export function sumOfSquares(tensors: Tensor[]): Tensor {
  for (const t of tensors) if (t.dtype !== "f32") throw new Error(`sumOfSquares: expected f32 tensors, got ${t}`);
  const nonEmpty = tensors.filter((t) => t.size > 0);
  const total = nonEmpty.reduce((s, t) => s + Math.ceil(t.size / SPAN), 0);
  if (total === 0) return fill([1], 0);
  let partials = Tensor.empty([total]);
  encodeSquares(partials, nonEmpty);
  while (partials.size > 1) {
    const next = Tensor.empty([Math.ceil(partials.size / SPAN)]);
    encodeSum(false, next, [partials], 0);
    partials.dispose();
    partials = next;
  }
  return partials;
}

// sumsqFields and each segment's start s<k>: a level of per-tensor sums over segments of one buffer laid end to end,
// segment k (n<k> values) into its ceil(n<k> / SPAN) outputs at y[outOffset + end<k-1> ..], in the order sumsq's
// levels take within one tensor.
const segmentLayouts = new Map<number, UniformFields>();
function segmentFields(segments: number): UniformFields {
  let fields = segmentLayouts.get(segments);
  if (!fields) {
    fields = { ...sumsqFields(segments) };
    for (let k = 0; k < segments; k++) fields[`s${k}`] = "u32";
    segmentLayouts.set(segments, fields);
  }
  return fields;
}

// tensors: any shapes, f32, none empty -> (T): the sum of the squares of each tensor's elements, each bit for bit
// sumOfSquares([t]) (the same partials in the same order), in a few dispatches: the first level as sumOfSquares
// reads its tensors, then each level sums every tensor's partials at once, MAX_TENSORS segments per dispatch. DINO
// clips every parameter's gradient by its own norm: a step of the default study's model summed in 83 dispatches one
// tensor at a time, in 17 so (Dawn's null backend, 8 storage bindings).
export function sumsOfSquares(tensors: Tensor[]): Tensor {
  for (const t of tensors) {
    if (t.dtype !== "f32" || t.size === 0) throw new Error(`sumsOfSquares: expected non-empty f32 tensors, got ${t}`);
  }
  let counts = tensors.map((t) => Math.ceil(t.size / SPAN));
  let partials = Tensor.empty([counts.reduce((s, c) => s + c, 0)]);
  encodeSquares(partials, tensors);
  while (counts.some((c) => c > 1)) {
    const next = counts.map((c) => Math.ceil(c / SPAN));
    const out = Tensor.empty([next.reduce((s, c) => s + c, 0)]);
    let start = 0; // of segment k in partials
    const starts = counts.map((c) => (start += c) - c);
    for (let first = 0, to = 0; first < counts.length; first += MAX_TENSORS) {
      const n = counts.slice(first, first + MAX_TENSORS);
      const { uniform: values, end } = tensorValues({ outOffset: to }, "n", next.slice(first, first + MAX_TENSORS), n);
      n.forEach((_, k) => (values[`s${k}`] = starts[first + k]));
      const kernel = getKernel("sumsq", { square: false, tensors: n.length, segmented: true }, sumsqWgsl);
      runtime().batch.dispatch(kernel, [out.buffer, partials.buffer], packUniform(segmentFields(n.length), values), grid1d(Math.ceil(end / WG)), 4 * n.reduce((s, c) => s + c, 0));
      to += end;
    }
    partials.dispose();
    partials = out;
    counts = next;
  }
  return partials;
}

// sumSq: (1) (or any 1-element shape) -> (1): the factor that brings the gradient norm down to maxNorm. With
// `scale` (1), the sum is of gradients scaled by it (loss scaling) and the norm compared is the unscaled one.
export function clipCoefficient(sumSq: Tensor, maxNorm: number, scale?: Tensor): Tensor {
  if (sumSq.dtype !== "f32" || sumSq.size !== 1) throw new Error(`clipCoefficient: expected sumSq f32 of 1 element, got ${sumSq}`);
  if (scale && (scale.dtype !== "f32" || scale.size !== 1)) throw new Error(`clipCoefficient: expected scale f32 of 1 element, got ${scale}`);
  if (!(maxNorm > 0)) throw new Error(`clipCoefficient: expected maxNorm > 0, got ${maxNorm}`);
  const flat = sumSq.reshape([1]);
  const y = clipCoefficients(flat, maxNorm, scale);
  flat.dispose();
  return y;
}

// y[k] = min(1, maxNorm / (sqrt(sumSq[k]) [/ scale] + 1e-6)): the clip coefficient of every sum.
function clipsWgsl(spec: { scaled: boolean }): string {
  return /* wgsl */ `
${uniformStruct(CLIPS_FIELDS)}
${storageBindings([["y", "array<f32>", "read_write"], ["sumSq", "array<f32>", "read"], ...(spec.scaled ? [["scale", "array<f32>", "read"] as [string, string, "read"]] : [])])}
${FLAT_GROUP}
${flatMain(WG, "p.n", "k")}
  y[k] = min(1.0, p.maxNorm / (sqrt(sumSq[k])${spec.scaled ? " / scale[0]" : ""} + 1e-6));
}`;
}

// sumSq: (T) -> (T): the clip coefficient of each sum (per-parameter clipping), in one dispatch.
export function clipCoefficients(sumSq: Tensor, maxNorm: number, scale?: Tensor): Tensor {
  if (sumSq.dtype !== "f32" || sumSq.shape.length !== 1) throw new Error(`clipCoefficients: expected sumSq f32 (T), got ${sumSq}`);
  if (scale && (scale.dtype !== "f32" || scale.size !== 1)) throw new Error(`clipCoefficients: expected scale f32 of 1 element, got ${scale}`);
  if (!(maxNorm > 0)) throw new Error(`clipCoefficients: expected maxNorm > 0, got ${maxNorm}`);
  const y = Tensor.empty([sumSq.size]);
  if (sumSq.size === 0) return y;
  const buffers = [y.buffer, sumSq.buffer, ...(scale ? [scale.buffer] : [])];
  const uniform = packUniform(CLIPS_FIELDS, { maxNorm, n: sumSq.size });
  runtime().batch.dispatch(getKernel("clips", { scaled: scale !== undefined }, clipsWgsl), buffers, uniform, grid1d(Math.ceil(sumSq.size / WG)), 8 * sumSq.size);
  return y;
}

// w<k>: the index of tensor k's factor in `factors` (an f32, exact for any count of tensors an update has).
const SCALE_EACH_FIELDS = {} as const; // one object: tensorFields keeps its layouts by it
function scaleEachWgsl(spec: UpdateSpec): string {
  return updateWgsl(spec, SCALE_EACH_FIELDS, [["x", "read_write"]], (k) => `      x${k}[i] = x${k}[i] * gradScale[u32(p.w${k})];`);
}

// tensors[k] *= factors[k] in place, several tensors per dispatch (kernels/multi-tensor.ts): each element one f32
// multiply, as ops.mul by a 1-element tensor. factors: (T).
export function scaleEach(tensors: Tensor[], factors: Tensor): void {
  if (factors.dtype !== "f32" || factors.size !== tensors.length) {
    throw new Error(`scaleEach: expected factors f32 of ${tensors.length} elements, one per tensor, got ${factors}`);
  }
  const seen = new Set<GPUBuffer>();
  const items = tensors.map((t, k): UpdateItem => {
    if (t.dtype !== "f32") throw new Error(`scaleEach: expected f32 tensors, got ${t}`);
    if (seen.has(t.buffer) || t.buffer === factors.buffer) throw new Error(`scaleEach: expected ${t} in storage of its own`);
    seen.add(t.buffer);
    return { buffers: [t.buffer], size: t.size, perTensor: k };
  });
  encodeUpdates<UpdateSpec>("scale-each", { scaled: true, skipZero: false }, scaleEachWgsl, SCALE_EACH_FIELDS, {}, items, factors);
}

// Overflow test by the bits: WGSL lets a compiler assume floats finite, so x != x and comparisons with inf may fold.
function lossScaleWgsl(): string {
  return /* wgsl */ `
${uniformStruct(LOSS_SCALE_FIELDS)}
${storageBindings([["gradScale", "array<f32>", "read_write"], ["scale", "array<f32>", "read_write"], ["goodSteps", "array<f32>", "read_write"], ["sumSq", "array<f32>", "read"]])}
@compute @workgroup_size(1)
fn main() {
  let s = sumSq[0];
  let S = scale[0];
  if ((bitcast<u32>(s) & 0x7f800000u) == 0x7f800000u) {
    gradScale[0] = 0.0;
    scale[0] = S * p.backoff;
    goodSteps[0] = 0.0;
    return;
  }
  let clip = select(1.0, min(1.0, p.maxNorm / (sqrt(s) / S + 1e-6)), p.clip != 0u);
  gradScale[0] = clip / S;
  let good = goodSteps[0] + 1.0;
  if (good >= p.interval) {
    scale[0] = S * p.growth;
    goodSteps[0] = 0.0;
  } else {
    goodSteps[0] = good;
  }
}`;
}

export interface LossScaleStepOptions {
  maxNorm?: number; // clip the unscaled gradient norm to this
  backoff: number; // scale factor after an overflow, in (0, 1)
  growth: number; // scale factor after `interval` good steps, > 1
  interval: number; // integer >= 1
}

// sumSq: (1), the sum of squares of the scaled gradients; scale, goodSteps: (1) each, updated in place. Returns
// gradScale (1) for the updates (with skipZero): 0 on overflow, else the clip coefficient over the scale.
export function lossScaleStep(sumSq: Tensor, scale: Tensor, goodSteps: Tensor, o: LossScaleStepOptions): Tensor {
  for (const [name, t] of Object.entries({ sumSq, scale, goodSteps })) {
    if (t.dtype !== "f32" || t.size !== 1) throw new Error(`lossScaleStep: expected ${name} f32 of 1 element, got ${t}`);
  }
  if (o.maxNorm !== undefined && !(o.maxNorm > 0)) throw new Error(`lossScaleStep: expected maxNorm > 0, got ${o.maxNorm}`);
  const y = Tensor.empty([1]);
  const uniform = packUniform(LOSS_SCALE_FIELDS, {
    maxNorm: o.maxNorm ?? 0,
    clip: o.maxNorm === undefined ? 0 : 1,
    backoff: o.backoff,
    growth: o.growth,
    interval: o.interval,
  });
  runtime().batch.dispatch(getKernel("loss-scale", {}, lossScaleWgsl), [y.buffer, scale.buffer, goodSteps.buffer, sumSq.buffer], uniform, [1], 16);
  return y;
}
