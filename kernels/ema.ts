// Exponential moving average in place: DINO's teacher update and its centre update.
//
//   target = m * target + (1 - m) * source          (torch: param_k.data.mul_(m).add_((1 - m) * param_q.data))
//
// target and source have the same size (any shapes). The momentum m comes in the uniform, computed on the CPU from
// the schedule, so a step's teacher update needs no read-back.
//
//   v1 (the only one): one invocation per 4 elements, as one vec4 when the size is a multiple of 4, otherwise 4
//   scalars spaced a workgroup apart (adjacent lanes touch adjacent elements); workgroup 64, 1-D grid folded into
//   (x, y). The multiply and add are one pass over both tensors (a fused m*t + (1-m)*s), one dispatch per pair.
import { runtime, getKernel } from "../engine/runtime.js";
import type { Tensor } from "../engine/tensor.js";
import { FLAT_GROUP, grid1d, mainEntry, packUniform, uniformStruct } from "./wgsl.js";

const WG = 64;
const FIELDS = { n: "u32", m: "f32", a: "f32" } as const; // a = 1 - m, in float64 before rounding

interface EmaSpec {
  [k: string]: boolean;
  vec4: boolean;
}

function wgsl(spec: EmaSpec): string {
  const T = spec.vec4 ? "vec4<f32>" : "f32";
  const per = spec.vec4 ? 1 : 4;
  return /* wgsl */ `
${uniformStruct(FIELDS)}
@group(0) @binding(1) var<storage, read_write> dst: array<${T}>;
@group(0) @binding(2) var<storage, read> src: array<${T}>;
${FLAT_GROUP}
// Thread mapping: invocation t owns elements base + j * ${WG} (j < ${per}) of the ${T} arrays.
${mainEntry(WG)}
  let base = flatGroup(wid, nwg) * ${WG * per}u + lid.x;
  for (var j = 0u; j < ${per}u; j++) {
    let i = base + j * ${WG}u;
    if (i >= p.n) { return; }
    dst[i] = p.m * dst[i] + p.a * src[i];
  }
}`;
}

// target <- momentum * target + (1 - momentum) * source, in target's storage. 0 <= momentum <= 1.
export function emaUpdate(target: Tensor, source: Tensor, momentum: number): void {
  if (target.dtype !== "f32" || source.dtype !== "f32" || target.size !== source.size) {
    throw new Error(`ema: expected target and source f32 of the same size, got ${target} and ${source}`);
  }
  if (target.buffer === source.buffer) throw new Error(`ema: expected ${source} in storage of its own, not ${target}'s`);
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`ema: expected a momentum in [0, 1], got ${momentum}`);
  if (target.size === 0) return;
  const vec4 = target.size % 4 === 0;
  const n = vec4 ? target.size / 4 : target.size;
  const kernel = getKernel("ema", { vec4 }, wgsl);
  const uniform = packUniform(FIELDS, { n, m: momentum, a: 1 - momentum });
  runtime().batch.dispatch(kernel, [target.buffer, source.buffer], uniform, grid1d(Math.ceil(target.size / (WG * 4))), target.size * 12);
}
