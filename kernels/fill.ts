// fill: y[i] = value, for zeros, ones and the seed gradient of backward.
//   v1: one invocation per 4 elements, workgroup 64, 1-D grid folded into (x, y).
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor, type Shape } from "../engine/tensor.js";
import { FLAT_GROUP, flatIndex, grid1d, mainEntry, packUniform, uniformStruct } from "./wgsl.js";

const WG = 64;
const FIELDS = { n: "u32", value: "f32" } as const;

function wgsl(): string {
  return /* wgsl */ `
${uniformStruct(FIELDS)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${FLAT_GROUP}
${mainEntry(WG)}
  let base = (${flatIndex(WG)}) * 4u;
  for (var j = 0u; j < 4u; j++) {
    if (base + j < p.n) { y[base + j] = p.value; }
  }
}`;
}

export function fillInto(y: Tensor, value: number): void {
  if (y.size === 0) return;
  const kernel = getKernel("fill", {}, wgsl);
  const uniform = packUniform(FIELDS, { n: y.size, value });
  runtime().batch.dispatch(kernel, [y.buffer], uniform, grid1d(Math.ceil(y.size / (WG * 4))), y.size * 4);
}

export function fill(shape: Shape, value: number): Tensor {
  const y = Tensor.empty(shape);
  fillInto(y, value);
  return y;
}
