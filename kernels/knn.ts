// k nearest neighbours by inner product: for each query q the K bank rows n with the largest
//   s(q, n) = <x_q, b_n>            or, with normalize, the cosine <x_q, b_n> / (|x_q| |b_n|)
// (norms clamped below at 1e-12, as torch.nn.functional.normalize).
//   queries: (Q, D)    bank: (N, D), one tensor or a list of row chunks    ->  sims (Q, K), indices (Q, K) i32
// Order: sims descending; equal sims keep the lower bank index first. Fewer than K rows (K > N): the missing
// entries are sim -Infinity, index -1. NaN sims are never selected.
//
// Two kernels (KnnSpec.fused):
//   knnSimilarity (fused: false, the baseline): the full similarity matrix (Q, N) is written to global memory, for a
//     CPU top-k; the matrix must fit one storage binding, so the caller splits the queries.
//   knnTopK (fused: true): similarities are computed tile by tile and each query's running top K is kept in the
//     output buffers as a binary heap with the worst kept entry at the root; the (Q, N) matrix never exists. A
//     candidate is compared with the root's sim, held in a register; one that beats it replaces the root (a sift-down
//     in global memory). The last chunk's dispatch heap-sorts each list.
//   Bank slices (knnTopK on GPUs): the grid is query tiles x S slices; each workgroup scans 1/S of every chunk into
//     its own heaps, (S, Q, K) in scratch, and a merge pass (one invocation per query) takes the best K of the S*K,
//     ordered by (sim, index), then heap-sorts. S fills the device with slices of at least max(8K, 256) rows, as
//     far as the scratch allows (S*Q*K at most 2^24 entries and within one binding);
//     CPU drivers keep S = 1.
// Both share one register-blocked generator: queries on lanes, bank rows uniform across the workgroup. Each
// workgroup owns wg*vecs*4 queries and scans the bank `rows` rows at a time; lane l owns the vec4 query columns
// tile*wg*vecs + v*wg + l (v < vecs), so a load of the transposed queries is contiguous across lanes and a bank
// value is the same for every lane: with workgroups of 8 where the adapter's subgroups are exactly 8 lanes
// (llvmpipe), lane l loads rows l, l + 8, ... of the step and subgroupBroadcast hands them round (`broadcast`);
// elsewhere every lane loads all R. The tilings are the family's versions (kernels/registry.ts
// KNN): regRxV (R bank rows, V vec4 query columns per lane, workgroup 8: reg4x2, reg8x1, reg2x4, reg16x4) and
// wide4x1 (workgroup 64). Default: reg16x4 on CPU drivers, wide4x1 on GPUs (no GPU has timed the tilings against
// each other).
//
// Banks larger than one storage binding (maxStorageBufferBindingSize) are scanned chunk by chunk: the first
// chunk starts the lists, each later one merges into them in place (bank indices grow chunk after chunk, which
// keeps the tie order). The bank may come as a list of tensors (one chunk each); a tensor too large to bind is
// copied, as many rows as fit, into a scratch tensor per chunk (the engine binds whole buffers only).
//
// Helpers: rowInvNorm (one invocation per row, 1 / max(|x|, eps)), and the query transpose (D, Qpad) that
// also applies the queries' inverse norms, with zero padding columns up to a whole workgroup tile.
// Why they look so, with measurements: docs/KERNELS.md, "k-NN".
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { KNN, KNN_TILINGS, type KnnTiling, type KnnVersion, laneBroadcast, resolveVersion } from "./registry.js";
import { FLAT_GROUP, flatMain, grid1d, mainEntry, packUniform, storageBindings, uniformStruct } from "./wgsl.js";

const EPS = 1e-12;
const WG = 64; // helper kernels
// Slices: workgroups that fill the device (a CPU driver's are filled by the query tiles), the fewest rows of a
// slice per list entry and in all, and the most scratch entries (S * Q * K, 4 bytes each in two buffers).
const SLICE_SPREAD = { cpu: 1, gpu: 1024 };
const SLICE_ROWS_PER_K = 8;
const SLICE_MIN_ROWS = 256;
const SLICE_MAX_ENTRIES = 2 ** 24;

