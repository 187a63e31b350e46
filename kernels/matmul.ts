// Matmul: y = epilogue(op(a) · op(b)), batched.
//   a: (..., M, K), or (..., K, M) with transA
//   b: (..., K, N), or (..., N, K) with transB; either with a's batch dims, or 2-D and shared by every batch entry
//   y: (..., M, N)
//   epilogue, in this order: z = acc + bias (N); preact = z; z = gelu(z) (exact erf GELU); z += residual;
//   z += old y (accumulate); or instead of all of these, z *= gelu'(dgelu) (GELU's backward through the saved
//   preactivation, fused into the product that makes its incoming gradient). One WGSL generator (`epilogue`)
//   serves every version.
//   norm, optional: also the layernorm of y's rows, out = (y - mean) * rstd * gamma + beta with mean and rstd
//   (..., M) saved for its backward, as kernels/layernorm.ts computes it: a pre-norm block normalises the output of
//   each residual product (attn.proj, mlp.fc2) for the next sub-block. Where a reg workgroup with lanes along n
//   holds whole rows (N at most its tile's width, N % 4 == 0) and its lanes are one subgroup, the epilogue does it
//   (subgroupAdd over the lanes' columns: two sums per row); elsewhere a layernorm dispatch follows the product.
//   On CPU drivers a dispatch costs ~60 us beside its work, and the default study's model has 7 such layernorms in
//   its forward.
//   gatherA, optional: a read through an outer index, a[m, k] = src[rows[m] + cols[k]] with src the bound a (any
//   shape), rows (M) and cols (K) i32 offsets: a view that a strided copy would otherwise materialise, such as the
//   patch matrix of images (kernels/im2col.ts). The reg versions read it in place (a row's offset once, a k's per
//   k); the others get it materialised first (gatherOuter).
//   rowSums (..., M), optional: sum_k op(a)[m, k] (a linear layer's bias gradient beside its weight gradient, which
//   is dzᵀ·x with transA). The reg versions add up the a values they load anyway and the workgroups of the first
//   column tile store the sums: on CPU drivers a dispatch costs ~60 us beside its work, and a step of the default
//   study's model has 18 bias gradients. The tiled versions sum the a values they stage, in the first column tile's
//   workgroups; split along k, each split stores its partial sums after its partial product, and the reduce that
//   sums the partial products sums them too. The mma versions sum with kernels/reduce.ts.
//
// Versions (kernels/registry.ts MATMUL, which holds their tilings, the default and the resolver):
//   regRxC (CPU drivers): workgroups of 8 lanes side by side along n, each workgroup R rows x 8C columns, each lane C
//     contiguous columns as C/4 vec4 accumulators per row, two k per loop iteration (each accumulator written once
//     per iteration: see regWgsl); no workgroup memory, no barriers. b is read as vec4 rows (K, ldb): a transposed
//     b, or N % 4 != 0, is packed first (packB). Edges clamp the load indices (no branches in the k loop); stores
//     are bounds-checked; with N % 4 == 0 the epilogue stores vec4s.
//     A trained weight, transposed as a linear layer's (N, K) with K even, is read in place instead (`bPairs`):
//     column j's two k of an iteration are one vec2 load of its row, and the vec4 of 4 columns is assembled from 4
//     of them (free: llvmpipe keeps each component of a lane's vec4 in a SIMD register of its own). The loads are
//     as many as from the pack, and the products 0-8% slower than with a kept pack (`bench matmul`), but a trained
//     weight's pack would run before every product, its update dropping the last: the default model's full step
//     ran at 1128-1166 images/s against 1058-1109 with its 17 packs (replayed, 2026-12-05).
//   regmRxC (CPU drivers): the same block with the 8 lanes stacked along m (tile 8R x C, for skinny products), so b
//     loads are uniform: a small unaligned b (up to IN_PLACE_B_MAX elements) is read in place as scalars, unless it
//     is a weight shared by the batch that is not skinny (see IN_PLACE_SKINNY).
//   Both, where the adapter's subgroups are all 8 wide (llvmpipe on 256-bit vectors: the workgroup is one
//   subgroup): what the lanes would load alike (reg's R values of a per k, regm's C of b) is loaded once, lane l
//   taking the l-th, l+8-th, ... value, and handed to every lane by subgroupBroadcast (`broadcast`). llvmpipe loads
//   a uniform address lane by lane like any other (~0.4 ns per lane and f32 on the 2-core host), a broadcast is a
//   register shuffle: reg16x16 ran 512³ at 39 GFLOP/s against 27 without (docs/KERNELS.md, Matmul).
//   tiled, tiled128 (GPUs): a 64x64 (128x128) output tile per 16x16 workgroup, 4x4 (8x8) per thread, k in slabs of
//     16 through workgroup memory; split-K where y is a few tiles and K is long (splitK; mmai8 too).
//   tiledvec, tiled128vec (GPUs): the same tiles and slabs, each thread's rows and columns in runs of 4, read from the
//     slabs as vec4s; the slabs loaded as vec4s where the stored rows allow, the next while the current one is
//     multiplied; accumulators named by literal indices (tiledVecWgsl).
//   mma64, mma128 (GPUs with subgroup matrices): the same tiles multiplied by the adapter's subgroup matrices (tensor
//     cores, through chromium-experimental-subgroup-matrix) of the inputs' type, f32 accumulation (mmaWgsl).
//   mma64i8, mma128i8 (GPUs with i8 x i8 -> i32 subgroup matrices): f32 products on 8-bit tensor cores, each operand
//     split into int8 slices first (kernels/int8-slices.ts), the slice products summed exactly in i32 (mmaI8Wgsl):
//     with inputs "int8" 3 slices, 6 products, y within 2^-17 K max|a[m, :]| max|b[:, n]| of the exact product; with
//     "int8x2" 2 slices, 3 products, within 2^-11 K max|a[m, :]| max|b[:, n]|. Only with those inputs (the precisions
//     of autograd/precision.ts): at such a product the resolver picks among them and every exact version, so no f32
//     product ever runs them.
// Mixed precision (inputs "f16", autograd/precision.ts): every version rounds a and b to f16 as it loads them and
// accumulates in f32, as PyTorch's autocast does; y, the epilogue operands and rowSums stay f32. a and b stay f32 in
// memory and every f32 path (packs, in-place reads) applies; a cast pass per operand took a third of the default
// model's f16 step on lavapipe, by census (docs/KERNELS.md). The mma versions stage them as f16. The adapter must
// have shader-f16.
// Why they look so, with the measurements behind each choice: docs/KERNELS.md, "Matmul".
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor, numel } from "../engine/tensor.js";
import { fill } from "./fill.js";
import { reduceForward } from "./reduce.js";
import { type NormAfter, layernormForwardInto } from "./layernorm.js";
import type { Gpu } from "../engine/device.js";
import { type SliceCount, int8Slices } from "./int8-slices.js";
import { INT8_SLICES, MATMUL, MATMUL_LANES as LANES, MATMUL_TILINGS, MMA_I8_SLAB, MMA_SLAB, PRECISIONS, type MatmulShape, type MatmulVersion, type Precision, fragmentKey, laneBroadcast, mmaFragment, mmaI8Fragment, precisionLacks, resolveVersion, tileShape } from "./registry.js";
import { FLAT_GROUP, erfFunction, grid1d, packUniform, range, storageBindings, uniformStruct } from "./wgsl.js";

export interface MatmulOptions {
  transA?: boolean; // a is stored (..., K, M)
  transB?: boolean; // b is stored (..., N, K)
  bias?: Tensor; // (N): added to every row
  gelu?: boolean; // y = gelu(a·b + bias), exact erf GELU
  preact?: Tensor; // with gelu: also write z = a·b + bias here, same shape as y (saved for backward)
  residual?: Tensor; // same shape as y: added last (after gelu)
  out?: Tensor; // write into this tensor instead of allocating one
  accumulate?: boolean; // with out: out += result (gradient accumulation); no bias/gelu/residual then
  rowSums?: Tensor; // (..., M): also write sum_k op(a)[m, k] here (see the header)
  dgelu?: Tensor; // same shape as y: y = (a·b) * gelu'(dgelu), exact erf GELU; no other epilogue then
  version?: string; // force a version (tests and the autotuner), else resolved by kernels/registry.ts
  splitK?: number; // tiled, mmai8: force this many splits of k (tests), else splitK's plan
  inputs?: Precision; // "f16": a and b read in f16, accumulated in f32; "int8", "int8x2": may run as 3 or 2 int8 slices (see the header); default "f32"
  norm?: NormAfter; // also write the layernorm of y's rows (see the header); not with dgelu
  gatherA?: OuterIndex; // a is the source of a gathered (M, K) matrix (see the header); not with transA
}

// Offsets of a gathered matrix: element (m, k) is src[rows[m] + cols[k]].
export interface OuterIndex {
  rows: Tensor; // (M) i32
  cols: Tensor; // (K) i32
}

export type { Precision };

// regm: the largest b (elements per batch entry, 1 MiB: an L2 cache) read in place when unaligned; see the header.
const IN_PLACE_B_MAX = 1 << 18;
// regm reads a shared (2-D) b in place only when N or K is at most this (LoRA's rank-r factors): a linear layer's
// transposed weight is packed first. In a training step of the default study's model (2026-12-04, in-step
// profiles) the forward products read their weights in place at 2-3x the time of the same products after the pack
// (fc2's 544x256x64: 2.9-3.3 ms against 1.3-1.9 plus 0.2 for the pack), and the whole process used ~12% more CPU
// time per step; products back to back (`bench matmul`, where b stays cached) had them 1.2-1.3x apart.
const IN_PLACE_SKINNY = 16;
const TK = 16; // tiled: k slab
const WG2 = 16; // tiled: workgroup edge; each thread owns tile/WG2 rows and columns (4 x 4, or 8 x 8 for tiled128)

