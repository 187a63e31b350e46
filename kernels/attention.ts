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
// model needs no permutes. Nothing of size N x N is written: the forward is FlashAttention's online softmax (a
// running max m and sum l per query; the accumulator is rescaled by exp(m_old - m_new) when m grows), and the
// backward recomputes P. Scratch: delta, (B, H, N).
//
// Passes. An invocation owns `rows` rows of one (b, h) (queries, or keys for dk/dv) and keeps their vectors and
// accumulators as named vec4s (the WGSL is unrolled over D, so D is part of the spec). It streams over every row
// of the other kind, loading each streamed vec4 once and using it for all its owned rows:
//   forward  owns queries, streams k_j, v_j:                 q, acc per row (2D floats)    -> o, lse
//   dq       owns queries, streams k_j, v_j:                 q, dO, dq per row (3D)        -> dq, delta
//   dkdv     owns keys, streams q_i, dO_i, lse_i, delta_i:   k, v, dk, dv per row (4D)     -> dk, dv
//   dqkv     owns queries, streams k_j, v_j:                 q, dO, dq per row             -> dq, dk, dv
// The backward runs dq (which writes delta_i = dO_i.o_i), then dkdv; each writes its own columns of dqkv. reg runs
// it as the one pass dqkv where its workgroup is one subgroup holding every query of a (b, h) (onePass): each
// streamed key's dk_j and dv_j are summed over the owned rows, then over the lanes (subgroupAdd), and stored by
// lane 0; no delta buffer.
// With `queries` (AttentionOptions) only the first NQ tokens of each sequence are queries: o and dO (B, NQ, C),
// lse and delta (B, H, NQ); dk and dv come from those queries alone and dq is zero past them.
//
// Versions (kernels/registry.ts ATTENTION; why they look so, with measurements: docs/KERNELS.md, "Attention"):
//   reg (CPU drivers): workgroup of 8 = one 8-lane SIMD batch on llvmpipe, no barriers; an invocation owns several
//      rows (forward 4, dq 2, dkdv 2, dqkv 2; fewer past D = 64, and a short sequence exactly as many as fill one
//      workgroup: regRows) so that every streamed load feeds all of them; the owned
//      rows are named vec4s, never private arrays (a per-lane gather on llvmpipe). Where the adapter's subgroups
//      are exactly 8 lanes, a streamed row's D/4 vec4s are loaded one per lane and handed round by
//      subgroupBroadcast (`broadcast`), as the matmul reg versions do with a (kernels/matmul.ts).
//   tiled (GPUs): workgroup of 64 invocations, one row each; the streamed rows are staged tile by tile in
//      workgroup memory, loaded cooperatively between two barriers.
//   mma (GPUs with subgroup matrices): the same passes' products on the adapter's subgroup matrices, in f16 with
//      the inputs "f16" (mixed precision), else f32; reg and tiled compute in f32 whatever the inputs
//      (kernels/attention-mma.ts). Not a default.
//   unfused (CPU drivers past 64 tokens): kernels/attention-unfused.ts composes it from the matmul and softmax
//      kernels, writing P (B·H, N, N).
// Default (ATTENTION.defaultVersion): on CPU drivers unfused past 64 tokens where its scores (B·H, N, N) fit one
// storage binding, else reg; on GPUs tiled. mma is no default (untimed on a GPU).
// A call's version: kernels/registry.ts resolveVersion(ATTENTION, ...) (opts.version, else PEFT_ATTENTION, else the
// autotuner's winner for the exact shape, else the device default). The forward resolves it and saves it with what
// the backward needs, so the backward runs the same version.
// attentionProbs materialises P (B, H, N, N) for research dumps only: one invocation per entry, from lse.
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { ATTENTION, type AttentionShape, type AttentionVersion, PRECISIONS, type Precision, fragmentKey, fusedAttentionDefault, laneBroadcast, mmaAttentionPlan, resolveVersion } from "./registry.js";
import { encodeMmaAttention } from "./attention-mma.js";
import { type UnfusedSaved, unfusedBackward, unfusedForward } from "./attention-unfused.js";
import { FLAT_GROUP, grid1d, mainEntry, range, uniformStruct } from "./wgsl.js";
import { ATTENTION_FIELDS, attentionUniform, headFrame } from "./attention-frame.js";
import { sliceBackward, sliceForward } from "./slice.js";

