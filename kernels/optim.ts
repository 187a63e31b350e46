// Optimiser updates, in place, one dispatch per parameter tensor, with PyTorch's semantics. Every update may
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
//
//   sgd/adamw v1: one invocation per 4 elements, as one vec4 when the size is a multiple of 4 and otherwise a
//     loop of 4 scalars spaced a workgroup apart (adjacent lanes touch adjacent elements); workgroup 64, 1-D grid
//     folded into (x, y). Scalars of the update that do not depend on the element (bias corrections, 1 - beta)
//     are computed on the CPU in float64 and passed in the uniform.
//   sumsq v1: each level reduces n values to ceil(n / SPAN) partials, invocation t summing x[t], x[t + T], ...
//     (T partials; adjacent lanes read adjacent elements); every tensor writes its partials into one buffer, then
//     levels repeat until one value remains. Deterministic (no atomics), no barriers.
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { fill } from "./fill.js";
import { FLAT_GROUP, flatMain, grid1d, mainEntry, packUniform, storageBindings, uniformStruct } from "./wgsl.js";

const WG = 64;
const SPAN = 256; // values summed per invocation in one sumsq level

const SGD_FIELDS = { n: "u32", lr: "f32", momentum: "f32", dampening: "f32", wd: "f32", first: "u32" } as const;
// a1 = 1 - beta1, a2 = 1 - beta2, decay = 1 - lr * wd, stepSize = lr / (1 - beta1^t), bc2sqrt = sqrt(1 - beta2^t)
const ADAMW_FIELDS = { n: "u32", decay: "f32", a1: "f32", beta2: "f32", a2: "f32", stepSize: "f32", bc2sqrt: "f32", eps: "f32" } as const;
const SUMSQ_FIELDS = { n: "u32", outputs: "u32", outOffset: "u32" } as const;
const CLIP_FIELDS = { maxNorm: "f32" } as const;

interface UpdateSpec {
  [k: string]: boolean;
  vec4: boolean; // elements move as vec4<f32> (size % 4 == 0)
  scaled: boolean; // a gradScale tensor is bound after the gradient
}

interface SgdSpec extends UpdateSpec {
  momentum: boolean; // a momentum buffer is bound
  nesterov: boolean;
}

type Access = "read" | "read_write";

// The per-element loop shared by the updates: `body` sees the element index `i` and the f32 `scale`; the
// buffers bind as array<vec4<f32>> or array<f32> after the uniform, then gradScale when there is one.
function updateWgsl(spec: UpdateSpec, fields: string, buffers: [string, Access][], body: string): string {
  const T = spec.vec4 ? "vec4<f32>" : "f32";
  const per = spec.vec4 ? 1 : 4;
  const decls = storageBindings([
    ...buffers.map(([name, access]): [string, string, Access] => [name, `array<${T}>`, access]),
    ...(spec.scaled ? [["gradScale", "array<f32>", "read"] as [string, string, Access]] : []),
  ]);
  return /* wgsl */ `
${fields}
${decls}
${FLAT_GROUP}
${mainEntry(WG)}
  let scale = ${spec.scaled ? "gradScale[0]" : "1.0"};
  let base = flatGroup(wid, nwg) * ${WG * per}u + lid.x;
  for (var j = 0u; j < ${per}u; j++) {
    let i = base + j * ${WG}u;
    if (i >= p.n) { return; }
${body}
  }
}`;
}

function sgdWgsl(spec: SgdSpec): string {
  const buffers: [string, Access][] = spec.momentum
    ? [["param", "read_write"], ["buf", "read_write"], ["grad", "read"]]
    : [["param", "read_write"], ["grad", "read"]];
  const momentum = spec.momentum
    ? `    var b = g;
    if (p.first == 0u) { b = p.momentum * buf[i] + (1.0 - p.dampening) * g; }
    buf[i] = b;
    g = ${spec.nesterov ? "g + p.momentum * b" : "b"};`
    : "";
  const body = `    let w = param[i];
    var g = grad[i] * scale + p.wd * w;
${momentum}
    param[i] = w - p.lr * g;`;
  return updateWgsl(spec, uniformStruct(SGD_FIELDS), buffers, body);
}

