// Matmul: y = epilogue(op(a) · op(b)), batched.
//   a: (..., M, K), or (..., K, M) with transA      b: (..., K, N), or (..., N, K) with transB, or 2-D shared
//   y: (..., M, N)
//   epilogue, in this order: + bias (N); preact = z; z = gelu(z) (exact erf GELU); + residual (..., M, N);
//   + the old contents of `out` (accumulate). One WGSL generator (`epilogue`) serves every version.
//
// Versions (MATMUL_VERSIONS), chosen per device, overridable by opts.version or PEFT_MATMUL:
//   regRxC: for CPU drivers (lavapipe/llvmpipe run a workgroup as 8 SIMD lanes on one thread, and barriers are
//     coroutine switches). Barrier-free register blocking: workgroup 8, each workgroup R rows x 8*C columns,
//     each lane C columns as C/4 vec4 accumulators per row. Rows depend only on the workgroup id, so loads of
//     a are uniform across lanes (one scalar load, broadcast); lanes load B columns. Edges clamp the load
//     indices (no branches in the k loop) and bounds-check the stores.
//   tiled: for GPUs. Classic shared-memory tiling: 64x64 output tile per 16x16 workgroup, 4x4 per thread,
//     k in steps of 16 through workgroup memory.
// Default: reg4x8 on CPU drivers, tiled on GPUs.
import { runtime } from "../engine/runtime.js";
import { getKernel } from "../engine/pipeline.js";
import { Tensor, numel } from "../engine/tensor.js";
import { ERF, FLAT_GROUP, grid1d, packUniform, uniformStruct } from "./wgsl.js";

export interface MatmulOptions {
  transA?: boolean; // a is stored (..., K, M)
  transB?: boolean; // b is stored (..., N, K)
  bias?: Tensor; // (N): added to every row
  gelu?: boolean; // y = gelu(a·b + bias), exact erf GELU
  preact?: Tensor; // with gelu: also write z = a·b + bias here, same shape as y (saved for backward)
  residual?: Tensor; // same shape as y: added last (after gelu)
  out?: Tensor; // write into this tensor instead of allocating one
  accumulate?: boolean; // with out: out += result (gradient accumulation); no bias/gelu/residual then
  version?: string; // force a variant (tests and the autotuner), else chosen for the device
}

interface RegTile {
  kind: "reg";
  rows: number; // rows per workgroup
  cols: number; // columns per lane, a multiple of 4
  interleave: boolean;
  vecB: boolean;
}
interface SharedTile {
  kind: "tiled";
}
const VERSIONS: Record<string, RegTile | SharedTile> = {
  reg4x8: { kind: "reg", rows: 4, cols: 8, interleave: false, vecB: false },
  reg4x8i: { kind: "reg", rows: 4, cols: 8, interleave: true, vecB: false },
  reg4x8v: { kind: "reg", rows: 4, cols: 8, interleave: false, vecB: true },
  reg4x8iv: { kind: "reg", rows: 4, cols: 8, interleave: true, vecB: true },
  reg8x4: { kind: "reg", rows: 8, cols: 4, interleave: false, vecB: false },
  reg8x4v: { kind: "reg", rows: 8, cols: 4, interleave: false, vecB: true },
  reg2x16: { kind: "reg", rows: 2, cols: 16, interleave: false, vecB: false },
  reg16x2: { kind: "reg", rows: 16, cols: 4, interleave: false, vecB: false },
  tiled: { kind: "tiled" },
};
export const MATMUL_VERSIONS: string[] = Object.keys(VERSIONS);
const DEFAULT_CPU = "reg4x8";
const DEFAULT_GPU = "tiled";

// Shared tiled kernel geometry.
const TILE = 64;
const TK = 16;
const WG2 = 16;

interface MatmulSpec {
  [k: string]: string | number | boolean;
  version: string;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  gelu: boolean;
  preact: boolean;
  residual: boolean;
  addOut: boolean; // y += result, reading y's old value through its read_write binding
}

const FIELDS = {
  M: "u32",
  K: "u32",
  N: "u32",
  batch: "u32",
  tilesM: "u32",
  tilesN: "u32",
  strideA: "u32", // elements between batch entries of a
  strideB: "u32", // 0 when b is shared by every batch entry
} as const;

