// Layer normalisation over the last axis, x viewed as (rows, C):
//   mean_r = sum_c x[r, c] / C,   var_r = sum_c (x[r, c] - mean_r)^2 / C,   rstd_r = 1 / sqrt(var_r + eps)
//   y[r, c] = (x[r, c] - mean_r) * rstd_r * gamma[c] + beta[c]          (gamma, beta optional, each (C))
// The variance is two-pass (sum of squared deviations from the mean), not E[x^2] - E[x]^2, which cancels
// catastrophically in f32 once |mean| >> std. mean and rstd (rows) are saved for backward.
// Backward, with xhat = (x - mean) * rstd and g = dy * gamma:
//   dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)),  dgamma = sum_rows dy * xhat,  dbeta = sum_rows dy.
// Backward may add a gradient of x from its other uses into dx in the same pass (x feeds a pre-norm block's
// layernorm and its residual: the two sum at every block).
//
//   lane: one invocation per row, 64 rows per workgroup, no barriers (CPU drivers). Where the adapter's subgroups
//   are exactly 8 lanes, C % 4 == 0 and C <= REGISTER_ROW_MAX, each lane holds its row in C / 4 named vec4s
//   (registerRow), and the forward can build that row as the ViT's input sequence (tokens, kernels/tokens.ts).
//   tree: one workgroup of 128 per row, shared-memory tree reductions (GPUs); subgroup: the same with subgroup
//   reductions. All share the row frame of rows.ts; default lane on CPU drivers, tree on GPUs.
// dgamma/dbeta: a first pass sums blocks of ~sqrt(rows) rows per column into partials (adjacent lanes take
// adjacent columns, so loads are contiguous on CPUs and coalesced on GPUs), and a second pass sums the ~sqrt(rows)
// partials of each column, dgamma's and dbeta's in one dispatch. Neither pass has an invocation loop over all rows.
// On CPU drivers, up to ONE_PASS_ROWS rows, one pass in workgroups of 8 sums every row of a column and writes dgamma
// and dbeta at once: a dispatch costs ~60 us there beside its work, and the default study's layernorms (544-2176
// rows of 64) are a few hundred microseconds of loads per column on one lane. Where such a workgroup is one subgroup
// (subgroups of exactly 8 lanes: llvmpipe), the rows' mean and rstd, which every lane needs, come 8 rows at a time,
// one loaded per lane and handed round by subgroupShuffle: the default model's nine took 0.91-0.95 ms of a training
// step against 1.28-1.30 (`bench vit --census`, 2026-12-04, as recorded at 0684472).
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { MAX_GROUPS, packUniform, range, storageBindings, uniformStruct } from "./wgsl.js";
import { type RowVersion, laneBroadcast } from "./registry.js";
import {
  ROW_LAYOUT,
  checkBindable,
  rowGrid,
  rowMain,
  rowPrelude,
  rowReduce,
  rowVersion,
  rowsOf,
  sameShape,
} from "./rows.js";

const FIELDS = { rows: "u32", C: "u32", eps: "f32", T: "u32" } as const; // T: tokens per image (tokens)

interface LayerNormSpec {
  [k: string]: string | number | boolean;
  version: RowVersion;
  wg: number;
  pass: "forward" | "backward";
  hasGamma: boolean;
  hasBeta: boolean; // forward only
  addDx: boolean; // backward: dx += dxAdd
  broadcast: boolean; // lane, subgroups of exactly 8: gamma and beta 8 columns at a time, shuffled (see wgsl)
  c4: number; // lane: C / 4 where each lane holds its row in registers (registerRow), else 0
  tokens: boolean; // forward, registerRow: x is the ViT's input sequence, made here and stored (see tokensRow)
}

// The layernorm of a tensor written beside it (kernels/matmul.ts and kernels/tokens.ts compute x and normalise it in
// the same pass): its result and saved statistics.
export interface NormAfter {
  out: Tensor; // x's shape: (x - mean) * rstd * gamma + beta
  mean: Tensor; // (rows)
  rstd: Tensor; // (rows)
  gamma: Tensor; // (C)
  beta: Tensor; // (C)
  eps: number;
}