export interface KnnOptions {
  normalize?: boolean; // cosine similarity instead of the inner product
  maxBindingBytes?: number; // the binding limit to plan chunks for (default: the device's); tests lower it
  version?: string; // a version of kernels/registry.ts KNN, else resolved for the shape
  slices?: number; // bank slices (fused only), else knnSlices' plan; tests and benchmarks set it
}

interface KnnSpec extends KnnTiling {
  [k: string]: string | number | boolean;
  fused: boolean;
  normalize: boolean;
  broadcast: boolean; // workgroups of 8: the R bank values of a step loaded one per lane, handed round by subgroupBroadcast
}

const FIELDS = {
  q: "u32", // queries
  qpad4: "u32", // row length of the transposed queries, in vec4
  d: "u32",
  n: "u32", // rows in this chunk
  base: "u32", // bank index of the chunk's first row
  k: "u32", // fused: list length
  cols: "u32", // knnSimilarity: row length of the similarity matrix (all bank rows)
  fresh: "u32", // fused: 1 for the first chunk, which starts the lists
  finish: "u32", // fused: 1 for the last chunk, which sorts them
  tiles: "u32", // query tiles
  slices: "u32", // bank slices: the grid is tiles x slices
  slice: "u32", // rows per slice of this chunk
  inf: "f32", // +Infinity: WGSL has no literal for it
} as const;

// The register-blocked scan. Thread mapping in the header comment; lane query q(v, c) = col(v) * 4 + c.
function wgsl(spec: KnnSpec): string {
  const { rows: R, vecs: V, wg: W } = spec;
  const acc = (r: number, v: number) => `a${r}_${v}`;
  const bindings: [string, string, "read" | "read_write"][] = [["sims", "array<f32>", "read_write"]];
  if (spec.fused) bindings.push(["idx", "array<i32>", "read_write"]);
  bindings.push(["qt", "array<vec4<f32>>", "read"], ["bank", "array<f32>", "read"]);
  if (spec.normalize) bindings.push(["invNorm", "array<f32>", "read"]);

  const setup: string[] = [];
  for (let v = 0; v < V; v++) setup.push(`let col${v} = tile * ${W * V}u + ${v * W}u + lid.x;`);
  const step: string[] = [];
  const lanes = Math.ceil(R / W); // broadcast: bank rows n0 + q*W + l, for lane l
  for (let r = 0; r < R; r++) step.push(`let row${r} = min(n0 + ${r}u, r1 - 1u);`);
  if (spec.broadcast) for (let q = 0; q < lanes; q++) step.push(`let o${q} = min(n0 + min(${q * W}u + lid.x, ${R - 1}u), r1 - 1u) * p.d;`);
  else for (let r = 0; r < R; r++) step.push(`let o${r} = row${r} * p.d;`);
  for (let r = 0; r < R; r++) for (let v = 0; v < V; v++) step.push(`var ${acc(r, v)} = vec4<f32>(0.0);`);
  const inner: string[] = [];
  for (let v = 0; v < V; v++) inner.push(`let x${v} = qt[j * p.qpad4 + col${v}];`);
  if (spec.broadcast) {
    for (let q = 0; q < lanes; q++) inner.push(`let e${q} = bank[o${q} + j];`);
    for (let r = 0; r < R; r++) inner.push(`let b${r} = vec4<f32>(subgroupBroadcast(e${Math.floor(r / W)}, ${r % W}u));`);
  } else for (let r = 0; r < R; r++) inner.push(`let b${r} = vec4<f32>(bank[o${r} + j]);`);
  for (let r = 0; r < R; r++) for (let v = 0; v < V; v++) inner.push(`${acc(r, v)} = fma(b${r}, x${v}, ${acc(r, v)});`);
  const scale: string[] = [];
  if (spec.normalize) {
    for (let r = 0; r < R; r++) for (let v = 0; v < V; v++) scale.push(`${acc(r, v)} *= invNorm[row${r}];`);
  }
  return /* wgsl */ `${spec.broadcast ? "enable subgroups;" : ""}
${uniformStruct(FIELDS)}
${storageBindings(bindings)}
${FLAT_GROUP}
${spec.fused ? fusedHelpers() : ""}
${mainEntry(W)}
  let g = flatGroup(wid, nwg);
  if (g >= p.tiles * p.slices) { return; }
  let tile = g % p.tiles;
  let s = g / p.tiles;
  let r0 = s * p.slice; // this workgroup's rows of the chunk: [r0, r1)
  let r1 = min(r0 + p.slice, p.n);
  ${spec.fused ? "heapSet = s * p.q;" : ""}
  ${setup.join("\n  ")}
  ${spec.fused ? fusedSetup(V) : ""}
  for (var n0 = r0; n0 < r1; n0 += ${R}u) {
    // Rows past the slice's end are clamped to its last row (no branch in the loop); their results are dropped.
    ${step.join("\n    ")}
    for (var j = 0u; j < p.d; j++) {
      ${inner.join("\n      ")}
    }
    ${scale.join("\n    ")}
    ${spec.fused ? fusedEpilogue(R, V) : storeEpilogue(R, V)}
  }
  ${spec.fused ? fusedFinish(V) : ""}
}`;
}

