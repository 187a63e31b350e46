// Matmul's reg and regm versions (CPU drivers; kernels/matmul.ts says what they are and when they read b in place,
// packed, or in pairs, and which of them is the CPU default): one product's WGSL. Tested through matmulForward
// (test/kernels/matmul.test.ts: every version against float64).
import { MATMUL_LANES as LANES } from "./registry.js";
import { range } from "./wgsl.js";
import { ENTRY, type MatmulSpec, TILE_COORDS, aIndex, h16, header } from "./matmul-frame.js";

// reg/regm. Thread mapping, workgroup (bat, tm, tn) and lane l: reg computes rows tm*R + r and columns
// tn*8C + l*C + j (a loads uniform across lanes, b loads adjacent); regm computes rows tm*8R + 8r + l and columns
// tn*C + j (b loads uniform, a loads strided). Rows and columns past the edge load clamped (valid) indices and
// are not stored.
export function regWgsl(spec: MatmulSpec, R: number, C: number, lanesAlongM: boolean): string {
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