function adamwWgsl(spec: UpdateSpec): string {
  const body = `    let g = grad[i] * scale;
    let mi = m[i] + p.a1 * (g - m[i]);
    let vi = p.beta2 * v[i] + p.a2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * p.decay - p.stepSize * mi / (sqrt(vi) / p.bc2sqrt + p.eps);`;
  const buffers: [string, Access][] = [["param", "read_write"], ["m", "read_write"], ["v", "read_write"], ["grad", "read"]];
  return updateWgsl(spec, uniformStruct(ADAMW_FIELDS), buffers, body);
}

// Every state tensor must match the parameter in size, be f32 and live in its own storage.
function checkState(op: string, param: Tensor, state: Record<string, Tensor>, gradScale: Tensor | undefined): void {
  const seen = new Set<GPUBuffer>([param.buffer]);
  if (param.dtype !== "f32") throw new Error(`${op}: expected an f32 param, got ${param}`);
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

// Encodes an update over n elements; buffers in binding order.
function encodeUpdate<S extends UpdateSpec>(
  name: string,
  spec: S,
  wgsl: (spec: S) => string,
  uniform: ArrayBuffer,
  buffers: GPUBuffer[],
  n: number,
): void {
  if (n === 0) return;
  const kernel = getKernel(name, spec, wgsl);
  const perGroup = WG * 4;
  runtime().batch.dispatch(kernel, buffers, uniform, grid1d(Math.ceil(n / perGroup)), n * 4 * buffers.length);
}

// param, grad, momentumBuf: same size (any shape). momentumBuf is required when momentum != 0 and must start at
// zero. `first` marks PyTorch's first step, where buf = g; otherwise buf = momentum * buf + (1 - dampening) * g,
// which for a zero buffer equals the first step only when dampening = 0, so a non-zero dampening requires `first`
// to be given (true or false).
export function sgdUpdate(
  param: Tensor,
  grad: Tensor,
  momentumBuf: Tensor | undefined,
  o: { lr: number; momentum: number; weightDecay: number; nesterov?: boolean; dampening?: number; first?: boolean; gradScale?: Tensor },
): void {
  const dampening = o.dampening ?? 0;
  const nesterov = o.nesterov ?? false;
  const hasMomentum = o.momentum !== 0;
  if (nesterov && (!hasMomentum || dampening !== 0)) {
    throw new Error(`sgd: expected momentum > 0 and dampening 0 for nesterov, got momentum ${o.momentum}, dampening ${dampening}`);
  }
  if (hasMomentum && !momentumBuf) throw new Error(`sgd: expected a momentum buffer for momentum ${o.momentum}, got none`);
  if (hasMomentum && dampening !== 0 && o.first === undefined) {
    throw new Error(`sgd: expected \`first\` with dampening ${dampening} (the first step skips dampening), got none`);
  }
  const state: Record<string, Tensor> = { grad };
  if (hasMomentum) state.momentumBuf = momentumBuf!;
  checkState("sgd", param, state, o.gradScale);
  const vec4 = param.size % 4 === 0;
  const spec: SgdSpec = { vec4, scaled: o.gradScale !== undefined, momentum: hasMomentum, nesterov };
  const uniform = packUniform(SGD_FIELDS, {
    n: vec4 ? param.size / 4 : param.size,
    lr: o.lr,
    momentum: o.momentum,
    dampening,
    wd: o.weightDecay,
    first: o.first ? 1 : 0,
  });
  const buffers = [param.buffer, ...(hasMomentum ? [momentumBuf!.buffer] : []), grad.buffer, ...(o.gradScale ? [o.gradScale.buffer] : [])];
  encodeUpdate("sgd", spec, sgdWgsl, uniform, buffers, param.size);
}

// param, grad, m, v: same size (any shape); m and v start at zero; step counts from 1.
export function adamwUpdate(
  param: Tensor,
  grad: Tensor,
  m: Tensor,
  v: Tensor,
  o: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number; gradScale?: Tensor },
): void {
  if (!Number.isInteger(o.step) || o.step < 1) throw new Error(`adamw: expected an integer step >= 1, got ${o.step}`);
  checkState("adamw", param, { grad, m, v }, o.gradScale);
  const vec4 = param.size % 4 === 0;
  const uniform = packUniform(ADAMW_FIELDS, {
    n: vec4 ? param.size / 4 : param.size,
    decay: 1 - o.lr * o.weightDecay,
    a1: 1 - o.beta1,
    beta2: o.beta2,
    a2: 1 - o.beta2,
    stepSize: o.lr / (1 - o.beta1 ** o.step),
    bc2sqrt: Math.sqrt(1 - o.beta2 ** o.step),
    eps: o.eps,
  });
  const buffers = [param.buffer, m.buffer, v.buffer, grad.buffer, ...(o.gradScale ? [o.gradScale.buffer] : [])];
  encodeUpdate("adamw", { vec4, scaled: o.gradScale !== undefined }, adamwWgsl, uniform, buffers, param.size);
}