// Query q's heap lives in sims/idx[q*K .. q*K+K-1], ordered by "worse": a lower sim, or an equal sim with a
// higher bank index. Every parent is worse than its children, so the root is the worst entry kept. Candidates
// arrive in increasing bank index, so a candidate with the root's sim is worse than it and stays out: `s > root`
// is the whole admission test, and ties keep the lower index.
function fusedHelpers(): string {
  return /* wgsl */ `
var<private> heapSet: u32; // the first query's list of this workgroup's slice: s * Q

fn heap(q: u32) -> u32 {
  return (heapSet + q) * p.k;
}

fn worse(s0: f32, i0: i32, s1: f32, i1: i32) -> bool {
  return s0 < s1 || (s0 == s1 && i0 > i1);
}

// Puts (s, id) at the root of the heap of size entries at base and sifts it down.
fn siftDown(base: u32, size: u32, s: f32, id: i32) {
  var i = 0u;
  loop {
    let l = 2u * i + 1u;
    if (l >= size) { break; }
    var c = l;
    if (l + 1u < size && worse(sims[base + l + 1u], idx[base + l + 1u], sims[base + l], idx[base + l])) { c = l + 1u; }
    if (!worse(sims[base + c], idx[base + c], s, id)) { break; }
    sims[base + i] = sims[base + c];
    idx[base + i] = idx[base + c];
    i = c;
  }
  sims[base + i] = s;
  idx[base + i] = id;
}

// The worst sim kept: a candidate must beat it. Padding queries get +inf and never insert.
fn kth(q: u32) -> f32 {
  if (q >= p.q) { return p.inf; }
  return sims[heap(q)];
}

fn start(q: u32) {
  if (q >= p.q) { return; }
  for (var j = 0u; j < p.k; j++) {
    sims[heap(q) + j] = -p.inf;
    idx[heap(q) + j] = -1;
  }
}

// Heap sort: the root (worst) goes to the end, repeatedly, leaving the list best first.
fn sortHeap(q: u32) {
  if (q >= p.q) { return; }
  let base = heap(q);
  for (var end = p.k - 1u; end > 0u; end--) {
    let s = sims[base + end];
    let id = idx[base + end];
    sims[base + end] = sims[base];
    idx[base + end] = idx[base];
    siftDown(base, end, s, id);
  }
}`;
}

// Runtime loops over the lane's queries (not unrolled): one inlined copy of start() and sortHeap() each.
function fusedFinish(V: number): string {
  return `if (p.finish == 1u) {
    for (var v = 0u; v < ${V}u; v++) { for (var c = 0u; c < 4u; c++) { sortHeap(qcol[v] * 4u + c); } }
  }`;
}

function fusedSetup(V: number): string {
  return `var qcol = array<u32, ${V}>(${Array.from({ length: V }, (_, v) => `col${v}`).join(", ")});
  if (p.fresh == 1u) {
    for (var v = 0u; v < ${V}u; v++) { for (var c = 0u; c < 4u; c++) { start(qcol[v] * 4u + c); } }
  }
  var th: array<vec4<f32>, ${V}>;
  for (var v = 0u; v < ${V}u; v++) {
    let q = qcol[v] * 4u;
    th[v] = vec4<f32>(kth(q), kth(q + 1u), kth(q + 2u), kth(q + 3u));
  }`;
}

