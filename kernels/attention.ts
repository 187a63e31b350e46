// Fused scaled-dot-product attention over the packed qkv of a ViT block, forward and backward.
//
// Math, per batch b and head h, with q_i, k_j, v_j the D-vectors of tokens i, j and s the scale (1/sqrt(D)):
//   S_ij = s q_i.k_j      P_ij = exp(S_ij - lse_i)      lse_i = log sum_j exp(S_ij)      o_i = sum_j P_ij v_j
// Backward, given dO (the gradient of o), recomputing P from q, k and lse instead of storing it:
//   delta_i = dO_i.o_i (= sum_j P_ij dP_ij)    dP_ij = dO_i.v_j    dS_ij = P_ij (dP_ij - delta_i)
//   dq_i = s sum_j dS_ij k_j      dk_j = s sum_i dS_ij q_i      dv_j = sum_i P_ij dO_i
//
// Layout: qkv (B, N, 3*C), C = H*D, last axis [q | k | v], head h at columns h*D..h*D+D-1 of each part (timm's
// qkv.reshape(B, N, 3, H, D)); o and dO are (B, N, C), heads concatenated; lse and delta are (B, H, N). So the
// model needs no permutes. Nothing of size N x N is written: the forward is FlashAttention's online softmax
// (running max m and sum l; the accumulator is rescaled by exp(m_old - m_new) once per group of keys), and the
// backward recomputes P. Scratch: delta, (B, H, N).
//
// Every pass has one shape: an invocation owns one row (a query, or a key for dk/dv), keeps that row's vectors and
// accumulators in registers as D/4 vec4s (the WGSL is unrolled over D, so D is part of the spec), and streams
// over all rows of the other kind, `group` rows per step (independent dot products for instruction-level
// parallelism; one rescale per group in the forward).
//   forward  own query i, streams k_j, v_j:                  q_i, acc            (2D floats) -> o, lse
//   dq       own query i, streams k_j, v_j:                  q_i, dO_i, dq_i     (3D)        -> dq, delta
//   dkdv     own key j, streams q_i, dO_i, lse_i, delta_i:   k_j, v_j, dk_j, dv_j (4D)       -> dk, dv
//   dk, dv   dkdv split in two passes (3D and 2D floats), recomputing S once more, to stay out of register spills.
// The backward runs dq first (it writes delta), then dkdv or dk + dv. Each pass writes its own columns of dqkv.
//
// Versions differ in how the streamed rows reach an invocation:
//   v1 (default on CPU drivers): workgroup of 8 consecutive rows of one (b, h) = one 8-lane SIMD batch on
//      llvmpipe. Streamed rows are read from global memory at indices uniform across the workgroup (one broadcast
//      load serves all lanes) and there is no barrier (a barrier is a coroutine switch on llvmpipe).
//      Backward: dq, dk, dv (no pass holds more than 3D floats per lane).
//   v2 (default on GPUs): workgroup of 64 rows; the streamed rows are staged tile by tile in workgroup memory,
//      loaded cooperatively between two barriers. Backward: dq, dkdv.
// attentionProbs materialises P (B, H, N, N) for research dumps only: one invocation per entry, from the forward's lse.
import { runtime } from "../engine/runtime.js";
import { getKernel } from "../engine/pipeline.js";
import { Tensor } from "../engine/tensor.js";
import { FLAT_GROUP, grid1d, packUniform, uniformStruct } from "./wgsl.js";

export const ATTENTION_VERSIONS = ["v1", "v2"];
type Version = "v1" | "v2";
type Pass = "forward" | "dq" | "dkdv";

export interface AttentionOptions {
  scale?: number; // default 1/sqrt(D)
  version?: string; // one of ATTENTION_VERSIONS; default by device
}

interface AttentionSpec {
  [k: string]: string | number | boolean;
  pass: Pass;
  version: Version;
  d: number; // head dim, a multiple of 4
  wg: number; // invocations per workgroup
  rows: number; // owned rows per invocation
  tile: number; // v2: streamed rows staged in workgroup memory per barrier pair; v1: 0
  rolled: boolean; // loops over D bounded by the uniform p.d4, so the shader compiler cannot unroll them
}

