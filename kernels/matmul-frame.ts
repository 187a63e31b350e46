// What matmul's versions share (kernels/matmul.ts lists them; their WGSL in matmul-reg.ts, matmul-tiled.ts and
// matmul-mma.ts): the spec a kernel is generated from, its uniform's fields and its bindings, the f16 rounding of
// loaded values (mixed precision), the flat index of a stored operand's element, the epilogue that finishes every
// element of y (`store`), a workgroup's tile coordinates, and the staged k loop with its slab loads (tiled*vec, mma).
import { MATMUL_TILINGS, type MatmulVersion } from "./registry.js";
import { FLAT_GROUP, erfFunction, range, storageBindings, uniformStruct } from "./wgsl.js";

export interface MatmulSpec {
  [k: string]: string | number | boolean;
  version: MatmulVersion;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  gelu: boolean;
  preact: boolean;
  residual: boolean;
  addOut: boolean; // y += result, reading y's old value through its read_write binding
  vecY: boolean; // reg, tiled*vec unsplit, N % 4 == 0: y and the epilogue operands bound as vec4, stored 4 at a time
  bScalars: boolean; // regm, small b with transB or N % 4 != 0: b read in its stored layout as (uniform) scalars
  bPairs: boolean; // reg (lanes along n), a shared transposed b with K even: read in place, two k per vec2 load
  rowSums: boolean; // reg, tiled without split-K: rowSums bound after the epilogue operands
  splitRowSums: boolean; // tiled with split-K and rowSums: each split's row sums stored in y after its partial product
  dgelu: boolean; // y = acc * gelu'(dgelu[i])
  f16: boolean; // A and B rounded to f16 as loaded (h16), multiplied in f32; mma: staged as f16
  slices: number; // mmai8: each operand's int8 slices (2 or 3); 0 otherwise
  fragment: string; // mma: the subgroup matrices' M x N x K and the subgroup size ("16x16x16/32"); "" otherwise
  vecA: boolean; // tiled*vec, mma: a's stored rows a multiple of 4 long, so A is bound and staged as vec4
  vecB: boolean; // tiled*vec, mma: the same for b
  constSlab: boolean; // tiled*vec on GPUs: a full k slab's loop has a constant bound (see tiledVecWgsl)
  broadcast: boolean; // reg: what every lane loads alike comes from per-lane loads and subgroupBroadcast (matmul.ts)
  norm: boolean; // reg with lanes along n, vecY, broadcast, one column tile: the layernorm of y's rows (matmul.ts)
  gatherA: boolean; // reg: a read through aRows and aCols (matmul.ts)
}

export const MATMUL_FIELDS = {
  M: "u32",
  K: "u32",
  N: "u32",
  batch: "u32",
  tilesM: "u32",
  tilesN: "u32",
  strideA: "u32", // elements between batch entries of a (mmai8: words of its slices)
  strideB: "u32", // elements between batch entries of b (mmai8: words of its slices); 0 when b is shared
  ldb: "u32", // reg: elements between rows of b, stored (K, ldb) with ldb % 4 == 0
  splits: "u32", // tiled, mmai8: split-K, the grid's third axis is splits x batch; 1 otherwise
  kSplit: "u32", // tiled, mmai8: k per split
  splitStride: "u32", // tiled: elements of y per split (its partial product, then its row sums with splitRowSums)
  eps: "f32", // norm
} as const;

// Storage bindings: y, a, b, then the optional epilogue operands in this fixed order (kernels/matmul.ts matmulForward).
function bindings(spec: MatmulSpec): string {
  const i8 = MATMUL_TILINGS[spec.version].kind === "mmai8"; // a's and b's int8 slices
  const yType = spec.vecY ? "array<vec4<f32>>" : "array<f32>";
  const list: Parameters<typeof storageBindings>[0] = [
    ["y", yType, "read_write"],
    ["A", i8 ? "array<vec4<i32>>" : spec.vecA ? "array<vec4<f32>>" : "array<f32>", "read"],
    ["B", i8 ? "array<vec4<i32>>" : spec.bPairs ? "array<vec2<f32>>" : (MATMUL_TILINGS[spec.version].kind === "reg" && !spec.bScalars) || spec.vecB ? "array<vec4<f32>>" : "array<f32>", "read"],
  ];
  if (spec.bias) list.push(["bias", yType, "read"]);
  if (spec.preact) list.push(["preact", yType, "read_write"]);
  if (spec.residual) list.push(["residual", yType, "read"]);
  if (spec.dgelu) list.push(["dgelu", yType, "read"]);
  if (spec.rowSums) list.push(["rowSums", "array<f32>", "read_write"]);
  if (spec.gatherA) list.push(["aRows", "array<u32>", "read"], ["aCols", "array<u32>", "read"]);
  if (spec.norm) {
    list.push(["normed", yType, "read_write"], ["normMean", "array<f32>", "read_write"], ["normRstd", "array<f32>", "read_write"]);
    list.push(["normGamma", yType, "read"], ["normBeta", yType, "read"]);
  }
  return storageBindings(list);
}

