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
type Pass = "forward" | "dq" | "dkdv" | "dk" | "dv";

export interface AttentionOptions {
  scale?: number; // default 1/sqrt(D)
  version?: string; // one of ATTENTION_VERSIONS; default by device
}

interface AttentionSpec {
  [k: string]: string | number;
  pass: Pass;
  version: Version;
  d: number; // head dim, a multiple of 4
  wg: number; // owned rows per workgroup
  group: number; // streamed rows per loop step
  tile: number; // v2: streamed rows staged in workgroup memory per barrier pair; v1: 0
}

const FIELDS = { n: "u32", heads: "u32", bh: "u32", blocks: "u32", rs: "u32", c4: "u32", scale: "f32" } as const;
// A finite stand-in for -inf: exp(NEG - m) underflows to 0, where -inf - -inf would give NaN.
const NEG = "-3.0e38";
const V1 = { wg: Number(process.env.ATT_WG ?? 8), group: Number(process.env.ATT_G ?? 4) }; // TEMP
const V2 = { wg: 64, group: 4 };
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

const STREAMS: Record<Pass, Stream[]> = {
  forward: [K, V],
  dq: [K, V],
  dkdv: [Q, DO, LSE, DELTA],
  dk: [Q, DO, LSE, DELTA],
  dv: [Q, DO, LSE],
};

// Storage buffers per pass, in binding order (writable first). The wrappers pass buffers by these names.
const BINDINGS: Record<Pass, [string, "read" | "read_write"][]> = {
  forward: [["o", "read_write"], ["lse", "read_write"], ["qkv", "read"]],
  dq: [["dqkv", "read_write"], ["delta", "read_write"], ["qkv", "read"], ["o", "read"], ["dout", "read"], ["lse", "read"]],
  dkdv: [["dqkv", "read_write"], ["qkv", "read"], ["dout", "read"], ["lse", "read"], ["delta", "read"]],
  dk: [["dqkv", "read_write"], ["qkv", "read"], ["dout", "read"], ["lse", "read"], ["delta", "read"]],
  dv: [["dqkv", "read_write"], ["qkv", "read"], ["dout", "read"], ["lse", "read"]],
};
const SCALAR_BUFFERS = new Set(["lse", "delta"]);

// Statements for c in 0..n-1, one per line.
function rep(n: number, f: (c: number) => string, sep = "\n  "): string {
  return Array.from({ length: n }, (_, c) => f(c)).join(sep);
}

// `let name = sum_c a(c) . b(c)` as one vec4 fma chain, summed across the four components at the end.
function dot(name: string, d4: number, a: (c: number) => string, b: (c: number) => string): string {
  const chain = rep(d4 - 1, (c) => `${name}v = fma(${a(c + 1)}, ${b(c + 1)}, ${name}v);`);
  return `var ${name}v = ${a(0)} * ${b(0)};\n  ${chain}\n  let ${name} = ${name}v.x + ${name}v.y + ${name}v.z + ${name}v.w;`;
}

// `init` folded through fma(vec4f(w_g), x_g, .) for each term [w_g, x_g]: acc + sum_g w_g x_g.
function fmaChain(init: string, terms: [string, string][]): string {
  return terms.reduce((acc, [w, x]) => `fma(vec4f(${w}), ${x}, ${acc})`, init);
}

// The three parts of a pass: own-row set-up, the step over one group of streamed rows j..j+group-1 (row j+g is
// real iff j + g < p.n; loads of the others are clamped and their weight is zeroed), and the stores of row i.
// `ld(stream, g, c)` reads vec4 c of streamed row g (or the scalar, without c).
type Load = (s: Stream, g: number, c?: number) => string;