// Storage bindings: y, a, b, then the optional epilogue operands in a fixed order.
function bindings(spec: MatmulSpec, bType: string): string {
  const list: [string, string, string][] = [
    ["y", "array<f32>", "read_write"],
    ["A", "array<f32>", "read"],
    ["B", bType, "read"],
  ];
  if (spec.bias) list.push(["bias", "array<f32>", "read"]);
  if (spec.preact) list.push(["preact", "array<f32>", "read_write"]);
  if (spec.residual) list.push(["residual", "array<f32>", "read"]);
  return list.map(([name, type, access], i) => `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: ${type};`).join("\n");
}

// Flat index of a[m, k] and b[k, n] within one batch entry, for the stored layout.
function aIndex(spec: MatmulSpec, m: string, k: string): string {
  return spec.transA ? `(${k}) * p.M + (${m})` : `(${m}) * p.K + (${k})`;
}
function bIndex(spec: MatmulSpec, k: string, n: string): string {
  return spec.transB ? `(${n}) * p.K + (${k})` : `(${k}) * p.N + (${n})`;
}

// The shared epilogue: writes the finished value v of y[i] (column col).
function epilogue(spec: MatmulSpec): string {
  return /* wgsl */ `
fn store(i: u32, col: u32, acc: f32) {
  var v = acc;
  ${spec.bias ? "v += bias[col];" : "_ = col;"}
  ${spec.preact ? "preact[i] = v;" : ""}
  ${spec.gelu ? "v = 0.5 * v * (1.0 + erf(v * 0.70710678118654752));" : ""}
  ${spec.residual ? "v += residual[i];" : ""}
  ${spec.addOut ? "v += y[i];" : ""}
  y[i] = v;
}`;
}

// Workgroup index -> (batch entry, row tile, column tile); column tiles vary fastest so that consecutive
// workgroups reuse the same rows of a.
const TILE_COORDS = /* wgsl */ `
  let g = flatGroup(wid, nwg);
  let tn = g % p.tilesN;
  let tm = (g / p.tilesN) % p.tilesM;
  let bat = g / (p.tilesN * p.tilesM);
  if (bat >= p.batch) { return; }
  let aBase = bat * p.strideA;
  let bBase = bat * p.strideB;
  let yBase = bat * p.M * p.N;`;

function header(spec: MatmulSpec, bType: string): string {
  return `${uniformStruct(FIELDS)}
${bindings(spec, bType)}
${FLAT_GROUP}
${spec.gelu ? ERF : ""}
${epilogue(spec)}`;
}

// regRxC. Thread mapping: workgroup (bat, tm, tn) computes rows tm*R .. +R-1 and 8*C columns from tn*8*C;
// lane l owns columns tn*8*C + l*C .. +C-1 (or, interleaved, vec4 number l + 8*v).
function regWgsl(spec: MatmulSpec, t: RegTile): string {
  const R = t.rows;
  const V = t.cols / 4;
  const vecB = t.vecB;
  const lines: string[] = [];
  const col = (v: number, i: number) => (t.interleave ? `n0 + ${v * 32 + i}u + lid.x * 4u` : `n0 + lid.x * ${t.cols}u + ${v * 4 + i}u`);
  for (let r = 0; r < R; r++) lines.push(`let r${r} = min(m0 + ${r}u, p.M - 1u);`);
  if (vecB) {
    for (let v = 0; v < V; v++) lines.push(`let c${v} = min(${col(v, 0)}, p.N - 4u) / 4u;`);
  } else {
    for (let v = 0; v < V; v++) for (let i = 0; i < 4; i++) lines.push(`let c${v}_${i} = min(${col(v, i)}, p.N - 1u);`);
  }
  for (let r = 0; r < R; r++) for (let v = 0; v < V; v++) lines.push(`var acc${r}_${v} = vec4<f32>(0.0);`);
  const body: string[] = [];
  for (let r = 0; r < R; r++) body.push(`let a${r} = A[aBase + ${aIndex(spec, `r${r}`, "k")}];`);
  for (let v = 0; v < V; v++) {
    if (vecB) body.push(`let b${v} = B[bBase / 4u + k * (p.N / 4u) + c${v}];`);
    else {
      const comps = [0, 1, 2, 3].map((i) => `B[bBase + ${bIndex(spec, "k", `c${v}_${i}`)}]`);
      body.push(`let b${v} = vec4<f32>(${comps.join(", ")});`);
    }
  }
  for (let r = 0; r < R; r++) for (let v = 0; v < V; v++) body.push(`acc${r}_${v} = fma(vec4<f32>(a${r}), b${v}, acc${r}_${v});`);
  const stores: string[] = [];
  for (let r = 0; r < R; r++) {
    stores.push(`if (m0 + ${r}u < p.M) {`);
    for (let v = 0; v < V; v++) {
      for (let i = 0; i < 4; i++) {
        const c = col(v, i);
        stores.push(`  if (${c} < p.N) { store(yBase + (m0 + ${r}u) * p.N + ${c}, ${c}, acc${r}_${v}[${i}]); }`);
      }
    }
    stores.push("}");
  }
  return /* wgsl */ `${header(spec, vecB ? "array<vec4<f32>>" : "array<f32>")}
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {${TILE_COORDS}
  let m0 = tm * ${R}u;
  let n0 = tn * ${8 * t.cols}u;
  ${lines.join("\n  ")}
  for (var k = 0u; k < p.K; k++) {
    ${body.join("\n    ")}
  }
  ${stores.join("\n  ")}
}`;
}

