// Command batching: dispatches share one submit, and WebGPU errors surface as thrown errors carrying Dawn's
// message and the kernel's name.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { runtime } from "../../engine/runtime.js";
import { getKernel } from "../../engine/pipeline.js";
import * as ops from "../../engine/ops.js";
import { useEngine } from "../helpers.js";

useEngine();

describe("batch", () => {
  it("encodes many ops into one submit and submits only on read-back", async () => {
    const { batch } = runtime();
    batch.submit();
    const before = { ...batch.stats };
    let x = Tensor.fromArray([1, 2, 3], [3]);
    for (let i = 0; i < 20; i++) x = ops.addScalar(x, 1);
    expect(batch.stats.submits).toBe(before.submits);
    expect(batch.stats.dispatches - before.dispatches).toBe(20);
    expect(Array.from(await x.data())).toEqual([21, 22, 23]);
    expect(batch.stats.submits).toBe(before.submits + 1);
  });

  it("a validation error names the kernel and carries Dawn's message", async () => {
    const kernel = getKernel("broken-binding", { n: 1 }, () => `
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = x[0]; }`);
    const y = Tensor.empty([1]);
    // Binding 2 is missing: the bind group does not match the pipeline's layout.
    runtime().batch.dispatch(kernel, [y.buffer], undefined, [1]);
    await expect(y.data()).rejects.toThrow(/WebGPU error during kernels broken-binding\/n=1[\s\S]*BindGroup/);
  });

  it("a shader that does not compile is reported with line:column and its WGSL", async () => {
    const kernel = getKernel("broken-wgsl", { n: 2 }, () => `
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = undefined_name; }`);
    const y = Tensor.empty([1]);
    runtime().batch.dispatch(kernel, [y.buffer], undefined, [1]);
    const err = await y.data().then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/broken-wgsl\/n=2/);
    // The compiler's messages arrive asynchronously: they are thrown at the latest by the next read-back.
    const later = await Tensor.fromArray([1], [1]).data().then(() => "", (e: Error) => e.message);
    expect(`${err?.message}\n${later}`).toMatch(/broken-wgsl\/n=2 3:\d+: .*undefined_name[\s\S]*--- WGSL of broken-wgsl/);
  });
});
