// The kernel families as values and their one resolver (kernels/registry.ts): the version names and shape keys,
// precedence for every family (explicit > PEFT_<FAMILY> > tuning cache > default), errors naming the variable,
// availability (rows' subgroup, attention's unfused), the defaults, and tracing (engine/trace.ts): look-ups recorded
// with their shapes, nothing dispatched, and the trace always closed.
import { describe, expect, it } from "vitest";
import { runtime } from "../../engine/runtime.js";
import { KERNEL_FAMILIES } from "../../engine/settings.js";
import { Tensor } from "../../engine/tensor.js";
import { reloadTuneCache, storeTuned } from "../../engine/tuning.js";
import { traceDry, tracing } from "../../engine/trace.js";
import {
  ATTENTION,
  FAMILIES,
  type Family,
  KNN,
  MATMUL,
  ROWS,
  availableVersions,
  familyNamed,
  resolveVersion,
} from "../../kernels/registry.js";
import { matmulForward } from "../../kernels/matmul.js";
import { softmaxForward } from "../../kernels/softmax.js";
import { useEmptyTuneCache, useEngine } from "../helpers.js";

useEngine();

useEmptyTuneCache();

const force = (family: string, value: string) => {
  runtime().settings.versions[family] = { value, variable: `PEFT_${family.toUpperCase()}` };
};
const entry = (version: string) => ({ version, ms: 1, candidates: { [version]: 1 } });

// One shape of each family, its key as the tuning caches written so far have it, and its look-ups.
function sample<S extends object, V extends string>(family: Family<S, V>, shape: S, key: string) {
  return {
    family: family as unknown as Family<object>,
    shape,
    key,
    resolve: (explicit?: string) => resolveVersion(family, shape, explicit),
    fallback: () => family.defaultVersion(shape, runtime().gpu),
  };
}
const SAMPLES = [
  sample(MATMUL, { M: 37, K: 23, N: 11, transA: false, transB: true, batch: 1 }, "37x23x11/nt/b1"),
  sample(ROWS, { op: "layernorm", rows: 7, C: 13 }, "layernorm/7x13"),
  sample(ATTENTION, { B: 2, N: 5, H: 3, D: 8 }, "2x3x5x8"),
  sample(KNN, { Q: 37, N: 101, D: 5, K: 10, normalize: true }, "37x101x5/k10/cos"),
];

