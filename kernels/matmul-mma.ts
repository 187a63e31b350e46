// Matmul's versions on the adapter's subgroup matrices (tensor cores from WGSL; kernels/matmul.ts lists them): mma64
// and mma128 on f16 or f32 fragments, mma64i8 and mma128i8 on int8 slices of f32 operands; one product's WGSL.
// mma64 and mma128 are no default (no GPU has timed them); mma64i8 and mma128i8 are the default of "int8" and
// "int8x2" products where the adapter can run them, and no other product runs them (kernels/registry.ts MATMUL).
// Tested in test/kernels/matmul-mma.test.ts (compiled on Dawn's null backend, run with the subgroup matrices emulated)
// and, on adapters that list their configurations, in test/kernels/matmul.test.ts.
import { MMA_I8_SLAB, MMA_SLAB } from "./registry.js";
import { range } from "./wgsl.js";
import { ENTRY, type MatmulSpec, TILE_COORDS, header, indented, slabStage, stagedLoop } from "./matmul-frame.js";

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
export function mmaWgsl(spec: MatmulSpec, tile: number, subgroupsN: number): string {
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
// `store`. Offsets and strides of i8 fragments count the elements of the array they are loaded from, Ws's 32-bit words,
// not bytes: Dawn's compiler (Tint) validates them so (a stride of 4 is 16 bytes, and a row of 32 i8 needs 8), as
// SPIR-V's cooperative-matrix loads count the pointer's elements (docs/KERNELS.md).
export function mmaI8Wgsl(spec: MatmulSpec, tile: number, subgroupsN: number): string {
  const { fm, fn, fk, sg, subgroups, threads, wtm, wtn, FM, FN } = mmaGeometry(spec, tile, subgroupsN);
  const S = spec.slices;
  const rowWords = MMA_I8_SLAB / 4; // a staged row, one slab of one slice, in Ws's words (a fragment's offset unit)
  const operandWords = S * tile * rowWords;
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
    for (let j = 0; j < FN; j++) step.push(`let r${sl}_${j} = subgroupMatrixLoad<${right}, col_major>(&Ws, (${(S + sl) * tile}u + wn * ${wtn}u + ${j * fn}u) * ${rowWords}u + kk, ${rowWords}u);`);
  }
  for (let i = 0; i < FM; i++) {
    for (let sl = 0; sl < S; sl++) step.push(`let l${sl}_${i} = subgroupMatrixLoad<${left}, row_major>(&Ws, (${sl * tile}u + wm * ${wtm}u + ${i * fm}u) * ${rowWords}u + kk, ${rowWords}u);`);
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
      .map((q) => `if (${X}ok${q}) { ${range(4).map((c) => `Ws[${at}u + (${X}sl${q} * ${tile}u + ${X}row${q}) * ${rowWords}u + ${X}h${q} * 4u + ${c}u] = ${X}v${q}[${c}];`).join(" ")} }`)
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
  ${stagedLoop("kw", "kw0", "kw1", `${rowWords}u`, [a, b], [a.store, b.store], `for (var kk = 0u; kk < ${rowWords}u; kk += ${fk / 4}u) {\n      ${step.join("\n      ")}\n    }`)}
  ${indented(finish.join("\n"), 2)}
}`;
}
