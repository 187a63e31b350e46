// Several tensors per dispatch: the layout that the optimiser updates (kernels/optim.ts), the sums of squares and
// the moving averages (kernels/ema.ts) share. The tensors' elements are laid end to end in one index space u, the
// tensor boundaries in the uniform; an update binds each tensor's buffers in turn and runs one WGSL body per tensor,
// so that many small tensors (a model's biases and norms) take a dispatch together: on lavapipe a dispatch costs ~60
// us beside its work, on GPUs ~15-23 us of host time.
import { runtime, getKernel } from "../engine/runtime.js";
import type { Kernel } from "../engine/pipeline.js";
import type { Tensor } from "../engine/tensor.js";
import { FLAT_GROUP, grid1d, mainEntry, packUniform, storageBindings, uniformStruct, type UniformFields } from "./wgsl.js";

export const WG = 64;
export const MAX_TENSORS = 8; // per dispatch, whatever the binding limit: keeps the uniform and the generated branches small

export interface UpdateSpec {
  [k: string]: boolean | number;
  vec4: boolean; // elements move as vec4<f32> (every size % 4 == 0)
  scaled: boolean; // a gradScale tensor is bound after the last tensor's buffers
  skipZero: boolean; // a gradScale of 0 skips the update (loss scaling's overflowed step)
  tensors: number; // parameter tensors in the dispatch
}

export type Access = "read" | "read_write";

// Several tensors per dispatch (the updates, sumsq), their elements (or partials) laid end to end in one index
// space u. Per-tensor uniform fields after the shared ones (`base`): end<k>, the end of tensor k in that space, and
// <name><k> of `type`. Each layout is made once: the updates encode it at every step, and merging objects with
// generated keys per dispatch cost the default model's SGD step (28 dispatches on Dawn's null backend) 450-500 us
// of host time against 350-400 with the layouts kept.
const layouts = new WeakMap<UniformFields, Map<string, UniformFields>>();
export function tensorFields(base: UniformFields, tensors: number, name: string, type: "u32" | "f32"): UniformFields {
  let byShape = layouts.get(base);
  if (!byShape) layouts.set(base, (byShape = new Map()));
  const key = `${tensors} ${name} ${type}`;
  let fields = byShape.get(key);
  if (!fields) {
    fields = { ...base };
    for (let k = 0; k < tensors; k++) {
      fields[`end${k}`] = "u32";
      fields[`${name}${k}`] = type;
    }
    byShape.set(key, fields);
  }
  return fields;
}

// tensorFields' values: `shared` for the base fields; tensor k takes spans[k] of the space and has
// <name><k> = values[k]; `end` is the space's size.
export function tensorValues(shared: Record<string, number>, name: string, spans: number[], values: number[]): { uniform: Record<string, number>; end: number } {
  const uniform = { ...shared };
  let end = 0;
  spans.forEach((span, k) => {
    end += span;
    uniform[`end${k}`] = end;
    uniform[`${name}${k}`] = values[k];
  });
  return { uniform, end };
}

// The branch on u to its tensor: `body(k, first)` for tensor k, whose first index in the space is `first`.
export function eachTensor(tensors: number, body: (k: number, first: string) => string): string {
  return Array.from({ length: tensors }, (_, k) => {
    const test = k === tensors - 1 ? "" : `if (u < p.end${k}) `;
    return `${test}{
${body(k, k === 0 ? "0u" : `p.end${k - 1}`)}
    }`;
  }).join(" else ");
}

// The per-element loop shared by the updates: tensor k's buffers are `name<k>`, bound in order tensor by tensor
// after the uniform, then gradScale when there is one; `body(k)` sees the element index `i` within tensor k and
// the f32 `scale`; w<k> is the update's one f32 of tensor k (SGD: its weight decay; AdamW: its decay factor).
export function updateWgsl(spec: UpdateSpec, fields: UniformFields, buffers: [string, Access][], body: (k: number) => string): string {
  const T = spec.vec4 ? "vec4<f32>" : "f32";
  const per = spec.vec4 ? 1 : 4;
  const bindings: [string, string, Access][] = [];
  for (let k = 0; k < spec.tensors; k++) bindings.push(...buffers.map(([name, access]): [string, string, Access] => [`${name}${k}`, `array<${T}>`, access]));
  if (spec.scaled) bindings.push(["gradScale", "array<f32>", "read"]);
  const branches = eachTensor(spec.tensors, (k, first) => `      let i = u - ${first};
${body(k)}`);
  return /* wgsl */ `
${uniformStruct(tensorFields(fields, spec.tensors, "w", "f32"))}
${storageBindings(bindings)}
${FLAT_GROUP}
${mainEntry(WG)}
  let scale = ${spec.scaled ? "gradScale[0]" : "1.0"};
  ${spec.skipZero ? "if (scale == 0.0) { return; }" : ""}
  let base = flatGroup(wid, nwg) * ${WG * per}u + lid.x;
  for (var j = 0u; j < ${per}u; j++) {
    let u = base + j * ${WG}u;
    if (u >= p.end${spec.tensors - 1}) { return; }
    ${branches}
  }
}`;
}

// One tensor of a multi-tensor update: its buffers in binding order, its size and its per-tensor uniform value.
export interface UpdateItem {
  buffers: GPUBuffer[];
  size: number;
  perTensor: number;
}