const FIELDS = { n: "u32", heads: "u32", bh: "u32", blocks: "u32", rs: "u32", c4: "u32", d4: "u32", scale: "f32" } as const;
const V1 = { wg: 8, rows: Number(process.env.ATT_R ?? 4), tile: 0, rolled: process.env.ATT_ROLL !== "0" }; // TEMP
const V2 = { wg: 64, rows: 1, rolled: false };
// Workgroup memory a v2 tile may use: more than 16 KiB costs occupancy on GPUs.
const V2_TILE_BYTES = 16384;
const PROBS_WG = 64;

// ---- WGSL generation ----

// A streamed row: `at(row)` is the index of its first element in `buf` (vec4 units for vectors).
interface Stream {
  name: string;
  buf: string;
  vec: boolean;
  at: (row: string) => string;
}

const K: Stream = { name: "K", buf: "qkv", vec: true, at: (r) => `kBase + ${r} * p.rs` };
const V: Stream = { name: "V", buf: "qkv", vec: true, at: (r) => `vBase + ${r} * p.rs` };
const Q: Stream = { name: "Q", buf: "qkv", vec: true, at: (r) => `qBase + ${r} * p.rs` };
const DO: Stream = { name: "G", buf: "dout", vec: true, at: (r) => `oBase + ${r} * p.c4` };
const LSE: Stream = { name: "L", buf: "lse", vec: false, at: (r) => `sBase + ${r}` };
const DELTA: Stream = { name: "E", buf: "delta", vec: false, at: (r) => `sBase + ${r}` };

const STREAMS: Record<Pass, Stream[]> = { forward: [K, V], dq: [K, V], dkdv: [Q, DO, LSE, DELTA] };

// Storage buffers per pass, in binding order (writable first). The wrappers pass buffers by these names.
const BINDINGS: Record<Pass, [string, "read" | "read_write"][]> = {
  forward: [["o", "read_write"], ["lse", "read_write"], ["qkv", "read"]],
  dq: [["dqkv", "read_write"], ["delta", "read_write"], ["qkv", "read"], ["o", "read"], ["dout", "read"], ["lse", "read"]],
  dkdv: [["dqkv", "read_write"], ["qkv", "read"], ["dout", "read"], ["lse", "read"], ["delta", "read"]],
};
const SCALAR_BUFFERS = new Set(["lse", "delta"]);

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