type Fused = Exclude<AttentionVersion, "unfused">; // the kernels in this file and mma's
type Own = Exclude<Fused, "mma">; // the kernels in this file
type Pass = "forward" | "dq" | "dkdv" | "dqkv";

export interface AttentionOptions {
  scale?: number; // default 1/sqrt(D)
  queries?: number; // only the first `queries` tokens of each sequence as queries, o (B, queries, H*D); default N
  inputs?: Precision; // the products' precision: mma's in f16 with "f16"; unfused's are matmul's in any; reg, tiled: f32
  version?: string; // a version of kernels/registry.ts ATTENTION; default: resolved for the shape
}

interface AttentionSpec {
  [k: string]: string | number;
  pass: Pass;
  version: Own;
  d: number; // head dim, a multiple of 4
  wg: number; // invocations per workgroup
  rows: number; // owned rows per invocation
  tile: number; // tiled: streamed rows staged in workgroup memory per barrier pair; reg: 0
  broadcast: number; // reg, 1: a streamed row's vec4s loaded one per lane and handed round by subgroupBroadcast
}

const REG_WG = 8;
// Owned rows per invocation at D <= 64; fewer for larger D, to keep the unrolled code and its compile time bounded.
const REG_ROWS: Record<Pass, number> = { forward: 4, dq: 2, dkdv: 2, dqkv: 2 };
const TILED_WG = 64;
// Workgroup memory a tiled tile may use: more than 16 KiB costs occupancy on GPUs.
const TILED_TILE_BYTES = 16384;
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

const STREAMS: Record<Pass, Stream[]> = { forward: [K, V], dq: [K, V], dkdv: [Q, DO, LSE, DELTA], dqkv: [K, V] };

// Storage buffers per pass, in binding order (writable first). The wrappers pass buffers by these names.
const BINDINGS: Record<Pass, [string, "read" | "read_write"][]> = {
  forward: [["o", "read_write"], ["lse", "read_write"], ["qkv", "read"]],
  dq: [["dqkv", "read_write"], ["delta", "read_write"], ["qkv", "read"], ["o", "read"], ["dout", "read"], ["lse", "read"]],
  dkdv: [["dqkv", "read_write"], ["qkv", "read"], ["dout", "read"], ["lse", "read"], ["delta", "read"]],
  dqkv: [["dqkv", "read_write"], ["qkv", "read"], ["o", "read"], ["dout", "read"], ["lse", "read"]],
};
const SCALAR_BUFFERS = new Set(["lse", "delta"]);