// tiled. Thread mapping: workgroup (bat, tm, tn) computes the 64x64 tile at (tm*64, tn*64); thread (tx, ty)
// owns rows ty + 16*i and columns tx + 16*j (i, j < 4), so neighbouring threads read neighbouring words of the
// tiles. Each k step, the 256 threads stage a 64x16 slab of a and a 16x64 slab of b (4 words each, zero
// outside the matrices) in workgroup memory.
function tiledWgsl(spec: MatmulSpec): string {
  return /* wgsl */ `${header(spec, "array<f32>")}
var<workgroup> As: array<array<f32, ${TILE}>, ${TK}>; // [k][m]
var<workgroup> Bs: array<array<f32, ${TILE}>, ${TK}>; // [k][n]
@compute @workgroup_size(${WG2}, ${WG2})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {${TILE_COORDS}
  let m0 = tm * ${TILE}u;
  let n0 = tn * ${TILE}u;
  let t = lid.y * ${WG2}u + lid.x;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < p.K; k0 += ${TK}u) {
    for (var s = 0u; s < 4u; s++) {
      let e = t + s * ${WG2 * WG2}u; // element of the 64x16 slab
      // a slab [m][k]: consecutive threads walk along the stored contiguous dimension
      ${spec.transA ? `let am = e % ${TILE}u; let ak = e / ${TILE}u;` : `let ak = e % ${TK}u; let am = e / ${TK}u;`}
      let gm = m0 + am;
      let gk = k0 + ak;
      As[ak][am] = select(0.0, A[aBase + ${aIndex(spec, "min(gm, p.M - 1u)", "min(gk, p.K - 1u)")}], gm < p.M && gk < p.K);
      ${spec.transB ? `let bk = e % ${TK}u; let bn = e / ${TK}u;` : `let bn = e % ${TILE}u; let bk = e / ${TILE}u;`}
      let hn = n0 + bn;
      let hk = k0 + bk;
      Bs[bk][bn] = select(0.0, B[bBase + ${bIndex(spec, "min(hk, p.K - 1u)", "min(hn, p.N - 1u)")}], hn < p.N && hk < p.K);
    }
    workgroupBarrier();
    for (var k = 0u; k < ${TK}u; k++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = As[k][lid.y + ${WG2}u * i];
        b[i] = Bs[k][lid.x + ${WG2}u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y + ${WG2}u * i;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x + ${WG2}u * j;
      if (m < p.M && n < p.N) { store(yBase + m * p.N + n, n, acc[i][j]); }
    }
  }
}`;
}

function wgsl(spec: MatmulSpec): string {
  const tile = VERSIONS[spec.version];
  return tile.kind === "reg" ? regWgsl(spec, tile) : tiledWgsl(spec);
}

const dims = (t: Tensor) => `(${t.shape.join(", ")})`;

function chooseVersion(requested: string | undefined): string {
  const version = requested ?? process.env.PEFT_MATMUL ?? (runtime().gpu.isCpu ? DEFAULT_CPU : DEFAULT_GPU);
  if (!(version in VERSIONS)) throw new Error(`matmul: expected a version in ${MATMUL_VERSIONS.join(", ")}, got "${version}"`);
  return version;
}

