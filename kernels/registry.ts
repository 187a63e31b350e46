// The kernel families that come in several versions, each a value (its versions, which of them an adapter can run,
// the default for a shape and adapter, the shape key of the tuning cache, the work of a shape), and the one
// resolver that picks the version a call runs.
//
// Version names say the shape of the kernel, in every family alike:
//   matmul     regRxC: workgroups of 8 lanes side by side along n, each lane R rows x C columns in registers;
//              regmRxC: the same lanes stacked along m; tiled, tiled128: 64x64, 128x128 tiles through workgroup
//              memory; tiledvec, tiled128vec: the same tiles, each thread's rows and columns in runs of 4, read
//              as vec4s; mma64, mma128: those tiles through subgroup matrices; mma64i8, mma128i8: the same with
//              f32 operands as int8 slices (kernels/matmul.ts, kernels/int8-slices.ts)
//   rows       lane: a lane per row, barrier-free; tree: a workgroup per row, combined through a shared-memory tree;
//              subgroup: tree's layout, combined with subgroup operations (kernels/rows.ts: softmax, layernorm and
//              cross-entropy, with the op in the shape)
//   attention  reg: register-blocked, workgroups of 8; tiled: streamed rows staged in workgroup-memory tiles;
//              mma: those tiles through subgroup matrices; unfused: the matmul and softmax kernels composed
//              (kernels/attention.ts, kernels/attention-mma.ts, kernels/attention-unfused.ts)
//   knn        regRxV: workgroups of 8, each lane R bank rows x V vec4 query columns; wideRxV: the same in
//              workgroups of 64 (kernels/knn.ts)
//
// A call's version (resolveVersion): the caller's explicit version, else the environment's PEFT_<FAMILY>
// (engine/settings.ts, read once at start-up), else the autotuner's winner for the exact shape key
// (engine/tuning.ts; a name this build lacks or the adapter cannot run is ignored), else the family's default.
// While a trace is open (engine/trace.ts) every look-up is reported with its shape: `tune` times what a traced
// training step looked up.
import { SUBGROUP_MATRIX_FEATURE, type Gpu, type SubgroupMatrixConfig } from "../engine/device.js";
import type { KernelFamily } from "../engine/settings.js";
import { runtime } from "../engine/runtime.js";
import { noteResolution, tracing } from "../engine/trace.js";
import { tunedVersion } from "../engine/tuning.js";
import { type MmaPass, mmaAttentionGroups } from "./attention-mma.js";
import type { SliceCount } from "./int8-slices.js";

export interface Family<S extends object, V extends string = string> {
  name: string; // lower case, as in PEFT_<NAME> and the cache keys "<name>/<shape key>"
  versions: readonly V[];
  // Why the adapter cannot run `version` at `shape`, or undefined when it can.
  unavailable?: (version: V, shape: S, gpu: Gpu) => string | undefined;
  defaultVersion: (shape: S, gpu: Gpu) => V;
  key: (shape: S) => string;
  work: (shape: S) => number; // of the workload `tune` times at the shape (kernels/tune.ts), in `unit`s
  unit: "FLOP" | "byte";
  // Versions made of other families' kernels: `tune` times those families at the shapes these versions run too.
  composed?: readonly V[];
}

// ---- matmul ----

// y (batch, M, N) = op(a) (M, K) · op(b) (K, N); trans: the operand is stored transposed.
export interface MatmulShape {
  M: number;
  K: number;
  N: number;
  transA: boolean;
  transB: boolean;
  batch: number;
  // With the GELU epilogue or GELU's backward (dgelu), which cost alike (an erf per element and the registers it
  // takes; `tune` times the first); bias and residual cost about the same in every version.
  gelu?: boolean;
  // The products' precision (MatmulOptions.inputs): "f16", a and b read in f16 (the mma versions multiply only these);
  // "int8" or "int8x2", the product may run as 3 or 2 int8 slices, which only such products run (the mmai8 versions).
  inputs?: Precision;
}