// The three parts of a pass, as statement lists: set-up of the owned rows, the step for one streamed row j, and
// the stores. Owned row r is row{r} (clamped, for loads) / i{r} (checked, for stores); its vectors are
// unrolled over D into named vec4s <x>{r}_{c}, which the compiler keeps in registers or spills to the stack
// (cheap next to a buffer load). Private arrays would not do: indexed by a loop counter, llvmpipe turns every
// access into a per-lane gather. The streamed row's vec4 c is loaded once per step into <S>_{c} and used by
// every owned row right away; `ld(S, c)` is its load expression (`ld(S)` for a scalar stream).
function passCode(spec: AttentionSpec, ld: (s: Stream, c?: number) => string): { init: string[]; step: string[]; store: string[] } {
  const rs = range(spec.rows);
  const cs = range(spec.d / 4);
  const each = (f: (r: number) => string) => rs.map(f);
  const perC = (f: (c: number) => string[]) => cs.flatMap(f);
  // Loads the owned rows' vectors; q and k are pre-scaled by s, so their dot products are S_ij directly.
  const own = (x: string, buf: string, row: (r: string) => string, factor = "") =>
    rs.flatMap((r) => cs.map((c) => `let ${x}${r}_${c} = ${buf}[${row(`row${r}`)} + ${c}u]${factor};`));
  const zero = (x: string) => rs.flatMap((r) => cs.map((c) => `var ${x}${r}_${c} = vec4f(0.0);`));
  const load = (st: Stream, c: number) => `let ${st.name}_${c} = ${ld(st, c)};`;
  const hsum = (v: string) => `(${v}.x + ${v}.y + ${v}.z + ${v}.w)`;
  const guarded = (lines: (r: number) => string[]) => rs.flatMap((r) => [`if (i${r} < nOwn) {`, ...lines(r).map((l) => `  ${l}`), "}"]);
  // The q rows of dqkv past the queries: zero (one block per (b, h) writes them).
  const zeroRest = [
    "if (g % p.blocks == 0u) {",
    `  for (var i = p.nq + lid.x; i < p.n; i += ${spec.wg}u) {`,
    ...cs.map((c) => `    dqkv[${Q.at("i")} + ${c}u] = vec4f(0.0);`),
    "  }",
    "}",
  ];

  // dq's and dqkv's: the owned queries' q (pre-scaled) and dO, delta_i = dO_i . o_i and lse_i, and dq's accumulators;
  // each step's dot products with the streamed key and value, s = S_ij and t = dP_ij.
  const queryInit = [
    ...own("q", "qkv", Q.at, " * p.scale"),
    ...own("d", "dout", DO.at),
    ...each((r) => `var dl${r}v = vec4f(0.0);`),
    ...rs.flatMap((r) => cs.map((c) => `dl${r}v = fma(d${r}_${c}, o[${DO.at(`row${r}`)} + ${c}u], dl${r}v);`)),
    ...each((r) => `let dl${r} = ${hsum(`dl${r}v`)};\nlet lr${r} = lse[sBase + row${r}];`),
    ...zero("a"),
  ];
  const keyDots = [
    ...each((r) => `var s${r} = vec4f(0.0);\nvar t${r} = vec4f(0.0);`),
    ...perC((c) => [load(K, c), load(V, c), ...each((r) => `s${r} = fma(q${r}_${c}, K_${c}, s${r});\nt${r} = fma(d${r}_${c}, V_${c}, t${r});`)]),
  ];

  switch (spec.pass) {
    case "forward":
      // Online softmax. A row's accumulator is rescaled only when its running max grows (rare after the first
      // keys), by exp(m_old - m_new); on the first key exp(-3e38 - x) = 0 clears the (zero) state.
      return {
        init: [...own("q", "qkv", Q.at, " * p.scale"), ...zero("a"), ...each((r) => `var m${r} = -3.0e38;\nvar l${r} = 0.0;`)],
        step: [
          ...each((r) => `var s${r} = vec4f(0.0);`),
          ...perC((c) => [load(K, c), ...each((r) => `s${r} = fma(q${r}_${c}, K_${c}, s${r});`)]),
          ...rs.flatMap((r) => [
            `let x${r} = ${hsum(`s${r}`)};`,
            `if (x${r} > m${r}) {`,
            `  let corr = exp(m${r} - x${r});`,
            `  l${r} *= corr;`,
            ...cs.map((c) => `  a${r}_${c} *= corr;`),
            `  m${r} = x${r};`,
            "}",
            `let e${r} = vec4f(exp(x${r} - m${r}));`,
            `l${r} += e${r}.x;`,
          ]),
          ...perC((c) => [load(V, c), ...each((r) => `a${r}_${c} = fma(e${r}, V_${c}, a${r}_${c});`)]),
        ],
        store: guarded((r) => [
          `let inv${r} = 1.0 / l${r};`,
          ...cs.map((c) => `o[${DO.at(`i${r}`)} + ${c}u] = a${r}_${c} * inv${r};`),
          `lse[sBase + i${r}] = m${r} + log(l${r});`,
        ]),
      };
    case "dq":
      // delta_i = dO_i . o_i is computed here (o is read once) and written for the dk/dv pass.
      return {
        init: queryInit,
        step: [
          ...keyDots,
          ...each((r) => `let w${r} = vec4f(exp(${hsum(`s${r}`)} - lr${r}) * (${hsum(`t${r}`)} - dl${r}));`),
          ...perC((c) => each((r) => `a${r}_${c} = fma(w${r}, K_${c}, a${r}_${c});`)),
        ],
        store: [...guarded((r) => [...cs.map((c) => `dqkv[${Q.at(`i${r}`)} + ${c}u] = a${r}_${c} * p.scale;`), `delta[sBase + i${r}] = dl${r};`]), ...zeroRest],
      };
    case "dkdv":
      // The owned rows are keys; the streamed rows are queries with their dO, lse and delta.
      return {
        init: [...own("k", "qkv", K.at, " * p.scale"), ...own("v", "qkv", V.at), ...zero("a"), ...zero("z")],
        step: [
          ...each((r) => `var s${r} = vec4f(0.0);\nvar t${r} = vec4f(0.0);`),
          ...perC((c) => [
            load(Q, c),
            load(DO, c),
            ...each((r) => `s${r} = fma(k${r}_${c}, Q_${c}, s${r});\nt${r} = fma(v${r}_${c}, G_${c}, t${r});`),
          ]),
          `let lj = ${ld(LSE)};`,
          `let ej = ${ld(DELTA)};`,
          ...each((r) => `let p${r} = exp(${hsum(`s${r}`)} - lj);\nlet w${r} = vec4f(p${r} * (${hsum(`t${r}`)} - ej));`),
          ...perC((c) => each((r) => `a${r}_${c} = fma(w${r}, Q_${c}, a${r}_${c});\nz${r}_${c} = fma(vec4f(p${r}), G_${c}, z${r}_${c});`)),
        ],
        store: guarded((r) => [
          ...cs.map((c) => `dqkv[${K.at(`i${r}`)} + ${c}u] = a${r}_${c} * p.scale;`),
          ...cs.map((c) => `dqkv[${V.at(`i${r}`)} + ${c}u] = z${r}_${c};`),
        ]),
      };
    case "dqkv": {
      // dq's, with every key's dk and dv summed over the owned queries and then over the lanes (subgroupAdd; one
      // workgroup holds every query of its (b, h)) and stored by lane 0: q is pre-scaled, so sum_i dS_ij q_i is dk.
      // Rows past N contribute nothing (their P is 0).
      const sum = (term: (r: number) => string) => `subgroupAdd(${rs.map(term).join(" + ")})`;
      return {
        init: queryInit,
        step: [
          ...keyDots,
          ...each((r) => `let p${r} = vec4f(select(0.0, exp(${hsum(`s${r}`)} - lr${r}), i${r} < nOwn));\nlet w${r} = p${r} * (${hsum(`t${r}`)} - dl${r});`),
          ...perC((c) => each((r) => `a${r}_${c} = fma(w${r}, K_${c}, a${r}_${c});`)),
          ...perC((c) => [`let zk${c} = ${sum((r) => `w${r} * q${r}_${c}`)};`, `let zv${c} = ${sum((r) => `p${r} * d${r}_${c}`)};`]),
          "if (lid.x == 0u) {",
          ...cs.flatMap((c) => [`  dqkv[${K.at("j")} + ${c}u] = zk${c};`, `  dqkv[${V.at("j")} + ${c}u] = zv${c};`]),
          "}",
        ],
        store: [...guarded((r) => cs.map((c) => `dqkv[${Q.at(`i${r}`)} + ${c}u] = a${r}_${c} * p.scale;`)), ...zeroRest],
      };
    }
  }
}