export interface MatmulSpec {
  [k: string]: string | number | boolean;
  version: MatmulVersion;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  gelu: boolean;
  preact: boolean;
  residual: boolean;
  addOut: boolean; // y += result, reading y's old value through its read_write binding
  vecY: boolean; // reg, tiled*vec unsplit, N % 4 == 0: y and the epilogue operands bound as vec4, stored 4 at a time
  bScalars: boolean; // regm, small b with transB or N % 4 != 0: b read in its stored layout as (uniform) scalars
  bPairs: boolean; // reg (lanes along n), a shared transposed b with K even: read in place, two k per vec2 load
  rowSums: boolean; // reg, tiled without split-K: rowSums bound after the epilogue operands
  splitRowSums: boolean; // tiled with split-K and rowSums: each split's row sums stored in y after its partial product
  dgelu: boolean; // y = acc * gelu'(dgelu[i])
  f16: boolean; // A and B rounded to f16 as loaded (h16), multiplied in f32; mma: staged as f16
  slices: number; // mmai8: each operand's int8 slices (2 or 3); 0 otherwise
  fragment: string; // mma: the subgroup matrices' M x N x K and the subgroup size ("16x16x16/32"); "" otherwise
  vecA: boolean; // tiled*vec, mma: a's stored rows a multiple of 4 long, so A is bound and staged as vec4
  vecB: boolean; // tiled*vec, mma: the same for b
  constSlab: boolean; // tiled*vec on GPUs: a full k slab's loop has a constant bound (see tiledVecWgsl)
  broadcast: boolean; // reg: what every lane loads alike comes from per-lane loads and subgroupBroadcast (header)
  norm: boolean; // reg with lanes along n, vecY, broadcast, one column tile: the layernorm of y's rows (header)
  gatherA: boolean; // reg: a read through aRows and aCols (header)
}

const FIELDS = {
  M: "u32",
  K: "u32",
  N: "u32",
  batch: "u32",
  tilesM: "u32",
  tilesN: "u32",
  strideA: "u32", // elements between batch entries of a (mmai8: words of its slices)
  strideB: "u32", // elements between batch entries of b (mmai8: words of its slices); 0 when b is shared
  ldb: "u32", // reg: elements between rows of b, stored (K, ldb) with ldb % 4 == 0
  splits: "u32", // tiled, mmai8: split-K, the grid's third axis is splits x batch; 1 otherwise
  kSplit: "u32", // tiled, mmai8: k per split
  splitStride: "u32", // tiled: elements of y per split (its partial product, then its row sums with splitRowSums)
  eps: "f32", // norm
} as const;

// Storage bindings: y, a, b, then the optional epilogue operands in this fixed order (see matmulForward).
function bindings(spec: MatmulSpec): string {
  const i8 = MATMUL_TILINGS[spec.version].kind === "mmai8"; // a's and b's int8 slices
  const yType = spec.vecY ? "array<vec4<f32>>" : "array<f32>";
  const list: Parameters<typeof storageBindings>[0] = [
    ["y", yType, "read_write"],
    ["A", i8 ? "array<vec4<i32>>" : spec.vecA ? "array<vec4<f32>>" : "array<f32>", "read"],
    ["B", i8 ? "array<vec4<i32>>" : spec.bPairs ? "array<vec2<f32>>" : (MATMUL_TILINGS[spec.version].kind === "reg" && !spec.bScalars) || spec.vecB ? "array<vec4<f32>>" : "array<f32>", "read"],
  ];
  if (spec.bias) list.push(["bias", yType, "read"]);
  if (spec.preact) list.push(["preact", yType, "read_write"]);
  if (spec.residual) list.push(["residual", yType, "read"]);
  if (spec.dgelu) list.push(["dgelu", yType, "read"]);
  if (spec.rowSums) list.push(["rowSums", "array<f32>", "read_write"]);
  if (spec.gatherA) list.push(["aRows", "array<u32>", "read"], ["aCols", "array<u32>", "read"]);
  if (spec.norm) {
    list.push(["normed", yType, "read_write"], ["normMean", "array<f32>", "read_write"], ["normRstd", "array<f32>", "read_write"]);
    list.push(["normGamma", yType, "read"], ["normBeta", yType, "read"]);
  }
  return storageBindings(list);
}

// A loaded operand value x (f32, or a vec2 or vec4 of f32), rounded to f16 with mixed precision (spec.f16).
function h16(spec: MatmulSpec, x: string, width: 1 | 2 | 4 = 1): string {
  return spec.f16 ? `h16${width === 1 ? "" : `v${width}`}(${x})` : x;
}

// The rounding, f32 -> f16 -> f32, in integer operations: lavapipe's compiler dropped the round trip f32(f16(x)), and
// through pack2x16float too, as a no-op. To nearest, ties to even: the significand to f16's 10 bits; f16's
// subnormals (below 2^-14) to multiples of 2^-24; past 65504, infinity of x's sign (as f16 overflows).
function h16Functions(): string {
  return (["f32", "vec2<f32>", "vec4<f32>"] as const)
    .map((T, i) => {
      const U = i === 0 ? "u32" : `vec${2 * i}<u32>`;
      return /* wgsl */ `
fn h16${i === 0 ? "" : `v${2 * i}`}(x: ${T}) -> ${T} {
  let u = bitcast<${U}>(x);
  let r = bitcast<${T}>((u + ${U}(0xfffu) + ((u >> ${U}(13u)) & ${U}(1u))) & ${U}(0xffffe000u));
  let inf = bitcast<${T}>((u & ${U}(0x80000000u)) | ${U}(0x7f800000u));
  let tiny = round(x * 16777216.0) * 5.9604644775390625e-8;
  return select(select(r, inf, abs(r) > ${T}(65504.0)), tiny, abs(x) < ${T}(6.103515625e-5));
}`;
    })
    .join("");
}

// Flat index of a[m, k] and b[k, n] within one batch entry, for the stored layout.
function aIndex(spec: MatmulSpec, m: string, k: string): string {
  return spec.transA ? `(${k}) * p.M + ${m}` : `(${m}) * p.K + ${k}`;
}
function bIndex(spec: MatmulSpec, k: string, n: string): string {
  return spec.transB ? `(${n}) * p.K + ${k}` : `(${k}) * p.N + ${n}`;
}

// The shared epilogue: finishes y[i] (column col) from the accumulated dot product and returns it; with vecY, i and
// col count vec4s, acc is one, and the caller has added the bias (reg hoists its loads out of the row loop).
function epilogue(spec: MatmulSpec): string {
  const T = spec.vecY ? "vec4<f32>" : "f32";
  return /* wgsl */ `
fn store(i: u32, col: u32, acc: ${T}) -> ${T} {
  var v = acc;
  ${spec.bias && !spec.vecY ? "v += bias[col];" : "_ = col;"}
  ${spec.preact ? "preact[i] = v;" : ""}
  ${spec.gelu ? "v = 0.5 * v * (1.0 + erf(v * 0.70710678118654752));" : ""}
  ${spec.residual ? "v += residual[i];" : ""}
  ${spec.addOut ? "v += y[i];" : ""}
  ${spec.dgelu ? "let g = dgelu[i]; v *= 0.5 * (1.0 + erf(g * 0.70710678118654752)) + g * 0.39894228040143268 * exp(-0.5 * g * g);" : ""}
  y[i] = v;
  return v;
}`;
}

function header(spec: MatmulSpec): string {
  const mma = MATMUL_TILINGS[spec.version].kind === "mma";
  return `${spec.f16 && mma ? "enable f16;" : ""}${spec.broadcast ? "enable subgroups;" : ""}
${uniformStruct(FIELDS)}
${bindings(spec)}
${FLAT_GROUP}
${spec.f16 && !mma ? h16Functions() : ""}
${spec.gelu || spec.dgelu ? erfFunction(spec.vecY ? "vec4<f32>" : "f32") : ""}
${epilogue(spec)}`;
}

// Workgroup index -> (split of k, batch entry, row tile, column tile), column tiles fastest; y entry z of
// (splits, batch). The folded grid may have a few groups past the end: they return (a uniform branch, before any
// work).
const TILE_COORDS = /* wgsl */ `
  let g = flatGroup(wid, nwg);
  let tn = g % p.tilesN;
  let tm = (g / p.tilesN) % p.tilesM;
  let z = g / (p.tilesN * p.tilesM);
  let bat = z % p.batch;
  let sk = z / p.batch;
  if (sk >= p.splits) { return; }
  let aBase = bat * p.strideA;
  let bBase = bat * p.strideB;
  let yBase = sk * p.splitStride + bat * p.M * p.N;`;

const ENTRY = /* wgsl */ `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>)`;