// a: (..., M, K) ((..., K, M) with transA); b: (..., K, N) ((..., N, K) with transB) with a's batch dims, or
// 2-D and shared by every batch entry. Returns y: (..., M, N).
export function matmulForward(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  for (const [name, t] of [["a", a], ["b", b], ["bias", opts.bias], ["preact", opts.preact], ["residual", opts.residual], ["out", opts.out]] as const) {
    if (t && t.dtype !== "f32") throw new Error(`matmul: expected ${name} to be f32, got ${t.dtype} ${dims(t)}`);
  }
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`matmul: expected a and b of rank >= 2, got a ${dims(a)} and b ${dims(b)}`);
  const batchDims = a.shape.slice(0, -2);
  const shared = b.shape.length === 2;
  if (!shared && (b.shape.length !== a.shape.length || b.shape.slice(0, -2).some((d, i) => d !== batchDims[i]))) {
    throw new Error(`matmul: expected b 2-D or with the batch dims of a ${dims(a)}, got b ${dims(b)}`);
  }
  const [M, K] = opts.transA ? [a.shape.at(-1)!, a.shape.at(-2)!] : [a.shape.at(-2)!, a.shape.at(-1)!];
  const [Kb, N] = opts.transB ? [b.shape.at(-1)!, b.shape.at(-2)!] : [b.shape.at(-2)!, b.shape.at(-1)!];
  if (K !== Kb) {
    throw new Error(
      `matmul: expected matching inner dimensions, got a ${dims(a)}${opts.transA ? "ᵀ" : ""} and b ${dims(b)}${opts.transB ? "ᵀ" : ""} (K ${K} vs ${Kb})`,
    );
  }
  const yShape = [...batchDims, M, N];
  const same = (t: Tensor) => t.shape.length === yShape.length && t.shape.every((d, i) => d === yShape[i]);
  if (opts.bias && (opts.bias.shape.length !== 1 || opts.bias.shape[0] !== N)) {
    throw new Error(`matmul: expected bias (${N}), got ${dims(opts.bias)}`);
  }
  for (const [name, t] of [["preact", opts.preact], ["residual", opts.residual], ["out", opts.out]] as const) {
    if (t && !same(t)) throw new Error(`matmul: expected ${name} (${yShape.join(", ")}), got ${dims(t)}`);
  }
  if (opts.preact && !opts.gelu) throw new Error("matmul: expected gelu with preact, got preact without gelu");
  if (opts.accumulate && (!opts.out || opts.bias || opts.gelu || opts.residual)) {
    throw new Error("matmul: expected accumulate with out and without bias/gelu/residual");
  }
  const y = opts.out ?? Tensor.empty(yShape);
  for (const [name, t] of [["a", a], ["b", b], ["bias", opts.bias], ["preact", opts.preact]] as const) {
    if (t && t.buffer === y.buffer) throw new Error(`matmul: expected out not to share storage with ${name}`);
  }
  // A residual that is `out` itself is the same as accumulating into out: read it through y's binding, since
  // WebGPU forbids binding one buffer both read-only and writable in a dispatch.
  const residualIsOut = opts.residual !== undefined && opts.residual.buffer === y.buffer;
  const version = chooseVersion(opts.version);
  const spec: MatmulSpec = {
    version,
    transA: !!opts.transA,
    transB: !!opts.transB,
    bias: !!opts.bias,
    gelu: !!opts.gelu,
    preact: !!opts.preact,
    residual: !!opts.residual && !residualIsOut,
    addOut: !!opts.accumulate || residualIsOut,
  };
  const batch = numel(batchDims);
  if (y.size === 0) return y;
  const tile = VERSIONS[version];
  const [tileM, tileN] = tile.kind === "reg" ? [tile.rows, 8 * tile.cols] : [TILE, TILE];
  if (tile.kind === "reg" && tile.vecB && (opts.transB || N % 4 !== 0)) {
    throw new Error(`matmul: version ${version} expected N % 4 == 0 and no transB, got N ${N}`);
  }
  const tilesM = Math.ceil(M / tileM);
  const tilesN = Math.ceil(N / tileN);
  const uniform = packUniform(FIELDS, { M, K, N, batch, tilesM, tilesN, strideA: M * K, strideB: shared ? 0 : K * N });
  const buffers = [y.buffer, a.buffer, b.buffer];
  if (opts.bias) buffers.push(opts.bias.buffer);
  if (opts.preact) buffers.push(opts.preact.buffer);
  if (spec.residual) buffers.push(opts.residual!.buffer);
  const kernel = getKernel("matmul", spec, wgsl);
  runtime().batch.dispatch(kernel, buffers, uniform, grid1d(batch * tilesM * tilesN), 2 * batch * M * N * K);
  return y;
}