function wgsl(spec: AttentionSpec): string {
  const d4 = spec.d / 4;
  const streams = STREAMS[spec.pass];
  const tiled = spec.version === "tiled";
  // broadcast: lane l loads vec4s l, l + 8, ... of a streamed row, and every lane takes vec4 c from lane c % 8.
  const shared = spec.broadcast === 1;
  const ld = (s: Stream, c?: number) =>
    tiled
      ? `t${s.name}[t${s.vec ? ` * ${d4}u + ${c}u` : ""}]`
      : shared && s.vec
        ? `subgroupBroadcast(${s.name}l${Math.floor(c! / REG_WG)}, ${c! % REG_WG}u)`
        : `${s.buf}[${s.at("j")}${s.vec ? ` + ${c}u` : ""}]`;
  const code = passCode(spec, ld);
  const { init, store } = code;
  const laneLoads = streams
    .filter((s) => shared && s.vec)
    .flatMap((s) => range(Math.ceil(d4 / REG_WG)).map((q) => `let ${s.name}l${q} = ${s.buf}[${s.at("j")} + min(${q * REG_WG}u + lid.x, ${d4 - 1}u)];`));
  const step = [...laneLoads, ...code.step];
  const indent = (lines: string[], n: number) => lines.join("\n").split("\n").map((l) => " ".repeat(n) + l).join("\n");
  const bindings = BINDINGS[spec.pass].map(
    ([name, access], i) => `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<${SCALAR_BUFFERS.has(name) ? "f32" : "vec4f"}>;`,
  );
  let loop: string;
  if (!tiled) {
    loop = `  for (var j = 0u; j < nStream; j++) {\n${indent(step, 4)}\n  }`;
  } else {
    // Each tile: the workgroup stages T streamed rows (clamped past N), then every invocation runs its steps.
    const T = spec.tile;
    const stage = (n: number, lines: string[]) => `    for (var e = lid.x; e < ${n}u; e += ${spec.wg}u) {\n${indent(lines, 6)}\n    }`;
    const vecs = streams.filter((s) => s.vec);
    const scalars = streams.filter((s) => !s.vec);
    loop = [
      `  for (var j0 = 0u; j0 < nStream; j0 += ${T}u) {`,
      stage(T * d4, [`let jr = min(j0 + e / ${d4}u, nStream - 1u);`, ...vecs.map((s) => `t${s.name}[e] = ${s.buf}[${s.at("jr")} + e % ${d4}u];`)]),
      ...(scalars.length ? [stage(T, ["let jr = min(j0 + e, nStream - 1u);", ...scalars.map((s) => `t${s.name}[e] = ${s.buf}[${s.at("jr")}];`)])] : []),
      "    workgroupBarrier();",
      `    for (var t = 0u; t < min(${T}u, nStream - j0); t++) {`,
      indent(step, 6),
      "    }",
      "    workgroupBarrier();",
      "  }",
    ].join("\n");
  }
  const tiles = tiled ? streams.map((s) => `var<workgroup> t${s.name}: array<${s.vec ? "vec4f" : "f32"}, ${spec.tile * (s.vec ? d4 : 1)}>;`) : [];
  const span = spec.wg * spec.rows;
  return /* wgsl */ `${shared ? "enable subgroups;" : ""}
${uniformStruct(ATTENTION_FIELDS)}
${bindings.join("\n")}
${tiles.join("\n")}
${FLAT_GROUP}
// Thread mapping: workgroup g owns rows (g % p.blocks) * ${span} + r * ${spec.wg} + lid.x (r < ${spec.rows}) of
// (b, h) = g / p.blocks: of its nOwn queries (keys for dkdv), streaming its nStream keys (queries).
${mainEntry(spec.wg)}
${headFrame(d4)}
  let nOwn = ${spec.pass === "dkdv" ? "p.n" : "p.nq"};
  let nStream = ${spec.pass === "dkdv" ? "p.nq" : "p.n"};
${indent(range(spec.rows).flatMap((r) => [`let i${r} = (g % p.blocks) * ${span}u + ${r * spec.wg}u + lid.x;`, `let row${r} = min(i${r}, nOwn - 1u);`]), 2)}
${indent(init, 2)}
${loop}
${indent(store, 2)}
}`;
}