// The lane kernels hold a row of up to this many columns in C / 4 named vec4s (registerRow).
const REGISTER_ROW_MAX = 128;

// The lane kernels with their rows in registers, where the adapter's subgroups are exactly 8 lanes and C % 4 == 0:
// x (and dy) are loaded once as vec4s, not once per pass (scalar loads: three passes in the forward, two of dy
// and x in the backward), and gamma and beta come 8 vec4s at a time, one loaded per lane and handed round by
// subgroupBroadcast (outside the stores' branch: it wants every lane). The sums keep the loops' order (0 + v_0 +
// v_1 + ..., scalar by scalar) and every expression its association: the forward's results are the loops' to the
// bit, the backward's dx within an ulp or two of theirs (test/kernels/layernorm.test.ts).
function registerRow(spec: LayerNormSpec): string {
  const c4 = spec.c4;
  const cs = range(c4);
  const lines = (f: (c: number) => string, indent = "\n  ") => cs.map(f).join(indent);
  const sum = (term: (c: number, k: string) => string) => ["0.0", ...cs.flatMap((c) => ["x", "y", "z", "w"].map((k) => term(c, k)))].join(" + ");
  const shared = (name: string, buf: string) =>
    range(Math.ceil(c4 / 8)).map((q) => `let ${name}l${q} = ${buf}[min(${q * 8}u + sgl, ${c4 - 1}u)];`);
  const param = (name: string, c: number) => `subgroupBroadcast(${name}l${Math.floor(c / 8)}, ${c % 8}u)`;
  const gamma = (c: number) => (spec.hasGamma ? ` * ${param("g", c)}` : "");
  const loads = [...(spec.hasGamma ? shared("g", "gamma") : []), ...(spec.hasBeta ? shared("b", "beta") : [])].join("\n  ");
  if (spec.pass === "forward") {
    return /* wgsl */ `
  let base = r * ${c4}u;
  ${spec.tokens ? tokensRow(c4) : lines((c) => `let x${c} = x[base + ${c}u];`)}
  let mu = (${sum((c, k) => `x${c}.${k}`)}) / f32(p.C);
  ${lines((c) => `let d${c} = x${c} - vec4<f32>(mu);`)}
  let rs = 1.0 / sqrt((${sum((c, k) => `d${c}.${k} * d${c}.${k}`)}) / f32(p.C) + p.eps);
  ${loads}
  ${lines((c) => `let v${c} = (x${c} - vec4<f32>(mu)) * rs${gamma(c)}${spec.hasBeta ? ` + ${param("b", c)}` : ""};`)}
  if (valid) {
    ${lines((c) => `y[base + ${c}u] = v${c};`, "\n    ")}
    mean[r] = mu;
    rstd[r] = rs;
  }`;
  }
  return /* wgsl */ `
  let base = r * ${c4}u;
  let mu = mean[r];
  let rs = rstd[r];
  ${loads}
  ${lines((c) => `let g${c} = dy[base + ${c}u]${gamma(c)};`)}
  ${lines((c) => `let x${c} = x[base + ${c}u] - vec4<f32>(mu);`)}
  let m = vec2<f32>(${sum((c, k) => `g${c}.${k}`)}, ${sum((c, k) => `g${c}.${k} * x${c}.${k} * rs`)}) / f32(p.C);
  ${lines((c) => `let v${c} = rs * (g${c} - vec4<f32>(m.x) - x${c} * rs * m.y)${spec.addDx ? ` + dxAdd[base + ${c}u]` : ""};`)}
  if (valid) {
    ${lines((c) => `dx[base + ${c}u] = v${c};`, "\n    ")}
  }`;
}

// tokens: row r of x is token t = r % T of image r / T of the ViT's input sequence (kernels/tokens.ts), the CLS
// token at t = 0 and patch token t - 1 after it, plus position t; the row is stored in seq as it is made.
function tokensRow(c4: number): string {
  return /* wgsl */ `let t = r % p.T;
  let src = select((r / p.T * (p.T - 1u) + t - 1u) * ${c4}u, 0u, t == 0u);
  ${range(c4).map((c) => `let x${c} = select(tokens[src + ${c}u], cls[${c}u], t == 0u) + pos[t * ${c4}u + ${c}u];`).join("\n  ")}
  if (valid) {
    ${range(c4).map((c) => `seq[base + ${c}u] = x${c};`).join("\n    ")}
  }`;
}

