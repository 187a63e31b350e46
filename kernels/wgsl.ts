// Shared pieces of WGSL and of the per-call uniform structs used by every kernel module.

// Largest workgroup count per grid dimension that every adapter supports.
export const MAX_GROUPS = 65535;

// A 1-D launch of `groups` workgroups folded into (x, y) so that x stays within MAX_GROUPS.
// In WGSL, `flatGroup(wid, nwg)` recovers the linear workgroup index.
export function grid1d(groups: number): [number, number] {
  if (groups <= MAX_GROUPS) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y];
}

export const FLAT_GROUP = /* wgsl */ `
fn flatGroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }`;

// The entry point `main` of a kernel launched on a grid1d grid, up to its opening brace: wid, nwg and lid in
// scope. The caller writes the body and the closing brace; the module must include FLAT_GROUP.
export function mainEntry(wg: number): string {
  return /* wgsl */ `@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {`;
}

// The invocation's linear index on a grid1d grid of workgroups of `wg` lanes.
export function flatIndex(wg: number): string {
  return `flatGroup(wid, nwg) * ${wg}u + lid.x`;
}

// The scalar path of an invocation that owns group g of 4 columns (when a row is not vec4-aligned): `c` runs over
// the group's columns and the invocation returns at `end`, the row's last column + 1. `body` is indented 4 spaces.
export function eachColumnOfGroup(end: string, body: string): string {
  return `  for (var j = 0u; j < 4u; j++) {
    let c = g * 4u + j;
    if (c >= ${end}) { return; }
${body}
  }`;
}

// mainEntry for one invocation per item: `let <index>` is the linear index, and invocations past `count` (a WGSL
// u32 expression) return at once, since a folded grid overshoots the item count.
export function flatMain(wg: number, count: string, index = "t"): string {
  return `${mainEntry(wg)}
  let ${index} = ${flatIndex(wg)};
  if (${index} >= ${count}) { return; }`;
}

// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26), enough for f32 and PyTorch's exact GELU.
// 0, 1, ..., n - 1: the indices a generator unrolls over (rows, vec4 columns).
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

export const ERF = erfFunction("f32");

// erf on `type`: f32, or a vector of f32 (every operation is component-wise).
export function erfFunction(type: string): string {
  return /* wgsl */ `
fn erf(x: ${type}) -> ${type} {
  let s = sign(x);
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-z * z);
  return s * y;
}`;
}

// Uniform structs: a flat list of u32/f32 fields, each 4 bytes, in declaration order.
// `uniformStruct(fields)` gives the WGSL declaration bound at @group(0) @binding(0) as `p`;
// `packUniform(fields, values)` gives the matching bytes. Arrays of u32 are declared as vec4<u32> groups.
export type UniformFields = Record<string, "u32" | "f32" | "i32">;

export function uniformStruct(fields: UniformFields): string {
  const members = Object.entries(fields).map(([name, type]) => `  ${name}: ${type},`);
  // Pad to a multiple of 16 bytes, as uniform structs require.
  const pad = (4 - (members.length % 4)) % 4;
  for (let i = 0; i < pad; i++) members.push(`  _pad${i}: u32,`);
  return `struct Params {\n${members.join("\n")}\n};\n@group(0) @binding(0) var<uniform> p: Params;`;
}

export function packUniform(fields: UniformFields, values: Record<string, number>): ArrayBuffer {
  const names = Object.keys(fields);
  const buf = new ArrayBuffer(Math.ceil(names.length / 4) * 16 || 16);
  const view = new DataView(buf);
  names.forEach((name, i) => {
    const v = values[name];
    if (v === undefined) throw new Error(`uniform: expected a value for "${name}", got none`);
    const type = fields[name];
    if (type === "f32") view.setFloat32(i * 4, v, true);
    else if (type === "i32") view.setInt32(i * 4, v, true);
    else {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`uniform: expected "${name}" a u32, got ${v}`);
      view.setUint32(i * 4, v, true);
    }
  });
  return buf;
}

// Storage buffer declarations from @binding(1) on, in the order the wrapper passes buffers.
export function storageBindings(bindings: [name: string, type: string, access: "read" | "read_write"][]): string {
  return bindings
    .map(([name, type, access], i) => `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: ${type};`)
    .join("\n");
}