// Materialised probabilities: P_ij = exp(S_ij - lse_i), the lse from the forward.
function probsWgsl(spec: { d: number }): string {
  const d4 = spec.d / 4;
  return /* wgsl */ `
${uniformStruct(ATTENTION_FIELDS)}
@group(0) @binding(1) var<storage, read_write> probs: array<f32>;
@group(0) @binding(2) var<storage, read> qkv: array<vec4f>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
${FLAT_GROUP}
// Thread mapping: workgroup g covers keys (g % p.blocks) * ${PROBS_WG} + lid.x of score row (b, h, i) = g / p.blocks.
${mainEntry(PROBS_WG)}
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

interface Dims extends AttentionShape {
  C: number; // H*D
  NQ: number; // queries per sequence (N unless asked for fewer)
}

// What the backward needs: qkv, o, the scale and the operands' precision, the version that ran, and its own tensors
// (the fused kernels' lse (B, H, N), or unfused's P and head-major q, k, v).
export type AttentionSaved = { qkv: Tensor; o: Tensor; heads: number; scale: number; inputs: Precision } & (
  | { version: Fused; lse: Tensor }
  | { version: "unfused"; unfused: UnfusedSaved }
);

// Length-D products per (owned, streamed) row pair, for the work estimate.
const PRODUCTS: Record<Pass, number> = { forward: 2, dq: 3, dkdv: 4, dqkv: 5 };

function shapeStr(t: Tensor): string {
  return `(${t.shape.join(", ")})`;
}

// qkv: (B, N, 3*H*D)
export function attentionDims(qkv: Tensor, heads: number): Dims {
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
  return { B, N, H: heads, D, C: heads * D, NQ: N };
}

function checkShape(name: string, t: Tensor, want: number[]): void {
  if (t.dtype !== "f32" || t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new Error(`attention: expected ${name} f32 (${want.join(", ")}), got ${t.dtype} ${shapeStr(t)}`);
  }
}

function pickScale(scale: number | undefined, D: number): number {
  const s = scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(s)) throw new Error(`attention: expected a finite scale, got ${s}`);
  return s;
}

// reg's owned rows: REG_ROWS, fewer past D = 64 so that rows * D stays within REG_ROWS * 64 (the unrolled code's
// size). A short sequence whose rows all fit one workgroup within that size gets exactly as many rows as that
// takes: one block per (b, h), every streamed row loaded once. At the default study's 17 tokens (D = 32) dq and
// dkdv ran two blocks of 16 rows per (b, h), streaming every row twice, and the forward one of 32 rows for 17.
function regRows(pass: Pass, d: number, n: number): number {
  const budget = Math.max(1, Math.floor((REG_ROWS[pass] * 64) / d));
  const oneBlock = Math.max(1, Math.ceil(n / REG_WG));
  return oneBlock <= budget ? oneBlock : Math.min(REG_ROWS[pass], budget);
}

function specFor(pass: Pass, version: Own, d: number, n: number): AttentionSpec {
  if (version === "reg") return { pass, version, d, wg: REG_WG, rows: regRows(pass, d, n), tile: 0, broadcast: laneBroadcast(runtime().gpu) ? 1 : 0 };
  // tiled: the largest power-of-two tile (at most one row per invocation) whose staged rows fit the budget.
  const rowBytes = STREAMS[pass].reduce((n, s) => n + (s.vec ? 4 * d : 4), 0);
  const budget = Math.min(runtime().gpu.limits.maxComputeWorkgroupStorageSize, TILED_TILE_BYTES);
  let tile = TILED_WG;
  while (tile > 1 && tile * rowBytes > budget) tile /= 2;
  if (tile * rowBytes > budget) {
    throw new Error(`attention: expected D small enough for tiled's workgroup memory (${budget} bytes), got D = ${d} (${rowBytes} bytes per row)`);
  }
  return { pass, version, d, wg: TILED_WG, rows: 1, tile, broadcast: 0 };
}