function wgsl(spec: LayerNormSpec): string {
  // The column loops over gamma and beta. With broadcast (the lane version, one row per lane, where subgroups are
  // exactly 8 lanes) the columns go 8 at a time: lane l loads gamma and beta of column c0 + l, and every lane takes
  // column c's from lane c - c0, since every lane (row) needs the same ones. The loop then runs in uniform control
  // flow (subgroup operations want every lane), so a row past the end skips its stores inside it.
  const columns = (body: string) =>
    spec.broadcast
      ? `for (var c0 = 0u; c0 < p.C; c0 += 8u) {
    let cl = min(c0 + sgl, p.C - 1u);
    ${spec.hasGamma ? "let g8 = gamma[cl];" : ""}
    ${spec.hasBeta ? "let b8 = beta[cl];" : ""}
    for (var i = 0u; i < min(8u, p.C - c0); i++) {
      let c = c0 + i;
      ${body}
    }
  }`
      : `for (var c = lane; c < p.C; c += LANES) {
    ${body}
  }`;
  const gamma = spec.hasGamma ? (spec.broadcast ? " * subgroupShuffle(g8, i)" : " * gamma[c]") : "";
  const beta = spec.hasBeta ? (spec.broadcast ? " + subgroupShuffle(b8, i)" : " + beta[c]") : "";
  const forward = /* wgsl */ `
  let base = r * p.C;
  var s = 0.0;
  for (var c = lane; c < p.C; c += LANES) { s += x[base + c]; }
  let mu = rowSum(s, lid.x) / f32(p.C);
  var q = 0.0;
  for (var c = lane; c < p.C; c += LANES) { let d = x[base + c] - mu; q += d * d; }
  let rs = 1.0 / sqrt(rowSum(q, lid.x) / f32(p.C) + p.eps);
  ${columns(`let v = (x[base + c] - mu) * rs${gamma}${beta};
      if (valid) { y[base + c] = v; }`)}
  if (valid && lane == 0u) { mean[r] = mu; rstd[r] = rs; }`;
  // Both row sums of backward travel in one vec2 reduction: half the barriers of two.
  const backward = /* wgsl */ `
  let base = r * p.C;
  let mu = mean[r];
  let rs = rstd[r];
  var s = vec2<f32>(0.0);
  ${columns(`let g = dy[base + c]${gamma};
      s += vec2<f32>(g, g * (x[base + c] - mu) * rs);`)}
  let m = rowSum2(s, lid.x) / f32(p.C); // (mean_c g, mean_c g * xhat)
  ${columns(`let g = dy[base + c]${gamma};
      let v = rs * (g - m.x - (x[base + c] - mu) * rs * m.y)${spec.addDx ? " + dxAdd[base + c]" : ""};
      if (valid) { dx[base + c] = v; }`)}`;
  const f = "array<f32>";
  const v = spec.c4 > 0 ? "array<vec4<f32>>" : f; // registerRow's rows (x, y, dy, dx, dxAdd), gamma and beta
  const input: [string, string, "read" | "read_write"][] = spec.tokens
    ? [["seq", v, "read_write"], ["tokens", v, "read"], ["cls", v, "read"], ["pos", v, "read"]]
    : [["x", v, "read"]];
  const bindings: [string, string, "read" | "read_write"][] =
    spec.pass === "forward"
      ? [["y", v, "read_write"], ["mean", f, "read_write"], ["rstd", f, "read_write"], ...input]
      : [["dx", v, "read_write"], ["dy", v, "read"], ["x", v, "read"], ["mean", f, "read"], ["rstd", f, "read"]];
  if (spec.hasGamma) bindings.push(["gamma", v, "read"]);
  if (spec.hasBeta) bindings.push(["beta", v, "read"]);
  if (spec.addDx) bindings.push(["dxAdd", v, "read"]);
  const body = spec.c4 > 0 ? registerRow(spec) : spec.pass === "forward" ? forward : backward;
  return /* wgsl */ `${spec.broadcast || spec.c4 > 0 ? "enable subgroups;" : rowPrelude(spec.version)}
${uniformStruct(FIELDS)}
${storageBindings(bindings)}
${spec.pass === "forward" ? rowReduce(spec.version, "rowSum", "f32", "sum") : rowReduce(spec.version, "rowSum2", "vec2<f32>", "sum")}
${rowMain(spec.version, body, spec.broadcast || spec.c4 > 0)}`;
}