// The three parts of a pass, as statement lists: set-up of the owned rows, the step for one streamed row j, and
// the stores. Owned row r is row{r} (clamped, for loads) / i{r} (checked, for stores); its vectors live in
// private arrays x[c + r*D/4]. `ld(S, c)` reads vec4 c of streamed row j of stream S (`ld(S)` a scalar);
// `forC(body)` is a loop over c < D/4.
function passCode(
  spec: AttentionSpec,
  ld: (s: Stream, c?: string) => string,
  forC: (body: string[]) => string[],
): { init: string[]; step: string[]; store: string[] } {
  const d4 = spec.d / 4;
  const rs = range(spec.rows);
  const at = (x: string, r: number) => `${x}[c + ${r * d4}u]`;
  const arrays = (...xs: string[]) => xs.map((x) => `var ${x}: array<vec4f, ${spec.rows * d4}>;`);
  // Loads the owned rows' vectors; q and k are pre-scaled by s, so their dot products are S_ij directly.
  const own = (x: string, buf: string, row: (r: string) => string, factor = "") =>
    forC(rs.map((r) => `${at(x, r)} = ${buf}[${row(`row${r}`)} + c]${factor};`));
  const zero = (x: string) => forC(rs.map((r) => `${at(x, r)} = vec4f(0.0);`));
  const hsum = (v: string) => `(${v}.x + ${v}.y + ${v}.z + ${v}.w)`;
  const each = (f: (r: number) => string) => rs.map(f);
  const guarded = (lines: (r: number) => string[]) => rs.flatMap((r) => [`if (i${r} < p.n) {`, ...lines(r).map((l) => `  ${l}`), "}"]);

  switch (spec.pass) {
    case "forward":
      // Online softmax. A row's accumulator is rescaled only when its running max grows (a branch that is
      // rarely taken after the first keys), by exp(m_old - m_new); exp(NEG - s) = 0 on the first key.
      return {
        init: [...arrays("q", "a"), ...own("q", "qkv", Q.at, " * p.scale"), ...zero("a"), ...each((r) => `var m${r} = -3.0e38;\nvar l${r} = 0.0;`)],
        step: [
          ...each((r) => `var s${r} = vec4f(0.0);`),
          ...forC(["let kc = " + ld(K, "c") + ";", ...each((r) => `s${r} = fma(${at("q", r)}, kc, s${r});`)]),
          ...rs.flatMap((r) => [
            `let x${r} = ${hsum(`s${r}`)};`,
            `if (x${r} > m${r}) {`,
            `  let corr = exp(m${r} - x${r});`,
            `  l${r} *= corr;`,
            ...forC([`${at("a", r)} *= corr;`]).map((l) => `  ${l}`),
            `  m${r} = x${r};`,
            "}",
            `let e${r} = exp(x${r} - m${r});`,
            `l${r} += e${r};`,
          ]),
          ...forC(["let vc = " + ld(V, "c") + ";", ...each((r) => `${at("a", r)} = fma(vec4f(e${r}), vc, ${at("a", r)});`)]),
        ],
        store: guarded((r) => [
          ...forC([`o[oBase + i${r} * p.c4 + c] = ${at("a", r)} / l${r};`]),
          `lse[sBase + i${r}] = m${r} + log(l${r});`,
        ]),
      };
    case "dq":
      // delta_i = dO_i . o_i is computed here (o is read once) and written for the dk/dv pass.
      return {
        init: [
          ...arrays("q", "d", "a"),
          `var kt: array<vec4f, ${d4}>;`,
          ...each((r) => `var dv${r} = vec4f(0.0);`),
          ...own("q", "qkv", Q.at, " * p.scale"),
          ...own("d", "dout", DO.at),
          ...forC(each((r) => `dv${r} = fma(${at("d", r)}, o[${DO.at(`row${r}`)} + c], dv${r});`)),
          ...each((r) => `let dl${r} = ${hsum(`dv${r}`)};\nlet lr${r} = lse[sBase + row${r}];`),
          ...zero("a"),
        ],
        step: [
          ...each((r) => `var s${r} = vec4f(0.0);\nvar t${r} = vec4f(0.0);`),
          ...forC([
            `let kc = ${ld(K, "c")};`,
            `let vc = ${ld(V, "c")};`,
            "kt[c] = kc;", // k_j is needed again after the softmax: a private copy is far cheaper than a reload
            ...each((r) => `s${r} = fma(${at("q", r)}, kc, s${r});\nt${r} = fma(${at("d", r)}, vc, t${r});`),
          ]),
          ...each((r) => `let w${r} = exp(${hsum(`s${r}`)} - lr${r}) * (${hsum(`t${r}`)} - dl${r});`),
          ...forC(each((r) => `${at("a", r)} = fma(vec4f(w${r}), kt[c], ${at("a", r)});`)),
        ],
        store: guarded((r) => [...forC([`dqkv[qBase + i${r} * p.rs + c] = ${at("a", r)} * p.scale;`]), `delta[sBase + i${r}] = dl${r};`]),
      };
    case "dkdv":
      // The owned rows are keys; the streamed rows are queries with their dO, lse and delta.
      return {
        init: [
          ...arrays("k", "v", "a", "z"),
          `var qt: array<vec4f, ${d4}>;`,
          `var gt: array<vec4f, ${d4}>;`,
          ...own("k", "qkv", K.at, " * p.scale"),
          ...own("v", "qkv", V.at),
          ...zero("a"),
          ...zero("z"),
        ],
        step: [
          ...each((r) => `var s${r} = vec4f(0.0);\nvar t${r} = vec4f(0.0);`),
          ...forC([
            `let qc = ${ld(Q, "c")};`,
            `let gc = ${ld(DO, "c")};`,
            "qt[c] = qc;",
            "gt[c] = gc;",
            ...each((r) => `s${r} = fma(${at("k", r)}, qc, s${r});\nt${r} = fma(${at("v", r)}, gc, t${r});`),
          ]),
          `let lj = ${ld(LSE)};`,
          `let ej = ${ld(DELTA)};`,
          ...each((r) => `let p${r} = exp(${hsum(`s${r}`)} - lj);\nlet w${r} = p${r} * (${hsum(`t${r}`)} - ej);`),
          ...forC(
            each((r) => `${at("a", r)} = fma(vec4f(w${r}), qt[c], ${at("a", r)});\n${at("z", r)} = fma(vec4f(p${r}), gt[c], ${at("z", r)});`),
          ),
        ],
        store: guarded((r) => forC([`dqkv[kBase + i${r} * p.rs + c] = ${at("a", r)} * p.scale;`, `dqkv[vBase + i${r} * p.rs + c] = ${at("z", r)};`])),
      };
  }
}