// An update's dispatches over one set of tensors: which tensors go together (`members`, indices into the items),
// their kernel, buffers, ends in the index space, grid and work. Kept per update and spec for the next call over
// the same buffers and sizes, an optimiser's next step (the same parameters and state, and where steps are replayed
// the same gradients), which then only packs the uniforms again: the default study's SGD steps spent more host time
// grouping, naming kernels and building uniform objects than encoding their dispatches (Dawn's null backend,
// 2026-12-05, docs/PERFORMANCE.md). An optimiser with rates per layer updates each layer's tensors apart, so the
// plans are kept by their first buffer as well: one per group, each found again at the next step.
interface Planned {
  kernel: Kernel;
  members: number[];
  buffers: GPUBuffer[];
  ends: number[];
  grid: [number, number];
  work: number;
}
interface Plan {
  buffers: GPUBuffer[]; // every item's buffers, then gradScale's
  sizes: number[];
  dispatches: Planned[];
}
const plans = new WeakMap<GPUBuffer, Map<string, Plan>>(); // by first buffer, then update name and spec

// Encodes the updates of `items` in as few dispatches as the binding limit allows: tensors grouped by whether
// every size is a multiple of 4 (vec4), `perDispatch` at a time (some vec4 ones with the scalars where that saves a
// dispatch). `fields` are the update's shared uniform values.
export function encodeUpdates<S extends UpdateSpec>(
  name: string,
  spec: Omit<S, "vec4" | "tensors">,
  wgsl: (spec: S) => string,
  fields: UniformFields,
  values: Record<string, number>,
  items: UpdateItem[],
  gradScale: Tensor | undefined,
): void {
  if (items.length === 0) return;
  const buffers = [...items.flatMap((it) => it.buffers), ...(gradScale ? [gradScale.buffer] : [])];
  const sizes = items.map((it) => it.size);
  const key = `${name} ${JSON.stringify(spec)}`;
  let byKey = plans.get(buffers[0]);
  if (!byKey) plans.set(buffers[0], (byKey = new Map()));
  let plan = byKey.get(key);
  if (!plan || !same(plan.buffers, buffers) || !same(plan.sizes, sizes)) {
    plan = { buffers, sizes, dispatches: layout(name, spec, wgsl, items, gradScale) };
    byKey.set(key, plan);
  }
  // Every uniform: the shared values, then each member's end and perTensor value (tensorFields' order).
  const shared = new Uint8Array(packUniform(fields, values), 0, Object.keys(fields).length * 4);
  for (const d of plan.dispatches) {
    const words = shared.length / 4 + 2 * d.members.length;
    const uniform = new ArrayBuffer(Math.ceil(words / 4) * 16);
    new Uint8Array(uniform).set(shared);
    const view = new DataView(uniform);
    d.members.forEach((m, k) => {
      view.setUint32(shared.length + 8 * k, d.ends[k], true);
      view.setFloat32(shared.length + 8 * k + 4, items[m].perTensor, true);
    });
    runtime().batch.dispatch(d.kernel, d.buffers, uniform, d.grid, d.work);
  }
}

function same<T>(a: T[], b: T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function layout<S extends UpdateSpec>(name: string, spec: Omit<S, "vec4" | "tensors">, wgsl: (spec: S) => string, items: UpdateItem[], gradScale: Tensor | undefined): Planned[] {
  const nonEmpty = items.map((it, i) => ({ it, i })).filter(({ it }) => it.size > 0);
  if (nonEmpty.length === 0) return [];
  const per = nonEmpty[0].it.buffers.length;
  const stage = runtime().gpu.limits.maxStorageBuffersPerShaderStage;
  const limit = stage - (gradScale ? 1 : 0);
  const perDispatch = Math.min(MAX_TENSORS, Math.floor(limit / per));
  if (perDispatch < 1) {
    throw new Error(`${name}: expected maxStorageBuffersPerShaderStage >= ${per + (gradScale ? 1 : 0)} (${per} per tensor${gradScale ? " and 1 shared" : ""}), got ${stage}`);
  }
  const groups = new Map([true, false].map((vec4) => [vec4, nonEmpty.filter(({ it }) => (it.size % 4 === 0) === vec4)]));
  // Where the scalar group's last dispatch has room for what would be the vec4 group's last, partial one, those
  // tensors (the smallest) ride along as scalars: a dispatch less (a linear probe's head, its weight beside its bias
  // of 10 classes).
  const [vecs, scalars] = [groups.get(true)!, groups.get(false)!];
  const rest = vecs.length % perDispatch;
  if (rest > 0 && scalars.length % perDispatch !== 0 && rest <= perDispatch - (scalars.length % perDispatch)) {
    const moved = new Set([...vecs].sort((a, b) => a.it.size - b.it.size).slice(0, rest));
    groups.set(true, vecs.filter((x) => !moved.has(x)));
    groups.set(false, [...scalars, ...moved]);
  }
  const planned: Planned[] = [];
  for (const vec4 of [true, false]) {
    const group = groups.get(vec4)!;
    for (let start = 0; start < group.length; start += perDispatch) {
      const chunk = group.slice(start, start + perDispatch);
      let end = 0;
      const ends = chunk.map(({ it }) => (end += vec4 ? it.size / 4 : it.size));
      if (end > 0xffffffff) throw new Error(`uniform: expected "end${chunk.length - 1}" a u32, got ${end}`); // as packUniform checks u32s
      const elements = chunk.reduce((s, { it }) => s + it.size, 0);
      planned.push({
        kernel: getKernel(name, { ...spec, vec4, tensors: chunk.length } as S, wgsl),
        members: chunk.map(({ i }) => i),
        buffers: [...chunk.flatMap(({ it }) => it.buffers), ...(gradScale ? [gradScale.buffer] : [])],
        ends,
        grid: grid1d(Math.ceil(end / (vec4 ? WG : WG * 4))),
        work: elements * 4 * per,
      });
    }
  }
  return planned;
}
