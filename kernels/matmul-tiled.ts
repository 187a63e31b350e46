// Matmul's tiled versions (GPUs; kernels/matmul.ts lists them): tiled and tiled128 with scalar slabs, tiledvec and
// tiled128vec with vec4 ones; one product's WGSL. The GPU default is tiled128 where its tiles fill the device and
// there is no GELU epilogue, else tiled; tiledvec and tiled128vec are no default (no GPU has timed them). Tested
// through matmulForward (test/kernels/matmul.test.ts: every version against float64).
import { range } from "./wgsl.js";
import { ENTRY, type MatmulSpec, TILE_COORDS, aIndex, bIndex, h16, header, indented, slabStage, stagedLoop } from "./matmul-frame.js";

export const TK = 16; // tiled: k slab
const WG2 = 16; // tiled: workgroup edge; each thread owns tile/WG2 rows and columns (4 x 4, or 8 x 8 for tiled128)

// tiled. Thread mapping: workgroup (bat, tm, tn) computes the tile x tile block at (tm*tile, tn*tile); thread
// (tx, ty) owns rows ty + 16*i and columns tx + 16*j (i, j < tile/16), so neighbouring threads read neighbouring
// words of the staged slabs. Each k step the 256 threads stage a tile x 16 slab of a and a 16 x tile slab of b
// (tile/16 words each, zero outside the matrices), walking the stored layout's contiguous dimension with
// consecutive threads.
export function tiledWgsl(spec: MatmulSpec, tile: number): string {
  const per = tile / WG2;
  return /* wgsl */ `${header(spec)}
var<workgroup> As: array<array<f32, ${tile}>, ${TK}>; // [k][m]
var<workgroup> Bs: array<array<f32, ${tile}>, ${TK}>; // [k][n]
@compute @workgroup_size(${WG2}, ${WG2})
${ENTRY} {${TILE_COORDS}
  let m0 = tm * ${tile}u;
  let n0 = tn * ${tile}u;
  let t = lid.y * ${WG2}u + lid.x;
  let kEnd = min((sk + 1u) * p.kSplit, p.K);
  var acc: array<array<f32, ${per}>, ${per}>;
  ${spec.rowSums || spec.splitRowSums ? "var rowSum = 0.0; // rowSums: the first column tile's threads t < tile sum a's row m0 + t" : ""}
  for (var k0 = sk * p.kSplit; k0 < kEnd; k0 += ${TK}u) {
    for (var s = 0u; s < ${(tile * TK) / (WG2 * WG2)}u; s++) {
      let e = t + s * ${WG2 * WG2}u;
      ${spec.transA ? `let am = e % ${tile}u; let ak = e / ${tile}u;` : `let ak = e % ${TK}u; let am = e / ${TK}u;`}
      let gm = m0 + am;
      let gk = k0 + ak;
      As[ak][am] = select(0.0, ${h16(spec, `A[aBase + ${aIndex(spec, "min(gm, p.M - 1u)", "min(gk, p.K - 1u)")}]`)}, gm < p.M && gk < kEnd);
      ${spec.transB ? `let bk = e % ${TK}u; let bn = e / ${TK}u;` : `let bn = e % ${tile}u; let bk = e / ${tile}u;`}
      let hn = n0 + bn;
      let hk = k0 + bk;
      Bs[bk][bn] = select(0.0, ${h16(spec, `B[bBase + ${bIndex(spec, "min(hk, p.K - 1u)", "min(hn, p.N - 1u)")}]`)}, hn < p.N && hk < kEnd);
    }
    workgroupBarrier();
    ${spec.rowSums || spec.splitRowSums ? `if (tn == 0u && t < ${tile}u) { for (var k = 0u; k < ${TK}u; k++) { rowSum += As[k][t]; } }` : ""}
    // A non-constant bound keeps NIR from unrolling this loop 16 times (seconds of llvmpipe compile time).
    for (var k = 0u; k < min(${TK}u, kEnd - k0); k++) {
      var a: array<f32, ${per}>;
      var b: array<f32, ${per}>;
      for (var i = 0u; i < ${per}u; i++) {
        a[i] = As[k][lid.y + ${WG2}u * i];
        b[i] = Bs[k][lid.x + ${WG2}u * i];
      }
      for (var i = 0u; i < ${per}u; i++) {
        for (var j = 0u; j < ${per}u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${per}u; i++) {
    let m = m0 + lid.y + ${WG2}u * i;
    for (var j = 0u; j < ${per}u; j++) {
      let n = n0 + lid.x + ${WG2}u * j;
      if (m < p.M && n < p.N) { store(yBase + m * p.N + n, n, acc[i][j]); }
    }
  }
  ${spec.rowSums ? `if (tn == 0u && t < ${tile}u && m0 + t < p.M) { rowSums[bat * p.M + m0 + t] = rowSum; }` : ""}
  ${spec.splitRowSums ? `if (tn == 0u && t < ${tile}u && m0 + t < p.M) { y[sk * p.splitStride + p.batch * p.M * p.N + bat * p.M + m0 + t] = rowSum; }` : ""}
}`;
}