// regRxC: each lane R rows x C columns (C a multiple of 4); the 8 lanes side by side along n (reg: tile R x 8C)
// or stacked along m (regm: tile 8R x C, for skinny products such as LoRA's rank-r ones). tiled: a tile x tile
// block per workgroup through workgroup memory; vec4: its threads' rows and columns in runs of 4, read as vec4s.
// mma: the same through the adapter's subgroup matrices (tensor cores), f16 or f32 inputs into f32, each subgroup
// a (tile/2) x (tile/subgroupsN) block of fragments. mmai8: mma's tiles on i8 subgroup matrices into i32, the
// operands f32 split into int8 slices first.
type Tiling =
  | { kind: "reg"; rows: number; cols: number; lanesAlongM: boolean }
  | { kind: "tiled"; tile: number; vec4: boolean }
  | { kind: "mma" | "mmai8"; tile: number; subgroupsN: number };
export const MATMUL_TILINGS = {
  reg4x8: { kind: "reg", rows: 4, cols: 8, lanesAlongM: false },
  reg8x8: { kind: "reg", rows: 8, cols: 8, lanesAlongM: false },
  reg8x16: { kind: "reg", rows: 8, cols: 16, lanesAlongM: false },
  reg16x8: { kind: "reg", rows: 16, cols: 8, lanesAlongM: false },
  reg16x16: { kind: "reg", rows: 16, cols: 16, lanesAlongM: false },
  reg32x8: { kind: "reg", rows: 32, cols: 8, lanesAlongM: false },
  regm8x16: { kind: "reg", rows: 8, cols: 16, lanesAlongM: true },
  regm16x16: { kind: "reg", rows: 16, cols: 16, lanesAlongM: true },
  tiled: { kind: "tiled", tile: 64, vec4: false },
  tiled128: { kind: "tiled", tile: 128, vec4: false },
  tiledvec: { kind: "tiled", tile: 64, vec4: true },
  tiled128vec: { kind: "tiled", tile: 128, vec4: true },
  mma64: { kind: "mma", tile: 64, subgroupsN: 2 },
  mma128: { kind: "mma", tile: 128, subgroupsN: 4 },
  mma64i8: { kind: "mmai8", tile: 64, subgroupsN: 2 },
  mma128i8: { kind: "mmai8", tile: 128, subgroupsN: 4 },
} as const satisfies Record<string, Tiling>;
export type MatmulVersion = keyof typeof MATMUL_TILINGS;
export const MATMUL_LANES = 8; // reg: workgroup size, one SIMD batch on llvmpipe

// Rows x columns of y per workgroup.
export function tileShape(t: Tiling): [number, number] {
  if (t.kind !== "reg") return [t.tile, t.tile];
  return t.lanesAlongM ? [MATMUL_LANES * t.rows, t.cols] : [t.rows, MATMUL_LANES * t.cols];
}

const WIDE_GPU_GROUPS = 256; // tiled128 by default once its 128 x 128 tiles are this many workgroups
const NARROW_PAD_GAIN = 0.9; // CPU drivers: reg16x8 where it pads y to at most this fraction (see defaultVersion)

// The precision of a product's inputs (autograd/precision.ts): f32; f16 (mixed precision); f32 products that may run
// as int8 slices, 3 of them (within 2^-17 K max|a| max|b| of the exact product) or 2 (2^-11; kernels/int8-slices.ts).
export type Precision = "f32" | "f16" | "int8" | "int8x2";
export const PRECISIONS: readonly Precision[] = ["f32", "f16", "int8", "int8x2"];
export const INT8_SLICES: { readonly [P in Precision]?: SliceCount } = { int8: 3, int8x2: 2 };

// mma: the k slab staged per step, by input type: f32 halves it, so that a 128 x 128 tile's slabs and scratch stay
// within 32 KiB of workgroup memory.
export const MMA_SLAB = { f16: 32, f32: 16 } as const;

// The subgroup-matrix fragment the mma versions multiply `inputs` with, into f32: the adapter's configuration of
// that component type, 16 x 16 x 16 where listed (NVIDIA's tensor cores, in f16), else the largest that divides a
// subgroup's 32-wide block and the k slab (Apple GPUs list f32 8 x 8 x 8); undefined where there is none.
export function mmaFragment(gpu: Gpu, inputs: "f16" | "f32"): SubgroupMatrixConfig | undefined {
  return listedFragment(gpu, inputs, "f32", MMA_SLAB[inputs], 16);
}

