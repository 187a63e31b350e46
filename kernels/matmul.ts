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
// Versions (kernels/registry.ts MATMUL, which holds their tilings, the default and the resolver), their WGSL generated
// by kernels/matmul-reg.ts, matmul-tiled.ts and matmul-mma.ts from the frame they share (matmul-frame.ts):
//   regRxC (CPU drivers): workgroups of 8 lanes side by side along n, each workgroup R rows x 8C columns, each lane C
//     contiguous columns as C/4 vec4 accumulators per row, two k per loop iteration (each accumulator written once
//     per iteration: see matmul-reg.ts); no workgroup memory, no barriers. b is read as vec4 rows (K, ldb): a
//     transposed b, or N % 4 != 0, is packed first (packB). Edges clamp the load indices (no branches in the k loop);
//     stores are bounds-checked; with N % 4 == 0 the epilogue stores vec4s.
//     A trained weight, transposed as a linear layer's (N, K) with K even, is read in place instead (`bPairs`):
//     column j's two k of an iteration are one vec2 load of its row, and the vec4 of 4 columns is assembled from 4
//     of them (free: llvmpipe keeps each component of a lane's vec4 in a SIMD register of its own). The loads are
//     as many as from the pack, and the products 0-8% slower than with a kept pack (`bench matmul`), but a trained
//     weight's pack would run before every product, its update dropping the last: the default model's full step
//     ran at 1128-1166 images/s against 1058-1109 with its 17 packs (replayed, 2026-12-05, ef73e4c).
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
//     multiplied; accumulators named by literal indices (matmul-tiled.ts).
//   mma64, mma128 (GPUs with subgroup matrices): the same tiles multiplied by the adapter's subgroup matrices (tensor
//     cores, through chromium-experimental-subgroup-matrix) of the inputs' type, f32 accumulation (matmul-mma.ts).
//   mma64i8, mma128i8 (GPUs with i8 x i8 -> i32 subgroup matrices): f32 products on 8-bit tensor cores, each operand
//     split into int8 slices first (kernels/int8-slices.ts), the slice products summed exactly in i32 (matmul-mma.ts):
//     with inputs "int8" 3 slices, 6 products, y within 2^-17 K max|a[m, :]| max|b[:, n]| of the exact product; with
//     "int8x2" 2 slices, 3 products, within 2^-11 K max|a[m, :]| max|b[:, n]|. Only with those inputs (the precisions
//     of autograd/precision.ts): at such a product the resolver picks among them and every exact version, so no f32
//     product ever runs them.
// Default (MATMUL.defaultVersion, measurements in docs/KERNELS.md): on CPU drivers reg16x16 or regm16x16, whichever
// pads y less; reg16x8 where it pads y at least 10% less than that (only with a transposed a, unless the lanes
// broadcast; with the broadcast also where it pads no more than regm16x16); with the broadcast, reg32x8 where it
// pads y at most 11% more than that choice. On GPUs tiled128 where its tiles are at least 256 workgroups and there
// is no GELU epilogue, else tiled. At "int8" and "int8x2" products mma128i8 or mma64i8 by the same rule of tile
// size, on any device, where the adapter can run them. tiledvec, tiled128vec, mma64 and mma128 are no default: no
// GPU has timed them.
// Mixed precision (inputs "f16", autograd/precision.ts): every version rounds a and b to f16 as it loads them and
// accumulates in f32, as PyTorch's autocast does; y, the epilogue operands and rowSums stay f32. a and b stay f32 in
// memory and every f32 path (packs, in-place reads) applies; a cast pass per operand (casts and f16 packs) took
// 17.7 of the default model's 44.2 ms f16 step on lavapipe, by census (docs/KERNELS.md). The mma versions stage
// them as f16. The adapter must have shader-f16.
// Why they look so, with the measurements behind each choice: docs/KERNELS.md, "Matmul".
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor, numel } from "../engine/tensor.js";
import { fill } from "./fill.js";
import { reduceForward, sumInto } from "./reduce.js";
import { type NormAfter, layernormForwardInto } from "./layernorm.js";
import type { Gpu } from "../engine/device.js";
import { type SliceCount, int8Slices } from "./int8-slices.js";
import { INT8_SLICES, MATMUL, MATMUL_TILINGS, MMA_I8_SLAB, PRECISIONS, type MatmulShape, type Precision, fragmentKey, laneBroadcast, mmaFragment, mmaI8Fragment, precisionLacks, resolveVersion, tileShape } from "./registry.js";
import { FLAT_GROUP, grid1d, packUniform, storageBindings, uniformStruct } from "./wgsl.js";
import { ENTRY, MATMUL_FIELDS, type MatmulSpec } from "./matmul-frame.js";
import { regWgsl } from "./matmul-reg.js";
import { TK, tiledVecWgsl, tiledWgsl } from "./matmul-tiled.js";
import { mmaI8Wgsl, mmaWgsl } from "./matmul-mma.js";

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