// reg/regm. Thread mapping, workgroup (bat, tm, tn) and lane l: reg computes rows tm*R + r and columns
// tn*8C + l*C + j (a loads uniform across lanes, b loads adjacent); regm computes rows tm*8R + 8r + l and columns
// tn*C + j (b loads uniform, a loads strided). Rows and columns past the edge load clamped (valid) indices and
// are not stored.
function regWgsl(spec: MatmulSpec, R: number, C: number, lanesAlongM: boolean): string {
  const V = C / 4;
  const row = (r: string) => (lanesAlongM ? `m0 + ${r} * ${LANES}u + lid.x` : `m0 + ${r}`); // r: a u32 expression
  const pre: string[] = [];
  // broadcast: what every lane would load alike (a's R values with lanes along n, b's C with lanes along m) is loaded
  // once, lane l taking values l, l + 8, ... per-lane, and handed to every lane by subgroupBroadcast.
  const aShared = spec.broadcast && !lanesAlongM;
  const bShared = spec.broadcast && lanesAlongM;
  // gatherA: w${q} and r${r} are the rows' offsets in the source instead of their indices.
  const rowAt = (m: string) => (spec.gatherA ? `aRows[${m}]` : m);
  if (aShared) for (let q = 0; q < Math.ceil(R / LANES); q++) pre.push(`let w${q} = ${rowAt(`min(m0 + ${q * LANES}u + lid.x, p.M - 1u)`)};`);
  else for (let r = 0; r < R; r++) pre.push(`let r${r} = ${rowAt(`min(${row(`${r}u`)}, p.M - 1u)`)};`);
  // bScalars: c_j is where column j's elements of b start (transB: its row of b; else its offset in a row of b).
  // bShared: cl${q} is that of column 8q + l for lane l.
  const column = (j: string) => `bBase + min(n0 + ${j}, p.N - 1u)${spec.transB ? " * p.K" : ""}`;
  if (spec.bScalars && bShared) for (let q = 0; q < Math.ceil(C / LANES); q++) pre.push(`let cl${q} = ${column(`min(${q * LANES}u + lid.x, ${C - 1}u)`)};`);
  else if (spec.bScalars) for (let j = 0; j < C; j++) pre.push(`let c${j} = ${column(`${j}u`)};`);
  else if (spec.bPairs) for (let j = 0; j < C; j++) pre.push(`let cp${j} = min(n0 + ${j}u, p.N - 1u) * (p.K / 2u);`);
  else {
    pre.push("let bBase4 = bBase / 4u;", "let ldb4 = p.ldb / 4u;");
    if (bShared && V > LANES) throw new Error(`matmul: expected at most ${LANES} vec4s of b per lane to broadcast, got ${V}`);
    if (bShared) pre.push(`let cl = min(n0 + 4u * min(lid.x, ${V - 1}u), p.ldb - 4u) / 4u;`);
    else for (let v = 0; v < V; v++) pre.push(`let c${v} = min(n0 + ${4 * v}u, p.ldb - 4u) / 4u;`);
  }
  for (let r = 0; r < R; r++) for (let v = 0; v < V; v++) pre.push(`var acc${r}_${v} = vec4<f32>(0.0);`);
  // One k's loads, their values named with suffix u: ea/eb (the per-lane loads to broadcast), e (a's values, with
  // rowSums), a${r}, b${v}.
  const loads = (k: string, u: string): string[] => {
    const kk = `k${u}`;
    const lines = [`let ${kk} = ${k};`];
    if (spec.gatherA) lines.push(`let ak${u} = aCols[${kk}];`);
    const aAt = (m: string) => (spec.gatherA ? `A[${m} + ak${u}]` : `A[aBase + ${aIndex(spec, m, kk)}]`);
    const aValue = (r: number) => (aShared ? `subgroupBroadcast(ea${Math.floor(r / LANES)}${u}, ${r % LANES}u)` : h16(spec, aAt(`r${r}`)));
    if (aShared) for (let q = 0; q < Math.ceil(R / LANES); q++) lines.push(`let ea${q}${u} = ${h16(spec, aAt(`w${q}`))};`);
    for (let r = 0; r < R; r++) {
      if (spec.rowSums) lines.push(`let e${r}${u} = ${aValue(r)};`, `let a${r}${u} = vec4<f32>(e${r}${u});`);
      else lines.push(`let a${r}${u} = vec4<f32>(${aValue(r)});`);
    }
    const inRow = spec.transB ? kk : `${kk} * p.N`; // bScalars: where k's elements start in each column's run
    const bScalar = (j: number) => (bShared ? `subgroupBroadcast(eb${Math.floor(j / LANES)}${u}, ${j % LANES}u)` : h16(spec, `B[c${j} + ${inRow}]`));
    if (bShared && spec.bScalars) for (let q = 0; q < Math.ceil(C / LANES); q++) lines.push(`let eb${q}${u} = ${h16(spec, `B[cl${q} + ${inRow}]`)};`);
    if (bShared && !spec.bScalars) lines.push(`let eb${u} = ${h16(spec, `B[bBase4 + ${kk} * ldb4 + cl]`, 4)};`);
    for (let v = 0; v < V; v++) {
      const b = spec.bPairs
        ? `vec4<f32>(${[0, 1, 2, 3].map((j) => `pb${4 * v + j}.${u === "_0" ? "x" : "y"}`).join(", ")})`
        : spec.bScalars
        ? `vec4<f32>(${[0, 1, 2, 3].map((j) => bScalar(4 * v + j)).join(", ")})`
        : bShared
          ? `subgroupBroadcast(eb${u}, ${v}u)`
          : h16(spec, `B[bBase4 + ${kk} * ldb4 + c${v}]`, 4);
      lines.push(`let b${v}${u} = ${b};`);
    }
    return lines;
  };
  // Two k per iteration, each accumulator written once per iteration as fma(a1, b1, fma(a0, b0, acc)): llvmpipe
  // keeps loop-carried variables on the stack and blends every write with the loop's mask (a load, a blend and a
  // store per write), so one write per two FMAs saves a third of the loop's instructions; the sums keep their order.
  // An odd K's last k runs after the loop.
  const accumulate = (us: string[]): string[] => {
    const lines: string[] = [];
    for (let r = 0; r < R; r++) for (let v = 0; v < V; v++) lines.push(`acc${r}_${v} = ${us.reduce((e, u) => `fma(a${r}${u}, b${v}${u}, ${e})`, `acc${r}_${v}`)};`);
    if (spec.rowSums) for (let r = 0; r < R; r++) lines.push(`s${r} = s${r}${us.map((u) => ` + e${r}${u}`).join("")};`);
    return lines;
  };
  if (spec.rowSums) for (let r = 0; r < R; r++) pre.push(`var s${r} = 0.0;`);
  // bPairs: column j's two k of b are one vec2 load of its row, pb${j}.
  const pairs = spec.bPairs ? range(C).map((j) => `let pb${j} = ${h16(spec, `B[cp${j} + k / 2u]`, 2)};`) : [];
  const body = [...pairs, ...loads("k", "_0"), ...loads("k + 1u", "_1"), ...accumulate(["_0", "_1"])];
  const last = spec.bPairs ? [] : [...loads("k", "_0"), ...accumulate(["_0"])]; // bPairs: K is even
  // rowSums: the first column tile stores them; with lanes along n every lane holds the same rows, lane 0 stores.
  const sums: string[] = [];
  if (spec.rowSums) {
    sums.push(`if (tn == 0u${lanesAlongM ? "" : " && lid.x == 0u"}) {`);
    for (let r = 0; r < R; r++) sums.push(`  if (${row(`${r}u`)} < p.M) { rowSums[bat * p.M + ${row(`${r}u`)}] = s${r}; }`);
    sums.push("}");
  }
  const tile: string[] = [];
  for (let r = 0; r < R; r++) for (let v = 0; v < V; v++) tile.push(`acc${r}_${v}`);
  const [tileM, tileN] = lanesAlongM ? [LANES * R, C] : [R, LANES * C];
  // vecY: a lane's columns are V vec4s, unrolled, and their bias is loaded once for all its rows, not once per row
  // in store() (a per-lane load costs like a store on llvmpipe, and a K = 64 product's epilogue is a third of it).
  const biasLoads = spec.vecY && spec.bias ? range(V).map((v) => `let bias${v} = bias[min(n0 / 4u + ${v}u, p.N / 4u - 1u)];`) : [];
  const at = (v: number) => `(yBase + m * p.N + n0) / 4u + ${v}u`;
  const finish = (v: number) => `store(${at(v)}, n0 / 4u + ${v}u, tile[r * ${V}u + ${v}u]${spec.bias ? ` + bias${v}` : ""})`;
  const vecStores = range(V).map((v) => `if (${v}u < cols / 4u) { ${finish(v)}; }`);
  // norm: a row's V vec4s per lane (zeros past N), summed over the lanes by subgroupAdd, which wants every lane:
  // outside the column branches, inside the row loop and its branch, which are uniform (m is the workgroup's).
  // Two-pass variance, as kernels/layernorm.ts.
  const has = (v: number) => `${v}u < cols / 4u`;
  const hsum = (e: (v: number) => string) => range(V).map((v) => `dot(${e(v)}, vec4<f32>(1.0))`).join(" + ");
  const normLoads = spec.norm
    ? range(V).flatMap((v) => [`let gamma${v} = normGamma[min(n0 / 4u + ${v}u, p.N / 4u - 1u)];`, `let beta${v} = normBeta[min(n0 / 4u + ${v}u, p.N / 4u - 1u)];`])
    : [];
  const normRow = [
    ...range(V).flatMap((v) => [`var y${v} = vec4<f32>(0.0);`, `if (${has(v)}) { y${v} = ${finish(v)}; }`]),
    `let mean = subgroupAdd(${hsum((v) => `y${v}`)}) / f32(p.N);`,
    ...range(V).map((v) => `let d${v} = select(vec4<f32>(0.0), y${v} - mean, ${has(v)});`),
    `let rstd = inverseSqrt(subgroupAdd(${hsum((v) => `d${v} * d${v}`)}) / f32(p.N) + p.eps);`,
    ...range(V).map((v) => `if (${has(v)}) { normed[${at(v)}] = d${v} * rstd * gamma${v} + beta${v}; }`),
    "if (lid.x == 0u) {",
    "  normMean[z * p.M + m] = mean;",
    "  normRstd[z * p.M + m] = rstd;",
    "}",
  ];
  return /* wgsl */ `${header(spec)}
@compute @workgroup_size(${LANES})
${ENTRY} {${TILE_COORDS}
  let m0 = tm * ${tileM}u;
  let n0 = tn * ${tileN}u${lanesAlongM ? "" : ` + lid.x * ${C}u`};
  ${pre.join("\n  ")}
  var k = 0u;
  for (; k + 1u < p.K; k += 2u) {
    ${body.join("\n    ")}
  }
  if (k < p.K) {
    ${last.join("\n    ")}
  }
  ${sums.join("\n  ")}
  // The epilogue runs in loops with uniform, non-constant bounds so that its code is not unrolled R*C times.
  var tile = array<vec4<f32>, ${R * V}>(${tile.join(", ")});
  let cols = select(0u, min(${C}u, p.N - n0), n0 < p.N);
  let rows = min(${R}u, (p.M - m0 + ${lanesAlongM ? LANES - 1 : 0}u) / ${lanesAlongM ? LANES : 1}u); // row slots any lane stores
  ${[...biasLoads, ...normLoads].join("\n  ")}
  for (var r = 0u; r < rows; r++) {
    let m = ${row("r")};
    if (m < p.M) {${spec.vecY ? `
      ${(spec.norm ? normRow : vecStores).join("\n      ")}` : `
      for (var j = 0u; j < cols; j++) {
        store(yBase + m * p.N + n0 + j, n0 + j, tile[r * ${V}u + j / 4u][j % 4u]);
      }`}
    }
  }
}`;
}