function wgsl(spec: AttentionSpec): string {
  const d4 = spec.d / 4;
  const streams = STREAMS[spec.pass];
  const tiled = spec.version === "v2";
  const ld = (s: Stream, c?: string) =>
    tiled ? `t${s.name}[t${s.vec ? ` * ${d4}u + ${c}` : ""}]` : `${s.buf}[${s.at("j")}${s.vec ? ` + ${c}` : ""}]`;
  const forC = (body: string[]) => [`for (var c = 0u; c < ${spec.rolled ? "p.d4" : `${d4}u`}; c++) {`, ...body.map((l) => `  ${l}`), "}"];
  const { init, step, store } = passCode(spec, ld, forC);
  const indent = (lines: string[], n: number) => lines.join("\n").split("\n").map((l) => " ".repeat(n) + l).join("\n");
  const bindings = BINDINGS[spec.pass].map(
    ([name, access], i) => `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<${SCALAR_BUFFERS.has(name) ? "f32" : "vec4f"}>;`,
  );
  let loop: string;
  if (!tiled) {
    loop = `  for (var j = 0u; j < p.n; j++) {\n${indent(step, 4)}\n  }`;
  } else {
    // Each tile: the workgroup stages T streamed rows (clamped past N), then every invocation runs its steps.
    const T = spec.tile;
    const stage = (n: number, lines: string[]) => `    for (var e = lid.x; e < ${n}u; e += ${spec.wg}u) {\n${indent(lines, 6)}\n    }`;
    const vecs = streams.filter((s) => s.vec);
    const scalars = streams.filter((s) => !s.vec);
    loop = [
      `  for (var j0 = 0u; j0 < p.n; j0 += ${T}u) {`,
      stage(T * d4, [`let jr = min(j0 + e / ${d4}u, p.n - 1u);`, ...vecs.map((s) => `t${s.name}[e] = ${s.buf}[${s.at("jr")} + e % ${d4}u];`)]),
      ...(scalars.length ? [stage(T, ["let jr = min(j0 + e, p.n - 1u);", ...scalars.map((s) => `t${s.name}[e] = ${s.buf}[${s.at("jr")}];`)])] : []),
      "    workgroupBarrier();",
      `    for (var t = 0u; t < min(${T}u, p.n - j0); t++) {`,
      indent(step, 6),
      "    }",
      "    workgroupBarrier();",
      "  }",
    ].join("\n");
  }
  const tiles = tiled ? streams.map((s) => `var<workgroup> t${s.name}: array<${s.vec ? "vec4f" : "f32"}, ${spec.tile * (s.vec ? d4 : 1)}>;`) : [];
  const span = spec.wg * spec.rows;
  return /* wgsl */ `
${uniformStruct(FIELDS)}
${bindings.join("\n")}
${tiles.join("\n")}
${FLAT_GROUP}
// Thread mapping: workgroup g owns rows (g % p.blocks) * ${span} + r * ${spec.wg} + lid.x (r < ${spec.rows}) of
// (b, h) = g / p.blocks.
@compute @workgroup_size(${spec.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let g = flatGroup(wid, nwg);
  let bh = g / p.blocks;
  if (bh >= p.bh) { return; } // padding of a folded grid: uniform across the workgroup
  let b = bh / p.heads;
  let h = bh % p.heads;
${indent(range(spec.rows).flatMap((r) => [`let i${r} = (g % p.blocks) * ${span}u + ${r * spec.wg}u + lid.x;`, `let row${r} = min(i${r}, p.n - 1u);`]), 2)}
  // vec4 indices of token 0 of batch b, head h: q, k, v in qkv; o and dO rows; lse and delta.
  let qBase = b * p.n * p.rs + h * ${d4}u;
  let kBase = qBase + p.c4;
  let vBase = kBase + p.c4;
  let oBase = b * p.n * p.c4 + h * ${d4}u;
  let sBase = bh * p.n;
${indent(init, 2)}
${loop}
${indent(store, 2)}
}`;
}

