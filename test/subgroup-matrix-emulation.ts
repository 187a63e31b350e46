// The mma kernels checked without a GPU that has subgroup matrices (matmul-mma.test.ts, attention-mma.test.ts): their
// WGSL compiled on Dawn's null backend (nullBackendCompiler), and their data movement on the CPU driver: their WGSL
// with the subgroup-matrix types and builtins replaced by plain code that follows the extension's definitions (a left
// fragment is M x K at offset with stride, row-major or, with col_major, element (i, k) at offset + k * stride + i;
// and so on). A loaded fragment is kept as its (offset, stride, col_major), read when multiplied (the kernels do not
// change a staged region between a load and its multiplies), each multiply accumulating in place (every kernel writes
// acc = subgroupMatrixMultiplyAccumulate(l, r, acc)); each of a subgroup's SG invocations holds every SG-th element
// of a result fragment. i8 fragments (16 x 16 x 32 into i32) are bytes of an array<i32>, their offsets and strides
// counted in the array's elements, 32-bit words, as Dawn's compiler validates them (kernels/matmul-mma.ts): element
// (i, k) of a row-major left fragment is byte 4 (offset + i stride) + k, byte o in bits 8(o % 4) up of word o / 4 (as
// little-endian memory lays them). Kernels run through their wrappers on the CPU driver made to look as if it listed
// f16 x f16 -> f32 and f32 x f32 -> f32 16 x 16 x 16 configurations, i8 x i8 -> i32 16 x 16 x 32, and subgroups of 32
// (SG), which need no subgroup operations: each emulated lane is a thread like any other.
import { afterAll, beforeAll, expect } from "vitest";
import { create } from "webgpu";
import { SUBGROUP_MATRIX_FEATURE } from "../engine/device.js";
import { runtime } from "../engine/runtime.js";

// Dawn's null backend, which offers subgroup matrices behind allow_unsafe_apis and compiles WGSL (Tint) without a
// GPU: `errors(code, label)` lists the compile errors of `code` as "label: line:column message".
export async function nullBackendCompiler(): Promise<{ errors: (code: string, label: string) => Promise<string[]>; destroy: () => void }> {
  const gpu = create(["backend=null", "enable-dawn-features=allow_unsafe_apis"]);
  const adapter = await gpu.requestAdapter();
  expect(adapter?.features.has(SUBGROUP_MATRIX_FEATURE)).toBe(true);
  const device = await adapter!.requestDevice({ requiredFeatures: [SUBGROUP_MATRIX_FEATURE, "shader-f16", "subgroups"] as GPUFeatureName[] });
  const errors = async (code: string, label: string) =>
    (await device.createShaderModule({ code }).getCompilationInfo()).messages.filter((m) => m.type === "error").map((m) => `${label}: ${m.lineNum}:${m.linePos} ${m.message}`);
  // destroy() holds gpu, Dawn's instance, until the caller is done: collected while its device lives, Dawn can crash.
  return {
    errors,
    destroy: () => {
      device.destroy();
      void gpu;
    },
  };
}

const FRAG = 16;
const I8_K = 32;
// The subgroup size the kernels are made for: NVIDIA's 32. Their slabs' staging then takes a quarter of the loads per
// thread it takes at llvmpipe's 8, and llvmpipe compiles the emulated kernels 1.5-7x faster (matmul's f16 and f32
// cases 437 s -> 59 s with Mesa's shader cache off, attention's 99 s -> 64 s, the int8 kernel ~15 s -> ~4 s).
const SG = 32;
const PER_LANE = (FRAG * FRAG) / SG;

// A kernel's workgroup arrays where left and right fragments are loaded from, and a uniform u32 expression the
// compiler cannot see through (see `bound` below). Results go where the kernel stores them.
export interface EmulatedArrays {
  left: string;
  right: string;
  uniform: string;
}

// Loops with constant bounds get `min(bound, uniform + bound)` instead: unrolled, llvmpipe took minutes to compile
// one pipeline. i8: fragments of 16 x 32 bytes and 32 x 16 into i32.
function emulation(a: EmulatedArrays, i8: boolean, stores: string[]): string {
  const bound = (n: number) => `min(${n}u, ${a.uniform} + ${n}u)`;
  // An element's index in the array (its byte with i8: rows or columns start at words, their elements are bytes).
  const w = i8 ? "4u * " : "";
  const at = (m: string, row: string, col: string) => `select(${w}(${m}.x + ${row} * ${m}.y) + ${col}, ${w}(${m}.x + ${col} * ${m}.y) + ${row}, ${m}.z == 1u)`;
  const [T, K] = i8 ? ["i32", I8_K] : ["f32", FRAG];
  const element = (array: string, o: string) => (i8 ? `extractBits(${array}[(${o}) / 4u], (${o}) % 4u * 8u, 8u)` : `f32(${array}[${o}])`);
  return /* wgsl */ `
fn emuLoad(offset: u32, stride: u32, colMajor: bool) -> vec3<u32> { return vec3<u32>(offset, stride, select(0u, 1u, colMajor)); }
fn emuMma(lane: u32, l: vec3<u32>, r: vec3<u32>, acc: ptr<function, array<${T}, ${PER_LANE}>>) {
  for (var q = 0u; q < ${bound(PER_LANE)}; q++) {
    let e = lane + q * ${SG}u;
    let i = e / ${FRAG}u;
    let j = e % ${FRAG}u;
    var sum = (*acc)[q];
    for (var k = 0u; k < ${bound(K)}; k++) { sum += ${element(a.left, at("l", "i", "k"))} * ${element(a.right, at("r", "k", "j"))}; }
    (*acc)[q] = sum;
  }
}
${stores.map((target) => `
fn emuStore_${target}(lane: u32, offset: u32, m: array<${T}, ${PER_LANE}>, stride: u32) {
  for (var q = 0u; q < ${bound(PER_LANE)}; q++) {
    let e = lane + q * ${SG}u;
    ${target}[offset + (e / ${FRAG}u) * stride + e % ${FRAG}u] = m[q];
  }
}`).join("")}`;
}