// The adapter's configuration of `component` x `component` -> `result` that fits the mma kernels (M and N dividing a
// subgroup's 32-wide block, K dividing the slab): 16 x 16 (x k16, where given) where listed, else the largest.
function listedFragment(gpu: Gpu, component: string, result: string, slab: number, k16?: number): SubgroupMatrixConfig | undefined {
  const listed = gpu.subgroupMatrixConfigs.filter((c) => c.componentType === component && c.resultComponentType === result);
  const fits = listed.filter((c) => 32 % c.M === 0 && 32 % c.N === 0 && slab % c.K === 0);
  return fits.find((c) => c.M === 16 && c.N === 16 && (k16 === undefined || c.K === k16)) ?? fits.sort((x, y) => y.M * y.N * y.K - x.M * x.N * x.K)[0];
}

// The mmai8 versions' k slab, in int8 digits (bytes), and the largest K whose digit products an i32 holds: each
// digit is at most 64 in magnitude (kernels/int8-slices.ts) and an accumulator sums up to `slices` of them per k.
export const MMA_I8_SLAB = 32;
export const mmaI8MaxK = (slices: SliceCount) => Math.floor((2 ** 31 - 1) / (slices * 64 * 64));

// The fragment of i8 x i8 -> i32 the mmai8 versions multiply with: 16 x 16 x 32 where listed (NVIDIA's, which also
// lists 16 x 8 x 32), else the largest that divides a subgroup's 32-wide block and the slab.
export function mmaI8Fragment(gpu: Gpu): SubgroupMatrixConfig | undefined {
  return listedFragment(gpu, "i8", "i32", MMA_I8_SLAB);
}

// What products of `precision` need of the adapter and it lacks, as "<what>, which <adapter> lacks", or undefined where
// it has it: f16 inputs shader-f16, the int8 precisions an i8 x i8 -> i32 subgroup matrix (mmaI8Fragment).
export function precisionLacks(precision: Precision, gpu: Gpu): string | undefined {
  const which = `which ${gpu.adapterInfo.description} lacks`;
  if (precision === "f16" && !gpu.features.has("shader-f16")) return `the adapter's shader-f16 feature, ${which}`;
  if (INT8_SLICES[precision] && !mmaI8Fragment(gpu)) return `subgroup matrices of i8 into i32, ${which} (\`info\` lists them)`;
  return undefined;
}

// A fragment and the subgroup size the kernels run it at, as their specs name it: "MxNxK/size" (e.g. "16x16x16/32").
export function fragmentKey(f: SubgroupMatrixConfig, gpu: Gpu): string {
  return `${f.M}x${f.N}x${f.K}/${gpu.subgroupMaxSize}`;
}

function lacksFragment(gpu: Gpu, inputs: "f16" | "f32"): string {
  return `needs subgroup matrices of ${inputs} into f32 (${SUBGROUP_MATRIX_FEATURE}), which ${gpu.adapterInfo.description} lacks`;
}

// Whether a workgroup of `wg` lanes is one subgroup: a workgroup of 8 (matmul's and attention's reg versions, k-NN's
// and layernorm's of 8) where the adapter's subgroups are all 8 wide (llvmpipe on 256-bit vectors); then one lane's
// load reaches the others through subgroupBroadcast.
export function laneBroadcast(gpu: Gpu, wg = MATMUL_LANES): boolean {
  return wg === MATMUL_LANES && gpu.features.has("subgroups") && gpu.subgroupMinSize === MATMUL_LANES && gpu.subgroupMaxSize === MATMUL_LANES;
}