// Materialised probabilities: P_ij = exp(S_ij - lse_i), the lse from the forward.
function probsWgsl(spec: { d: number }): string {
  const d4 = spec.d / 4;
  return /* wgsl */ `
${uniformStruct(FIELDS)}
@group(0) @binding(1) var<storage, read_write> probs: array<f32>;
@group(0) @binding(2) var<storage, read> qkv: array<vec4f>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
${FLAT_GROUP}
// Thread mapping: workgroup g covers keys (g % p.blocks) * ${PROBS_WG} + lid.x of score row (b, h, i) = g / p.blocks.
@compute @workgroup_size(${PROBS_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let g = flatGroup(wid, nwg);
  let row = g / p.blocks;
  let j = (g % p.blocks) * ${PROBS_WG}u + lid.x;
  if (row >= p.bh * p.n || j >= p.n) { return; }
  let bh = row / p.n;
  let i = row % p.n;
  let qBase = (bh / p.heads) * p.n * p.rs + (bh % p.heads) * ${d4}u;
  let kBase = qBase + p.c4;
  var acc = vec4f(0.0);
  for (var c = 0u; c < ${d4}u; c++) {
    acc = fma(qkv[qBase + i * p.rs + c], qkv[kBase + j * p.rs + c], acc);
  }
  probs[row * p.n + j] = exp((acc.x + acc.y + acc.z + acc.w) * p.scale - lse[row]);
}`;
}

// ---- wrappers ----

interface Dims {
  B: number;
  N: number;
  H: number;
  D: number;
  C: number; // H*D
}

// Length-D products per (owned, streamed) row pair, for the work estimate.
const PRODUCTS: Record<Pass, number> = { forward: 2, dq: 3, dkdv: 4 };

function shapeStr(t: Tensor): string {
  return `(${t.shape.join(", ")})`;
}

// qkv: (B, N, 3*H*D)
function attentionDims(qkv: Tensor, heads: number): Dims {
  if (qkv.dtype !== "f32" || qkv.shape.length !== 3) {
    throw new Error(`attention: expected an f32 qkv (B, N, 3*H*D), got ${qkv.dtype} ${shapeStr(qkv)}`);
  }
  if (!Number.isInteger(heads) || heads < 1) throw new Error(`attention: expected heads a positive integer, got ${heads}`);
  const [B, N, C3] = qkv.shape;
  if (C3 % (3 * heads) !== 0) {
    throw new Error(`attention: expected qkv's last axis divisible by 3*heads = ${3 * heads}, got qkv ${shapeStr(qkv)}`);
  }
  const D = C3 / (3 * heads);
  if (D < 4 || D % 4 !== 0) {
    throw new Error(`attention: expected head dim D a positive multiple of 4, got D = ${D} (qkv ${shapeStr(qkv)}, ${heads} heads)`);
  }
  return { B, N, H: heads, D, C: heads * D };
}

function checkShape(name: string, t: Tensor, want: number[]): void {
  if (t.dtype !== "f32" || t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new Error(`attention: expected ${name} f32 (${want.join(", ")}), got ${t.dtype} ${shapeStr(t)}`);
  }
}

function pickVersion(version: string | undefined): Version {
  const v = version ?? (runtime().gpu.isCpu ? "v1" : "v2");
  if (!ATTENTION_VERSIONS.includes(v)) throw new Error(`attention: expected version one of ${ATTENTION_VERSIONS.join(", ")}, got "${v}"`);
  return v as Version;
}

function pickScale(scale: number | undefined, D: number): number {
  const s = scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(s)) throw new Error(`attention: expected a finite scale, got ${s}`);
  return s;
}