function encode(pass: Pass, version: Fused, dims: Dims, scale: number, buffers: Record<string, GPUBuffer>): void {
  if (version === "mma") {
    if (pass === "dqkv") throw new Error("attention: mma has no one-pass backward"); // onePass is reg's alone
    const gpu = runtime().gpu;
    const plan = mmaAttentionPlan(dims, gpu);
    if (typeof plan === "string") throw new Error(`attention: "mma" ${plan}`); // resolveVersion checked it
    encodeMmaAttention(pass, dims, { d: dims.D, f16: dims.inputs === "f16", fragment: fragmentKey(plan.fragment, gpu), groups: plan.groups[pass] }, scale, buffers);
    return;
  }
  const { B, N, NQ, H, D } = dims;
  const owned = pass === "dkdv" ? N : NQ;
  const spec = specFor(pass, version, D, owned);
  const kernel = getKernel("attention", spec, wgsl);
  const blocks = Math.ceil(owned / (spec.wg * spec.rows));
  const uniform = attentionUniform(dims, blocks, scale);
  const list = BINDINGS[pass].map(([name]) => buffers[name]);
  runtime().batch.dispatch(kernel, list, uniform, grid1d(B * H * blocks), 2 * B * H * NQ * N * D * PRODUCTS[pass]);
}