describe("the families", () => {
  it("name their versions by the kernel's shape, one scheme for all", () => {
    expect(Object.keys(FAMILIES)).toEqual(["matmul", "rows", "attention", "knn"]);
    expect(MATMUL.versions).toEqual(["reg4x8", "reg8x8", "reg8x16", "reg16x8", "reg16x16", "reg32x8", "regm8x16", "regm16x16", "tiled", "tiled128", "tiledvec", "tiled128vec", "mma64", "mma128", "mma64i8", "mma128i8"]);
    expect(ROWS.versions).toEqual(["lane", "tree", "subgroup"]);
    expect(ATTENTION.versions).toEqual(["reg", "tiled", "mma", "unfused"]);
    expect(KNN.versions).toEqual(["reg4x2", "reg8x1", "reg2x4", "wide4x1", "reg16x4"]);
    for (const name of Object.keys(FAMILIES)) expect(familyNamed(name).name).toBe(name);
    expect(() => familyNamed("conv")).toThrow('kernels: expected a kernel family (matmul, rows, attention, knn), got "conv"');
  });

  it("keep the shape keys of earlier tuning caches, and count a shape's work", () => {
    for (const s of SAMPLES) expect(s.family.key(s.shape)).toBe(s.key);
    expect(MATMUL.key({ M: 6304, K: 384, N: 1536, transA: false, transB: true, batch: 1, gelu: true })).toBe("6304x384x1536/nt/b1/gelu");
    expect(MATMUL.key({ M: 6304, K: 384, N: 1536, transA: false, transB: true, batch: 1, inputs: "f16" })).toBe("6304x384x1536/nt/b1/f16");
    expect(MATMUL.key({ M: 6304, K: 384, N: 1536, transA: false, transB: true, batch: 1, inputs: "f32" })).toBe("6304x384x1536/nt/b1");
    expect(MATMUL.key({ M: 6304, K: 384, N: 1536, transA: false, transB: true, batch: 1, inputs: "int8x2" })).toBe("6304x384x1536/nt/b1/int8x2");
    expect(ATTENTION.key({ B: 8, N: 197, H: 6, D: 64 })).toBe("8x6x197x64");
    expect(MATMUL.work({ M: 2, K: 3, N: 5, transA: false, transB: false, batch: 7 })).toBe(2 * 7 * 2 * 3 * 5);
    expect(ROWS.work({ op: "softmax", rows: 3, C: 10 })).toBe(5 * 30 * 4);
    expect(ATTENTION.work({ B: 2, N: 5, H: 3, D: 8 })).toBe(14 * 2 * 3 * 25 * 8);
    expect(KNN.work({ Q: 4, N: 100, D: 8, K: 1, normalize: false })).toBe(2 * 4 * 100 * 8);
    expect([MATMUL.unit, ROWS.unit, ATTENTION.unit, KNN.unit]).toEqual(["FLOP", "byte", "FLOP", "FLOP"]);
  });

  it("default by adapter: rows lane on CPU drivers and tree on GPUs; knn reg16x4 and wide4x1", () => {
    const cpu = { ...runtime().gpu, isCpu: true };
    const gpu = { ...runtime().gpu, isCpu: false };
    const rows = { op: "softmax" as const, rows: 9, C: 9 };
    expect([ROWS.defaultVersion(rows, cpu), ROWS.defaultVersion(rows, gpu)]).toEqual(["lane", "tree"]);
    const knn = { Q: 1, N: 1, D: 1, K: 1, normalize: false };
    expect([KNN.defaultVersion(knn, cpu), KNN.defaultVersion(knn, gpu)]).toEqual(["reg16x4", "wide4x1"]);
  });

  it("default attention: unfused on CPU drivers past 64 tokens while the scores fit one binding, else reg; tiled on GPUs", () => {
    const limits = { maxStorageBufferBindingSize: 2 ** 27 } as GPUSupportedLimits;
    const cpu = { ...runtime().gpu, isCpu: true, limits };
    const vitS = { B: 8, N: 197, H: 6, D: 64 };
    expect(ATTENTION.defaultVersion(vitS, cpu)).toBe("unfused");
    expect(ATTENTION.defaultVersion({ ...vitS, N: 64 }, cpu)).toBe("reg");
    expect(ATTENTION.defaultVersion({ ...vitS, B: 200 }, cpu)).toBe("reg"); // 200·6·197² floats: 186 MB
    expect(ATTENTION.defaultVersion(vitS, { ...cpu, isCpu: false })).toBe("tiled");
  });
});