// ---- dgamma / dbeta: column sums over rows in two passes ----

const PARAM_WG = 64;
const ONE_PASS_WG = 8; // one SIMD batch on llvmpipe: C = 64 columns are 8 workgroups for its threads
const ONE_PASS_ROWS = 4096;
interface ColumnSpec {
  [k: string]: number | boolean;
  wg: number;
}
interface PartialSpec extends ColumnSpec {
  onePass: boolean; // block = rows: write the sums straight into dgamma and dbeta
  broadcast: boolean; // workgroups of 8 that are one subgroup: mean and rstd of 8 rows loaded one per lane, broadcast
}
const PARTIAL_FIELDS = { rows: "u32", C: "u32", block: "u32" } as const;
const COLSUM_FIELDS = { blocks: "u32", C: "u32" } as const;

// part[b, 0, c] = sum_{r in block b} dy[r, c] * xhat[r, c];  part[b, 1, c] = sum_{r in block b} dy[r, c]
// onePass (a single block): dgamma[c] = part[0, 0, c], dbeta[c] = part[0, 1, c].
function wgslPartials(spec: PartialSpec): string {
  const outputs: [string, string, "read_write"][] = spec.onePass
    ? [["dgamma", "array<f32>", "read_write"], ["dbeta", "array<f32>", "read_write"]]
    : [["part", "array<f32>", "read_write"]];
  const store = spec.onePass
    ? `dgamma[c] = g;
  dbeta[c] = b;`
    : `part[wid.y * 2u * p.C + c] = g;
  part[wid.y * 2u * p.C + p.C + c] = b;`;
  // With broadcast every lane stays to the end (subgroup operations want all of them): a lane past the last column
  // reads the last one and stores nothing.
  const column = spec.broadcast
    ? `let c = min(wid.x * ${spec.wg}u + lid.x, p.C - 1u);
  let stores = wid.x * ${spec.wg}u + lid.x < p.C;`
    : `let c = wid.x * ${spec.wg}u + lid.x;
  if (c >= p.C) { return; }`;
  return /* wgsl */ `${spec.broadcast ? "enable subgroups;" : ""}
${uniformStruct(PARTIAL_FIELDS)}
${storageBindings([...outputs, ["dy", "array<f32>", "read"], ["x", "array<f32>", "read"],
    ["mean", "array<f32>", "read"], ["rstd", "array<f32>", "read"]])}
// Thread mapping: invocation (column c, row block wid.y); mean[r] and rstd[r] are the same for every lane.
@compute @workgroup_size(${spec.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${column}
  let start = wid.y * p.block;
  let end = min(start + p.block, p.rows);
  var g = 0.0;
  var b = 0.0;
  ${spec.broadcast ? broadcastRows : `for (var r = start; r < end; r++) {
    let d = dy[r * p.C + c];
    g += d * (x[r * p.C + c] - mean[r]) * rstd[r];
    b += d;
  }`}
  ${spec.broadcast ? `if (stores) { ${store} }` : store}
}`;
}

// The row loop of wgslPartials where a workgroup of 8 is one subgroup: rows go 8 at a time, lane l loading mean and
// rstd of row r0 + l (past the end: the last row, unused), and every lane taking row r0 + i's from lane i.
const broadcastRows = /* wgsl */ `for (var r0 = start; r0 < end; r0 += 8u) {
    let own = min(r0 + lid.x, end - 1u);
    let mu8 = mean[own];
    let rs8 = rstd[own];
    for (var i = 0u; i < min(8u, end - r0); i++) {
      let r = r0 + i;
      let d = dy[r * p.C + c];
      g += d * (x[r * p.C + c] - subgroupShuffle(mu8, i)) * subgroupShuffle(rs8, i);
      b += d;
    }
  }`;