// Rows past the chunk's end get -inf. Most steps end after the vector test against the heap roots (llvmpipe skips a
// divergent branch that no lane takes), one any() over comparisons joined by `|`: a chain of short-circuit `||` is R*V
// nested branches, on which SwiftShader's compiler ran out of memory (docs/KERNELS.md). Otherwise, row by row, each
// lane marks its candidates that beat their root in a bit mask (bit v*4 + c for query column (v, c)) and pops them in a
// loop, so that lanes with insertions run their sift-downs side by side (looping slot by slot instead would serialise
// them). A popped candidate is tested again: its root may have risen. Rows go in order, so each heap sees candidates by
// increasing bank index. The row loop runs at run time (one inlined copy of siftDown, not R); it is the rare path.
function fusedEpilogue(R: number, V: number): string {
  if (V * 4 > 32) throw new Error(`knn: expected vecs * 4 <= 32, got ${V} * 4`);
  const accs = Array.from({ length: R * V }, (_, i) => `a${Math.floor(i / V)}_${i % V}`);
  const dead = Array.from({ length: R - 1 }, (_, i) => {
    const r = i + 1;
    return `if (n0 + ${r}u >= r1) { ${accs.slice(r * V, r * V + V).map((a) => `${a} = vec4<f32>(-p.inf);`).join(" ")} }`;
  });
  const tests = accs.map((a, i) => `(${a} > th[${i % V}])`);
  return `${dead.join("\n    ")}
    if (any(${tests.join(" | ")})) {
      var cand = array<vec4<f32>, ${R * V}>(${accs.join(", ")});
      for (var r = 0u; r < ${R}u; r++) {
        var pending = 0u;
        for (var v = 0u; v < ${V}u; v++) {
          let beats = cand[r * ${V}u + v] > th[v];
          for (var c = 0u; c < 4u; c++) { pending |= select(0u, 1u << (v * 4u + c), beats[c]); }
        }
        loop {
          if (pending == 0u) { break; }
          let bit = firstTrailingBit(pending);
          pending &= pending - 1u;
          let v = bit / 4u;
          let c = bit % 4u;
          let s = cand[r * ${V}u + v][c];
          if (s > th[v][c]) {
            let q = qcol[v] * 4u + c;
            siftDown(heap(q), p.k, s, i32(p.base + n0 + r));
            th[v][c] = kth(q);
          }
        }
      }
    }`;
}

function storeEpilogue(R: number, V: number): string {
  const lines: string[] = [];
  for (let r = 0; r < R; r++) {
    lines.push(`if (n0 + ${r}u < r1) {`);
    for (let v = 0; v < V; v++) {
      for (let c = 0; c < 4; c++) {
        const q = `col${v} * 4u + ${c}u`;
        lines.push(`  if (${q} < p.q) { sims[(${q}) * p.cols + p.base + n0 + ${r}u] = a${r}_${v}[${c}]; }`);
      }
    }
    lines.push("}");
  }
  return lines.join("\n    ");
}

// The merge of the slices' lists, (S, Q, K) in ssims/sidx, into sims/idx (Q, K), sorted. Thread mapping: one
// invocation per query. A candidate gets in if it beats the root in the full (sim, index) order.
function mergeWgsl(): string {
  return /* wgsl */ `
${uniformStruct(FIELDS)}
${storageBindings([
  ["sims", "array<f32>", "read_write"],
  ["idx", "array<i32>", "read_write"],
  ["ssims", "array<f32>", "read"],
  ["sidx", "array<i32>", "read"],
])}
${FLAT_GROUP}
${fusedHelpers()}
${flatMain(WG, "p.q", "q")}
  start(q);
  let base = heap(q);
  for (var s = 0u; s < p.slices; s++) {
    let list = (s * p.q + q) * p.k;
    for (var j = 0u; j < p.k; j++) {
      let id = sidx[list + j];
      if (id >= 0 && worse(sims[base], idx[base], ssims[list + j], id)) { siftDown(base, p.k, ssims[list + j], id); }
    }
  }
  sortHeap(q);
}`;
}

// ---- helpers: inverse row norms and the padded query transpose ----

const NORM_FIELDS = { rows: "u32", d: "u32" } as const;