// A loaded operand value x (f32, or a vec2 or vec4 of f32), rounded to f16 with mixed precision (spec.f16).
export function h16(spec: MatmulSpec, x: string, width: 1 | 2 | 4 = 1): string {
  return spec.f16 ? `h16${width === 1 ? "" : `v${width}`}(${x})` : x;
}

// The rounding, f32 -> f16 -> f32, in integer operations: lavapipe's compiler dropped the round trip f32(f16(x)), and
// through pack2x16float too, as a no-op. To nearest, ties to even: the significand to f16's 10 bits; f16's
// subnormals (below 2^-14) to multiples of 2^-24; past 65504, infinity of x's sign (as f16 overflows).
function h16Functions(): string {
  return (["f32", "vec2<f32>", "vec4<f32>"] as const)
    .map((T, i) => {
      const U = i === 0 ? "u32" : `vec${2 * i}<u32>`;
      return /* wgsl */ `
fn h16${i === 0 ? "" : `v${2 * i}`}(x: ${T}) -> ${T} {
  let u = bitcast<${U}>(x);
  let r = bitcast<${T}>((u + ${U}(0xfffu) + ((u >> ${U}(13u)) & ${U}(1u))) & ${U}(0xffffe000u));
  let inf = bitcast<${T}>((u & ${U}(0x80000000u)) | ${U}(0x7f800000u));
  let tiny = round(x * 16777216.0) * 5.9604644775390625e-8;
  return select(select(r, inf, abs(r) > ${T}(65504.0)), tiny, abs(x) < ${T}(6.103515625e-5));
}`;
    })
    .join("");
}

// Flat index of a[m, k] and b[k, n] within one batch entry, for the stored layout.
export function aIndex(spec: MatmulSpec, m: string, k: string): string {
  return spec.transA ? `(${k}) * p.M + ${m}` : `(${m}) * p.K + ${k}`;
}
export function bIndex(spec: MatmulSpec, k: string, n: string): string {
  return spec.transB ? `(${n}) * p.K + ${k}` : `(${k}) * p.N + ${n}`;
}

// The shared epilogue: finishes y[i] (column col) from the accumulated dot product and returns it; with vecY, i and
// col count vec4s, acc is one, and the caller has added the bias (reg hoists its loads out of the row loop).
function epilogue(spec: MatmulSpec): string {
  const T = spec.vecY ? "vec4<f32>" : "f32";
  return /* wgsl */ `
fn store(i: u32, col: u32, acc: ${T}) -> ${T} {
  var v = acc;
  ${spec.bias && !spec.vecY ? "v += bias[col];" : "_ = col;"}
  ${spec.preact ? "preact[i] = v;" : ""}
  ${spec.gelu ? "v = 0.5 * v * (1.0 + erf(v * 0.70710678118654752));" : ""}
  ${spec.residual ? "v += residual[i];" : ""}
  ${spec.addOut ? "v += y[i];" : ""}
  ${spec.dgelu ? "let g = dgelu[i]; v *= 0.5 * (1.0 + erf(g * 0.70710678118654752)) + g * 0.39894228040143268 * exp(-0.5 * g * g);" : ""}
  y[i] = v;
  return v;
}`;
}

// A kernel's preamble: its enables, uniform, bindings, the f16 rounding and erf where it uses them, and `store`.
export function header(spec: MatmulSpec): string {
  const mma = MATMUL_TILINGS[spec.version].kind === "mma";
  return `${spec.f16 && mma ? "enable f16;" : ""}${spec.broadcast ? "enable subgroups;" : ""}
${uniformStruct(MATMUL_FIELDS)}
${bindings(spec)}
${FLAT_GROUP}
${spec.f16 && !mma ? h16Functions() : ""}
${spec.gelu || spec.dgelu ? erfFunction(spec.vecY ? "vec4<f32>" : "f32") : ""}
${epilogue(spec)}`;
}

// Workgroup index -> (split of k, batch entry, row tile, column tile), column tiles fastest; y entry z of
// (splits, batch). The folded grid may have a few groups past the end: they return (a uniform branch, before any
// work).
export const TILE_COORDS = /* wgsl */ `
  let g = flatGroup(wid, nwg);
  let tn = g % p.tilesN;
  let tm = (g / p.tilesN) % p.tilesM;
  let z = g / (p.tilesN * p.tilesM);
  let bat = z % p.batch;
  let sk = z / p.batch;
  if (sk >= p.splits) { return; }
  let aBase = bat * p.strideA;
  let bBase = bat * p.strideB;
  let yBase = sk * p.splitStride + bat * p.M * p.N;`;

export const ENTRY = /* wgsl */ `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>)`;