// tiled. Thread mapping: workgroup (bat, tm, tn) computes the tile x tile block at (tm*tile, tn*tile); thread
// (tx, ty) owns rows ty + 16*i and columns tx + 16*j (i, j < tile/16), so neighbouring threads read neighbouring
// words of the staged slabs. Each k step the 256 threads stage a tile x 16 slab of a and a 16 x tile slab of b
// (tile/16 words each, zero outside the matrices), walking the stored layout's contiguous dimension with
// consecutive threads.
function tiledWgsl(spec: MatmulSpec, tile: number): string {
  const per = tile / WG2;
  return /* wgsl */ `${header(spec)}
var<workgroup> As: array<array<f32, ${tile}>, ${TK}>; // [k][m]
var<workgroup> Bs: array<array<f32, ${tile}>, ${TK}>; // [k][n]
@compute @workgroup_size(${WG2}, ${WG2})
${ENTRY} {${TILE_COORDS}
  let m0 = tm * ${tile}u;
  let n0 = tn * ${tile}u;
  let t = lid.y * ${WG2}u + lid.x;
  let kEnd = min((sk + 1u) * p.kSplit, p.K);
  var acc: array<array<f32, ${per}>, ${per}>;
  ${spec.rowSums || spec.splitRowSums ? "var rowSum = 0.0; // rowSums: the first column tile's threads t < tile sum a's row m0 + t" : ""}
  for (var k0 = sk * p.kSplit; k0 < kEnd; k0 += ${TK}u) {
    for (var s = 0u; s < ${(tile * TK) / (WG2 * WG2)}u; s++) {
      let e = t + s * ${WG2 * WG2}u;
      ${spec.transA ? `let am = e % ${tile}u; let ak = e / ${tile}u;` : `let ak = e % ${TK}u; let am = e / ${TK}u;`}
      let gm = m0 + am;
      let gk = k0 + ak;
      As[ak][am] = select(0.0, ${h16(spec, `A[aBase + ${aIndex(spec, "min(gm, p.M - 1u)", "min(gk, p.K - 1u)")}]`)}, gm < p.M && gk < kEnd);
      ${spec.transB ? `let bk = e % ${TK}u; let bn = e / ${TK}u;` : `let bn = e % ${tile}u; let bk = e / ${tile}u;`}
      let hn = n0 + bn;
      let hk = k0 + bk;
      Bs[bk][bn] = select(0.0, ${h16(spec, `B[bBase + ${bIndex(spec, "min(hk, p.K - 1u)", "min(hn, p.N - 1u)")}]`)}, hn < p.N && hk < kEnd);
    }
    workgroupBarrier();
    ${spec.rowSums || spec.splitRowSums ? `if (tn == 0u && t < ${tile}u) { for (var k = 0u; k < ${TK}u; k++) { rowSum += As[k][t]; } }` : ""}
    // A non-constant bound keeps NIR from unrolling this loop 16 times (seconds of llvmpipe compile time).
    for (var k = 0u; k < min(${TK}u, kEnd - k0); k++) {
      var a: array<f32, ${per}>;
      var b: array<f32, ${per}>;
      for (var i = 0u; i < ${per}u; i++) {
        a[i] = As[k][lid.y + ${WG2}u * i];
        b[i] = Bs[k][lid.x + ${WG2}u * i];
      }
      for (var i = 0u; i < ${per}u; i++) {
        for (var j = 0u; j < ${per}u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${per}u; i++) {
    let m = m0 + lid.y + ${WG2}u * i;
    for (var j = 0u; j < ${per}u; j++) {
      let n = n0 + lid.x + ${WG2}u * j;
      if (m < p.M && n < p.N) { store(yBase + m * p.N + n, n, acc[i][j]); }
    }
  }
  ${spec.rowSums ? `if (tn == 0u && t < ${tile}u && m0 + t < p.M) { rowSums[bat * p.M + m0 + t] = rowSum; }` : ""}
  ${spec.splitRowSums ? `if (tn == 0u && t < ${tile}u && m0 + t < p.M) { y[sk * p.splitStride + p.batch * p.M * p.N + bat * p.M + m0 + t] = rowSum; }` : ""}
}`;
}

// tiledvec, tiled128vec. Thread mapping: workgroup (bat, tm, tn) computes the tile x tile block at (tm*tile, tn*tile);
// thread (tx, ty) owns rows 64*g + 4*ty + i and columns 64*h + 4*tx + j (i, j < 4; g, h < tile/64), so each k it reads
// its rows' and columns' staged values as tile/32 vec4s (against tiled's tile/8 scalars), the 16 threads of a row of
// the workgroup reading 16 adjacent vec4s of b's slab. The slabs are loaded by slabStage (vec4s where the stored rows
// are a multiple of 4 long), the next one into registers while the current one is multiplied. Everything a thread holds
// is named by literal indices (acc0_0, ...; nothing in a per-thread array indexed in a loop), so that no driver keeps
// its accumulators in memory; y's rows are stored as vec4s where N % 4 == 0 (vecY). Split along k, the splits start at
// multiples of the slab (see matmulForward).
function tiledVecWgsl(spec: MatmulSpec, tile: number): string {
  const t4 = tile / 4; // vec4s per staged row
  const runs = tile / 64; // g, h < runs
  const a = slabStage(spec, "A", tile, TK, WG2 * WG2, "kEnd", "f32");
  const b = slabStage(spec, "B", tile, TK, WG2 * WG2, "kEnd", "f32");
  const put = (arr: string) => (o: string, k: string, v: string) => `${arr}[(${k}) * ${t4}u + (${o}) / 4u][(${o}) % 4u] = ${v};`;
  const putVec4 = (arr: string) => (o: string, k: string, v: string) => `${arr}[(${k}) * ${t4}u + (${o}) / 4u] = ${v};`;
  const rows = range(4 * runs); // r = 4g + i
  const cols = range(runs); // h
  const lane = "xyzw";
  const accs = rows.flatMap((r) => cols.map((h) => `var acc${r}_${h} = vec4<f32>(0.0);`));
  const step = [
    ...cols.map((g) => `let a${g} = As[k * ${t4}u + ${16 * g}u + lid.y];`),
    ...cols.map((h) => `let b${h} = Bs[k * ${t4}u + ${16 * h}u + lid.x];`),
    ...rows.flatMap((r) => cols.map((h) => `acc${r}_${h} = fma(vec4<f32>(a${r >> 2}.${lane[r & 3]}), b${h}, acc${r}_${h});`)),
  ];
  const finish = rows.flatMap((r) =>
    cols.map((h) => {
      const at = `let m = m0 + ${64 * (r >> 2) + (r & 3)}u + 4u * lid.y;\n    let n = n0 + ${64 * h}u + 4u * lid.x;`;
      const acc = `acc${r}_${h}`;
      if (spec.vecY) return `{\n    ${at}\n    if (m < p.M && n < p.N) { store((yBase + m * p.N + n) / 4u, n / 4u, ${acc}${spec.bias ? " + bias[n / 4u]" : ""}); }\n  }`;
      const each = range(4).map((c) => `if (m < p.M && n + ${c}u < p.N) { store(yBase + m * p.N + n + ${c}u, n + ${c}u, ${acc}.${lane[c]}); }`);
      return `{\n    ${at}\n    ${each.join("\n    ")}\n  }`;
    }),
  );
  const sums = spec.rowSums || spec.splitRowSums;
  const loop = (bound: string) => `for (var k = 0u; k < ${bound}; k++) {\n      ${step.join("\n      ")}\n    }`;
  // A non-constant bound keeps NIR from unrolling the loop 16 times (seconds of llvmpipe compile time); on GPUs a
  // full slab's has a constant one, which their compilers unroll (constSlab).
  const multiply = spec.constSlab
    ? `if (kEnd - k0 >= ${TK}u) {\n    ${loop(`${TK}u`)}\n    } else {\n    ${loop("kEnd - k0")}\n    }`
    : loop(`min(${TK}u, kEnd - k0)`);
  return /* wgsl */ `${header(spec)}
var<workgroup> As: array<vec4<f32>, ${TK * t4}>; // [k][m / 4]
var<workgroup> Bs: array<vec4<f32>, ${TK * t4}>; // [k][n / 4]
@compute @workgroup_size(${WG2}, ${WG2})
${ENTRY} {${TILE_COORDS}
  let m0 = tm * ${tile}u;
  let n0 = tn * ${tile}u;
  let t = lid.y * ${WG2}u + lid.x;
  let kBegin = sk * p.kSplit;
  let kEnd = min(kBegin + p.kSplit, p.K);
  ${indented(a.decls, 2)}
  ${indented(b.decls, 2)}
  ${accs.join("\n  ")}
  ${sums ? "var rowSum = 0.0; // rowSums: the first column tile's threads t < tile sum a's row m0 + t" : ""}
  ${stagedLoop("k0", "kBegin", "kEnd", `${TK}u`, [a, b], [a.store(put("As"), putVec4("As")), b.store(put("Bs"), putVec4("Bs"))],
    `${sums ? `if (tn == 0u && t < ${tile}u) { for (var k = 0u; k < min(${TK}u, kEnd - k0); k++) { rowSum += As[k * ${t4}u + t / 4u][t % 4u]; } }` : ""}\n    ${multiply}`)}
  ${finish.join("\n  ")}
  ${spec.rowSums ? `if (tn == 0u && t < ${tile}u && m0 + t < p.M) { rowSums[bat * p.M + m0 + t] = rowSum; }` : ""}
  ${spec.splitRowSums ? `if (tn == 0u && t < ${tile}u && m0 + t < p.M) { y[sk * p.splitStride + p.batch * p.M * p.N + bat * p.M + m0 + t] = rowSum; }` : ""}
}`;
}

// The mma kernels' geometry: the fragment (fm x fn x fk) and subgroup size its spec names, 2 x subgroupsN subgroups,
// each a wtm x wtn block of the tile in FM x FN fragments.
function mmaGeometry(spec: MatmulSpec, tile: number, subgroupsN: number) {
  const [frag, size] = spec.fragment.split("/");
  const [fm, fn, fk] = frag.split("x").map(Number);
  const sg = Number(size);
  const subgroups = 2 * subgroupsN;
  const [wtm, wtn] = [tile / 2, tile / subgroupsN];
  return { fm, fn, fk, sg, subgroups, threads: subgroups * sg, wtm, wtn, FM: wtm / fm, FN: wtn / fn };
}

// Their workgroup layout after TILE_COORDS: the tile's origin (m0, n0), the thread t, its subgroup and lane, and the
// subgroup's block of the tile (wm along m, wn along n).
function mmaCoords(tile: number, sg: number, subgroupsN: number): string {
  return `  let m0 = tm * ${tile}u;
  let n0 = tn * ${tile}u;
  let t = lid.x;
  let sub = t / ${sg}u;
  let lane = t % ${sg}u;
  let wm = sub / ${subgroupsN}u;
  let wn = sub % ${subgroupsN}u;`;
}

