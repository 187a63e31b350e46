// The row-kernel frame shared by softmax, layernorm and cross-entropy: an op over the last axis of x viewed as
// (rows, C). The three families differ only in the arithmetic inside the same row loop.
//   v1: one invocation per row, 64 rows per workgroup, no barriers (CPU drivers: llvmpipe runs 8 SIMD lanes on
//       8 rows at once, and a barrier would cost a coroutine switch).
//   v2: one workgroup of 128 per row; lanes stride over the columns and combine through a shared-memory tree (GPUs).
import { runtime } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { rowShapeKey, tunedVersion } from "../engine/tuning.js";
import { FLAT_GROUP, grid1d } from "./wgsl.js";

export type RowVersion = 1 | 2;
export const ROW_VERSIONS: readonly RowVersion[] = [1, 2];

// Workgroup size and lanes per row of each version. v1: every lane owns a row. v2: the workgroup owns a row.
export const ROW_LAYOUT: Record<RowVersion, { wg: number; lanes: number }> = {
  1: { wg: 64, lanes: 1 },
  2: { wg: 128, lanes: 128 },
};

// The families that share this frame, as the autotuner names them in its cache keys.
export type RowOp = "softmax" | "layernorm" | "cross-entropy";

// The version for `op` over (rows, C) when the caller names none: PEFT_ROWS (1 or 2), else the autotuner's winner
// for that exact shape (engine/tuning.ts), else v1 on CPU drivers and v2 on GPUs. Without a shape, PEFT_ROWS or
// the device default.
export function defaultRowVersion(op?: RowOp, rows?: number, C?: number): RowVersion {
  const forced = process.env.PEFT_ROWS;
  if (forced !== undefined) {
    if (!(ROW_VERSIONS as readonly number[]).includes(Number(forced))) {
      throw new Error(`rows: expected PEFT_ROWS to be one of ${ROW_VERSIONS.join(", ")}, got "${forced}"`);
    }
    return Number(forced) as RowVersion;
  }
  if (op !== undefined && rows !== undefined && C !== undefined) {
    const tuned = Number(tunedVersion("rows", rowShapeKey(op, rows, C)));
    if ((ROW_VERSIONS as readonly number[]).includes(tuned)) return tuned as RowVersion;
  }
  return runtime().gpu.isCpu ? 1 : 2;
}

// A row kernel's entry point. Inside `body`: `lane` (0 .. LANES-1) takes columns lane, lane + LANES, ...;
// `r` is the row; `valid` says whether the row exists. Out-of-range invocations recompute the last row and must
// skip their writes (guard them with `valid`): returning early would put the barriers of v2's reductions in
// non-uniform control flow.
export function rowMain(version: RowVersion, body: string): string {
  const { wg, lanes } = ROW_LAYOUT[version];
  return /* wgsl */ `
${FLAT_GROUP}
const WG = ${wg}u;
const LANES = ${lanes}u;
// Thread mapping: WG / LANES rows per workgroup, LANES consecutive invocations per row.
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let lane = lid.x % LANES;
  let row = flatGroup(wid, nwg) * (WG / LANES) + lid.x / LANES;
  let valid = row < p.rows;
  let r = min(row, p.rows - 1u);
${body}
}`;
}

// `fn name(v: type, i: u32) -> type`: combines v over the LANES lanes of invocation i's row with `combine`
// (an expression in a and b) and gives every lane the result. v1 has one lane per row: the identity.
// v2: a tree over shared memory; the trailing barrier lets the next reduction reuse the buffer.
export function rowReduce(version: RowVersion, name: string, type: string, combine: string): string {
  const { wg, lanes } = ROW_LAYOUT[version];
  if (lanes === 1) return `fn ${name}(v: ${type}, i: u32) -> ${type} { return v; }`;
  return /* wgsl */ `
var<workgroup> ${name}Tree: array<${type}, ${wg}>;
fn ${name}(v: ${type}, i: u32) -> ${type} {
  let lane = i % ${lanes}u;
  ${name}Tree[i] = v;
  workgroupBarrier();
  for (var s = ${lanes / 2}u; s > 0u; s >>= 1u) {
    if (lane < s) {
      let a = ${name}Tree[i];
      let b = ${name}Tree[i + s];
      ${name}Tree[i] = ${combine};
    }
    workgroupBarrier();
  }
  let total = ${name}Tree[i - lane];
  workgroupBarrier();
  return total;
}`;
}

// Workgroups for `rows` rows, folded into (x, y) past 65535.
export function rowGrid(version: RowVersion, rows: number): [number, number] {
  const { wg, lanes } = ROW_LAYOUT[version];
  return grid1d(Math.ceil(rows / (wg / lanes)));
}

// Every buffer a kernel binds must fit the device's storage binding limit.
export function checkBindable(op: string, ...tensors: Tensor[]): void {
  const limit = runtime().gpu.limits.maxStorageBufferBindingSize;
  for (const t of tensors) {
    if (t.size * 4 > limit) throw new Error(`${op}: ${t} needs ${t.size * 4} bytes, over maxStorageBufferBindingSize ${limit}`);
  }
}

// (rows, C) of a tensor whose last axis is the row; throws naming the op for rank 0, empty rows or i32.
export function rowsOf(op: string, name: string, t: Tensor): [rows: number, C: number] {
  if (t.dtype !== "f32") throw new Error(`${op}: expected ${name} f32, got ${t.dtype} ${t}`);
  if (t.shape.length === 0) throw new Error(`${op}: expected ${name} with at least one axis, got shape ()`);
  const C = t.shape[t.shape.length - 1];
  if (C === 0) throw new Error(`${op}: expected a non-empty last axis, got ${name} (${t.shape.join(", ")})`);
  return [t.size / C, C];
}

export function sameShape(op: string, a: Tensor, aName: string, b: Tensor, bName: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${op}: expected ${bName} of ${aName}'s shape (${a.shape.join(", ")}), got (${b.shape.join(", ")})`);
  }
}