// WGSL lines after the first indented by n spaces, to sit in a template at that depth.
export const indented = (lines: string, n: number) => lines.replaceAll("\n", `\n${" ".repeat(n)}`);

// The staged k loop of tiled*vec and the mma kernels, at 2 spaces of indentation: the operands' first slab loaded
// into registers (`ops`, whose registers the caller declared); each iteration stores the slab to workgroup memory
// (`stores`), then loads the next while `work` multiplies the stored one, a barrier on either side.
export function stagedLoop(k: string, from: string, to: string, step: string, ops: { load: (k: string) => string }[], stores: string[], work: string): string {
  return `var ${k} = ${from};
  ${ops.map((o) => indented(o.load(k), 2)).join("\n  ")}
  for (; ${k} < ${to}; ${k} += ${step}) {
    ${stores.map((st) => indented(st, 4)).join("\n    ")}
    workgroupBarrier();
    ${ops.map((o) => indented(o.load(`${k} + ${step}`), 4)).join("\n    ")}
    ${work}
    workgroupBarrier();
  }`;
}

// One k slab of an operand staged through workgroup memory by `threads` threads (tiled*vec and mma): "A", tile rows
// m x slab, or "B", slab x tile columns n. A thread's load s takes element e = t + s * threads of the slab in the
// stored layout's order (with vecA/vecB the e-th vec4 of 4 along the stored rows), so that consecutive threads read
// consecutive words, into its register `${operand}v${s}`; zeros outside the matrix or from kEnd on (with vec4 all
// four lie outside together: the stored rows are a multiple of 4 long and the callers' slabs start at multiples of
// 4). The registers hold `type`: f32 (rounded to f16 with mixed precision, h16) or f16 (mma's staged inputs).
interface SlabStage {
  decls: string; // each load's slab coordinates (`${operand}o${s}`, `${operand}k${s}`) and register, declared once
  load: (k0: string) => string; // the thread's loads of the slab that starts at k0
  store: (put: (o: string, k: string, value: string) => string, putVec4?: (o: string, k: string, value: string) => string) => string;
}
export function slabStage(spec: MatmulSpec, operand: "A" | "B", tile: number, slab: number, threads: number, kEnd: string, type: "f32" | "f16"): SlabStage {
  const isA = operand === "A";
  const w = (isA ? spec.vecA : spec.vecB) ? 4 : 1;
  const T = w === 4 ? `vec4<${type}>` : type;
  // The slab's outer (o, tile wide) and k coordinates; `kAlong`: the stored rows run along k.
  const kAlong = isA ? !spec.transA : spec.transB;
  const [outer, bound] = isA ? ["m0", "p.M"] : ["n0", "p.N"];
  const index = isA ? (o: string, k: string) => aIndex(spec, o, k) : (o: string, k: string) => bIndex(spec, k, o);
  const base = isA ? "aBase" : "bBase";
  const lastO = kAlong ? `${bound} - 1u` : `${bound} - ${w}u`;
  const lastK = kAlong ? `p.K - ${w}u` : "p.K - 1u";
  const loads = range((tile * slab) / w / threads).map((s) => {
    const e = `(t + ${s * threads}u)`;
    const [oi, ki] = kAlong ? [`${e} / ${slab / w}u`, `${e} % ${slab / w}u * ${w}u`] : [`${e} % ${tile / w}u * ${w}u`, `${e} / ${tile / w}u`];
    return { o: `${operand}o${s}`, k: `${operand}k${s}`, v: `${operand}v${s}`, oi, ki };
  });
  const raw = (o: string, k: string, k0: string) => {
    const at = `${base} + ${index(`min(${outer} + ${o}, ${lastO})`, `min(${k0} + ${k}, ${lastK})`)}`;
    return w === 4 ? `${operand}[(${at}) / 4u]` : `${operand}[${at}]`;
  };
  const value = (x: string) => (type === "f16" ? `${T}(${x})` : h16(spec, x, w));
  return {
    decls: loads.map(({ o, k, v, oi, ki }) => `let ${o} = ${oi};\nlet ${k} = ${ki};\nvar ${v}: ${T};`).join("\n"),
    load: (k0) =>
      loads.map(({ o, k, v }) => `${v} = select(${T}(0.0), ${value(raw(o, k, k0))}, ${outer} + ${o} < ${bound} && ${k0} + ${k} < ${kEnd});`).join("\n"),
    store: (put, putVec4) =>
      loads
        .flatMap(({ o, k, v }) => {
          if (w === 1) return [put(o, k, v)];
          if (!kAlong && putVec4) return [putVec4(o, k, v)];
          return range(4).map((c) => (kAlong ? put(o, `${k} + ${c}u`, `${v}[${c}]`) : put(`${o} + ${c}u`, k, `${v}[${c}]`)));
        })
        .join("\n"),
  };
}
