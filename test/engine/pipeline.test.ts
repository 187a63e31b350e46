// Bind groups: on GPUs made once per kernel, buffers and uniform slot, then reused across batches (forced here on
// any device); each dispatch still reads its own uniform values. CPU drivers make one per dispatch.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { runtime, getKernel } from "../../engine/runtime.js";
import { specLabel } from "../../engine/pipeline.js";
import { packUniform, uniformStruct } from "../../kernels/wgsl.js";
import { useEngine } from "../helpers.js";

useEngine();

describe("bind groups", () => {
  // y[i] = p.v for i < 4.
  const FIELDS = { v: "f32" } as const;
  const kernel = () =>
    getKernel("pipeline-probe", { n: 1 }, () => `
${uniformStruct(FIELDS)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) { y[i] = p.v; }`);

  it("are reused for the same buffers and uniform slot, and each dispatch reads its own uniform", async () => {
    const { batch, gpu } = runtime();
    expect(batch.reuseBindGroups).toBe(!gpu.isCpu);
    const k = kernel();
    const reuse = batch.reuseBindGroups;
    batch.reuseBindGroups = true;
    try {
      const outs = [Tensor.empty([4]), Tensor.empty([4])];
      const run = (base: number) => {
        // Four dispatches into two buffers: the later value of each buffer must win, read from its own uniform slot.
        for (let i = 0; i < 4; i++) batch.dispatch(k, [outs[i % 2].buffer], packUniform(FIELDS, { v: base + i }), [1]);
      };
      run(10);
      expect(Array.from(await outs[0].data())).toEqual([12, 12, 12, 12]);
      expect(Array.from(await outs[1].data())).toEqual([13, 13, 13, 13]);
      const groups = k.groups.size;
      expect(groups).toBe(4);
      run(20); // a batch of its own: the same buffers, uniform page and slots
      expect(Array.from(await outs[0].data())).toEqual([22, 22, 22, 22]);
      expect(Array.from(await outs[1].data())).toEqual([23, 23, 23, 23]);
      expect(k.groups.size).toBe(groups);
      const other = Tensor.empty([4]);
      batch.dispatch(k, [other.buffer], packUniform(FIELDS, { v: 7 }), [1]);
      expect(Array.from(await other.data())).toEqual([7, 7, 7, 7]);
      expect(k.groups.size).toBe(groups + 1);
      for (const t of [...outs, other]) t.dispose();
    } finally {
      batch.reuseBindGroups = reuse;
    }
  });

  it("are made per dispatch when not reused", async () => {
    const { batch } = runtime();
    const reuse = batch.reuseBindGroups;
    batch.reuseBindGroups = false;
    try {
      const k = getKernel("pipeline-probe", { n: 2 }, () => `
${uniformStruct(FIELDS)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) { y[i] = p.v; }`);
      const y = Tensor.empty([4]);
      batch.dispatch(k, [y.buffer], packUniform(FIELDS, { v: 5 }), [1]);
      expect(Array.from(await y.data())).toEqual([5, 5, 5, 5]);
      expect(k.groups.size).toBe(0);
      y.dispose();
    } finally {
      batch.reuseBindGroups = reuse;
    }
  });
});

describe("specLabel", () => {
  it("names the kernel, its version, then what is on: flags by their key, other values as key=value, keys sorted", () => {
    const spec = { version: "reg16x8", transB: true, bias: true, gelu: false, slices: 0, fragment: "", d: 32, pass: "forward" };
    expect(specLabel("matmul", spec)).toBe("matmul reg16x8 bias,d=32,pass=forward,transB");
    expect(specLabel("copy", { per: 4, vec4: false })).toBe("copy per=4");
    expect(specLabel("matmul-gather", {})).toBe("matmul-gather");
  });
  it("is what a dispatch of the kernel is profiled as", () => {
    const k = getKernel("pipeline-label-probe", { n: 1, odd: false, version: "v2" }, () => "@compute @workgroup_size(1) fn main() {}");
    expect(k.label).toBe("pipeline-label-probe v2 n=1");
    expect(k.key).toBe("pipeline-label-probe/n=1,odd=false,version=v2");
  });
});