// mma (GPUs with subgroup matrices). Workgroup (bat, tm, tn) computes the tile x tile block at (tm*tile, tn*tile) with
// 2 x subgroupsN subgroups, each a (tile/2) x (tile/subgroupsN) block as FM x FN fragments of fm x fn, accumulated in
// f32 subgroup matrices. Each k slab (MMA_SLAB: 32 of f16, 16 of f32) the workgroup stages a tile x slab block of a and
// a slab x tile block of b in workgroup memory in the input type (zero outside the matrices, so edges need no other
// care; consecutive threads walk the stored layout's contiguous dimension; slabStage), the next slab loaded into
// registers while the current one is multiplied, row strides padded by 16 bytes (the alignment the loads need) against
// bank conflicts. The epilogue goes fragment by fragment through a small per-subgroup scratch, since subgroup matrices
// have no element access: each subgroup stores its fragment, its lanes finish the elements with the shared `store`.
// Offsets differ between subgroups of a workgroup, which WGSL's workgroup-scope uniformity analysis cannot see are
// subgroup-uniform: hence the diagnostic is off. The subgroup size is the adapter's largest, which Dawn's pipelines run
// at in full subgroups.
function mmaWgsl(spec: MatmulSpec, tile: number, subgroupsN: number): string {
  const { fm, fn, fk, sg, subgroups, threads, wtm, wtn, FM, FN } = mmaGeometry(spec, tile, subgroupsN);
  const ct = spec.f16 ? "f16" : "f32";
  const slab = MMA_SLAB[ct];
  const pad = spec.f16 ? 8 : 4; // 16 bytes
  const kp = slab + pad; // As row stride
  const np = tile + pad; // Bs row stride
  const left = `subgroup_matrix_left<${ct}, ${fk}, ${fm}>`;
  const right = `subgroup_matrix_right<${ct}, ${fn}, ${fk}>`;
  const result = `subgroup_matrix_result<f32, ${fn}, ${fm}>`;
  const accs: string[] = [];
  const step: string[] = [];
  const finish: string[] = [];
  for (let i = 0; i < FM; i++) for (let j = 0; j < FN; j++) accs.push(`var acc${i}_${j} = ${result}();`);
  for (let i = 0; i < FM; i++) step.push(`let l${i} = subgroupMatrixLoad<${left}, row_major>(&As, (wm * ${wtm}u + ${i * fm}u) * ${kp}u + kk, ${kp}u);`);
  for (let j = 0; j < FN; j++) step.push(`let r${j} = subgroupMatrixLoad<${right}, row_major>(&Bs, kk * ${np}u + wn * ${wtn}u + ${j * fn}u, ${np}u);`);
  for (let i = 0; i < FM; i++) for (let j = 0; j < FN; j++) step.push(`acc${i}_${j} = subgroupMatrixMultiplyAccumulate(l${i}, r${j}, acc${i}_${j});`);
  for (let i = 0; i < FM; i++) {
    for (let j = 0; j < FN; j++) {
      finish.push(`subgroupMatrixStore<row_major>(&Cs, sub * ${fm * fn}u, acc${i}_${j}, ${fn}u);
  workgroupBarrier();
  for (var e = lane; e < ${fm * fn}u; e += ${sg}u) {
    let m = m0 + wm * ${wtm}u + ${i * fm}u + e / ${fn}u;
    let n = n0 + wn * ${wtn}u + ${j * fn}u + e % ${fn}u;
    if (m < p.M && n < p.N) { store(yBase + m * p.N + n, n, Cs[sub * ${fm * fn}u + e]); }
  }
  workgroupBarrier();`);
    }
  }
  const a = slabStage(spec, "A", tile, slab, threads, "p.K", ct);
  const b = slabStage(spec, "B", tile, slab, threads, "p.K", ct);
  return /* wgsl */ `enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
${header(spec)}
var<workgroup> As: array<${ct}, ${tile * kp}>; // [m][k]
var<workgroup> Bs: array<${ct}, ${slab * np}>; // [k][n]
var<workgroup> Cs: array<f32, ${subgroups * fm * fn}>; // one result fragment per subgroup
@compute @workgroup_size(${threads})
${ENTRY} {${TILE_COORDS}
${mmaCoords(tile, sg, subgroupsN)}
  ${accs.join("\n  ")}
  ${indented(a.decls, 2)}
  ${indented(b.decls, 2)}
  ${stagedLoop("k0", "0u", "p.K", `${slab}u`, [a, b], [a.store((o, k, v) => `As[(${o}) * ${kp}u + ${k}] = ${v};`), b.store((o, k, v) => `Bs[(${k}) * ${np}u + ${o}] = ${v};`)],
    `for (var kk = 0u; kk < ${slab}u; kk += ${fk}u) {\n      ${step.join("\n      ")}\n    }`)}
  ${finish.join("\n  ")}
}`;
}

// mmai8 (GPUs with i8 x i8 -> i32 subgroup matrices): mma's tiles and subgroups on the operands' int8 slices
// (kernels/int8-slices.ts: op(a)'s rows and op(b)'s columns with k contiguous, bound as vec4<i32>). Each k slab
// (MMA_I8_SLAB digits) the workgroup stages every slice's tile rows of a and columns of b in Ws, [operand][slice][row]
// [8 words], zero outside the matrices, the next slab into registers while the current one is multiplied; a's rows
// load as left fragments, b's columns as right fragments in column-major order. Each subgroup sums the products of
// slices i and j (i + j < S, the slices) into accumulator i + j, in i32 (exact). The epilogue stores a fragment's
// accumulators side by side in Ws (free after the loop: the staging is sized to hold them), and its lanes add them in
// f32 scaled by 2^(-12 - 7(i + j)), smallest first, scale by the row's and the column's 2^e and finish with the shared
// `store`. Offsets and strides of i8 fragments count bytes.
function mmaI8Wgsl(spec: MatmulSpec, tile: number, subgroupsN: number): string {
  const { fm, fn, fk, sg, subgroups, threads, wtm, wtn, FM, FN } = mmaGeometry(spec, tile, subgroupsN);
  const S = spec.slices;
  const rowBytes = MMA_I8_SLAB; // a staged row: one slab of one slice
  const operandWords = (S * tile * rowBytes) / 4;
  const vecs = operandWords / 4; // vec4<i32> per operand per slab
  const loads = Math.ceil(vecs / threads);
  const fragWords = fm * fn;
  if (subgroups * S * fragWords > 2 * operandWords) throw new Error(`matmul: expected the epilogue's scratch within Ws, got ${spec.fragment}`);
  const left = `subgroup_matrix_left<i8, ${fk}, ${fm}>`;
  const right = `subgroup_matrix_right<i8, ${fn}, ${fk}>`;
  const result = `subgroup_matrix_result<i32, ${fn}, ${fm}>`;
  const accs: string[] = [];
  const step: string[] = [];
  const finish: string[] = [];
  const pairs = range(S).flatMap((i) => range(S - i).map((j) => [i, j]));
  for (let d = 0; d < S; d++) for (let i = 0; i < FM; i++) for (let j = 0; j < FN; j++) accs.push(`var acc${d}_${i}_${j} = ${result}();`);
  // The right fragments of every slice held, the left ones loaded one row of fragments at a time: with 3 slices and
  // 16x16x32 fragments mma128i8's 24 accumulators take 192 registers per lane on NVIDIA's 32-lane subgroups, its 6
  // right fragments 24, and all 12 left ones (48) beside them would pass the 255 a thread has, 3 of them (12) not
  // (our reading of the register budget, not a measurement).
  for (let sl = 0; sl < S; sl++) {
    for (let j = 0; j < FN; j++) step.push(`let r${sl}_${j} = subgroupMatrixLoad<${right}, col_major>(&Ws, (${(S + sl) * tile}u + wn * ${wtn}u + ${j * fn}u) * ${rowBytes}u + kk, ${rowBytes}u);`);
  }
  for (let i = 0; i < FM; i++) {
    for (let sl = 0; sl < S; sl++) step.push(`let l${sl}_${i} = subgroupMatrixLoad<${left}, row_major>(&Ws, (${sl * tile}u + wm * ${wtm}u + ${i * fm}u) * ${rowBytes}u + kk, ${rowBytes}u);`);
    for (let j = 0; j < FN; j++) for (const [sa, sb] of pairs) step.push(`acc${sa + sb}_${i}_${j} = subgroupMatrixMultiplyAccumulate(l${sa}_${i}, r${sb}_${j}, acc${sa + sb}_${i}_${j});`);
  }
  const scratch = (d: number) => `sub * ${S * fragWords}u + ${d * fragWords}u`;
  const digitSum = range(S)
    .reverse()
    .map((d) => `f32(Ws[${scratch(d)} + e]) * ${2 ** -(12 + 7 * d)}`)
    .reduce((sum, term) => `(${sum}) + ${term}`);
  for (let i = 0; i < FM; i++) {
    for (let j = 0; j < FN; j++) {
      for (let d = 0; d < S; d++) finish.push(`subgroupMatrixStore<row_major>(&Ws, ${scratch(d)}, acc${d}_${i}_${j}, ${fn}u);`);
      finish.push(`workgroupBarrier();
for (var e = lane; e < ${fragWords}u; e += ${sg}u) {
  let m = m0 + wm * ${wtm}u + ${i * fm}u + e / ${fn}u;
  let n = n0 + wn * ${wtn}u + ${j * fn}u + e % ${fn}u;
  if (m < p.M && n < p.N) { store(yBase + m * p.N + n, n, (${digitSum}) * scaleA(aBase + m) * scaleB(bBase + n)); }
}
workgroupBarrier();`);
    }
  }
  // One operand's staging: load q takes vec4 e = t + q * threads of the slab, (slice, row, half) in the staged order.
  const stage = (X: "A" | "B", origin: string, rows: string, base: string, R4: string, at: number) => {
    const decls: string[] = [];
    for (let q = 0; q < loads; q++) {
      const e = `t + ${q * threads}u`;
      decls.push(`let ${X}sl${q} = min((${e}) / ${2 * tile}u, ${S - 1}u);`, `let ${X}row${q} = (${e}) / 2u % ${tile}u;`, `let ${X}h${q} = (${e}) % 2u;`);
      decls.push(`let ${X}ok${q} = ${(q + 1) * threads <= vecs ? "true" : `${e} < ${vecs}u`};`);
      decls.push(`var ${X}v${q}: vec4<i32>;`);
    }
    const load = (kw: string) =>
      range(loads)
        .map((q) => {
          const word = `${base} + ${R4} + (${X}sl${q} * ${rows} + min(${origin} + ${X}row${q}, ${rows} - 1u)) * W + ${kw} + ${X}h${q} * 4u`;
          return `${X}v${q} = select(vec4<i32>(0), ${X}[(${word}) / 4u], ${X}ok${q} && ${origin} + ${X}row${q} < ${rows} && ${kw} + ${X}h${q} * 4u < W);`;
        })
        .join("\n");
    const store = range(loads)
      .map((q) => `if (${X}ok${q}) { ${range(4).map((c) => `Ws[${at}u + (${X}sl${q} * ${tile}u + ${X}row${q}) * ${rowBytes / 4}u + ${X}h${q} * 4u + ${c}u] = ${X}v${q}[${c}];`).join(" ")} }`)
      .join("\n");
    return { decls: decls.join("\n"), load, store };
  };
  const a = stage("A", "m0", "p.M", "aBase", "R4a", 0);
  const b = stage("B", "n0", "p.N", "bBase", "R4b", operandWords);
  return /* wgsl */ `enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
${header(spec)}
var<workgroup> Ws: array<i32, ${2 * operandWords}>; // [a, b][slice][row][digits]; then the epilogue's scratch
// A row's or column's scale, 2^e (kernels/int8-slices.ts), at word i of its operand's slices.
fn scaleA(i: u32) -> f32 { return bitcast<f32>(A[i / 4u][i % 4u]); }
fn scaleB(i: u32) -> f32 { return bitcast<f32>(B[i / 4u][i % 4u]); }
@compute @workgroup_size(${threads})
${ENTRY} {${TILE_COORDS}
${mmaCoords(tile, sg, subgroupsN)}
  let W = (p.K + 15u) / 16u * 4u; // words per slice row
  let kw0 = min(W, sk * (p.kSplit / 4u)); // this split's words (kSplit: a multiple of the slab)
  let kw1 = min(W, kw0 + p.kSplit / 4u);
  let R4a = (p.M + 3u) / 4u * 4u;
  let R4b = (p.N + 3u) / 4u * 4u;
  ${accs.join("\n  ")}
  ${indented(a.decls, 2)}
  ${indented(b.decls, 2)}
  ${stagedLoop("kw", "kw0", "kw1", `${rowBytes / 4}u`, [a, b], [a.store, b.store], `for (var kk = 0u; kk < ${rowBytes}u; kk += ${fk}u) {\n      ${step.join("\n      ")}\n    }`)}
  ${indented(finish.join("\n"), 2)}
}`;
}