function specFor(pass: Pass, version: Version, d: number): AttentionSpec {
  if (version === "v1") return { pass, version, d, ...V1 };
  // v2: the largest power-of-two tile (at most one row per invocation) whose staged rows fit the budget.
  const rowBytes = STREAMS[pass].reduce((n, s) => n + (s.vec ? 4 * d : 4), 0);
  const budget = Math.min(runtime().gpu.limits.maxComputeWorkgroupStorageSize, V2_TILE_BYTES);
  let tile = V2.wg;
  while (tile > 1 && tile * rowBytes > budget) tile /= 2;
  if (tile * rowBytes > budget) throw new Error(`attention: expected head dim D at most ${Math.floor(budget / 16) * 2} for v2, got D = ${d}`);
  return { pass, version, d, ...V2, tile };
}

function encode(pass: Pass, version: Version, dims: Dims, scale: number, buffers: Record<string, GPUBuffer>): void {
  const { B, N, H, D, C } = dims;
  const spec = specFor(pass, version, D);
  const kernel = getKernel("attention", spec, wgsl);
  const blocks = Math.ceil(N / (spec.wg * spec.rows));
  const uniform = packUniform(FIELDS, { n: N, heads: H, bh: B * H, blocks, rs: (3 * C) / 4, c4: C / 4, d4: D / 4, scale });
  const list = BINDINGS[pass].map(([name]) => buffers[name]);
  runtime().batch.dispatch(kernel, list, uniform, grid1d(B * H * blocks), 2 * B * H * N * N * D * PRODUCTS[pass]);
}

// qkv: (B, N, 3*H*D) -> o: (B, N, H*D), lse: (B, H, N), the log-sum-exp of each score row (saved for backward).
export function attentionForward(qkv: Tensor, heads: number, opts: AttentionOptions = {}): { o: Tensor; lse: Tensor } {
  const dims = attentionDims(qkv, heads);
  const version = pickVersion(opts.version);
  const scale = pickScale(opts.scale, dims.D);
  const o = Tensor.empty([dims.B, dims.N, dims.C]);
  const lse = Tensor.empty([dims.B, dims.H, dims.N]);
  if (o.size > 0) encode("forward", version, dims, scale, { o: o.buffer, lse: lse.buffer, qkv: qkv.buffer });
  return { o, lse };
}

// qkv: (B, N, 3*H*D), o: (B, N, H*D), lse: (B, H, N) from the forward, dout: (B, N, H*D) -> dqkv: (B, N, 3*H*D).
// Scratch: delta (B, H, N).
export function attentionBackward(qkv: Tensor, o: Tensor, lse: Tensor, dout: Tensor, heads: number, opts: AttentionOptions = {}): Tensor {
  const dims = attentionDims(qkv, heads);
  const { B, N, H, C } = dims;
  checkShape("o", o, [B, N, C]);
  checkShape("lse", lse, [B, H, N]);
  checkShape("dout", dout, [B, N, C]);
  const version = pickVersion(opts.version);
  const scale = pickScale(opts.scale, dims.D);
  const dqkv = Tensor.empty(qkv.shape);
  if (dqkv.size === 0) return dqkv;
  const delta = Tensor.empty([B, H, N]);
  const buffers = { dqkv: dqkv.buffer, delta: delta.buffer, qkv: qkv.buffer, o: o.buffer, dout: dout.buffer, lse: lse.buffer };
  encode("dq", version, dims, scale, buffers);
  encode("dkdv", version, dims, scale, buffers);
  delta.dispose();
  return dqkv;
}

// qkv: (B, N, 3*H*D) -> P: (B, H, N, N), the softmax probabilities, materialised (for analysis, not training).
export function attentionProbs(qkv: Tensor, heads: number, opts: { scale?: number } = {}): Tensor {
  const { B, N, H, D, C } = attentionDims(qkv, heads);
  const scale = pickScale(opts.scale, D);
  const { o, lse } = attentionForward(qkv, heads, { scale });
  o.dispose();
  const probs = Tensor.empty([B, H, N, N]);
  if (probs.size > 0) {
    const kernel = getKernel("attention-probs", { d: D }, probsWgsl);
    const blocks = Math.ceil(N / PROBS_WG);
    const uniform = packUniform(FIELDS, { n: N, heads: H, bh: B * H, blocks, rs: (3 * C) / 4, c4: C / 4, d4: D / 4, scale });
    runtime().batch.dispatch(kernel, [probs.buffer, qkv.buffer, lse.buffer], uniform, grid1d(B * H * N * blocks), 2 * probs.size * D);
  }
  lse.dispose();
  return probs;
}