// The tensor-core versions that failed their check on this device (kernels/tensor-core-check.ts), by family, version
// and the precision their fragments compute in ("matmul/mma64/f16"; the mma versions multiply an int8 precision's
// products in f32): unavailable to every call that would use those fragments, for the rest of the process.
const deviceFaults = new Map<string, string>();
export function recordDeviceFault(family: "matmul" | "attention", version: string, fragments: Precision, fault: string): void {
  deviceFaults.set(`${family}/${version}/${fragments}`, fault);
}
const faultOf = (family: string, version: string, fragments: Precision) => {
  const fault = deviceFaults.get(`${family}/${version}/${fragments}`);
  return fault && `failed its check on this device (${fault})`;
};

function matmulUnavailable(version: MatmulVersion, s: MatmulShape, gpu: Gpu): string | undefined {
  const { kind } = MATMUL_TILINGS[version];
  if (kind === "mmai8") {
    const slices = INT8_SLICES[s.inputs ?? "f32"];
    if (!slices) return `multiplies as int8 slices, within a bound rather than ${s.inputs === "f16" ? "f16 inputs'" : "f32's"} rounding: only products of precision "int8" or "int8x2"`;
    if (s.K > mmaI8MaxK(slices)) return `needs K at most ${mmaI8MaxK(slices)}, whose digit products an i32 holds, got K = ${s.K}`;
    if (!mmaI8Fragment(gpu)) return `needs subgroup matrices of i8 into i32 (${SUBGROUP_MATRIX_FEATURE}), which ${gpu.adapterInfo.description} lacks`;
    return faultOf("matmul", version, s.inputs!);
  }
  if (kind !== "mma") return undefined;
  const inputs = s.inputs === "f16" ? "f16" : "f32";
  if (!mmaFragment(gpu, inputs)) return lacksFragment(gpu, inputs);
  return faultOf("matmul", version, inputs);
}