// The fused forward: o (B, NQ, H*D) and lse (B, H, NQ), the log-sum-exp of each score row.
function fusedForward(qkv: Tensor, dims: Dims, version: Fused, scale: number): { o: Tensor; lse: Tensor } {
  const o = Tensor.empty([dims.B, dims.NQ, dims.C]);
  const lse = Tensor.empty([dims.B, dims.H, dims.NQ]);
  if (o.size > 0) encode("forward", version, dims, scale, { o: o.buffer, lse: lse.buffer, qkv: qkv.buffer });
  return { o, lse };
}

// qkv: (B, N, 3*H*D) -> o: (B, NQ, H*D) for the first NQ = opts.queries tokens (default N), and what
// attentionBackward needs (release it with releaseSaved when no backward follows). The fused kernels take fewer
// queries as they are (dk and dv still over every key, dq zero past them); unfused runs every query and slices.
export function attentionForward(qkv: Tensor, heads: number, opts: AttentionOptions = {}): { o: Tensor; saved: AttentionSaved } {
  if (opts.inputs !== undefined && !PRECISIONS.includes(opts.inputs)) throw new Error(`attention: expected inputs ${PRECISIONS.map((p) => `"${p}"`).join(", ")}, got "${opts.inputs}"`);
  const inputs = opts.inputs ?? "f32";
  const dims = callDims(qkv, heads, opts.queries, inputs);
  const version = resolveVersion(ATTENTION, dims, opts.version);
  const scale = pickScale(opts.scale, dims.D);
  if (version === "unfused") {
    const { o, saved } = unfusedForward(qkv, dims, scale);
    const sliced = dims.NQ < dims.N ? sliceForward(o, 1, 0, dims.NQ) : o;
    if (sliced !== o) o.dispose();
    return { o: sliced, saved: { qkv, o: sliced, heads, scale, inputs, version, unfused: saved } };
  }
  const { o, lse } = fusedForward(qkv, dims, version, scale);
  return { o, saved: { qkv, o, heads, scale, inputs, version, lse } };
}