// dgamma[c] = sum_b part[b, 0, c], dbeta[c] = sum_b part[b, 1, c]: both in one dispatch.
function wgslColumnSum(spec: ColumnSpec): string {
  return /* wgsl */ `
${uniformStruct(COLSUM_FIELDS)}
${storageBindings([["dgamma", "array<f32>", "read_write"], ["dbeta", "array<f32>", "read_write"], ["part", "array<f32>", "read"]])}
// Thread mapping: one invocation per column j of part's (2, C) rows: dgamma's C, then dbeta's.
@compute @workgroup_size(${spec.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j = wid.x * ${spec.wg}u + lid.x;
  if (j >= 2u * p.C) { return; }
  var s = 0.0;
  for (var b = 0u; b < p.blocks; b++) { s += part[b * 2u * p.C + j]; }
  if (j < p.C) { dgamma[j] = s; } else { dbeta[j - p.C] = s; }
}`;
}

// dy, x: (rows, C); mean, rstd: (rows) -> dgamma, dbeta: (C), each only if asked for.
function paramGrads(dy: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, rows: number, C: number, need: { dgamma: boolean; dbeta: boolean }) {
  const { batch, gpu } = runtime();
  const onePass = gpu.isCpu && rows <= ONE_PASS_ROWS;
  // ~sqrt(rows) rows per block balances the serial loop of the first pass against that of the second.
  const block = onePass ? rows : Math.max(1, Math.ceil(Math.sqrt(rows)));
  const blocks = Math.ceil(rows / block);
  const wg = onePass ? ONE_PASS_WG : PARAM_WG;
  const groups = Math.ceil(C / wg);
  // Both passes index columns by wid.x alone (the second 2C of them).
  if (Math.ceil((2 * C) / wg) > MAX_GROUPS) throw new Error(`layernorm backward: expected at most ${(MAX_GROUPS * wg) / 2} channels, got ${C}`);
  const partials = (outputs: Tensor[]) =>
    batch.dispatch(
      getKernel("layernorm-partials", { wg, onePass, broadcast: laneBroadcast(gpu, wg) } satisfies PartialSpec, wgslPartials),
      [...outputs.map((t) => t.buffer), dy.buffer, x.buffer, mean.buffer, rstd.buffer],
      packUniform(PARTIAL_FIELDS, { rows, C, block }),
      [groups, blocks],
      2 * rows * C * 4,
    );
  if (onePass) {
    const dgamma = Tensor.empty([C]);
    const dbeta = Tensor.empty([C]);
    partials([dgamma, dbeta]);
    if (!need.dgamma) dgamma.dispose();
    if (!need.dbeta) dbeta.dispose();
    return { dgamma: need.dgamma ? dgamma : undefined, dbeta: need.dbeta ? dbeta : undefined };
  }
  const part = Tensor.empty([blocks, 2, C]);
  partials([part]);
  // Both sums in one dispatch, the one not asked for discarded: a dispatch costs the host more than these columns.
  const [dgamma, dbeta] = [Tensor.empty([C]), Tensor.empty([C])];
  const sumGroups = Math.ceil((2 * C) / wg);
  const uniform = packUniform(COLSUM_FIELDS, { blocks, C });
  batch.dispatch(getKernel("layernorm-colsum", { wg } satisfies ColumnSpec, wgslColumnSum), [dgamma.buffer, dbeta.buffer, part.buffer], uniform, [sumGroups], 2 * blocks * C * 4);
  part.dispose();
  if (!need.dgamma) dgamma.dispose();
  if (!need.dbeta) dbeta.dispose();
  return { dgamma: need.dgamma ? dgamma : undefined, dbeta: need.dbeta ? dbeta : undefined };
}

// ---- wrappers ----

function checkParam(op: string, name: string, t: Tensor | undefined, C: number): void {
  if (t === undefined) return;
  if (t.dtype !== "f32") throw new Error(`${op}: expected ${name} f32, got ${t.dtype} ${t}`);
  if (t.shape.length !== 1 || t.shape[0] !== C) throw new Error(`${op}: expected ${name} (${C}), got (${t.shape.join(", ")})`);
}

