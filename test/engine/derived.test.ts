// Derived tensors (engine/derived.ts) are dropped, and disposed, at every way the engine writes their source
// buffer: a dispatch's read_write binding, a copy's destination, Tensor.write, the storage's release. A dispatch
// that only reads the buffer keeps them.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { getKernel, runtime } from "../../engine/runtime.js";
import { writableBindings } from "../../engine/pipeline.js";
import { useEngine } from "../helpers.js";

useEngine();

// y[i] = x[i] + 1 for i < 4: binding 1 written, binding 2 read.
const kernel = () =>
  getKernel("derived-probe", {}, () => `
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) { y[i] = x[i] + 1.0; }`);

describe("derived tensors", () => {
  const setup = () => {
    const source = Tensor.fromArray([1, 2, 3, 4], [4]);
    const derived = Tensor.fromArray([5, 6, 7, 8], [4]);
    runtime().derived.set(source.buffer, "probe", derived.keep());
    return { source, derived };
  };
  const held = (source: Tensor) => runtime().derived.get(source.buffer, "probe");

  it("are kept while the source is only read, and disposed when a dispatch writes it", async () => {
    const { batch } = runtime();
    const { source, derived } = setup();
    const other = Tensor.empty([4]);
    batch.dispatch(kernel(), [other.buffer, source.buffer], undefined, [1]);
    expect(held(source)).toBe(derived);
    batch.dispatch(kernel(), [source.buffer, other.buffer], undefined, [1]);
    expect(held(source)).toBeUndefined();
    expect(derived.isDisposed).toBe(true);
    expect(Array.from(await source.data())).toEqual(Array.from(await other.data()).map((v) => v + 1));
    source.dispose();
    other.dispose();
  });

  it("are disposed by a copy into the source, by Tensor.write and by the source's release", () => {
    const { batch } = runtime();
    for (const write of [
      (s: Tensor) => batch.copy(Tensor.empty([4]).buffer, 0, s.buffer, 0, 16),
      (s: Tensor) => s.write(new Float32Array(4)),
      (s: Tensor) => s.dispose(),
    ]) {
      const { source, derived } = setup();
      const view = source.reshape([2, 2]); // a view keeps the storage: its disposal is not a release
      view.dispose();
      expect(held(source)).toBe(derived);
      const buffer = source.buffer;
      write(source);
      expect(derived.isDisposed).toBe(true);
      expect(runtime().derived.get(buffer, "probe")).toBeUndefined();
      source.dispose();
    }
  });

  it("replace an earlier tensor under the same key, disposing it", () => {
    const { source, derived } = setup();
    const next = Tensor.fromArray([0, 0, 0, 0], [4]);
    runtime().derived.set(source.buffer, "probe", next.keep());
    expect(derived.isDisposed).toBe(true);
    expect(held(source)).toBe(next);
    source.dispose();
    expect(next.isDisposed).toBe(true);
  });
});

describe("writableBindings", () => {
  it("lists the read_write storage bindings as buffer-list indices", () => {
    const code = `@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage,read_write> z: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> w: array<f32>; // not read_write`;
    expect(writableBindings(code)).toEqual([0, 2]);
  });
});
