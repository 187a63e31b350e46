// Attention's "mma" version (kernels/registry.ts ATTENTION): the fused passes of kernels/attention.ts (same math,
// layouts, lse and delta) with their products on the adapter's subgroup matrices (tensor cores from WGSL), the
// operands in f16 (mixed precision: AttentionOptions.inputs "f16") or f32, accumulated in f32. No default on any
// device (no GPU has timed it); `tune` times it where the adapter can run it (kernels/registry.ts mmaAttentionPlan).
//
// A workgroup owns W·fm rows of one (b, h), queries (keys for dkdv), fm per subgroup (a fragment's rows), and
// streams the other kind BK rows at a time, staged in workgroup memory in the operands' type with the scale s
// folded into one side (Qs = s·Q, Ks = s·K). Each subgroup loads its owned rows' fragments once and, per streamed
// block, multiplies them by the block (transposed where the product needs it: column-major loads), stores the f32
// score fragments to workgroup memory and finishes them there element by element (subgroup matrices have no
// element access): P = exp(S - lse), zero past the sequence, and dS = P (dP - delta). These, in the operands'
// type, are the left operands of the second products, whose results stay in subgroup matrices across blocks:
//   forward  S = Qs·Kᵀ. First over every key: each row's max and sum, so lse; then again: O += P·V. Two passes,
//            so that O is never rescaled (without element access it could only be, through memory, per block).
//   dq       S = Qs·Kᵀ, dP = dO·Vᵀ -> dS;  dQ += dS·K, times s at the store     (delta = dO·o, written here)
//   dkdv     Sᵀ = Ks·Qᵀ, dPᵀ = V·dOᵀ -> Pᵀ, dSᵀ;  dV += Pᵀ·dO, dK += dSᵀ·Q, times s at the store
// The results leave through the same scratch, a fragment at a time. P is a probability (at most 1) and dS is
// bounded by |dP| + |delta|, so both fit f16 as FlashAttention keeps them.
//
// Workgroup memory: Ws, the staged rows and P / dS in the operands' type (rows padded by 16 bytes, the loads'
// alignment); Ss, the f32 score fragments; Rs, per-row statistics (lse, delta; the forward's running max and sum).
// W is, per pass, the most subgroups (4, 2, 1) whose memory fits the adapter's (mmaAttentionGroups).
import { getKernel, runtime } from "../engine/runtime.js";
import type { SubgroupMatrixConfig } from "../engine/device.js";
import { FLAT_GROUP, grid1d, mainEntry, range, uniformStruct } from "./wgsl.js";
import { ATTENTION_FIELDS, type AttentionCall, attentionUniform, headFrame } from "./attention-frame.js";

export type MmaPass = "forward" | "dq" | "dkdv";

// Streamed rows per block: a multiple of every fragment size the adapters list (8, 16).
export const MMA_ATTENTION_BLOCK = 32;

export interface MmaAttentionSpec {
  [k: string]: string | number | boolean;
  pass: MmaPass;
  d: number; // head dim, a multiple of the fragment's sizes
  f16: boolean; // operands in f16 (else f32)
  fragment: string; // "MxNxK/subgroup size", the adapter's configuration
  groups: number; // subgroups per workgroup, W
}

interface Frag {
  fm: number;
  fn: number;
  fk: number;
  sg: number;
}

function fragOf(spec: MmaAttentionSpec): Frag {
  const [frag, size] = spec.fragment.split("/");
  const [fm, fn, fk] = frag.split("x").map(Number);
  return { fm, fn, fk, sg: Number(size) };
}

// The workgroup's arrays, in elements: Ws (operands' type), Ss and Rs (f32), and the region offsets within Ws.
interface Layout {
  dp: number; // staged row stride (D + 16 bytes)
  bkp: number; // P / dS row stride (BK + 16 bytes)
  own: number; // owned rows, W·fm
  ws: number;
  ss: number;
  rs: number;
  at: Record<string, number>; // region offsets in Ws
}