function passCode(spec: AttentionSpec, ld: Load): { init: string; step: string; store: string } {
  const d4 = spec.d / 4;
  const gs = Array.from({ length: spec.group }, (_, g) => g);
  const cs = Array.from({ length: d4 }, (_, c) => c);
  const lines = (xs: string[]) => xs.join("\n  ");
  const valid = (g: number) => `j + ${g}u < p.n`;
  // The owned row's vectors: q and k are pre-scaled by s, so their dot products are S_ij directly.
  const own = (name: string, buf: string, at: string, scaled = false) =>
    lines(cs.map((c) => `let ${name}${c} = ${buf}[${at} + ${c}u]${scaled ? " * p.scale" : ""};`));
  const acc = (name: string) => lines(cs.map((c) => `var ${name}${c} = vec4f(0.0);`));
  const dots = (name: string, mine: string, s: Stream) =>
    lines(gs.map((g) => dot(`${name}${g}`, d4, (c) => `${mine}${c}`, (c) => ld(s, g, c))));
  const update = (name: string, w: string, s: Stream) =>
    lines(cs.map((c) => `${name}${c} = ${fmaChain(`${name}${c}`, gs.map((g) => [`${w}${g}`, ld(s, g, c)]))};`));
  const write = (buf: string, at: string, name: string, factor = "") =>
    cs.map((c) => `${buf}[${at} + ${c}u] = ${name}${c}${factor};`);
  const stores = (xs: string[]) => xs.join("\n    ");

  switch (spec.pass) {
    case "forward": {
      // Online softmax; the accumulator is rescaled once per group by exp(m_old - m_new) <= 1 (0 on the first).
      const maxOf = gs.slice(1).reduce((e, g) => `max(${e}, x${g})`, "x0");
      return {
        init: lines([own("q", "qkv", "qBase + r * p.rs", true), acc("a"), `var m = ${NEG};`, "var l = 0.0;"]),
        step: lines([
          dots("s", "q", K),
          ...gs.map((g) => `let x${g} = select(${NEG}, s${g}, ${valid(g)});`),
          `let mNew = max(m, ${maxOf});`,
          "let corr = exp(m - mNew);",
          "m = mNew;",
          ...gs.map((g) => `let e${g} = exp(x${g} - mNew);`),
          `l = l * corr + ${gs.map((g) => `e${g}`).join(" + ")};`,
          ...cs.map((c) => `a${c} = ${fmaChain(`a${c} * corr`, gs.map((g) => [`e${g}`, ld(V, g, c)]))};`),
        ]),
        store: stores(["let inv = 1.0 / l;", ...write("o", "oBase + i * p.c4", "a", " * inv"), "lse[sBase + i] = m + log(l);"]),
      };
    }
    case "dq":
      return {
        init: lines([
          own("q", "qkv", "qBase + r * p.rs", true),
          own("d", "dout", "oBase + r * p.c4"),
          dot("dl", d4, (c) => `d${c}`, (c) => `o[oBase + r * p.c4 + ${c}u]`),
          "let lr = lse[sBase + r];",
          acc("a"),
        ]),
        step: lines([
          dots("s", "q", K),
          dots("t", "d", V),
          ...gs.map((g) => `let w${g} = select(0.0, exp(s${g} - lr) * (t${g} - dl), ${valid(g)});`),
          update("a", "w", K),
        ]),
        store: stores([...write("dqkv", "qBase + i * p.rs", "a", " * p.scale"), "delta[sBase + i] = dl;"]),
      };
    default: {
      // dkdv, dk, dv: the owned row is key j; the streamed rows are queries.
      const dk = spec.pass !== "dv";
      const dv = spec.pass !== "dk";
      return {
        init: lines([
          own("k", "qkv", "kBase + r * p.rs", true),
          ...(dk ? [own("v", "qkv", "vBase + r * p.rs"), acc("a")] : []),
          ...(dv ? [acc("z")] : []),
        ]),
        step: lines([
          dots("s", "k", Q),
          ...gs.map((g) => `let pr${g} = select(0.0, exp(s${g} - ${ld(LSE, g)}), ${valid(g)});`),
          ...(dk
            ? [dots("t", "v", DO), ...gs.map((g) => `let w${g} = pr${g} * (t${g} - ${ld(DELTA, g)});`), update("a", "w", Q)]
            : []),
          ...(dv ? [update("z", "pr", DO)] : []),
        ]),
        store: stores([
          ...(dk ? write("dqkv", "kBase + i * p.rs", "a", " * p.scale") : []),
          ...(dv ? write("dqkv", "vBase + i * p.rs", "z") : []),
        ]),
      };
    }
  }
}

