// Row gather and its backward, the row scatter-add:
//
//   gatherRows:     y[m, :] = x[index[m], :]                 x (R, C), index (M) -> y (M, C)
//   scatterAddRows: dx[r, :] = sum_{m : index[m] = r} dy[m, :]   dy (M, C)       -> dx (R, C)
//
// The index may have any shape S (then y and dy are (...S, C)). It is an i32 tensor or an Int32Array:
//   - an Int32Array is checked on the CPU (an index outside [0, R) throws) and uploaded;
//   - a tensor lives on the GPU and is never read back, so it cannot be checked: an out-of-range index gathers a
//     zero row and contributes nothing to the scatter.
//
// The scatter is deterministic without float atomics: a counting sort groups the positions m by row (CSR:
// offsets (R+1) and order (M), m ascending within each row), then each output element sums its rows' entries
// in ascending m. The sort is one invocation, O(M + R): tiny next to the O(M*C) sum, and free of barriers.
//
//   gather v1:     one invocation per 4 words of an output row (vec4 binding when C % 4 == 0), workgroup 64.
//                  Moves 32-bit words, so it gathers f32 and i32 tables alike.
//   csr v1:        a single invocation.
//   scatterAdd v1: one invocation per 4 columns of an output row (vec4 when C % 4 == 0), looping over the
//                  row's entries; workgroup 64. f32 only.
// Grids are 1-D, folded into (x, y) past 65535 workgroups.
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor, type Shape } from "../engine/tensor.js";
import { eachColumnOfGroup, FLAT_GROUP, flatMain, grid1d, packUniform, uniformStruct } from "./wgsl.js";

const WG = 64;
const ROWS_FIELDS = { count: "u32", groups: "u32", cols: "u32", rows: "u32" } as const;
const CSR_FIELDS = { rows: "u32", m: "u32" } as const;

interface RowsSpec {
  [k: string]: boolean;
  vec4: boolean;
}

// Thread mapping shared by gather and scatterAdd: invocation t handles group g = t % groups (4 columns) of
// output row t / groups; adjacent lanes touch adjacent groups of one row.
const HEADER = /* wgsl */ `
${flatMain(WG, "p.count")}
  let g = t % p.groups;
  let row = t / p.groups;`;

function gatherWgsl(spec: RowsSpec): string {
  const word = spec.vec4 ? "vec4<u32>" : "u32";
  const move = spec.vec4
    ? `  if (inRange) { y[t] = x[u32(r) * p.groups + g]; } else { y[t] = vec4<u32>(0u); }`
    : eachColumnOfGroup("p.cols", `    if (inRange) { y[row * p.cols + c] = x[u32(r) * p.cols + c]; } else { y[row * p.cols + c] = 0u; }`);
  return /* wgsl */ `
${uniformStruct(ROWS_FIELDS)}
@group(0) @binding(1) var<storage, read_write> y: array<${word}>;
@group(0) @binding(2) var<storage, read> x: array<${word}>;
@group(0) @binding(3) var<storage, read> index: array<i32>;
${FLAT_GROUP}
${HEADER}
  let r = index[row];
  let inRange = r >= 0 && u32(r) < p.rows;
${move}
}`;
}

// Counting sort of positions by row: offsets[r]..offsets[r+1] are the entries of row r in `order`.
function csrWgsl(): string {
  return /* wgsl */ `
${uniformStruct(CSR_FIELDS)}
@group(0) @binding(1) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(2) var<storage, read_write> order: array<u32>;
@group(0) @binding(3) var<storage, read> index: array<i32>;
@compute @workgroup_size(1)
fn main() {
  for (var r = 0u; r <= p.rows; r++) { offsets[r] = 0u; }
  for (var m = 0u; m < p.m; m++) {
    let r = index[m];
    if (r >= 0 && u32(r) < p.rows) { offsets[u32(r) + 1u] += 1u; }
  }
  for (var r = 0u; r < p.rows; r++) { offsets[r + 1u] += offsets[r]; }
  // Placing advances offsets[r] to the start of row r + 1 ...
  for (var m = 0u; m < p.m; m++) {
    let r = index[m];
    if (r >= 0 && u32(r) < p.rows) {
      order[offsets[u32(r)]] = m;
      offsets[u32(r)] += 1u;
    }
  }
  // ... so shifting by one restores the starts.
  for (var r = p.rows; r > 0u; r--) { offsets[r] = offsets[r - 1u]; }
  offsets[0] = 0u;
}`;
}