// A call's dims: qkv's, with the first `queries` tokens as queries (all when undefined), and the products' precision.
function callDims(qkv: Tensor, heads: number, queries: number | undefined, inputs: Precision): Dims {
  const dims: Dims = { ...attentionDims(qkv, heads), inputs };
  if (queries === undefined) return dims;
  if (!Number.isInteger(queries) || queries < 1 || queries > dims.N) {
    throw new Error(`attention: expected queries an integer in [1, ${dims.N}], got ${queries}`);
  }
  return { ...dims, NQ: queries };
}

// saved: from attentionForward, dout: (B, NQ, H*D) -> dqkv: (B, N, 3*H*D), by the version the forward ran.
// Scratch: delta (B, H, NQ). Leaves saved to the caller.
export function attentionBackward(saved: AttentionSaved, dout: Tensor): Tensor {
  const { qkv, o, heads, scale, inputs } = saved;
  const dims = callDims(qkv, heads, o.shape[1], inputs); // o: (B, NQ, H*D)
  const { B, N, NQ, H } = dims;
  checkShape("dout", dout, [B, NQ, dims.C]);
  if (saved.version === "unfused") {
    if (NQ === N) return unfusedBackward(saved.unfused, dout, dims, scale);
    const padded = sliceBackward(dout, [B, N, dims.C], 1, 0); // zero past the queries
    const dqkv = unfusedBackward(saved.unfused, padded, dims, scale);
    padded.dispose();
    return dqkv;
  }
  const dqkv = Tensor.empty(qkv.shape);
  if (dqkv.size === 0) return dqkv;
  const buffers = { dqkv: dqkv.buffer, qkv: qkv.buffer, o: o.buffer, dout: dout.buffer, lse: saved.lse.buffer };
  if (onePass(saved.version, dims)) {
    encode("dqkv", saved.version, dims, scale, buffers);
    return dqkv;
  }
  const delta = Tensor.empty([B, H, NQ]);
  const withDelta = { ...buffers, delta: delta.buffer };
  encode("dq", saved.version, dims, scale, withDelta);
  encode("dkdv", saved.version, dims, scale, withDelta);
  delta.dispose();
  return dqkv;
}

// The backward as one pass (dqkv) where reg's workgroup is one subgroup and its lanes hold every query of a (b, h)
// within dqkv's rows.
function onePass(version: Fused, dims: Dims): boolean {
  return version === "reg" && laneBroadcast(runtime().gpu) && dims.NQ <= REG_WG * regRows("dqkv", dims.D, dims.NQ);
}

// Disposes the tensors the forward made for the backward alone (not qkv, not o).
export function releaseSaved(saved: AttentionSaved): void {
  if (saved.version === "unfused") for (const t of Object.values(saved.unfused)) t.dispose();
  else saved.lse.dispose();
}

// qkv: (B, N, 3*H*D) -> P: (B, H, N, N), the softmax probabilities, materialised (for analysis, not training), from
// a fused forward's lse: the resolved version, or where that is unfused the adapter's fused default.
export function attentionProbs(qkv: Tensor, heads: number, opts: { scale?: number } = {}): Tensor {
  const dims = attentionDims(qkv, heads);
  const { B, N, H, D } = dims;
  const scale = pickScale(opts.scale, D);
  const resolved = resolveVersion(ATTENTION, dims);
  const { o, lse } = fusedForward(qkv, dims, resolved === "unfused" ? fusedAttentionDefault(runtime().gpu) : resolved, scale);
  o.dispose();
  const probs = Tensor.empty([B, H, N, N]);
  if (probs.size > 0) {
    const kernel = getKernel("attention-probs", { d: D }, probsWgsl);
    const blocks = Math.ceil(N / PROBS_WG);
    const uniform = attentionUniform(dims, blocks, scale); // dims.NQ = N
    runtime().batch.dispatch(kernel, [probs.buffer, qkv.buffer, lse.buffer], uniform, grid1d(B * H * N * blocks), 2 * probs.size * D);
  }
  lse.dispose();
  return probs;
}