// Thread mapping: one invocation per row.
function normWgsl(): string {
  return /* wgsl */ `
${uniformStruct(NORM_FIELDS)}
${storageBindings([["y", "array<f32>", "read_write"], ["x", "array<f32>", "read"]])}
${FLAT_GROUP}
${flatMain(WG, "p.rows", "i")}
  let base = i * p.d;
  var ss = 0.0;
  for (var j = 0u; j < p.d; j++) {
    let v = x[base + j];
    ss = fma(v, v, ss);
  }
  y[i] = 1.0 / max(sqrt(ss), ${EPS});
}`;
}

const T_FIELDS = { q: "u32", d: "u32", qpad: "u32" } as const;

// Thread mapping: one invocation per output element (j, c) of (D, Qpad).
function transposeWgsl(spec: { normalize: boolean }): string {
  const bindings: [string, string, "read" | "read_write"][] = [["qt", "array<f32>", "read_write"], ["x", "array<f32>", "read"]];
  if (spec.normalize) bindings.push(["invNorm", "array<f32>", "read"]);
  return /* wgsl */ `
${uniformStruct(T_FIELDS)}
${storageBindings(bindings)}
${FLAT_GROUP}
${flatMain(WG, "p.d * p.qpad", "e")}
  let j = e / p.qpad;
  let c = e % p.qpad;
  var v = 0.0;
  if (c < p.q) { v = x[c * p.d + j]${spec.normalize ? " * invNorm[c]" : ""}; }
  qt[e] = v;
}`;
}

// 1 / max(|x_i|, eps) for the first `rows` rows of x. x: (rows, D) -> (rows)
function rowInvNorm(x: GPUBuffer, rows: number, d: number): Tensor {
  const y = Tensor.empty([rows]);
  const kernel = getKernel("knnNorm", {}, normWgsl);
  const uniform = packUniform(NORM_FIELDS, { rows, d });
  runtime().batch.dispatch(kernel, [y.buffer, x], uniform, grid1d(Math.ceil(rows / WG)), rows * d * 8);
  return y;
}

// queries (Q, D) -> (D, Qpad), scaled to unit norm when normalize, zero columns from Q to Qpad.
function transposeQueries(queries: Tensor, qpad: number, normalize: boolean): Tensor {
  const [q, d] = queries.shape;
  const qt = emptyBound("the transposed queries (D, Qpad); split the queries", [d, qpad]);
  const inv = normalize ? rowInvNorm(queries.buffer, q, d) : undefined;
  const kernel = getKernel("knnTranspose", { normalize }, transposeWgsl);
  const buffers = inv ? [qt.buffer, queries.buffer, inv.buffer] : [qt.buffer, queries.buffer];
  const uniform = packUniform(T_FIELDS, { q, d, qpad });
  runtime().batch.dispatch(kernel, buffers, uniform, grid1d(Math.ceil(qt.size / WG)), qt.size * 8);
  inv?.dispose();
  return qt;
}

// ---- wrappers ----

// An error naming `what` (and how to shrink it) unless `bytes` fit one storage binding; `got` describes them.
function checkBinding(what: string, bytes: number, got: string): void {
  const limit = runtime().gpu.limits.maxStorageBufferBindingSize;
  if (bytes > limit) throw new Error(`knn: expected ${what} to fit one storage binding (${limit} bytes), got ${got} in ${bytes} bytes`);
}

// A new tensor that fits one storage binding, or an error naming it, before anything is made (the pool's buckets
// stay within the binding limit where the tensor does).
function emptyBound(what: string, shape: number[]): Tensor {
  const bytes = shape.reduce((a, b) => a * b, 4);
  checkBinding(what, bytes, `(${shape.join(", ")}) f32`);
  return Tensor.empty(shape);
}

function shapeOf(t: Tensor): string {
  return `(${t.shape.join(", ")})`;
}

// One bank chunk: `rows` rows of `source` from row `r0`, bank index `base`; `copy` when the source is too large to
// bind and the rows go through a scratch tensor.
interface Chunk {
  source: Tensor;
  r0: number;
  rows: number;
  base: number;
  copy: boolean;
}

