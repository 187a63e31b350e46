// Exponential moving averages in place: DINO's teacher update and its centre update.
//
//   target = m * target + (1 - m) * source          (torch: param_k.data.mul_(m).add_((1 - m) * param_q.data))
//
// Each target and its source have the same size (any shapes). The momentum m comes in the uniform, computed on the
// CPU from the schedule, so a step's teacher update needs no read-back.
//
//   v2: several pairs per dispatch, laid end to end as the optimiser updates lay their tensors (kernels/multi-tensor.ts:
//   as many as the storage bindings allow, at most 8; one invocation per 4 elements, a vec4 where every size of the
//   dispatch is a multiple of 4). The multiply and add are one pass over both tensors (a fused m*t + (1-m)*s). A
//   DINO step of the default study's model updated its teacher's 61 tensors in 61 dispatches with v1 (one per pair),
//   in 16 on Dawn's null backend (8 storage bindings: 4 pairs per dispatch) and 8 where there are 16 (lavapipe).
import type { Tensor } from "../engine/tensor.js";
import { type Access, type UpdateItem, type UpdateSpec, encodeUpdates, updateWgsl } from "./multi-tensor.js";

const FIELDS = { m: "f32", a: "f32" } as const; // a = 1 - m, in float64 before rounding
const BUFFERS: [string, Access][] = [["dst", "read_write"], ["src", "read"]];

function wgsl(spec: UpdateSpec): string {
  return updateWgsl(spec, FIELDS, BUFFERS, (k) => `      dst${k}[i] = p.m * dst${k}[i] + p.a * src${k}[i];`);
}

// target <- momentum * target + (1 - momentum) * source for every [target, source] pair, in the targets' storage.
// 0 <= momentum <= 1.
export function emaUpdates(pairs: [Tensor, Tensor][], momentum: number): void {
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`ema: expected a momentum in [0, 1], got ${momentum}`);
  const seen = new Set<GPUBuffer>();
  const items = pairs.map(([target, source]): UpdateItem => {
    if (target.dtype !== "f32" || source.dtype !== "f32" || target.size !== source.size) {
      throw new Error(`ema: expected target and source f32 of the same size, got ${target} and ${source}`);
    }
    if (target.buffer === source.buffer) throw new Error(`ema: expected source ${source} in storage of its own, got target ${target}'s`);
    if (seen.has(target.buffer)) throw new Error(`ema: expected target ${target} in storage of its own, got one shared with another target`);
    seen.add(target.buffer);
    return { buffers: [target.buffer, source.buffer], size: target.size, perTensor: 0 };
  });
  encodeUpdates<UpdateSpec>("ema", { scaled: false, skipZero: false }, wgsl, FIELDS, { m: momentum, a: 1 - momentum }, items, undefined);
}