function layout(pass: MmaPass, d: number, f16: boolean, fm: number, groups: number): Layout {
  const pad = f16 ? 8 : 4;
  const [dp, bkp, own, bk] = [d + pad, MMA_ATTENTION_BLOCK + pad, groups * fm, MMA_ATTENTION_BLOCK];
  // Regions, each rows x stride: owned rows first, then streamed, then the finished scores.
  const regions: [string, number][] =
    pass === "forward"
      ? [["Q", own * dp], ["K", bk * dp], ["V", bk * dp], ["P", own * bkp]]
      : pass === "dq"
        ? [["Q", own * dp], ["G", own * dp], ["K", bk * dp], ["V", bk * dp], ["D", own * bkp]]
        : [["K", own * dp], ["V", own * dp], ["Q", bk * dp], ["G", bk * dp], ["P", own * bkp], ["D", own * bkp]];
  const at: Record<string, number> = {};
  let ws = 0;
  for (const [name, size] of regions) {
    at[name] = ws;
    ws += size;
  }
  const scores = pass === "forward" ? 1 : 2; // S, and dP for the backward
  return { dp, bkp, own, ws, ss: scores * own * bk, rs: 2 * (pass === "dkdv" ? bk : own), at };
}

export function mmaAttentionBytes(pass: MmaPass, d: number, f16: boolean, fm: number, groups: number): number {
  const l = layout(pass, d, f16, fm, groups);
  return l.ws * (f16 ? 2 : 4) + (l.ss + l.rs) * 4;
}

// Per pass, the most subgroups per workgroup (4, 2, 1) whose workgroup memory fits `limit` bytes; undefined where a
// pass fits with none.
export function mmaAttentionGroups(d: number, f16: boolean, fragment: SubgroupMatrixConfig, limit: number, threads: number, sg: number): Record<MmaPass, number> | undefined {
  const fit = (pass: MmaPass) => [4, 2, 1].find((w) => w * sg <= threads && mmaAttentionBytes(pass, d, f16, fragment.M, w) <= limit);
  const groups = { forward: fit("forward"), dq: fit("dq"), dkdv: fit("dkdv") };
  return groups.forward && groups.dq && groups.dkdv ? (groups as Record<MmaPass, number>) : undefined;
}


// Storage buffers per pass, in binding order (writable first); vec4 where rows are staged, f32 where elements are
// written one at a time.
const BINDINGS: Record<MmaPass, [string, string, "read" | "read_write"][]> = {
  forward: [["o", "f32", "read_write"], ["lse", "f32", "read_write"], ["qkv", "vec4f", "read"]],
  dq: [["dqkv", "f32", "read_write"], ["delta", "f32", "read_write"], ["qkv", "vec4f", "read"], ["o", "vec4f", "read"], ["dout", "vec4f", "read"], ["lse", "f32", "read"]],
  dkdv: [["dqkv", "f32", "read_write"], ["qkv", "vec4f", "read"], ["dout", "vec4f", "read"], ["lse", "f32", "read"], ["delta", "f32", "read"]],
};