// The product's dimensions from its operands' shapes, every option checked against them (each message names the
// tensor or option), each operand within one binding, and its inputs' precision, which the adapter must support.
function checkProduct(a: Tensor, b: Tensor, opts: MatmulOptions) {
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
  if (opts.norm) checkNorm(opts.norm, yShape, sumsShape, !!opts.dgelu);
  const maxBinding = runtime().gpu.limits.maxStorageBufferBindingSize;
  for (const [name, shape] of Object.entries({ a: a.shape, b: b.shape, y: yShape })) {
    if (numel(shape) * 4 > maxBinding) {
      throw new Error(`matmul: expected ${name} within maxStorageBufferBindingSize ${maxBinding} bytes, got (${shape.join(", ")})`);
    }
  }
  const inputs = opts.inputs ?? "f32";
  if (!PRECISIONS.includes(inputs)) throw new Error(`matmul: expected inputs ${PRECISIONS.map((i) => `"${i}"`).join(", ")}, got "${inputs}"`);
  const lacks = precisionLacks(inputs, runtime().gpu);
  if (lacks) throw new Error(`matmul: ${inputs} inputs need ${lacks}`);
  return { batchDims, shared, M, K, N, yShape, inputs };
}

// What the kernel writes (y, rowSums, the norm's outputs) may share storage with nothing else it binds.
function checkStorage(a: Tensor, b: Tensor, y: Tensor, opts: MatmulOptions): void {
  const { norm, rowSums } = opts;
  if (norm && [a, b, y, opts.bias, opts.preact, opts.residual, rowSums].some((t) => t && [norm.out, norm.mean, norm.rstd].some((o) => o.buffer === t.buffer))) {
    throw new Error("matmul: expected norm's out, mean and rstd not to share storage with the product's tensors");
  }
  for (const [name, t] of Object.entries({ a, b, bias: opts.bias, preact: opts.preact, dgelu: opts.dgelu })) {
    if (t && t.buffer === y.buffer) throw new Error(`matmul: expected out not to share storage with ${name}`);
    if (t && t.buffer === rowSums?.buffer) throw new Error(`matmul: expected rowSums not to share storage with ${name}`);
  }
  if (rowSums?.buffer === y.buffer) throw new Error("matmul: expected rowSums not to share storage with out");
}

// a: (..., M, K) ((..., K, M) with transA); b: (..., K, N) ((..., N, K) with transB) with a's batch dims, or
// 2-D and shared by every batch entry. Returns y: (..., M, N) (opts.out when given).
export function matmulForward(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const { batchDims, shared, M, K, N, yShape, inputs } = checkProduct(a, b, opts);
  const { gatherA, rowSums, norm } = opts;
  const y = opts.out ?? Tensor.empty(yShape);
  checkStorage(a, b, y, opts);
  const f16 = inputs === "f16";
  const { gpu } = runtime();
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
  const epilogue = (["bias", "gelu", "residual", "out", "dgelu"] as const).filter((name) => opts[name]);
  const plain = epilogue.length === 0;
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
    throw new Error(`matmul: expected split-K only with a tiled or int8 version and no bias, gelu, residual, out or dgelu, got splitK ${splits} with ${[version, ...epilogue].join(", ")}`);
  }
  // tiled*vec's and mmai8's splits start at multiples of their slab, where their vec4s along k lie whole.
  const slab = vec ? TK : i8 ? MMA_I8_SLAB : 1;
  const kSplit = Math.ceil(K / splits / slab) * slab;
  const splitStride = y.size + (spec.splitRowSums ? rowSums!.size : 0);
  const target = splits > 1 ? Tensor.empty([splits, splitStride]) : y;
  const eps = norm?.eps ?? 0;
  // mmai8: a batch entry's slices, words (int8SliceLayout's stride), the second dimension of its slices tensors.
  const [strideA, strideB] = i8 ? [aSlices!.shape[1], shared ? 0 : bSlices!.shape[1]] : [M * K, shared ? 0 : K * ldb];
  const uniform = packUniform(MATMUL_FIELDS, { M, K, N, batch, tilesM, tilesN, strideA, strideB, ldb, splits, kSplit, splitStride, eps });
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
  if (splits > 1 && spec.splitRowSums) sumInto(target, y, rowSums!);
  else if (splits > 1) {
    const sum = reduceForward("sum", target, 0);
    y.dispose();
    result = sum.reshape(yShape);
    sum.dispose();
  }
  if (target !== y) target.dispose();
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