// The bank's chunks in order: each tensor that fits `limit` bytes as it is, the others in copied pieces. A piece
// holds at most 2^floor(log2(limit)) bytes, so that its pooled buffer (sizes round up) still fits.
function planChunks(bank: Tensor[], d: number, limit: number): Chunk[] {
  const piece = 2 ** Math.floor(Math.log2(limit));
  const maxRows = Math.floor(piece / (d * 4));
  const plan: Chunk[] = [];
  let base = 0;
  for (const t of bank) {
    const n = t.shape[0];
    if (t.buffer.size <= limit) plan.push({ source: t, r0: 0, rows: n, base, copy: false });
    else {
      if (maxRows < 1) throw new Error(`knn: expected a bank row within a copied piece of ${piece} bytes (the binding limit ${limit} rounded down to a power of 2), got D = ${d}, ${d * 4} bytes`);
      for (let r0 = 0; r0 < n; r0 += maxRows) plan.push({ source: t, r0, rows: Math.min(maxRows, n - r0), base: base + r0, copy: true });
    }
    base += n;
  }
  return plan;
}

function checkInputs(op: string, queries: Tensor, bank: Tensor | Tensor[]): { list: Tensor[]; q: number; d: number; n: number } {
  const list = Array.isArray(bank) ? bank : [bank];
  if (queries.dtype !== "f32" || queries.shape.length !== 2 || queries.shape[1] < 1) {
    throw new Error(`${op}: expected queries (Q, D) f32 with D >= 1, got ${queries.dtype} ${shapeOf(queries)}`);
  }
  const [q, d] = queries.shape;
  for (const t of list) {
    if (t.dtype !== "f32" || t.shape.length !== 2 || t.shape[1] !== d) {
      throw new Error(`${op}: expected bank (N, ${d}) f32 to match queries ${shapeOf(queries)}, got ${t.dtype} ${shapeOf(t)}`);
    }
  }
  const n = list.reduce((s, t) => s + t.shape[0], 0);
  if (n >= 2 ** 31) throw new Error(`${op}: expected fewer than 2^31 bank rows (i32 indices), got ${n}`);
  return { list, q, d, n };
}

// The bank slices knnTopK uses for Q queries, N bank rows and lists of K in `version` (see the header).
export function knnSlices(q: number, n: number, k: number, version: KnnVersion): number {
  const t = KNN_TILINGS[version];
  const tiles = Math.ceil(q / (t.wg * t.vecs * 4));
  const spread = runtime().gpu.isCpu ? SLICE_SPREAD.cpu : SLICE_SPREAD.gpu;
  const byRows = Math.floor(n / Math.max(SLICE_ROWS_PER_K * k, SLICE_MIN_ROWS));
  const byScratch = Math.floor(Math.min(SLICE_MAX_ENTRIES, runtime().gpu.limits.maxStorageBufferBindingSize / 4) / (q * k));
  return Math.max(1, Math.min(Math.ceil(spread / tiles), byRows, byScratch));
}

// Encodes one scan of every chunk. `outputs`: [sims] for knnSimilarity, [sims, indices] for knnTopK, which with
// slices > 1 are the (S, Q, K) scratch lists, left unsorted for the merge.
function scan(spec: KnnSpec, queries: Tensor, list: Tensor[], outputs: Tensor[], k: number, cols: number, slices: number, opts: KnnOptions): void {
  const [q, d] = queries.shape;
  const tileQueries = spec.wg * spec.vecs * 4;
  const tiles = Math.ceil(q / tileQueries);
  const qpad = tiles * tileQueries;
  const qt = transposeQueries(queries, qpad, spec.normalize);
  const kernel = getKernel("knn", spec, wgsl);
  const { batch } = runtime();
  const limit = opts.maxBindingBytes ?? runtime().gpu.limits.maxStorageBufferBindingSize;
  const plan = planChunks(list, d, limit);
  // An empty bank still has to start (and finish) the lists: one dispatch over no rows (any buffer will do).
  if (plan.length === 0 && spec.fused) plan.push({ source: qt, r0: 0, rows: 0, base: 0, copy: false });
  plan.forEach((c, i) => {
    const scratch = c.copy ? Tensor.empty([c.rows, d]) : undefined;
    if (scratch) batch.copy(c.source.buffer, c.r0 * d * 4, scratch.buffer, 0, c.rows * d * 4);
    const bank = scratch ?? c.source;
    const inv = spec.normalize ? rowInvNorm(bank.buffer, c.rows, d) : undefined;
    const buffers = [...outputs.map((t) => t.buffer), qt.buffer, bank.buffer, ...(inv ? [inv.buffer] : [])];
    const fresh = i === 0 ? 1 : 0;
    const finish = i === plan.length - 1 && slices === 1 ? 1 : 0;
    const slice = Math.ceil(c.rows / slices);
    const fields = { q, qpad4: qpad / 4, d, n: c.rows, base: c.base, k, cols, fresh, finish, tiles, slices, slice, inf: Infinity };
    batch.dispatch(kernel, buffers, packUniform(FIELDS, fields), grid1d(tiles * slices), qpad * c.rows * d * 2);
    inv?.dispose();
    scratch?.dispose();
  });
  qt.dispose();
}