function emulated(code: string, a: EmulatedArrays): string {
  const i8 = code.includes("subgroup_matrix_left<i8");
  const body = code
    .replace("enable chromium_experimental_subgroup_matrix;", "")
    .replace("diagnostic(off, chromium.subgroup_matrix_uniformity);", "")
    .replace(/subgroup_matrix_result<(f32|i32), 16, 16>\(\)/g, (_, T) => `array<${T}, ${PER_LANE}>()`)
    .replace(/subgroupMatrixLoad<subgroup_matrix_(?:left|right)<(?:f16|f32|i8), \d+, \d+>, (row|col)_major>\(&\w+, (.*?), (\w+)\)/g, (_, major, offset, stride) => `emuLoad(${offset}, ${stride}, ${major === "col"})`)
    .replace(/(\w+) = subgroupMatrixMultiplyAccumulate\((.*), \1\);/g, "emuMma(lane, $2, &$1);") // in place: no array copies to compile
    .replace(/subgroupMatrixStore<row_major>\(&(\w+), (.*?), (\w+), (\w+)\);/g, "emuStore_$1(lane, $2, $3, $4);")
    .replace(/for \(var (\w+) = ([\w.]+); \1 < (\d+)u;/g, `for (var $1 = $2; $1 < min($3u, ${a.uniform} + $3u);`);
  expect(body).not.toMatch(/subgroupMatrix|subgroup_matrix/);
  const stores = [...new Set([...code.matchAll(/subgroupMatrixStore<row_major>\(&(\w+),/g)].map((m) => m[1]))];
  return `${body}\n${emulation(a, i8, stores)}`;
}

// Matmul's arrays for either of its tensor-core kinds: the int8 versions stage both operands in Ws, the mma ones in
// As and Bs (kernels/matmul-mma.ts).
export const MATMUL_ARRAYS = (spec: Record<string, unknown>): EmulatedArrays =>
  spec.slices ? { left: "Ws", right: "Ws", uniform: "p.M" } : { left: "As", right: "Bs", uniform: "p.M" };

const arraysOf = (a: EmulatedArrays | ((spec: Record<string, unknown>) => EmulatedArrays), spec: Record<string, unknown>) => (typeof a === "function" ? a(spec) : a);

// For the calling test file: the adapter made to list 16 x 16 x 16 configurations of f16 and f32 into f32, 16 x 16 x
// 32 of i8 into i32 and subgroups of SG, and every pipeline whose spec names a fragment (the mma kernels) built from
// its emulated WGSL, with the arrays `arrays[kernel name]` (or those it gives for the spec). Only where the adapter
// has shader-f16 (the emulated f16 kernels need it).
export function useEmulatedSubgroupMatrices(arrays: Record<string, EmulatedArrays | ((spec: Record<string, unknown>) => EmulatedArrays)>): void {
  let restore = () => {};
  beforeAll(() => {
    if (!runtime().gpu.features.has("shader-f16")) return;
    const rt = runtime();
    const gpu = rt.gpu;
    const saved = { configs: gpu.subgroupMatrixConfigs, size: gpu.subgroupMaxSize, get: rt.pipelines.get };
    gpu.subgroupMatrixConfigs = ["f16", "f32"].map((componentType) => ({ componentType, resultComponentType: "f32", M: FRAG, N: FRAG, K: FRAG }));
    gpu.subgroupMatrixConfigs.push({ componentType: "i8", resultComponentType: "i32", M: FRAG, N: FRAG, K: I8_K });
    gpu.subgroupMaxSize = SG;
    const get = saved.get.bind(rt.pipelines);
    rt.pipelines.get = ((name: string, spec: Record<string, string | number | boolean>, wgsl: (s: typeof spec) => string) =>
      spec.fragment ? get(name, { ...spec, emulated: true }, (s) => emulated(wgsl(s), arraysOf(arrays[name], s))) : get(name, spec, wgsl)) as typeof rt.pipelines.get;
    restore = () => {
      gpu.subgroupMatrixConfigs = saved.configs;
      gpu.subgroupMaxSize = saved.size;
      rt.pipelines.get = saved.get;
    };
  });
  afterAll(() => restore());
}