function wgsl(spec: AttentionSpec): string {
  const d4 = spec.d / 4;
  const streams = STREAMS[spec.pass];
  const tiled = spec.version === "v2";
  const ld: Load = (s, g, c) =>
    tiled
      ? `t${s.name}[(t + ${g}u)${s.vec ? ` * ${d4}u + ${c}u` : ""}]`
      : `${s.buf}[${s.at(`j${g}`)}${s.vec ? ` + ${c}u` : ""}]`;
  const { init, step, store } = passCode(spec, ld);
  const bindings = BINDINGS[spec.pass]
    .map(([name, access], i) => `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<${SCALAR_BUFFERS.has(name) ? "f32" : "vec4f"}>;`)
    .join("\n");
  const G = spec.group;
  let loop: string;
  if (!tiled) {
    loop = /* wgsl */ `
  for (var j = 0u; j < p.n; j += ${G}u) {
    // Clamped rows keep loads in bounds; rows past N are masked in the step.
    ${rep(G, (g) => `let j${g} = min(j + ${g}u, p.n - 1u);`, "\n    ")}
  ${step.replace(/\n/g, "\n  ")}
  }`;
  } else {
    const T = spec.tile;
    const vecs = streams.filter((s) => s.vec);
    const scalars = streams.filter((s) => !s.vec);
    loop = /* wgsl */ `
  for (var j0 = 0u; j0 < p.n; j0 += ${T}u) {
    for (var e = lid.x; e < ${T * d4}u; e += ${spec.wg}u) {
      let jr = min(j0 + e / ${d4}u, p.n - 1u);
      let c = e % ${d4}u;
      ${vecs.map((s) => `t${s.name}[e] = ${s.buf}[${s.at("jr")} + c];`).join("\n      ")}
    }${
      scalars.length
        ? `
    for (var e = lid.x; e < ${T}u; e += ${spec.wg}u) {
      let jr = min(j0 + e, p.n - 1u);
      ${scalars.map((s) => `t${s.name}[e] = ${s.buf}[${s.at("jr")}];`).join("\n      ")}
    }`
        : ""
    }
    workgroupBarrier();
    for (var t = 0u; t < ${T}u; t += ${G}u) {
      let j = j0 + t;
      if (j >= p.n) { break; }
    ${step.replace(/\n/g, "\n    ")}
    }
    workgroupBarrier();
  }`;
  }
  const tiles = tiled
    ? streams.map((s) => `var<workgroup> t${s.name}: array<${s.vec ? "vec4f" : "f32"}, ${spec.tile * (s.vec ? d4 : 1)}>;`).join("\n")
    : "";
  return /* wgsl */ `
${uniformStruct(FIELDS)}
${bindings}
${tiles}
${FLAT_GROUP}
// Thread mapping: workgroup g owns rows (g % p.blocks) * ${spec.wg} + lid.x of (b, h) = g / p.blocks.
@compute @workgroup_size(${spec.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let g = flatGroup(wid, nwg);
  let bh = g / p.blocks;
  if (bh >= p.bh) { return; } // padding of a folded grid: uniform across the workgroup
  let b = bh / p.heads;
  let h = bh % p.heads;
  let i = (g % p.blocks) * ${spec.wg}u + lid.x; // the owned row
  let r = min(i, p.n - 1u); // loads use r, stores check i
  // vec4 indices of token 0 of batch b, head h: q, k, v in qkv; o and dO rows; lse and delta.
  let qBase = b * p.n * p.rs + h * ${d4}u;
  let kBase = qBase + p.c4;
  let vBase = kBase + p.c4;
  let oBase = b * p.n * p.c4 + h * ${d4}u;
  let sBase = bh * p.n;
  ${init}
  ${loop}
  if (i < p.n) {
    ${store}
  }
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

// Passes of the backward after dq (which writes delta), per version: see the header.
const BACKWARD_PASSES: Record<Version, Pass[]> = { v1: ["dk", "dv"], v2: ["dkdv"] };
// Length-D products per (owned, streamed) row pair, for the work estimate.
const PRODUCTS: Record<Pass, number> = { forward: 2, dq: 3, dkdv: 4, dk: 3, dv: 2 };

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
  if (version === "v1") return { pass, version, d, ...V1, tile: 0 };
  // v2: the largest power-of-two tile (at most one row per invocation) whose staged rows fit the budget.
  const rowBytes = STREAMS[pass].reduce((n, s) => n + (s.vec ? 4 * d : 4), 0);
  const budget = Math.min(runtime().gpu.limits.maxComputeWorkgroupStorageSize, V2_TILE_BYTES);
  let tile = V2.wg;
  while (tile > V2.group && tile * rowBytes > budget) tile /= 2;
  if (tile * rowBytes > budget) {
    throw new Error(`attention: expected head dim D at most ${Math.floor(budget / V2.group / 8 / 4) * 4} for v2, got D = ${d}`);
  }
  return { pass, version, d, ...V2, tile };
}

function encode(pass: Pass, version: Version, dims: Dims, scale: number, buffers: Record<string, GPUBuffer>): void {
  const { B, N, H, D, C } = dims;
  const spec = specFor(pass, version, D);
  const kernel = getKernel("attention", spec, wgsl);
  const blocks = Math.ceil(N / spec.wg);
  const uniform = packUniform(FIELDS, { n: N, heads: H, bh: B * H, blocks, rs: (3 * C) / 4, c4: C / 4, scale });
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
  for (const pass of ["dq" as const, ...BACKWARD_PASSES[version]]) encode(pass, version, dims, scale, buffers);
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
    const uniform = packUniform(FIELDS, { n: N, heads: H, bh: B * H, blocks, rs: (3 * C) / 4, c4: C / 4, scale });
    runtime().batch.dispatch(kernel, [probs.buffer, qkv.buffer, lse.buffer], uniform, grid1d(B * H * N * blocks), 2 * probs.size * D);
  }
  lse.dispose();
  return probs;
}