function checkRowStat(op: string, name: string, t: Tensor, rows: number): void {
  if (t.dtype !== "f32" || t.shape.length !== 1 || t.shape[0] !== rows) {
    throw new Error(`${op}: expected ${name} f32 (${rows}), got ${t.dtype} (${t.shape.join(", ")})`);
  }
}

// Whether the lane version's column loops take gamma and beta by subgroupShuffle (see wgsl): where there is one.
function columnBroadcast(version: RowVersion, params: boolean): boolean {
  return version === "lane" && params && laneBroadcast(runtime().gpu);
}

// A pass's spec: the lane kernels with their rows in registers where they can (registerRow), else with gamma and
// beta by shuffle where they can (columnBroadcast).
function passSpec(version: RowVersion, C: number, pass: "forward" | "backward", params: { hasGamma: boolean; hasBeta: boolean; addDx: boolean }): LayerNormSpec {
  const inRegisters = version === "lane" && laneBroadcast(runtime().gpu) && C % 4 === 0 && C <= REGISTER_ROW_MAX;
  const broadcast = !inRegisters && columnBroadcast(version, params.hasGamma || params.hasBeta);
  return { version, wg: ROW_LAYOUT[version].wg, pass, ...params, broadcast, c4: inRegisters ? C / 4 : 0, tokens: false };
}

// x: (..., C), gamma/beta: (C) or undefined -> y: (..., C), mean/rstd: (rows) with rows = x.size / C.
export function layernormForward(
  x: Tensor,
  gamma: Tensor | undefined,
  beta: Tensor | undefined,
  eps = 1e-6,
  requested?: string,
): { y: Tensor; mean: Tensor; rstd: Tensor } {
  const [rows] = checkForward(x, gamma, beta, eps);
  const out = { out: Tensor.empty(x.shape), mean: Tensor.empty([rows]), rstd: Tensor.empty([rows]) };
  layernormForwardInto(x, gamma, beta, eps, out, requested);
  return { y: out.out, mean: out.mean, rstd: out.rstd };
}

function checkForward(x: Tensor, gamma: Tensor | undefined, beta: Tensor | undefined, eps: number): [number, number] {
  const op = "layernorm";
  const [rows, C] = rowsOf(op, "x", x);
  checkParam(op, "gamma", gamma, C);
  checkParam(op, "beta", beta, C);
  if (!(eps >= 0)) throw new Error(`${op}: expected eps >= 0, got ${eps}`);
  checkBindable(op, x);
  return [rows, C];
}

// The same into given tensors: out (x's shape), mean and rstd (rows elements each, any shape); for a product whose
// epilogue could not take the norm (kernels/matmul.ts `norm`).
export function layernormForwardInto(
  x: Tensor,
  gamma: Tensor | undefined,
  beta: Tensor | undefined,
  eps: number,
  into: { out: Tensor; mean: Tensor; rstd: Tensor },
  requested?: string,
): void {
  const op = "layernorm";
  const [rows, C] = checkForward(x, gamma, beta, eps);
  const version = rowVersion(op, rows, C, requested);
  const { out, mean, rstd } = into;
  if (out.size !== x.size || mean.size !== rows || rstd.size !== rows) {
    throw new Error(`${op}: expected out of ${x.size} elements and mean, rstd of ${rows}, got ${out.size}, ${mean.size}, ${rstd.size}`);
  }
  if (rows === 0) return;
  const spec = passSpec(version, C, "forward", { hasGamma: !!gamma, hasBeta: !!beta, addDx: false });
  const buffers = [out.buffer, mean.buffer, rstd.buffer, x.buffer];
  if (gamma) buffers.push(gamma.buffer);
  if (beta) buffers.push(beta.buffer);
  const uniform = packUniform(FIELDS, { rows, C, eps, T: 0 });
  runtime().batch.dispatch(getKernel(op, spec, wgsl), buffers, uniform, rowGrid(version, rows), 2 * x.size * 4);
}

