// The row-kernel frame shared by softmax, layernorm and cross-entropy: an op over the last axis of x viewed as
// (rows, C). The three differ only in the arithmetic inside the same row loop. They are one kernel family, "rows"
// (kernels/registry.ts), with the op in the shape:
//   lane: one invocation per row, 64 rows per workgroup, no barriers (CPU drivers: llvmpipe runs 8 SIMD lanes on
//       8 rows at once, and a barrier would cost a coroutine switch).
//   tree: one workgroup of 128 per row; lanes stride over the columns and combine through a shared-memory tree
//       (GPUs).
//   subgroup: tree's layout, combined with subgroup operations (the adapter's "subgroups" feature): each subgroup
//       reduces in registers, its first lane writes the result to workgroup memory, and every lane folds the
//       subgroups' results: two barriers per reduction against tree's nine. No default (docs/KERNELS.md, "Row kernels"):
//       `tune` times it where the adapter has subgroups, and PEFT_ROWS=subgroup asks for it.
// Default (ROWS.defaultVersion): lane on CPU drivers, tree on GPUs.
// A call's version: kernels/registry.ts resolveVersion(ROWS, ...), which also refuses subgroup on an adapter
// without subgroups.
import { runtime } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { type RowOp, type RowVersion, ROWS, resolveVersion } from "./registry.js";
import { FLAT_GROUP, grid1d } from "./wgsl.js";

// Workgroup size and lanes per row of each version. lane: every lane owns a row. tree, subgroup: the workgroup
// owns a row.
export const ROW_LAYOUT: Record<RowVersion, { wg: number; lanes: number }> = {
  lane: { wg: 64, lanes: 1 },
  tree: { wg: 128, lanes: 128 },
  subgroup: { wg: 128, lanes: 128 },
};

// What a row kernel's module starts with: subgroup's enable directive.
export function rowPrelude(version: RowVersion): string {
  return version === "subgroup" ? "enable subgroups;" : "";
}

// The version `op` runs over (rows, C): `requested`, else as kernels/registry.ts resolves it.
export function rowVersion(op: RowOp, rows: number, C: number, requested?: string): RowVersion {
  return resolveVersion(ROWS, { op, rows, C }, requested);
}

// A row kernel's entry point. Inside `body`: `lane` (0 .. LANES-1) takes columns lane, lane + LANES, ...;
// `r` is the row; `valid` says whether the row exists. Out-of-range invocations recompute the last row and must
// skip their writes (guard them with `valid`): returning early would put the barriers of tree's reductions in
// non-uniform control flow. `subgroupLane`: lane's `sgl`, its lane in its subgroup, for the lane version's
// broadcasts (the module must enable subgroups).
export function rowMain(version: RowVersion, body: string, subgroupLane = false): string {
  const { wg, lanes } = ROW_LAYOUT[version];
  // subgroup: the builtins, kept in private variables for the reductions.
  const sgVars = `
var<private> sgLane: u32; // this invocation's lane in its subgroup
var<private> sgId: u32; // its subgroup in the workgroup
var<private> numSg: u32; // the workgroup's subgroups`;
  const sgParams = `,
        @builtin(subgroup_invocation_id) sgLaneIn: u32, @builtin(subgroup_id) sgIdIn: u32, @builtin(num_subgroups) numSgIn: u32`;
  const sgSet = `
  sgLane = sgLaneIn;
  sgId = sgIdIn;
  numSg = numSgIn;`;
  const sg = version === "subgroup";
  const sgl = subgroupLane && !sg;
  return /* wgsl */ `
${FLAT_GROUP}
const WG = ${wg}u;
const LANES = ${lanes}u;${sg ? sgVars : ""}
// Thread mapping: WG / LANES rows per workgroup, LANES consecutive invocations per row.
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>${sg ? sgParams : ""}${sgl ? ", @builtin(subgroup_invocation_id) sgl: u32" : ""}) {${sg ? sgSet : ""}
  let lane = lid.x % LANES;
  let row = flatGroup(wid, nwg) * (WG / LANES) + lid.x / LANES;
  let valid = row < p.rows;
  let r = min(row, p.rows - 1u);
${body}
}`;
}

// `fn name(v: type, i: u32) -> type`: the sum or max of v over the LANES lanes of invocation i's row, given to
// every lane. lane has one lane per row: the identity. tree: a tree over shared memory; subgroup: subgroup
// operations, then the subgroups' results through shared memory (see the header). The trailing barrier lets the
// next reduction reuse the buffer.
export function rowReduce(version: RowVersion, name: string, type: string, op: "sum" | "max"): string {
  const { wg, lanes } = ROW_LAYOUT[version];
  const combine = (a: string, b: string) => (op === "sum" ? `${a} + ${b}` : `max(${a}, ${b})`);
  if (lanes === 1) return `fn ${name}(v: ${type}, i: u32) -> ${type} { return v; }`;
  if (version === "subgroup") {
    return /* wgsl */ `
var<workgroup> ${name}Parts: array<${type}, ${wg}>;
fn ${name}(v: ${type}, i: u32) -> ${type} {
  let s = ${op === "sum" ? "subgroupAdd" : "subgroupMax"}(v);
  if (sgLane == 0u) { ${name}Parts[sgId] = s; }
  workgroupBarrier();
  var total = ${name}Parts[0];
  for (var k = 1u; k < numSg; k++) { total = ${combine("total", `${name}Parts[k]`)}; }
  workgroupBarrier();
  return total;
}`;
  }
  return /* wgsl */ `
var<workgroup> ${name}Tree: array<${type}, ${wg}>;
fn ${name}(v: ${type}, i: u32) -> ${type} {
  let lane = i % ${lanes}u;
  ${name}Tree[i] = v;
  workgroupBarrier();
  for (var s = ${lanes / 2}u; s > 0u; s >>= 1u) {
    if (lane < s) {
      ${name}Tree[i] = ${combine(`${name}Tree[i]`, `${name}Tree[i + s]`)};
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
    if (t.size * 4 > limit) throw new Error(`${op}: expected ${t} within maxStorageBufferBindingSize ${limit} bytes, got ${t.size * 4} bytes`);
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