export function mmaAttentionWgsl(spec: MmaAttentionSpec): string {
  const { fm, fn, fk, sg } = fragOf(spec);
  const { d, pass, groups } = spec;
  const bk = MMA_ATTENTION_BLOCK;
  const L = layout(pass, d, spec.f16, fm, groups);
  const { dp, bkp, own } = L;
  const threads = groups * sg;
  const d4 = d / 4;
  const ct = spec.f16 ? "f16" : "f32";
  const left = `subgroup_matrix_left<${ct}, ${fk}, ${fm}>`;
  const right = `subgroup_matrix_right<${ct}, ${fn}, ${fk}>`;
  const result = `subgroup_matrix_result<f32, ${fn}, ${fm}>`;
  const load = (kind: string, offset: string, colMajor: boolean, stride: number) => `subgroupMatrixLoad<${kind}, ${colMajor ? "col" : "row"}_major>(&Ws, ${offset}, ${stride}u)`;
  const cs = range(d / fk); // inner steps over D
  const us = range(d / fn); // result fragments across D
  const ts = range(bk / fn); // score fragments across a block
  const ks = range(bk / fk); // inner steps over a block

  // Rows [row0, row0 + rows) of a (b, h)'s vectors (`src(row)`: a row's first vec4 in `buf`) into region `region`,
  // times `factor`, zero from `limit` on.
  const stage = (region: string, rows: number, row0: string, limit: string, buf: string, src: (row: string) => string, factor = "") => `
  for (var e = t; e < ${rows * d4}u; e += ${threads}u) {
    let r = e / ${d4}u;
    let c = e % ${d4}u;
    var v = vec4f(0.0);
    if (${row0} + r < ${limit}) { v = ${buf}[${src(`${row0} + r`)} + c]${factor}; }
    let w = ${L.at[region]}u + r * ${dp}u + c * 4u;
    Ws[w] = ${ct}(v.x);
    Ws[w + 1u] = ${ct}(v.y);
    Ws[w + 2u] = ${ct}(v.z);
    Ws[w + 3u] = ${ct}(v.w);
  }`;
  const qRow = (r: string) => `qBase + (${r}) * p.rs`;
  const kRow = (r: string) => `kBase + (${r}) * p.rs`;
  const vRow = (r: string) => `vBase + (${r}) * p.rs`;
  const gRow = (r: string) => `oBase + (${r}) * p.c4`;
  // The subgroup's owned-row fragments of region `region`, named <x><c>, loaded once.
  const owned = (x: string, region: string) => cs.map((c) => `let ${x}${c} = ${load(left, `${L.at[region]}u + mine * ${dp}u + ${c * fk}u`, false, dp)};`);
  // Score fragments: owned fragments <x><c> times the streamed block of `region` transposed, stored at Ss[at].
  const scores = (x: string, region: string, at: number) =>
    ts.flatMap((j) => [
      `var s${x}${j} = ${result}();`,
      ...cs.map((c) => `s${x}${j} = subgroupMatrixMultiplyAccumulate(${x}${c}, ${load(right, `${L.at[region] + j * fn * dp + c * fk}u`, true, dp)}, s${x}${j});`),
      `subgroupMatrixStore<row_major>(&Ss, ${at}u + mine * ${bk}u + ${j * fn}u, s${x}${j}, ${bk}u);`,
    ]);
  // acc<u> += (the subgroup's rows of region `lhs`, fm x BK) · (the streamed block of `rhs`, BK x D).
  const accumulate = (accs: [string, string, string][]) =>
    ks.flatMap((k) => [
      ...accs.map(([, lhs]) => `let ${lhs}l${k} = ${load(left, `${L.at[lhs]}u + mine * ${bkp}u + ${k * fk}u`, false, bkp)};`),
      ...accs.flatMap(([acc, lhs, rhs]) => us.map((u) => `${acc}${u} = subgroupMatrixMultiplyAccumulate(${lhs}l${k}, ${load(right, `${L.at[rhs] + k * fk * dp + u * fn}u`, false, dp)}, ${acc}${u});`)),
    ]);
  const zeros = (acc: string) => us.map((u) => `var ${acc}${u} = ${result}();`);
  // Stores acc<u> through Ss: element (r, c) of fragment u, times `factor`, goes to `dest(i, col)`, i = first + mine +
  // r the token and col = u·fn + c in 0..D, where i < `limit`.
  const storeAcc = (acc: string, limit: string, dest: (i: string, col: string) => string, factor = "") =>
    us.flatMap((u) => [
      `subgroupMatrixStore<row_major>(&Ss, mine * ${bk}u, ${acc}${u}, ${fn}u);`,
      "workgroupBarrier();",
      `for (var e = lane; e < ${fm * fn}u; e += ${sg}u) {`,
      `  let i = first + mine + e / ${fn}u;`,
      `  if (i < ${limit}) { ${dest("i", `${u * fn}u + e % ${fn}u`)} = Ss[mine * ${bk}u + e]${factor}; }`,
      "}",
      "workgroupBarrier();",
    ]);
  // Element (r, j) of the subgroup's finished block: row = mine + r of the owned rows, j of the streamed.
  const eachScore = (body: string[]) => [`for (var e = lane; e < ${fm * bk}u; e += ${sg}u) {`, `  let row = mine + e / ${bk}u;`, `  let j = e % ${bk}u;`, ...body.map((l) => `  ${l}`), "}"];
  const S = (row: string) => `Ss[${row} * ${bk}u + j]`;
  const DP = (row: string) => `Ss[${own * bk}u + ${row} * ${bk}u + j]`;
  const dqkvAt = (part: number) => (i: string, col: string) => `dqkv[(b * p.n + ${i}) * p.rs * 4u + ${part} * p.c4 * 4u + h * ${d}u + ${col}]`;

  // The opening of a loop over blocks of keys (and values): staged, then the owned queries' scores.
  const keyBlocks = (values: boolean) => [
    `for (var j0 = 0u; j0 < p.n; j0 += ${bk}u) {`,
    "workgroupBarrier();",
    stage("K", bk, "j0", "p.n", "qkv", kRow),
    ...(values ? [stage("V", bk, "j0", "p.n", "qkv", vRow)] : []),
    "workgroupBarrier();",
    ...scores("q", "K", 0),
  ];

  let body: string[];
  if (pass === "forward") {
    body = [
      stage("Q", own, "first", "p.nq", "qkv", qRow, " * p.scale"),
      `for (var r = t; r < ${own}u; r += ${threads}u) { Rs[r] = -3.0e38; Rs[${own}u + r] = 0.0; }`,
      "workgroupBarrier();",
      ...owned("q", "Q"),
      "// First over the keys: each row's running max (Rs[row]) and sum (Rs[own + row]), then its lse.",
      ...keyBlocks(false),
      "workgroupBarrier();",
      `  for (var r = lane; r < ${fm}u; r += ${sg}u) {`,
      "    let row = mine + r;",
      `    let count = min(${bk}u, p.n - j0);`,
      "    var mx = Rs[row];",
      `    for (var j = 0u; j < count; j++) { mx = max(mx, ${S("row")}); }`,
      `    var l = Rs[${own}u + row] * exp(Rs[row] - mx);`,
      `    for (var j = 0u; j < count; j++) { l += exp(${S("row")} - mx); }`,
      "    Rs[row] = mx;",
      `    Rs[${own}u + row] = l;`,
      "  }",
      "}",
      `for (var r = lane; r < ${fm}u; r += ${sg}u) { Rs[mine + r] += log(Rs[${own}u + mine + r]); }`,
      "// Then again: O += P·V.",
      ...zeros("o"),
      ...keyBlocks(true),
      "workgroupBarrier();",
      ...eachScore([`Ws[${L.at.P}u + row * ${bkp}u + j] = ${ct}(select(0.0, exp(${S("row")} - Rs[row]), j0 + j < p.n));`]),
      "workgroupBarrier();",
      ...accumulate([["o", "P", "V"]]),
      "}",
      "workgroupBarrier();",
      ...storeAcc("o", "p.nq", (i, col) => `o[(b * p.nq + ${i}) * p.c4 * 4u + h * ${d}u + ${col}]`),
      `for (var r = lane; r < ${fm}u; r += ${sg}u) {`,
      "  let i = first + mine + r;",
      "  if (i < p.nq) { lse[sBase + i] = Rs[mine + r]; }",
      "}",
    ];
  } else if (pass === "dq") {
    body = [
      stage("Q", own, "first", "p.nq", "qkv", qRow, " * p.scale"),
      stage("G", own, "first", "p.nq", "dout", gRow),
      "// The owned queries' lse (Rs[r]) and delta = dO·o (Rs[own + r]), written for dkdv.",
      `for (var r = t; r < ${own}u; r += ${threads}u) {`,
      "  let i = first + r;",
      "  var lr = 0.0;",
      "  var dl = 0.0;",
      "  if (i < p.nq) {",
      "    var acc = vec4f(0.0);",
      `    for (var c = 0u; c < ${d4}u; c++) { acc = fma(dout[oBase + i * p.c4 + c], o[oBase + i * p.c4 + c], acc); }`,
      "    dl = acc.x + acc.y + acc.z + acc.w;",
      "    lr = lse[sBase + i];",
      "    delta[sBase + i] = dl;",
      "  }",
      "  Rs[r] = lr;",
      `  Rs[${own}u + r] = dl;`,
      "}",
      "workgroupBarrier();",
      ...owned("q", "Q"),
      ...owned("g", "G"),
      ...zeros("a"),
      ...keyBlocks(true),
      ...scores("g", "V", own * bk),
      "workgroupBarrier();",
      ...eachScore([
        `let pr = select(0.0, exp(${S("row")} - Rs[row]), j0 + j < p.n);`,
        `Ws[${L.at.D}u + row * ${bkp}u + j] = ${ct}(pr * (${DP("row")} - Rs[${own}u + row]));`,
      ]),
      "workgroupBarrier();",
      ...accumulate([["a", "D", "K"]]),
      "}",
      "workgroupBarrier();",
      ...storeAcc("a", "p.nq", dqkvAt(0), " * p.scale"),
      "// The q rows past the queries: zero (one block per (b, h) writes them).",
      "if (g % p.blocks == 0u) {",
      `  for (var e = t; e < (p.n - p.nq) * ${d}u; e += ${threads}u) { ${dqkvAt(0)(`p.nq + e / ${d}u`, `e % ${d}u`)} = 0.0; }`,
      "}",
    ];
  } else {
    body = [
      stage("K", own, "first", "p.n", "qkv", kRow, " * p.scale"),
      stage("V", own, "first", "p.n", "qkv", vRow),
      "workgroupBarrier();",
      ...owned("k", "K"),
      ...owned("v", "V"),
      ...zeros("dk"),
      ...zeros("dv"),
      `for (var i0 = 0u; i0 < p.nq; i0 += ${bk}u) {`,
      "workgroupBarrier();",
      stage("Q", bk, "i0", "p.nq", "qkv", qRow),
      stage("G", bk, "i0", "p.nq", "dout", gRow),
      `for (var r = t; r < ${bk}u; r += ${threads}u) {`,
      "  let i = min(i0 + r, p.nq - 1u);",
      "  Rs[r] = lse[sBase + i];",
      `  Rs[${bk}u + r] = delta[sBase + i];`,
      "}",
      "workgroupBarrier();",
      ...scores("k", "Q", 0),
      ...scores("v", "G", own * bk),
      "workgroupBarrier();",
      "// Row: an owned key; j: a streamed query.",
      ...eachScore([
        `let pr = select(0.0, exp(${S("row")} - Rs[j]), i0 + j < p.nq);`,
        `Ws[${L.at.P}u + row * ${bkp}u + j] = ${ct}(pr);`,
        `Ws[${L.at.D}u + row * ${bkp}u + j] = ${ct}(pr * (${DP("row")} - Rs[${bk}u + j]));`,
      ]),
      "workgroupBarrier();",
      ...accumulate([["dv", "P", "G"], ["dk", "D", "Q"]]),
      "}",
      "workgroupBarrier();",
      ...storeAcc("dk", "p.n", dqkvAt(1), " * p.scale"),
      ...storeAcc("dv", "p.n", dqkvAt(2)),
    ];
  }
  const bindings = BINDINGS[pass].map(([name, type, access], i) => `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<${type}>;`);
  return /* wgsl */ `enable chromium_experimental_subgroup_matrix;
${spec.f16 ? "enable f16;" : ""}
diagnostic(off, chromium.subgroup_matrix_uniformity);
${uniformStruct(ATTENTION_FIELDS)}
${bindings.join("\n")}
var<workgroup> Ws: array<${ct}, ${L.ws}>;
var<workgroup> Ss: array<f32, ${L.ss}>;
var<workgroup> Rs: array<f32, ${L.rs}>;
${FLAT_GROUP}
// Thread mapping: workgroup g owns rows first + 0..${own} of (b, h) = g / p.blocks, subgroup sub rows mine + 0..${fm}.
${mainEntry(threads)}
${headFrame(d4)}
  let t = lid.x;
  let sub = t / ${sg}u;
  let lane = t % ${sg}u;
  let mine = sub * ${fm}u;
  let first = (g % p.blocks) * ${own}u;
${body.join("\n")}
}`;
}

export interface MmaDims extends AttentionCall {
  D: number;
}

// Length-D products per (owned, streamed) row pair, for the work estimate: the forward's S twice and P·V.
const PRODUCTS: Record<MmaPass, number> = { forward: 3, dq: 3, dkdv: 4 };

// Encodes one pass. `buffers` by the names of BINDINGS.
export function encodeMmaAttention(
  pass: MmaPass,
  dims: MmaDims,
  spec: { d: number; f16: boolean; fragment: string; groups: number },
  scale: number,
  buffers: Record<string, GPUBuffer>,
): void {
  const { B, N, NQ, H } = dims;
  const full: MmaAttentionSpec = { ...spec, pass };
  const kernel = getKernel("attention-mma", full, mmaAttentionWgsl);
  const owned = pass === "dkdv" ? N : NQ;
  const blocks = Math.ceil(owned / (spec.groups * fragOf(full).fm));
  const uniform = attentionUniform(dims, blocks, scale);
  const list = BINDINGS[pass].map(([name]) => buffers[name]);
  runtime().batch.dispatch(kernel, list, uniform, grid1d(B * H * blocks), 2 * B * H * NQ * N * dims.D * PRODUCTS[pass]);
}