export const MATMUL: Family<MatmulShape, MatmulVersion> = {
  name: "matmul",
  versions: Object.keys(MATMUL_TILINGS) as MatmulVersion[],
  unavailable: matmulUnavailable,
  // GPUs: tiled128 where its tiles fill the device (WIDE_GPU_GROUPS workgroups) and there is no GELU epilogue,
  // else tiled: on an H200 ViT-S's fc1 (6304x384x1536 nt with bias and GELU) took 3.6 ms in tiled128 against 0.43
  // in tiled, while the same sizes without an epilogue (nn, in its backward) took 0.33 ms against 0.40. GELU's
  // backward fused into a product (dgelu) did the same: in a ViT-B/16 step at batch 64, fc2's input gradient
  // (12608x768x3072 with dgelu) took 26.6 ms in tiled128, 46 % of the step's GPU time (H200, 2026-12-04, 9f87ff6).
  // CPU drivers: reg16x16 (tile 16 x 128) or regm16x16 (tile 128 x 16), whichever pads y less, ties to reg16x16.
  // That sends skinny products (LoRA's rank-r ones, attention's head dimension) and widths far from a multiple of
  // 128 (576) to regm16x16, which measured 1.5-6x faster there. With a transposed (weight gradients, attention's
  // dK and dV), reg16x8 (tile 16 x 64) where it pads y at least 10% less than that choice: its 16 rows of a are then
  // 16 adjacent words per k, and at the default model's 192x544x64 and 64x544x64 it ran at 1.0-1.6x the speed of
  // regm16x16 and reg16x16. Without transposed a it lost to regm16x16, unless a's 16 values per k come by
  // subgroupBroadcast (laneBroadcast): then it is the choice in every layout where it pads y 10% less than
  // reg16x16, or no more than regm16x16 (at 256x544x64 and 3200x192x576 it ran 10% faster than regm16x16, at
  // 544x64x256 and 512³ 4-5% slower than reg16x16), and took the default model's step on lavapipe from 744-758 to
  // 788-813 images/s (docs/KERNELS.md, Matmul). With the broadcast, reg32x8 (tile 32 x 64) where it pads y at most
  // 1/0.9 (11%) more than that choice: two k per iteration made it the fastest block at every shape of the default
  // model's step (docs/KERNELS.md, Matmul, 2026-12-05, f08435b).
  // tiledvec and tiled128vec are no default until a GPU has timed them (docs/KERNELS.md); `tune` times them.
  // The mma versions are not a default: no GPU that offers them through Dawn has timed them yet (NVIDIA's Vulkan
  // driver gets no shader-f16 from Dawn, so no f16 subgroup matrices, and lists no f32 ones); `tune` picks them where
  // they win. The mmai8 versions, which that driver can run (i8 x i8 -> i32), differ from the exact product by up to
  // 2^-17 K max_k |a[m, k]| max_k |b[k, n]| (2^-11 with 2 slices, kernels/int8-slices.ts): they run only products of
  // precision "int8" or "int8x2", which asks for them, so there they are the default, by tiled's rule of tile size (no
  // GPU has timed them yet); an exact version where they cannot run (K past mmaI8MaxK).
  defaultVersion(s, gpu) {
    const wide = Math.ceil(s.M / 128) * Math.ceil(s.N / 128) * s.batch >= WIDE_GPU_GROUPS && !s.gelu;
    if (INT8_SLICES[s.inputs ?? "f32"] && !matmulUnavailable(wide ? "mma128i8" : "mma64i8", s, gpu)) return wide ? "mma128i8" : "mma64i8";
    if (!gpu.isCpu) return wide ? "tiled128" : "tiled";
    const padded = (version: MatmulVersion) => {
      const [tileM, tileN] = tileShape(MATMUL_TILINGS[version]);
      return Math.ceil(s.M / tileM) * tileM * Math.ceil(s.N / tileN) * tileN;
    };
    const tile128 = padded("regm16x16") < padded("reg16x16") ? "regm16x16" : "reg16x16";
    if (laneBroadcast(gpu)) {
      const narrow = padded("reg16x8") <= (tile128 === "regm16x16" ? 1 : NARROW_PAD_GAIN) * padded(tile128) ? "reg16x8" : tile128;
      return padded("reg32x8") * NARROW_PAD_GAIN <= padded(narrow) ? "reg32x8" : narrow;
    }
    return s.transA && padded("reg16x8") <= NARROW_PAD_GAIN * padded(tile128) ? "reg16x8" : tile128;
  },
  // Layout: which operands are stored transposed (n: as is, t: transposed), a first. A product with a GELU
  // epilogue is a shape of its own: on an H200 the epilogue made tiled128 8x slower, the plain product faster.
  key: (s) => `${s.M}x${s.K}x${s.N}/${s.transA ? "t" : "n"}${s.transB ? "t" : "n"}/b${s.batch}${s.gelu ? "/gelu" : ""}${s.inputs && s.inputs !== "f32" ? `/${s.inputs}` : ""}`,
  work: (s) => 2 * s.batch * s.M * s.N * s.K,
  unit: "FLOP",
};

// ---- rows: softmax, layernorm and cross-entropy over x viewed as (rows, C) ----

export type RowOp = "softmax" | "layernorm" | "cross-entropy";
export interface RowShape {
  op: RowOp;
  rows: number;
  C: number;
}
export type RowVersion = "lane" | "tree" | "subgroup";

// (rows, C) tensors one forward and backward read or write: layernorm's backward reads dy and x again for dgamma
// and dbeta; cross-entropy reads the logits twice and writes their gradient.
const ROW_PASSES: Record<RowOp, number> = { softmax: 5, layernorm: 7, "cross-entropy": 3 };

export const ROWS: Family<RowShape, RowVersion> = {
  name: "rows",
  versions: ["lane", "tree", "subgroup"],
  unavailable: (version, _s, gpu) =>
    version === "subgroup" && !gpu.features.has("subgroups")
      ? `needs the adapter's "subgroups" feature, which ${gpu.adapterInfo.description} lacks`
      : undefined,
  // subgroup has not been timed on a GPU yet, so it is no default: `tune` times it where the adapter has subgroups.
  defaultVersion: (_s, gpu) => (gpu.isCpu ? "lane" : "tree"),
  key: (s) => `${s.op}/${s.rows}x${s.C}`,
  work: (s) => ROW_PASSES[s.op] * s.rows * s.C * 4,
  unit: "byte",
};

// ---- attention ----

