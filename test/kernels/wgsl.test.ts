// The WGSL snippet helpers: the entry point every 1-D kernel shares, flatMain's bounds return, the 4-column loop.
import { describe, expect, it } from "vitest";
import { eachColumnOfGroup, flatIndex, flatMain, mainEntry, packUniform } from "../../kernels/wgsl.js";

describe("WGSL snippets", () => {
  it("mainEntry declares main with the workgroup size and the builtins flatGroup needs", () => {
    expect(mainEntry(64)).toBe(
      "@compute @workgroup_size(64)\n" +
        "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n" +
        "        @builtin(local_invocation_id) lid: vec3<u32>) {",
    );
  });
  it("flatMain names the linear index and returns past the count", () => {
    expect(flatIndex(32)).toBe("flatGroup(wid, nwg) * 32u + lid.x");
    expect(flatMain(32, "p.n * 2u", "e")).toBe(`${mainEntry(32)}\n  let e = flatGroup(wid, nwg) * 32u + lid.x;\n  if (e >= p.n * 2u) { return; }`);
    expect(flatMain(8, "p.count")).toContain("let t = flatGroup(wid, nwg) * 8u + lid.x;\n  if (t >= p.count) { return; }");
  });
  it("eachColumnOfGroup loops over group g's 4 columns and returns at the row's end", () => {
    expect(eachColumnOfGroup("p.cols", "    y[c] = 0u;")).toBe(
      "  for (var j = 0u; j < 4u; j++) {\n    let c = g * 4u + j;\n    if (c >= p.cols) { return; }\n    y[c] = 0u;\n  }",
    );
  });
});

describe("packUniform", () => {
  it("refuses a missing value and a u32 field that is no u32, naming the field", () => {
    const fields = { n: "u32", scale: "f32" } as const;
    expect(() => packUniform(fields, { n: 3 })).toThrow('uniform: expected a value for "scale", got none');
    expect(() => packUniform(fields, { n: -1, scale: 1 })).toThrow('uniform: expected "n" a u32, got -1');
    expect(() => packUniform(fields, { n: 2 ** 32, scale: 1 })).toThrow('uniform: expected "n" a u32, got 4294967296');
    expect(() => packUniform(fields, { n: 1.5, scale: 1 })).toThrow('uniform: expected "n" a u32, got 1.5');
  });
});