// The ViT's input sequence seq (B, T, C) from tokens (B, T - 1, C), cls (C) and pos (T * C) (kernels/tokens.ts),
// made and normalised into `norm` in one pass where the lane kernel holds rows in registers; false elsewhere (the
// caller then makes and normalises it in two).
export function tokensNormedInto(seq: Tensor, tokens: Tensor, cls: Tensor, pos: Tensor, norm: NormAfter): boolean {
  const [B, T, C] = seq.shape;
  const rows = B * T;
  const version = rowVersion("layernorm", rows, C);
  const spec = { ...passSpec(version, C, "forward", { hasGamma: true, hasBeta: true, addDx: false }), tokens: true };
  if (spec.c4 === 0 || rows === 0) return false;
  checkParam("layernorm", "gamma", norm.gamma, C);
  checkParam("layernorm", "beta", norm.beta, C);
  const buffers = [norm.out.buffer, norm.mean.buffer, norm.rstd.buffer, seq.buffer, tokens.buffer, cls.buffer, pos.buffer, norm.gamma.buffer, norm.beta.buffer];
  const uniform = packUniform(FIELDS, { rows, C, eps: norm.eps, T });
  runtime().batch.dispatch(getKernel("layernorm", spec, wgsl), buffers, uniform, rowGrid(version, rows), 4 * seq.size * 4);
  return true;
}

// dy, x: (..., C); gamma: (C) or undefined; mean, rstd: (rows) from the forward.
// -> dx: (..., C), dgamma: (C), dbeta: (C), each present only when `need` asks for it; need.dxAdd (x's size):
// added to dx.
export function layernormBackward(
  dy: Tensor,
  x: Tensor,
  gamma: Tensor | undefined,
  mean: Tensor,
  rstd: Tensor,
  need: { dx: boolean; dgamma: boolean; dbeta: boolean; dxAdd?: Tensor },
  requested?: string,
): { dx?: Tensor; dgamma?: Tensor; dbeta?: Tensor } {
  const op = "layernorm backward";
  const [rows, C] = rowsOf(op, "x", x);
  const version = rowVersion("layernorm", rows, C, requested);
  rowsOf(op, "dy", dy);
  sameShape(op, x, "x", dy, "dy");
  checkParam(op, "gamma", gamma, C);
  checkRowStat(op, "mean", mean, rows);
  checkRowStat(op, "rstd", rstd, rows);
  if (need.dgamma && !gamma) throw new Error(`${op}: expected gamma when dgamma is needed, got none`);
  checkBindable(op, x);
  const { dxAdd } = need;
  if (dxAdd && (!need.dx || dxAdd.dtype !== "f32" || dxAdd.size !== x.size)) {
    throw new Error(`${op}: expected dxAdd f32 of ${x.size} elements with dx needed, got ${dxAdd}${need.dx ? "" : " without dx"}`);
  }
  const out: { dx?: Tensor; dgamma?: Tensor; dbeta?: Tensor } = {};
  if (need.dx) {
    out.dx = Tensor.empty(x.shape);
    if (rows > 0) {
      const spec = passSpec(version, C, "backward", { hasGamma: !!gamma, hasBeta: false, addDx: !!dxAdd });
      const buffers = [out.dx.buffer, dy.buffer, x.buffer, mean.buffer, rstd.buffer];
      if (gamma) buffers.push(gamma.buffer);
      if (dxAdd) buffers.push(dxAdd.buffer);
      const uniform = packUniform(FIELDS, { rows, C, eps: 0, T: 0 });
      runtime().batch.dispatch(getKernel("layernorm", spec, wgsl), buffers, uniform, rowGrid(version, rows), 3 * x.size * 4);
    }
  }
  if (need.dgamma || need.dbeta) {
    if (rows === 0) {
      // A sum over no rows is zero; the partial pass would launch no blocks.
      const zeros = () => Tensor.fromArray(new Float32Array(C), [C]);
      if (need.dgamma) out.dgamma = zeros();
      if (need.dbeta) out.dbeta = zeros();
    } else Object.assign(out, paramGrads(dy, x, mean, rstd, rows, C, need));
  }
  return out;
}