// qkv (B, N, 3*H*D): batch, tokens, heads, head dim.
export interface AttentionShape {
  B: number;
  N: number;
  H: number;
  D: number;
  // The products' precision (AttentionOptions.inputs): mma reads "f16" operands in f16; unfused's products are
  // matmul's in every precision (f16, int8, int8x2); reg and tiled compute in f32 whatever it is.
  inputs?: Precision;
}
export type AttentionVersion = "reg" | "tiled" | "mma" | "unfused";
// Forward + backward on llvmpipe, reg against unfused: reg 1.1-1.5x faster at N = 17, even at N = 50, 1.7x slower
// at N = 101 and 3x at N = 197. Unfused is the CPU default above this many tokens.
const UNFUSED_MIN_TOKENS = 64;

// The fused kernel for the adapter: reg on CPU drivers, tiled on GPUs.
export function fusedAttentionDefault(gpu: Gpu): "reg" | "tiled" {
  return gpu.isCpu ? "reg" : "tiled";
}

// mma's fragment and subgroups per workgroup in each pass at head dim D (kernels/attention-mma.ts), or why it
// cannot run: it needs the adapter's subgroup matrices of the inputs' type into f32, D a multiple of the fragment's
// sizes, and one subgroup's rows staged within the adapter's workgroup memory.
export function mmaAttentionPlan(s: AttentionShape, gpu: Gpu): { groups: Record<MmaPass, number>; fragment: SubgroupMatrixConfig } | string {
  const inputs = s.inputs === "f16" ? "f16" : "f32";
  const fragment = mmaFragment(gpu, inputs);
  if (!fragment) return lacksFragment(gpu, inputs);
  if (s.D % fragment.K !== 0 || s.D % fragment.N !== 0) return `needs the head dim a multiple of the fragment's ${fragment.N} and ${fragment.K}, got D = ${s.D}`;
  const { maxComputeWorkgroupStorageSize: bytes, maxComputeInvocationsPerWorkgroup: threads } = gpu.limits;
  const groups = mmaAttentionGroups(s.D, inputs === "f16", fragment, bytes, threads, gpu.subgroupMaxSize);
  return groups ? { groups, fragment } : `needs more workgroup memory at D = ${s.D} than the adapter's ${bytes} bytes`;
}

export const ATTENTION: Family<AttentionShape, AttentionVersion> = {
  name: "attention",
  versions: ["reg", "tiled", "mma", "unfused"],
  // unfused writes the scores (B·H, N, N), which must fit one storage binding.
  unavailable(version, s, gpu) {
    if (version === "mma") {
      const plan = mmaAttentionPlan(s, gpu);
      return typeof plan === "string" ? plan : faultOf("attention", version, s.inputs === "f16" ? "f16" : "f32");
    }
    const bytes = s.B * s.H * s.N * s.N * 4;
    const limit = gpu.limits.maxStorageBufferBindingSize;
    return version === "unfused" && bytes > limit ? `needs the scores (B·H, N, N) in one binding: ${bytes} bytes, over ${limit}` : undefined;
  },
  // mma is not a default, as matmul's: no GPU that offers subgroup matrices through Dawn has timed it.
  defaultVersion(s, gpu) {
    const unfused = gpu.isCpu && s.N > UNFUSED_MIN_TOKENS && !ATTENTION.unavailable!("unfused", s, gpu);
    return unfused ? "unfused" : fusedAttentionDefault(gpu);
  },
  key: (s) => `${s.B}x${s.H}x${s.N}x${s.D}${s.inputs && s.inputs !== "f32" ? `/${s.inputs}` : ""}`,
  // Forward 4·B·H·N²·D (S = Q·Kᵀ and P·V), backward 10·B·H·N²·D (dP, dV, dQ, dK and the recomputed S).
  work: (s) => 14 * s.B * s.H * s.N * s.N * s.D,
  unit: "FLOP",
  composed: ["unfused"],
};

// ---- knn ----

// queries (Q, D) against a bank (N, D): the K best of each query (K = 0: the full similarity matrix), by inner
// product or, with normalize, cosine.
export interface KnnShape {
  Q: number;
  N: number;
  D: number;
  K: number;
  normalize: boolean;
}

