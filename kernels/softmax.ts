// Softmax over the last axis, x viewed as (rows, C):
//   y[r, c] = exp(x[r, c] - m_r) / sum_c' exp(x[r, c'] - m_r),   m_r = max_c x[r, c]
// Subtracting the row max keeps every exp in (0, 1], so rows of any finite magnitude (1e3, 1e30) stay finite.
// Backward: dx = y * (dy - sum_c(dy * y)), from y alone (x is not needed).
//
//   lane: one invocation per row, 64 rows per workgroup, no barriers. For CPU drivers: llvmpipe runs the 8 SIMD
//       lanes on 8 rows at once and a barrier would cost a coroutine switch.
//   tree: one workgroup of 128 per row; lanes stride over the columns and combine through a shared-memory tree.
//       For GPUs, where one thread per row would leave the machine idle and read memory uncoalesced.
//   subgroup: tree with subgroup reductions, where the adapter has subgroups.
// A call's version: kernels/registry.ts resolveVersion(ROWS, ...): the explicit one, else PEFT_ROWS, else the tuned
// one for the shape if `tune` stored one, else the default, lane on CPU drivers and tree on GPUs.
// The row-kernel frame (versions, thread mapping, reductions) is shared with layernorm and cross-entropy: rows.ts.
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { packUniform, storageBindings, uniformStruct } from "./wgsl.js";
import type { RowVersion } from "./registry.js";
import {
  ROW_LAYOUT,
  checkBindable,
  rowGrid,
  rowMain,
  rowPrelude,
  rowReduce,
  rowVersion,
  rowsOf,
  sameShape,
} from "./rows.js";

const FIELDS = { rows: "u32", C: "u32" } as const;

interface SoftmaxSpec {
  [k: string]: string | number;
  version: RowVersion;
  wg: number;
  pass: "forward" | "backward";
}

function wgsl(spec: SoftmaxSpec): string {
  const forward = /* wgsl */ `
  let base = r * p.C;
  var m = -3.402823e38;
  for (var c = lane; c < p.C; c += LANES) { m = max(m, x[base + c]); }
  m = rowMax(m, lid.x);
  var s = 0.0;
  for (var c = lane; c < p.C; c += LANES) { s += exp(x[base + c] - m); }
  // exp is recomputed in the write pass rather than stored and rescaled: one read of x beats a write+read of y.
  let inv = 1.0 / rowSum(s, lid.x);
  if (valid) {
    for (var c = lane; c < p.C; c += LANES) { y[base + c] = exp(x[base + c] - m) * inv; }
  }`;
  const backward = /* wgsl */ `
  let base = r * p.C;
  var s = 0.0;
  for (var c = lane; c < p.C; c += LANES) { s += dy[base + c] * y[base + c]; }
  s = rowSum(s, lid.x);
  if (valid) {
    for (var c = lane; c < p.C; c += LANES) { dx[base + c] = y[base + c] * (dy[base + c] - s); }
  }`;
  const bindings = storageBindings(
    spec.pass === "forward"
      ? [["y", "array<f32>", "read_write"], ["x", "array<f32>", "read"]]
      : [["dx", "array<f32>", "read_write"], ["y", "array<f32>", "read"], ["dy", "array<f32>", "read"]],
  );
  return /* wgsl */ `${rowPrelude(spec.version)}
${uniformStruct(FIELDS)}
${bindings}
${rowReduce(spec.version, "rowMax", "f32", "max")}
${rowReduce(spec.version, "rowSum", "f32", "sum")}
${rowMain(spec.version, spec.pass === "forward" ? forward : backward)}`;
}

function encode(pass: SoftmaxSpec["pass"], version: RowVersion, out: Tensor, inputs: Tensor[], rows: number, C: number): void {
  const spec: SoftmaxSpec = { version, wg: ROW_LAYOUT[version].wg, pass };
  const kernel = getKernel("softmax", spec, wgsl);
  const uniform = packUniform(FIELDS, { rows, C });
  const bytes = (inputs.length + 1) * rows * C * 4;
  runtime().batch.dispatch(kernel, [out.buffer, ...inputs.map((t) => t.buffer)], uniform, rowGrid(version, rows), bytes);
}

// x: (..., C) -> y: (..., C)
export function softmaxForward(x: Tensor, requested?: string): Tensor {
  const [rows, C] = rowsOf("softmax", "x", x);
  const version = rowVersion("softmax", rows, C, requested);
  checkBindable("softmax", x);
  const y = Tensor.empty(x.shape);
  if (rows > 0) encode("forward", version, y, [x], rows, C);
  return y;
}

// y: (..., C) the forward output, dy: (..., C) -> dx: (..., C)
export function softmaxBackward(y: Tensor, dy: Tensor, requested?: string): Tensor {
  const [rows, C] = rowsOf("softmax backward", "y", y);
  const version = rowVersion("softmax", rows, C, requested);
  rowsOf("softmax backward", "dy", dy);
  sameShape("softmax backward", y, "y", dy, "dy");
  checkBindable("softmax backward", y);
  const dx = Tensor.empty(y.shape);
  if (rows > 0) encode("backward", version, dx, [y, dy], rows, C);
  return dx;
}