// tiledvec, tiled128vec. Thread mapping: workgroup (bat, tm, tn) computes the tile x tile block at (tm*tile, tn*tile);
// thread (tx, ty) owns rows 64*g + 4*ty + i and columns 64*h + 4*tx + j (i, j < 4; g, h < tile/64), so each k it reads
// its rows' and columns' staged values as tile/32 vec4s (against tiled's tile/8 scalars), the 16 threads of a row of
// the workgroup reading 16 adjacent vec4s of b's slab. The slabs are loaded by slabStage (vec4s where the stored rows
// are a multiple of 4 long), the next one into registers while the current one is multiplied. Everything a thread holds
// is named by literal indices (acc0_0, ...; nothing in a per-thread array indexed in a loop), so that no driver keeps
// its accumulators in memory; y's rows are stored as vec4s where N % 4 == 0 (vecY). Split along k, the splits start at
// multiples of the slab (kernels/matmul.ts matmulForward).
export function tiledVecWgsl(spec: MatmulSpec, tile: number): string {
  const t4 = tile / 4; // vec4s per staged row
  const runs = tile / 64; // g, h < runs
  const a = slabStage(spec, "A", tile, TK, WG2 * WG2, "kEnd", "f32");
  const b = slabStage(spec, "B", tile, TK, WG2 * WG2, "kEnd", "f32");
  const put = (arr: string) => (o: string, k: string, v: string) => `${arr}[(${k}) * ${t4}u + (${o}) / 4u][(${o}) % 4u] = ${v};`;
  const putVec4 = (arr: string) => (o: string, k: string, v: string) => `${arr}[(${k}) * ${t4}u + (${o}) / 4u] = ${v};`;
  const rows = range(4 * runs); // r = 4g + i
  const cols = range(runs); // h
  const lane = "xyzw";
  const accs = rows.flatMap((r) => cols.map((h) => `var acc${r}_${h} = vec4<f32>(0.0);`));
  const step = [
    ...cols.map((g) => `let a${g} = As[k * ${t4}u + ${16 * g}u + lid.y];`),
    ...cols.map((h) => `let b${h} = Bs[k * ${t4}u + ${16 * h}u + lid.x];`),
    ...rows.flatMap((r) => cols.map((h) => `acc${r}_${h} = fma(vec4<f32>(a${r >> 2}.${lane[r & 3]}), b${h}, acc${r}_${h});`)),
  ];
  const finish = rows.flatMap((r) =>
    cols.map((h) => {
      const at = `let m = m0 + ${64 * (r >> 2) + (r & 3)}u + 4u * lid.y;\n    let n = n0 + ${64 * h}u + 4u * lid.x;`;
      const acc = `acc${r}_${h}`;
      if (spec.vecY) return `{\n    ${at}\n    if (m < p.M && n < p.N) { store((yBase + m * p.N + n) / 4u, n / 4u, ${acc}${spec.bias ? " + bias[n / 4u]" : ""}); }\n  }`;
      const each = range(4).map((c) => `if (m < p.M && n + ${c}u < p.N) { store(yBase + m * p.N + n + ${c}u, n + ${c}u, ${acc}.${lane[c]}); }`);
      return `{\n    ${at}\n    ${each.join("\n    ")}\n  }`;
    }),
  );
  const sums = spec.rowSums || spec.splitRowSums;
  const loop = (bound: string) => `for (var k = 0u; k < ${bound}; k++) {\n      ${step.join("\n      ")}\n    }`;
  // A non-constant bound keeps NIR from unrolling the loop 16 times (seconds of llvmpipe compile time); on GPUs a
  // full slab's has a constant one, which their compilers unroll (constSlab).
  const multiply = spec.constSlab
    ? `if (kEnd - k0 >= ${TK}u) {\n    ${loop(`${TK}u`)}\n    } else {\n    ${loop("kEnd - k0")}\n    }`
    : loop(`min(${TK}u, kEnd - k0)`);
  return /* wgsl */ `${header(spec)}
var<workgroup> As: array<vec4<f32>, ${TK * t4}>; // [k][m / 4]
var<workgroup> Bs: array<vec4<f32>, ${TK * t4}>; // [k][n / 4]
@compute @workgroup_size(${WG2}, ${WG2})
${ENTRY} {${TILE_COORDS}
  let m0 = tm * ${tile}u;
  let n0 = tn * ${tile}u;
  let t = lid.y * ${WG2}u + lid.x;
  let kBegin = sk * p.kSplit;
  let kEnd = min(kBegin + p.kSplit, p.K);
  ${indented(a.decls, 2)}
  ${indented(b.decls, 2)}
  ${accs.join("\n  ")}
  ${sums ? "var rowSum = 0.0; // rowSums: the first column tile's threads t < tile sum a's row m0 + t" : ""}
  ${stagedLoop("k0", "kBegin", "kEnd", `${TK}u`, [a, b], [a.store(put("As"), putVec4("As")), b.store(put("Bs"), putVec4("Bs"))],
    `${sums ? `if (tn == 0u && t < ${tile}u) { for (var k = 0u; k < min(${TK}u, kEnd - k0); k++) { rowSum += As[k * ${t4}u + t / 4u][t % 4u]; } }` : ""}\n    ${multiply}`)}
  ${finish.join("\n  ")}
  ${spec.rowSums ? `if (tn == 0u && t < ${tile}u && m0 + t < p.M) { rowSums[bat * p.M + m0 + t] = rowSum; }` : ""}
  ${spec.splitRowSums ? `if (tn == 0u && t < ${tile}u && m0 + t < p.M) { y[sk * p.splitStride + p.batch * p.M * p.N + bat * p.M + m0 + t] = rowSum; }` : ""}
}`;
}