// vecs * 4 <= 32: the candidates of one bank row are bits of a u32.
export interface KnnTiling {
  rows: number; // bank rows per step, uniform across the workgroup
  vecs: number; // vec4 query columns per lane
  wg: number; // lanes per workgroup
}
export const KNN_TILINGS = {
  reg4x2: { rows: 4, vecs: 2, wg: 8 },
  reg8x1: { rows: 8, vecs: 1, wg: 8 },
  reg2x4: { rows: 2, vecs: 4, wg: 8 },
  wide4x1: { rows: 4, vecs: 1, wg: 64 },
  reg16x4: { rows: 16, vecs: 4, wg: 8 },
} as const satisfies Record<string, KnnTiling>;
export type KnnVersion = keyof typeof KNN_TILINGS;

export const KNN: Family<KnnShape, KnnVersion> = {
  name: "knn",
  versions: Object.keys(KNN_TILINGS) as KnnVersion[],
  // GPUs: untuned (no GPU measured it yet).
  defaultVersion: (_s, gpu) => (gpu.isCpu ? "reg16x4" : "wide4x1"),
  key: (s) => `${s.Q}x${s.N}x${s.D}/k${s.K}${s.normalize ? "/cos" : ""}`,
  work: (s) => 2 * s.Q * s.N * s.D, // the similarities
  unit: "FLOP",
};

// ---- the registry and the resolver ----

// Exactly the families engine/settings.ts lets PEFT_<FAMILY> force, which refuses any other PEFT_ name as it reads
// the environment: `satisfies` makes a family missing here, or one more, a compile error.
export const FAMILIES = { matmul: MATMUL, rows: ROWS, attention: ATTENTION, knn: KNN } satisfies Record<KernelFamily, unknown>;
export type FamilyName = keyof typeof FAMILIES;
export type ShapeOf<F extends FamilyName> = (typeof FAMILIES)[F] extends Family<infer S, string> ? S : never;

// The family of a name from elsewhere (a trace, a flag), for code that handles every family alike; its shapes are
// the plain objects that family's look-ups reported.
export function familyNamed(name: string): Family<object> {
  if (!(name in FAMILIES)) throw new Error(`kernels: expected a kernel family (${Object.keys(FAMILIES).join(", ")}), got "${name}"`);
  return FAMILIES[name as FamilyName] as unknown as Family<object>;
}

export function isVersionOf<S extends object, V extends string>(family: Family<S, V>, version: string): version is V {
  return (family.versions as readonly string[]).includes(version);
}

// The versions of `family` that the adapter can run at `shape`.
export function availableVersions<S extends object, V extends string>(family: Family<S, V>, shape: S, gpu: Gpu = runtime().gpu): V[] {
  return family.versions.filter((v) => !family.unavailable?.(v, shape, gpu));
}

// The version a call of `family` at `shape` runs (see the header). An explicit or forced version that is no
// version of the family, or that the adapter cannot run, is an error naming its source.
export function resolveVersion<S extends object, V extends string>(family: Family<S, V>, shape: S, explicit?: string): V {
  const { settings, gpu } = runtime();
  if (tracing()) noteResolution({ family: family.name, key: family.key(shape), shape: { ...shape } });
  const forced = settings.versions[family.name];
  const asked = explicit !== undefined ? { version: explicit, source: family.name } : forced && { version: forced.value, source: forced.variable };
  if (!asked) {
    const tuned = tunedVersion(family.name, family.key(shape));
    const usable = tuned !== undefined && isVersionOf(family, tuned) && !family.unavailable?.(tuned, shape, gpu);
    return usable ? tuned : family.defaultVersion(shape, gpu);
  }
  const { version, source } = asked;
  if (!isVersionOf(family, version)) throw new Error(`${source}: expected one of ${family.versions.join(", ")}, got "${version}"`);
  const why = family.unavailable?.(version, shape, gpu);
  if (why) throw new Error(`${source}: "${version}" ${why}`);
  return version;
}