// WGSL lines after the first indented by n spaces, to sit in a template at that depth.
const indented = (lines: string, n: number) => lines.replaceAll("\n", `\n${" ".repeat(n)}`);

// The staged k loop of tiled*vec and the mma kernels, at 2 spaces of indentation: the operands' first slab loaded
// into registers (`ops`, whose registers the caller declared); each iteration stores the slab to workgroup memory
// (`stores`), then loads the next while `work` multiplies the stored one, a barrier on either side.
function stagedLoop(k: string, from: string, to: string, step: string, ops: { load: (k: string) => string }[], stores: string[], work: string): string {
  return `var ${k} = ${from};
  ${ops.map((o) => indented(o.load(k), 2)).join("\n  ")}
  for (; ${k} < ${to}; ${k} += ${step}) {
    ${stores.map((st) => indented(st, 4)).join("\n    ")}
    workgroupBarrier();
    ${ops.map((o) => indented(o.load(`${k} + ${step}`), 4)).join("\n    ")}
    ${work}
    workgroupBarrier();
  }`;
}

// One k slab of an operand staged through workgroup memory by `threads` threads (tiled*vec and mma): "A", tile rows
// m x slab, or "B", slab x tile columns n. A thread's load s takes element e = t + s * threads of the slab in the
// stored layout's order (with vecA/vecB the e-th vec4 of 4 along the stored rows), so that consecutive threads read
// consecutive words, into its register `${operand}v${s}`; zeros outside the matrix or from kEnd on (with vec4 all
// four lie outside together: the stored rows are a multiple of 4 long and the callers' slabs start at multiples of
// 4). The registers hold `type`: f32 (rounded to f16 with mixed precision, h16) or f16 (mma's staged inputs).
interface SlabStage {
  decls: string; // each load's slab coordinates (`${operand}o${s}`, `${operand}k${s}`) and register, declared once
  load: (k0: string) => string; // the thread's loads of the slab that starts at k0
  store: (put: (o: string, k: string, value: string) => string, putVec4?: (o: string, k: string, value: string) => string) => string;
}
function slabStage(spec: MatmulSpec, operand: "A" | "B", tile: number, slab: number, threads: number, kEnd: string, type: "f32" | "f16"): SlabStage {
  const isA = operand === "A";
  const w = (isA ? spec.vecA : spec.vecB) ? 4 : 1;
  const T = w === 4 ? `vec4<${type}>` : type;
  // The slab's outer (o, tile wide) and k coordinates; `kAlong`: the stored rows run along k.
  const kAlong = isA ? !spec.transA : spec.transB;
  const [outer, bound] = isA ? ["m0", "p.M"] : ["n0", "p.N"];
  const index = isA ? (o: string, k: string) => aIndex(spec, o, k) : (o: string, k: string) => bIndex(spec, k, o);
  const base = isA ? "aBase" : "bBase";
  const lastO = kAlong ? `${bound} - 1u` : `${bound} - ${w}u`;
  const lastK = kAlong ? `p.K - ${w}u` : "p.K - 1u";
  const loads = range((tile * slab) / w / threads).map((s) => {
    const e = `(t + ${s * threads}u)`;
    const [oi, ki] = kAlong ? [`${e} / ${slab / w}u`, `${e} % ${slab / w}u * ${w}u`] : [`${e} % ${tile / w}u * ${w}u`, `${e} / ${tile / w}u`];
    return { o: `${operand}o${s}`, k: `${operand}k${s}`, v: `${operand}v${s}`, oi, ki };
  });
  const raw = (o: string, k: string, k0: string) => {
    const at = `${base} + ${index(`min(${outer} + ${o}, ${lastO})`, `min(${k0} + ${k}, ${lastK})`)}`;
    return w === 4 ? `${operand}[(${at}) / 4u]` : `${operand}[${at}]`;
  };
  const value = (x: string) => (type === "f16" ? `${T}(${x})` : h16(spec, x, w));
  return {
    decls: loads.map(({ o, k, v, oi, ki }) => `let ${o} = ${oi};\nlet ${k} = ${ki};\nvar ${v}: ${T};`).join("\n"),
    load: (k0) =>
      loads.map(({ o, k, v }) => `${v} = select(${T}(0.0), ${value(raw(o, k, k0))}, ${outer} + ${o} < ${bound} && ${k0} + ${k} < ${kEnd});`).join("\n"),
    store: (put, putVec4) =>
      loads
        .flatMap(({ o, k, v }) => {
          if (w === 1) return [put(o, k, v)];
          if (!kAlong && putVec4) return [putVec4(o, k, v)];
          return range(4).map((c) => (kAlong ? put(o, `${k} + ${c}u`, `${v}[${c}]`) : put(`${o} + ${c}u`, k, `${v}[${c}]`)));
        })
        .join("\n"),
  };
}

// pack: b (..., K, N), or (..., N, K) with transB, -> (..., K, ldb) with ldb = N rounded up to 4 and zero
// padding, for the reg kernels (and regm past IN_PLACE_B_MAX), which read rows of b as vec4. Used for transB
// (reg's strided per-lane reads in the k loop ran at ~21 vs ~30 GFLOP/s at 3200x192x576) and for N % 4 != 0;
// it costs one pass over b.
const PACK_FIELDS = { K: "u32", N: "u32", ldb: "u32", blocks: "u32", rows: "u32" } as const;
const PACK_WG = 64;
const PACK_BLOCK = PACK_WG * 4; // output columns per workgroup

// Thread mapping: workgroup g writes output row (e, k) = g / blocks, columns (g % blocks) * 256 + 4 * lane .. +3.
// The divisions depend only on the workgroup (vector integer division is scalarised, ~3 per element otherwise).
function packWgsl(spec: { trans: boolean }): string {
  const src = (n: string) => (spec.trans ? `(e * p.N + ${n}) * p.K + k` : `(e * p.K + k) * p.N + ${n}`);
  const comps = [0, 1, 2, 3].map((j) => `select(0.0, b[${src(`min(n + ${j}u, p.N - 1u)`)}], n + ${j}u < p.N)`);
  return /* wgsl */ `
${uniformStruct(PACK_FIELDS)}
${storageBindings([["out", "array<vec4<f32>>", "read_write"], ["b", "array<f32>", "read"]])}
${FLAT_GROUP}
@compute @workgroup_size(${PACK_WG})
${ENTRY} {
  let g = flatGroup(wid, nwg);
  let row = g / p.blocks;
  if (row >= p.rows) { return; }
  let e = row / p.K;
  let k = row % p.K;
  let n = (g % p.blocks) * ${PACK_BLOCK}u + lid.x * 4u;
  if (n >= p.ldb) { return; }
  out[(row * p.ldb + n) / 4u] = vec4<f32>(${comps.join(",\n    ")});
}`;
}

// b: (bBatch, K, N), or (bBatch, N, K) with trans. Returns (bBatch, K, ldb).
function packB(b: Tensor, bBatch: number, K: number, N: number, trans: boolean): Tensor {
  const ldb = Math.ceil(N / 4) * 4;
  const out = Tensor.empty([bBatch, K, ldb]);
  if (out.size === 0) return out;
  const blocks = Math.ceil(ldb / PACK_BLOCK);
  const rows = bBatch * K;
  const kernel = getKernel("matmul-pack", { trans }, packWgsl);
  const uniform = packUniform(PACK_FIELDS, { K, N, ldb, blocks, rows });
  runtime().batch.dispatch(kernel, [out.buffer, b.buffer], uniform, grid1d(rows * blocks), out.size * 8);
  return out;
}