function sumsqWgsl(spec: { square: boolean }): string {
  return /* wgsl */ `
${uniformStruct(SUMSQ_FIELDS)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
${FLAT_GROUP}
// Thread mapping: invocation t < outputs sums x[t], x[t + outputs], ... into y[outOffset + t].
${flatMain(WG, "p.outputs")}
  var acc = 0.0;
  for (var i = t; i < p.n; i += p.outputs) {
    let v = x[i];
    acc += ${spec.square ? "v * v" : "v"};
  }
  y[p.outOffset + t] = acc;
}`;
}

function encodeSum(square: boolean, y: Tensor, x: Tensor, n: number, outOffset: number): void {
  const outputs = Math.ceil(n / SPAN);
  const kernel = getKernel("sumsq", { square }, sumsqWgsl);
  const uniform = packUniform(SUMSQ_FIELDS, { n, outputs, outOffset });
  runtime().batch.dispatch(kernel, [y.buffer, x.buffer], uniform, grid1d(Math.ceil(outputs / WG)), n * 4);
}

// tensors: any shapes, f32 -> (1): the sum of the squares of all their elements.
export function sumOfSquares(tensors: Tensor[]): Tensor {
  for (const t of tensors) if (t.dtype !== "f32") throw new Error(`sumOfSquares: expected f32 tensors, got ${t}`);
  const nonEmpty = tensors.filter((t) => t.size > 0);
  const total = nonEmpty.reduce((s, t) => s + Math.ceil(t.size / SPAN), 0);
  if (total === 0) return fill([1], 0);
  let partials = Tensor.empty([total]);
  let offset = 0;
  for (const t of nonEmpty) {
    encodeSum(true, partials, t, t.size, offset);
    offset += Math.ceil(t.size / SPAN);
  }
  while (partials.size > 1) {
    const next = Tensor.empty([Math.ceil(partials.size / SPAN)]);
    encodeSum(false, next, partials, partials.size, 0);
    partials.dispose();
    partials = next;
  }
  return partials;
}

function clipWgsl(): string {
  return /* wgsl */ `
${uniformStruct(CLIP_FIELDS)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> sumSq: array<f32>;
@compute @workgroup_size(1)
fn main() {
  y[0] = min(1.0, p.maxNorm / (sqrt(sumSq[0]) + 1e-6));
}`;
}

// sumSq: (1) (or any 1-element shape) -> (1): the factor that brings the gradient norm down to maxNorm.
export function clipCoefficient(sumSq: Tensor, maxNorm: number): Tensor {
  if (sumSq.dtype !== "f32" || sumSq.size !== 1) throw new Error(`clipCoefficient: expected sumSq f32 of 1 element, got ${sumSq}`);
  if (!(maxNorm > 0)) throw new Error(`clipCoefficient: expected maxNorm > 0, got ${maxNorm}`);
  const y = Tensor.empty([1]);
  runtime().batch.dispatch(getKernel("clip", {}, clipWgsl), [y.buffer, sumSq.buffer], packUniform(CLIP_FIELDS, { maxNorm }), [1], 8);
  return y;
}