describe("resolveVersion", () => {
  for (const s of SAMPLES) {
    it(`${s.family.name}: explicit > PEFT_${s.family.name.toUpperCase()} > the tuned version for the exact shape > the default`, async () => {
      const fallback = s.fallback();
      const other = availableVersions(s.family, s.shape).find((v) => v !== fallback)!;
      expect(s.resolve()).toBe(fallback);
      await storeTuned({ [`${s.family.name}/${s.key}`]: entry(other) });
      reloadTuneCache();
      expect(s.resolve()).toBe(other);
      force(s.family.name, fallback);
      expect(s.resolve()).toBe(fallback);
      expect(s.resolve(other)).toBe(other);
      delete runtime().settings.versions[s.family.name];
      runtime().settings.tune = false;
      expect(s.resolve()).toBe(fallback);
    });
  }

  it("refuses a forced or explicit version the family lacks, naming the variable or the family", () => {
    for (const s of SAMPLES) {
      const name = s.family.name;
      force(name, "4");
      expect(() => s.resolve()).toThrow(`PEFT_${name.toUpperCase()}: expected one of ${s.family.versions.join(", ")}, got "4"`);
      delete runtime().settings.versions[name];
      expect(() => s.resolve("4")).toThrow(`${name}: expected one of ${s.family.versions.join(", ")}, got "4"`);
    }
    force("rows", "4");
    expect(() => softmaxForward(Tensor.fromArray([1, 2], [1, 2]))).toThrow('PEFT_ROWS: expected one of lane, tree, subgroup, got "4"');
  });

  it("has exactly the families a PEFT_<FAMILY> may force: the settings refuse any other PEFT_ name", () => {
    expect(Object.keys(FAMILIES)).toEqual([...KERNEL_FAMILIES]);
  });

  it("rows: subgroup only where the adapter has subgroups; a tuned one is ignored, a forced one refused", async () => {
    const { gpu } = runtime();
    const had = gpu.features.delete("subgroups");
    const shape = { op: "layernorm" as const, rows: 7, C: 13 };
    try {
      expect(availableVersions(ROWS, shape)).toEqual(["lane", "tree"]);
      await storeTuned({ "rows/layernorm/7x13": entry("subgroup") });
      reloadTuneCache();
      expect(resolveVersion(ROWS, shape)).toBe(ROWS.defaultVersion(shape, gpu));
      force("rows", "subgroup");
      expect(() => resolveVersion(ROWS, shape)).toThrow(/^PEFT_ROWS: "subgroup" needs the adapter's "subgroups" feature, which .* lacks$/);
    } finally {
      if (had) gpu.features.add("subgroups");
    }
  });

  it("attention: unfused only where the scores (B·H, N, N) fit one binding; a tuned one is ignored, an explicit one refused", async () => {
    const limit = runtime().gpu.limits.maxStorageBufferBindingSize;
    const shape = { B: Math.ceil(limit / (4 * 1024 * 1024)) + 1, N: 1024, H: 1, D: 4 };
    expect(availableVersions(ATTENTION, shape)).toEqual(["reg", "tiled"]);
    expect(availableVersions(ATTENTION, { ...shape, B: 1 })).toEqual(["reg", "tiled", "unfused"]);
    await storeTuned({ [`attention/${ATTENTION.key(shape)}`]: entry("unfused") });
    reloadTuneCache();
    expect(resolveVersion(ATTENTION, shape)).toBe(ATTENTION.defaultVersion(shape, runtime().gpu));
    expect(() => resolveVersion(ATTENTION, shape, "unfused")).toThrow(/^attention: "unfused" needs the scores \(B·H, N, N\) in one binding/);
  });
});

describe("tracing", () => {
  const a = () => Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = () => Tensor.fromArray([1, 2, 3, 4, 5, 6], [3, 2]);

  it("records each look-up with its family, key and shape, in order, and dispatches nothing", () => {
    const { batch } = runtime();
    const [x, y] = [a(), b()];
    const before = batch.stats.dispatches;
    const lines: string[] = [];
    batch.log = (line) => lines.push(line);
    let seen;
    try {
      seen = traceDry(() => {
        matmulForward(x, y).dispose();
        softmaxForward(x, "tree").dispose();
      });
    } finally {
      batch.log = undefined;
    }
    expect(seen).toEqual([
      { family: "matmul", key: "2x3x2/nn/b1", shape: { M: 2, K: 3, N: 2, transA: false, transB: false, batch: 1, gelu: false, inputs: "f32" } },
      { family: "rows", key: "softmax/2x3", shape: { op: "softmax", rows: 2, C: 3 } },
    ]);
    expect(batch.stats.dispatches).toBe(before);
    expect(lines).toEqual([]);
    expect(tracing()).toBe(false);
  });

  it("ends when the traced work throws, refuses nesting, and later work dispatches and records nothing", async () => {
    const { batch } = runtime();
    const [x, y] = [a(), b()];
    expect(() => traceDry(() => { throw new Error("boom"); })).toThrow("boom");
    expect(tracing()).toBe(false);
    expect(() => traceDry(() => void traceDry(() => {}))).toThrow("trace: expected no trace in progress, got a nested traceDry");
    expect(tracing()).toBe(false);
    const before = batch.stats.dispatches;
    const z = matmulForward(x, y);
    expect(batch.stats.dispatches).toBeGreaterThan(before);
    expect(Array.from(await z.data())).toEqual([22, 28, 49, 64]);
  });
});