// A shared b that takes no gradient (a frozen weight) packed once, or split into int8 slices once (mmai8), and kept
// until its buffer is written (engine/derived.ts), not every step. A trained weight is packed per product as before:
// its optimiser update would drop a kept pack each step anyway, and holding it through the backward made the
// default model's full fine-tuning step 0-13% slower (median 4%, 8 alternating rounds, 2026-12-04). Not kept from a
// dry run, whose derivation computes nothing: undefined there, and the caller derives a copy of its own.
function keptDerived(b: Tensor, key: string, derive: () => Tensor): Tensor | undefined {
  const { derived, batch } = runtime();
  const found = derived.get<Tensor>(b.buffer, key);
  if (found || batch.isDry) return found;
  const made = derive();
  derived.set(b.buffer, key, made.keep());
  return made;
}

// The WGSL of one product's kernel (exported for the test that compiles the mma versions without such an adapter).
export function matmulWgsl(spec: MatmulSpec): string {
  const tiling = MATMUL_TILINGS[spec.version];
  if (tiling.kind === "reg") return regWgsl(spec, tiling.rows, tiling.cols, tiling.lanesAlongM);
  if (tiling.kind === "mma") return mmaWgsl(spec, tiling.tile, tiling.subgroupsN);
  if (tiling.kind === "mmai8") return mmaI8Wgsl(spec, tiling.tile, tiling.subgroupsN);
  return tiling.vec4 ? tiledVecWgsl(spec, tiling.tile) : tiledWgsl(spec, tiling.tile);
}

const dims = (t: Tensor) => `(${t.shape.join(", ")})`;

// Split-K, for tiled and mmai8 on GPUs: a product whose y is a few 64x64 tiles and whose K is long (LoRA's weight
// gradients, 16x6304x384 at ViT-S batch 32: 6 workgroups, 0.76 ms on an H200 in tiled) is cut along k into splits
// whose partial products, (splits, ..., M, N) (each followed by its partial rowSums, (..., M), where asked: tiled),
// are summed by one reduce (kernels/reduce.ts): on a GPU, the default model's step took 26 dispatches fewer than with
// a reduce of its own for each bias gradient, in two passes, and its copy. Only where y has no epilogue and no out.
// Splits fill SPLIT_K_GROUPS workgroups twice over, with at least SPLIT_K_MIN_K of k each. mmai8 takes tiled's plan
// unmeasured (its partial products are f32, each within the bound of its part of k, so the sum is within the
// product's plus the reduce's f32 rounding).
const SPLIT_K_GROUPS = 128;
const SPLIT_K_MIN_K = 256;
export function splitK(dims: MatmulShape, groups: number, isCpu = runtime().gpu.isCpu): number {
  if (isCpu || groups >= SPLIT_K_GROUPS) return 1;
  return Math.max(1, Math.min(Math.ceil((2 * SPLIT_K_GROUPS) / groups), Math.floor(dims.K / SPLIT_K_MIN_K)));
}

function mmaFragmentKey(gpu: Gpu, f16: boolean): string {
  return fragmentKey(mmaFragment(gpu, f16 ? "f16" : "f32")!, gpu); // resolveVersion refused mma where there is none
}

// rowSums = sum_k op(a)[m, k] by kernels/reduce.ts (the mma versions, products with an empty y).
function rowSumsByReduce(a: Tensor, transA: boolean, K: number, rowSums: Tensor): void {
  if (rowSums.size === 0) return;
  const sums = K === 0 ? fill(rowSums.shape, 0) : reduceForward("sum", a, transA ? -2 : -1);
  runtime().batch.copy(sums.buffer, 0, rowSums.buffer, 0, rowSums.size * 4);
  sums.dispose();
}