// The fused kernel: the K best bank rows of every query. queries (Q, D), bank (N, D) or chunks (N_i, D)
// -> sims (Q, K), indices (Q, K) i32.
export function knnTopK(queries: Tensor, bank: Tensor | Tensor[], k: number, opts: KnnOptions = {}): { sims: Tensor; indices: Tensor } {
  const { list, q, d, n } = checkInputs("knnTopK", queries, bank);
  if (!Number.isInteger(k) || k < 1) throw new Error(`knnTopK: expected k >= 1, got ${k}`);
  checkBinding("queries (Q, D); split the queries", queries.buffer.size, `${queries}`);
  const normalize = opts.normalize ?? false;
  const version = resolveVersion(KNN, { Q: q, N: n, D: d, K: k, normalize }, opts.version);
  const sims = emptyBound("the top-k output (Q, K); split the queries", [q, k]);
  const indices = Tensor.empty([q, k], "i32"); // the size of sims
  if (q > 0) {
    const spec: KnnSpec = { ...KNN_TILINGS[version], fused: true, normalize, broadcast: laneBroadcast(runtime().gpu, KNN_TILINGS[version].wg) };
    const slices = n === 0 ? 1 : (opts.slices ?? knnSlices(q, n, k, version));
    if (!Number.isInteger(slices) || slices < 1) throw new Error(`knnTopK: expected slices >= 1, got ${slices}`);
    if (slices === 1) scan(spec, queries, list, [sims, indices], k, 0, 1, opts);
    else {
      const ssims = emptyBound("the slices' lists (S, Q, K); use fewer slices or split the queries", [slices, q, k]);
      const sidx = Tensor.empty([slices, q, k], "i32");
      scan(spec, queries, list, [ssims, sidx], k, 0, slices, opts);
      const fields = { q, qpad4: 0, d: 0, n: 0, base: 0, k, cols: 0, fresh: 0, finish: 0, tiles: 0, slices, slice: 0, inf: Infinity };
      const buffers = [sims.buffer, indices.buffer, ssims.buffer, sidx.buffer];
      runtime().batch.dispatch(getKernel("knnMerge", {}, mergeWgsl), buffers, packUniform(FIELDS, fields), grid1d(Math.ceil(q / WG)), slices * q * k * 8);
      ssims.dispose();
      sidx.dispose();
    }
  }
  return { sims, indices };
}

// The baseline: the full similarity matrix. queries (Q, D), bank (N, D) or chunks (N_i, D) -> (Q, N).
export function knnSimilarity(queries: Tensor, bank: Tensor | Tensor[], opts: KnnOptions = {}): Tensor {
  const { list, q, d, n } = checkInputs("knnSimilarity", queries, bank);
  checkBinding("queries (Q, D); split the queries", queries.buffer.size, `${queries}`);
  const normalize = opts.normalize ?? false;
  const version = resolveVersion(KNN, { Q: q, N: n, D: d, K: 0, normalize }, opts.version);
  const sims = emptyBound("the similarity matrix (Q, N); split the queries", [q, n]);
  if (q > 0 && n > 0) {
    const spec: KnnSpec = { ...KNN_TILINGS[version], fused: false, normalize, broadcast: laneBroadcast(runtime().gpu, KNN_TILINGS[version].wg) };
    scan(spec, queries, list, [sims], 0, n, 1, opts);
  }
  return sims;
}