function scatterWgsl(spec: RowsSpec): string {
  const word = spec.vec4 ? "vec4<f32>" : "f32";
  const sum = spec.vec4
    ? `  var acc = vec4<f32>(0.0);
  for (var k = begin; k < end; k++) { acc += dy[order[k] * p.groups + g]; }
  dx[t] = acc;`
    : eachColumnOfGroup(
        "p.cols",
        `    var acc = 0.0;
    for (var k = begin; k < end; k++) { acc += dy[order[k] * p.cols + c]; }
    dx[row * p.cols + c] = acc;`,
      );
  return /* wgsl */ `
${uniformStruct(ROWS_FIELDS)}
@group(0) @binding(1) var<storage, read_write> dx: array<${word}>;
@group(0) @binding(2) var<storage, read> dy: array<${word}>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
${FLAT_GROUP}
${HEADER}
  let begin = offsets[row];
  let end = offsets[row + 1u];
${sum}
}`;
}

// The index as an i32 tensor, and whether the wrapper created it (and must dispose it).
function indexTensor(op: string, index: Tensor | Int32Array, rows: number): { t: Tensor; owned: boolean } {
  if (index instanceof Tensor) {
    if (index.dtype !== "i32") throw new Error(`${op}: expected an i32 index tensor, got ${index}`);
    return { t: index, owned: false };
  }
  const bad = index.findIndex((r) => r < 0 || r >= rows);
  if (bad >= 0) throw new Error(`${op}: expected indices in [0, ${rows}), got index[${bad}] = ${index[bad]}`);
  return { t: Tensor.fromArray(index, [index.length], "i32"), owned: true };
}

// Encodes a rows kernel writing `out` (rows, cols); `buffers` bind after it; tableRows is R of the gathered table.
function encodeRows(
  name: string,
  wgsl: (spec: RowsSpec) => string,
  out: Tensor,
  buffers: GPUBuffer[],
  rows: number,
  cols: number,
  tableRows: number,
): void {
  const vec4 = cols % 4 === 0;
  const groups = Math.ceil(cols / 4);
  const count = rows * groups;
  if (count === 0) return;
  const kernel = getKernel(name, { vec4 }, wgsl);
  const uniform = packUniform(ROWS_FIELDS, { count, groups, cols, rows: tableRows });
  runtime().batch.dispatch(kernel, [out.buffer, ...buffers], uniform, grid1d(Math.ceil(count / WG)), out.size * 8);
}

// x: (R, C) f32 or i32; index: S (i32 tensor or Int32Array) -> (...S, C), same dtype as x.
export function gatherRows(x: Tensor, index: Tensor | Int32Array): Tensor {
  if (x.shape.length !== 2) throw new Error(`gatherRows: expected x (R, C), got ${x}`);
  const [R, C] = x.shape;
  const idx = indexTensor("gatherRows", index, R);
  const y = Tensor.empty([...idx.t.shape, C], x.dtype);
  encodeRows("gather", gatherWgsl, y, [x.buffer, idx.t.buffer], idx.t.size, C, R);
  if (idx.owned) idx.t.dispose();
  return y;
}

// dy: (...S, C) f32; index: S (i32 tensor or Int32Array) -> dx (rows, C), rows never indexed are zero.
export function scatterAddRows(dy: Tensor, index: Tensor | Int32Array, rows: number): Tensor {
  if (dy.dtype !== "f32") throw new Error(`scatterAddRows: expected an f32 dy, got ${dy}`);
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`scatterAddRows: expected a row count >= 0, got ${rows}`);
  const idx = indexTensor("scatterAddRows", index, rows);
  const S: Shape = idx.t.shape;
  const C = dy.shape[dy.shape.length - 1];
  if (dy.shape.length !== S.length + 1 || S.some((d, i) => dy.shape[i] !== d)) {
    throw new Error(`scatterAddRows: expected dy (${[...S, "C"].join(", ")}) for index ${idx.t}, got ${dy}`);
  }
  const M = idx.t.size;
  const dx = Tensor.empty([rows, C]);
  if (dx.size > 0) {
    const offsets = Tensor.empty([rows + 1], "i32");
    const order = Tensor.empty([M], "i32");
    const { batch } = runtime();
    const csr = getKernel("csr", {}, csrWgsl);
    batch.dispatch(csr, [offsets.buffer, order.buffer, idx.t.buffer], packUniform(CSR_FIELDS, { rows, m: M }), [1], M + rows);
    encodeRows("scatterAdd", scatterWgsl, dx, [dy.buffer, order.buffer, offsets.buffer], rows, C, rows);
    offsets.dispose();
    order.dispose();
  }
  if (idx.owned) idx.t.dispose();
  return dx;
}