// a: (..., M, K) ((..., K, M) with transA); b: (..., K, N) ((..., N, K) with transB) with a's batch dims, or
// 2-D and shared by every batch entry. Returns y: (..., M, N) (opts.out when given).
export function matmulForward(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const named = { a, b, bias: opts.bias, preact: opts.preact, residual: opts.residual, out: opts.out, dgelu: opts.dgelu };
  for (const [name, t] of Object.entries(named)) {
    if (t && t.dtype !== "f32") throw new Error(`matmul: expected ${name} to be f32, got ${t.dtype} ${dims(t)}`);
  }
  const { gatherA } = opts;
  if (gatherA) checkGather(gatherA, opts, b);
  const aShape = gatherA ? [gatherA.rows.size, gatherA.cols.size] : a.shape; // the logical a
  if (aShape.length < 2 || b.shape.length < 2) {
    throw new Error(`matmul: expected a and b of rank >= 2, got a ${dims(a)} and b ${dims(b)}`);
  }
  const batchDims = aShape.slice(0, -2);
  const shared = b.shape.length === 2;
  if (!shared && (b.shape.length !== aShape.length || b.shape.slice(0, -2).some((d, i) => d !== batchDims[i]))) {
    throw new Error(`matmul: expected b 2-D or with the batch dims of a ${dims(a)}, got b ${dims(b)}`);
  }
  const [M, K] = opts.transA ? [aShape.at(-1)!, aShape.at(-2)!] : [aShape.at(-2)!, aShape.at(-1)!];
  const [Kb, N] = opts.transB ? [b.shape.at(-1)!, b.shape.at(-2)!] : [b.shape.at(-2)!, b.shape.at(-1)!];
  if (K !== Kb) {
    const layout = `${opts.transA ? " transA" : ""}${opts.transB ? " transB" : ""}`;
    throw new Error(`matmul: expected matching inner dimensions, got a ${dims(a)} and b ${dims(b)}${layout} (K ${K} vs ${Kb})`);
  }
  const yShape = [...batchDims, M, N];
  if (opts.bias && (opts.bias.shape.length !== 1 || opts.bias.shape[0] !== N)) {
    throw new Error(`matmul: expected bias (${N}), got ${dims(opts.bias)}`);
  }
  for (const [name, t] of Object.entries({ preact: opts.preact, residual: opts.residual, out: opts.out, dgelu: opts.dgelu })) {
    if (t && (t.shape.length !== yShape.length || t.shape.some((d, i) => d !== yShape[i]))) {
      throw new Error(`matmul: expected ${name} (${yShape.join(", ")}), got ${dims(t)}`);
    }
  }
  if (opts.preact && !opts.gelu) throw new Error("matmul: expected gelu with preact, got preact without gelu");
  if (opts.dgelu && (opts.bias || opts.gelu || opts.residual || opts.accumulate)) {
    throw new Error("matmul: expected dgelu without bias, gelu, residual or accumulate");
  }
  const sumsShape = [...batchDims, M];
  const { rowSums } = opts;
  const sumsFit = rowSums && rowSums.shape.length === sumsShape.length && rowSums.shape.every((d, i) => d === sumsShape[i]);
  if (rowSums && (rowSums.dtype !== "f32" || !sumsFit)) {
    throw new Error(`matmul: expected rowSums f32 (${sumsShape.join(", ")}), got ${rowSums.dtype} ${dims(rowSums)}`);
  }
  if (opts.accumulate && (!opts.out || opts.bias || opts.gelu || opts.residual)) {
    throw new Error("matmul: expected accumulate with out and without bias, gelu or residual");
  }
  const { norm } = opts;
  if (norm) checkNorm(norm, yShape, sumsShape, !!opts.dgelu);
  const y = opts.out ?? Tensor.empty(yShape);
  if (norm && [a, b, y, opts.bias, opts.preact, opts.residual, rowSums].some((t) => t && [norm.out, norm.mean, norm.rstd].some((o) => o.buffer === t.buffer))) {
    throw new Error("matmul: expected norm's out, mean and rstd not to share storage with the product's tensors");
  }
  for (const [name, t] of Object.entries({ a, b, bias: opts.bias, preact: opts.preact, dgelu: opts.dgelu })) {
    if (t && t.buffer === y.buffer) throw new Error(`matmul: expected out not to share storage with ${name}`);
    if (t && t.buffer === rowSums?.buffer) throw new Error(`matmul: expected rowSums not to share storage with ${name}`);
  }
  if (rowSums?.buffer === y.buffer) throw new Error("matmul: expected rowSums not to share storage with out");
  const maxBinding = runtime().gpu.limits.maxStorageBufferBindingSize;
  for (const [name, t] of Object.entries({ a, b, y })) {
    if (t.size * 4 > maxBinding) {
      throw new Error(`matmul: expected ${name} within maxStorageBufferBindingSize ${maxBinding} bytes, got ${dims(t)}`);
    }
  }
  const inputs = opts.inputs ?? "f32";
  if (!PRECISIONS.includes(inputs)) throw new Error(`matmul: expected inputs ${PRECISIONS.map((i) => `"${i}"`).join(", ")}, got "${inputs}"`);
  const f16 = inputs === "f16";
  const { gpu } = runtime();
  const lacks = precisionLacks(inputs, gpu);
  if (lacks) throw new Error(`matmul: ${inputs} inputs need ${lacks}`);
  if (y.size === 0) {
    if (rowSums) {
      const full = gatherA ? gatherOuter(a, gatherA) : a;
      rowSumsByReduce(full, !!opts.transA, K, rowSums);
      if (full !== a) full.dispose();
    }
    if (norm) layernormForwardInto(y, norm.gamma, norm.beta, norm.eps, norm);
    return y;
  }
  // A residual that is `out` itself is an accumulate: read it through y's binding, since WebGPU forbids
  // binding one buffer both read-only and writable in a dispatch.
  const residualIsOut = opts.residual !== undefined && opts.residual.buffer === y.buffer;
  const batch = numel(batchDims);
  const shape: MatmulShape = { M, K, N, transA: !!opts.transA, transB: !!opts.transB, batch, gelu: !!opts.gelu || !!opts.dgelu, inputs };
  const version = resolveVersion(MATMUL, shape, opts.version);
  const tiling = MATMUL_TILINGS[version];
  // A gathered a that this version cannot read in place, materialised.
  const aFull = gatherA && tiling.kind !== "reg" ? gatherOuter(a, gatherA) : a;
  const bBatch = shared ? 1 : batch;
  // The reg kernels read b as (K, ldb) vec4 rows: pack it when it is transposed or N % 4 != 0. regm's b loads are
  // uniform across lanes, so it reads a small such b in place, as scalars, without the pack's dispatch.
  const unaligned = !!opts.transB || N % 4 !== 0;
  const inPlace = K * N <= IN_PLACE_B_MAX && (!shared || Math.min(K, N) <= IN_PLACE_SKINNY);
  const bScalars = tiling.kind === "reg" && tiling.lanesAlongM && unaligned && inPlace;
  // A trained weight (shared, transposed, taking a gradient) is read in place, two k per vec2 load (bPairs), where a
  // pack would run before every product: see the header.
  const bPairs = tiling.kind === "reg" && !tiling.lanesAlongM && !!opts.transB && shared && K % 2 === 0 && b.requiresGrad;
  const pack = tiling.kind === "reg" && unaligned && !bScalars && !bPairs;
  const frozen = shared && !b.requiresGrad;
  const kept = pack && frozen ? keptDerived(b, `matmul-pack trans=${!!opts.transB} ${K}x${N}`, () => packB(b, 1, K, N, !!opts.transB)) : undefined;
  // mmai8 multiplies op(a)'s rows and op(b)'s columns as int8 slices (kernels/int8-slices.ts).
  const slices = tiling.kind === "mmai8" ? (INT8_SLICES[inputs] as SliceCount) : undefined; // the resolver ran it only so
  const i8 = slices !== undefined;
  const aSlices = i8 ? int8Slices(aFull, batch, M, K, !opts.transA, slices) : undefined;
  const keptSlices = i8 && frozen ? keptDerived(b, `int8-slices ${slices} trans=${!!opts.transB} ${K}x${N}`, () => int8Slices(b, 1, N, K, !!opts.transB, slices)) : undefined;
  const bSlices = i8 ? (keptSlices ?? int8Slices(b, bBatch, N, K, !!opts.transB, slices)) : undefined;
  const bRows = kept ?? (pack ? packB(b, bBatch, K, N, !!opts.transB) : b);
  const ldb = pack ? Math.ceil(N / 4) * 4 : N;
  const [tileM, tileN] = tileShape(tiling);
  const tilesM = Math.ceil(M / tileM);
  const tilesN = Math.ceil(N / tileN);
  const plain = !opts.bias && !opts.gelu && !opts.residual && !opts.out && !opts.dgelu;
  const splits = opts.splitK ?? ((tiling.kind === "tiled" || tiling.kind === "mmai8") && plain ? splitK(shape, batch * tilesM * tilesN) : 1);
  // tiled*vec and mma stage vec4s of the stored rows where they are a multiple of 4 long (slabStage).
  const vec = tiling.kind === "tiled" && tiling.vec4;
  const staged = vec || tiling.kind === "mma";
  const spec: MatmulSpec = {
    version,
    transA: !!opts.transA && !i8, // mmai8's slices are op(a)'s rows and op(b)'s columns in every layout
    transB: !!opts.transB && !pack && !i8,
    bias: !!opts.bias,
    gelu: !!opts.gelu,
    preact: !!opts.preact,
    residual: !!opts.residual && !residualIsOut,
    addOut: !!opts.accumulate || residualIsOut,
    vecY: (tiling.kind === "reg" || (vec && splits === 1)) && N % 4 === 0,
    bScalars,
    bPairs,
    // tiled sums the rows in the kernel: two reduce dispatches fewer. Split, each split's partial sums go after its
    // partial product in y, and the reduce that sums the partial products sums them too.
    rowSums: (tiling.kind === "reg" || (tiling.kind === "tiled" && splits === 1)) && !!rowSums,
    splitRowSums: tiling.kind === "tiled" && splits > 1 && !!rowSums,
    dgelu: !!opts.dgelu,
    f16,
    slices: slices ?? 0,
    fragment: tiling.kind === "mma" ? mmaFragmentKey(gpu, f16) : i8 ? fragmentKey(mmaI8Fragment(gpu)!, gpu) : "",
    vecA: staged && K > 0 && (opts.transA ? M : K) % 4 === 0,
    vecB: staged && K > 0 && (opts.transB ? K : N) % 4 === 0,
    constSlab: vec && !gpu.isCpu,
    broadcast: tiling.kind === "reg" && laneBroadcast(gpu),
    norm: false,
    gatherA: !!gatherA && tiling.kind === "reg",
  };
  if (!Number.isInteger(splits) || splits < 1) throw new Error(`matmul: expected splitK >= 1, got ${splits}`);
  if (splits > 1 && ((tiling.kind !== "tiled" && !i8) || !plain)) {
    throw new Error(`matmul: expected split-K only with a tiled or int8 version and no bias, gelu, residual or out, got ${version}`);
  }
  // tiled*vec's and mmai8's splits start at multiples of their slab, where their vec4s along k lie whole.
  const slab = vec ? TK : i8 ? MMA_I8_SLAB : 1;
  const kSplit = Math.ceil(K / splits / slab) * slab;
  const splitStride = y.size + (spec.splitRowSums ? rowSums!.size : 0);
  const target = splits > 1 ? Tensor.empty([splits, splitStride]) : y;
  const eps = norm?.eps ?? 0;
  // mmai8: a batch entry's slices, words (int8SliceLayout's stride), the second dimension of its slices tensors.
  const [strideA, strideB] = i8 ? [aSlices!.shape[1], shared ? 0 : bSlices!.shape[1]] : [M * K, shared ? 0 : K * ldb];
  const uniform = packUniform(FIELDS, { M, K, N, batch, tilesM, tilesN, strideA, strideB, ldb, splits, kSplit, splitStride, eps });
  const buffers = [target.buffer, (aSlices ?? aFull).buffer, (bSlices ?? bRows).buffer];
  if (opts.bias) buffers.push(opts.bias.buffer);
  if (opts.preact) buffers.push(opts.preact.buffer);
  if (spec.residual) buffers.push(opts.residual!.buffer);
  if (opts.dgelu) buffers.push(opts.dgelu.buffer);
  if (spec.rowSums) buffers.push(rowSums!.buffer);
  else if (rowSums && !spec.splitRowSums) rowSumsByReduce(aFull, !!opts.transA, K, rowSums);
  if (spec.gatherA) buffers.push(gatherA!.rows.buffer, gatherA!.cols.buffer);
  // The norm in the epilogue where the kernel can (see the header) and its bindings fit beside the others.
  spec.norm =
    !!norm && tiling.kind === "reg" && !tiling.lanesAlongM && spec.vecY && spec.broadcast && N <= tileN &&
    buffers.length + NORM_BINDINGS <= gpu.limits.maxStorageBuffersPerShaderStage;
  if (spec.norm) buffers.push(norm!.out.buffer, norm!.mean.buffer, norm!.rstd.buffer, norm!.gamma.buffer, norm!.beta.buffer);
  const kernel = getKernel("matmul", spec, matmulWgsl);
  const note = `${batch > 1 ? `${batch}x` : ""}${M}x${K}x${N}`;
  runtime().batch.dispatch(kernel, buffers, uniform, grid1d(splits * batch * tilesM * tilesN), MATMUL.work(shape), note);
  if (pack && !kept) bRows.dispose(); // its buffer returns to the pool only after this batch is submitted
  aSlices?.dispose();
  if (!keptSlices) bSlices?.dispose();
  if (aFull !== a) aFull.dispose();
  let result = y;
  if (splits > 1) {
    const sum = reduceForward("sum", target, 0);
    target.dispose();
    if (spec.splitRowSums) {
      runtime().batch.copy(sum.buffer, 0, y.buffer, 0, y.size * 4);
      runtime().batch.copy(sum.buffer, y.size * 4, rowSums!.buffer, 0, rowSums!.size * 4);
    } else {
      y.dispose();
      result = sum.reshape(yShape);
    }
    sum.dispose();
  }
  if (norm && !spec.norm) layernormForwardInto(result, norm.gamma, norm.beta, norm.eps, norm);
  return result;
}

const NORM_BINDINGS = 5; // out, mean, rstd, gamma, beta

function checkGather(index: OuterIndex, opts: MatmulOptions, b: Tensor): void {
  for (const [name, t] of Object.entries(index)) {
    if (t.dtype !== "i32" || t.shape.length !== 1) throw new Error(`matmul: expected gatherA ${name} i32 1-D, got ${t.dtype} ${dims(t)}`);
  }
  if (opts.transA || b.shape.length !== 2) {
    throw new Error(`matmul: expected gatherA without transA and with a 2-D b, got${opts.transA ? " transA" : ""} b ${dims(b)}`);
  }
}

// a[m, k] = src[rows[m] + cols[k]], materialised as (M, K): for the versions that cannot gather in place, and for a
// gathered a's other uses (its weight gradient's product). One invocation per element.
const GATHER_WG = 64;
const GATHER_FIELDS = { M: "u32", K: "u32" } as const;
const GATHER_WGSL = /* wgsl */ `
${uniformStruct(GATHER_FIELDS)}
${storageBindings([["out", "array<f32>", "read_write"], ["src", "array<f32>", "read"], ["rows", "array<u32>", "read"], ["cols", "array<u32>", "read"]])}
${FLAT_GROUP}
@compute @workgroup_size(${GATHER_WG})
${ENTRY} {
  let i = flatGroup(wid, nwg) * ${GATHER_WG}u + lid.x;
  if (i < p.M * p.K) { out[i] = src[rows[i / p.K] + cols[i % p.K]]; }
}`;

export function gatherOuter(src: Tensor, index: OuterIndex): Tensor {
  const [M, K] = [index.rows.size, index.cols.size];
  if (src.dtype !== "f32") throw new Error(`matmul: expected an f32 source to gather from, got ${src.dtype} ${dims(src)}`);
  const out = Tensor.empty([M, K]);
  if (out.size === 0) return out;
  const kernel = getKernel("matmul-gather", {}, () => GATHER_WGSL);
  const uniform = packUniform(GATHER_FIELDS, { M, K });
  runtime().batch.dispatch(kernel, [out.buffer, src.buffer, index.rows.buffer, index.cols.buffer], uniform, grid1d(Math.ceil(out.size / GATHER_WG)), out.size * 12);
  return out;
}

function checkNorm(norm: NormAfter, yShape: number[], rowsShape: number[], dgelu: boolean): void {
  const N = yShape.at(-1)!;
  const want: [string, Tensor, number[]][] = [["out", norm.out, yShape], ["mean", norm.mean, rowsShape], ["rstd", norm.rstd, rowsShape], ["gamma", norm.gamma, [N]], ["beta", norm.beta, [N]]];
  for (const [name, t, shape] of want) {
    if (t.dtype !== "f32" || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`matmul: expected norm ${name} f32 (${shape.join(", ")}), got ${t.dtype} ${dims(t)}`);
    }
  }
  if (!(norm.eps >= 0)) throw new Error(`matmul: expected norm eps >= 0, got ${norm.eps}`);
  if (dgelu) throw new Error("matmul: expected norm without dgelu");
}
