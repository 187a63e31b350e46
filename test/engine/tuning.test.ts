// The tuning cache (engine/tuning.ts) and the version choosers that consult it (kernels/matmul.ts chooseVersion,
// kernels/rows.ts defaultRowVersion, kernels/attention.ts pickVersion): round trip, precedence, PEFT_TUNE=0,
// corrupt files, and that a matmul and attention actually dispatch the tuned version (checked through the DEBUG=1
// dispatch log and against the CPU reference: matmul atol 1e-4 + rtol 1e-4 for K = 23 sums in f32; attention
// atol 2e-5 + rtol 1e-4, as test/kernels/attention.test.ts).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { runtime, warnings } from "../../engine/runtime.js";
import type { Settings } from "../../engine/settings.js";
import { Tensor } from "../../engine/tensor.js";
import {
  adapterKey,
  attentionShapeKey,
  clearTuneCache,
  matmulShapeKey,
  reloadTuneCache,
  rowShapeKey,
  storeTuned,
  tuneCachePath,
  tunedVersion,
} from "../../engine/tuning.js";
import { type MatmulDims, chooseVersion, defaultVersion, matmulForward } from "../../kernels/matmul.js";
import { attentionBackward, attentionForward, pickVersion as attentionVersion } from "../../kernels/attention.js";
import { defaultRowVersion } from "../../kernels/rows.js";
import { expectClose, randn, useEngine } from "../helpers.js";
import { matmulRef } from "../ref/matmul.js";
import { attentionBackwardRef, attentionRef } from "../ref/attention.js";

useEngine();

let saved: Settings;
let dir: string;

beforeEach(() => {
  const { settings } = runtime();
  saved = structuredClone(settings);
  dir = mkdtempSync(join(tmpdir(), "tune-test-"));
  Object.assign(settings, { tuneCacheDir: dir, tune: true, versions: {} });
  reloadTuneCache();
});

afterEach(() => {
  Object.assign(runtime().settings, saved);
  runtime().batch.log = undefined;
  rmSync(dir, { recursive: true, force: true });
  reloadTuneCache();
});

const force = (family: string, value: string) => {
  runtime().settings.versions[family] = { value, variable: `PEFT_${family.toUpperCase()}` };
};

// Starts collecting the DEBUG=1 dispatch log; the returned array fills as kernels dispatch.
const dispatchLog = (): string[] => {
  const lines: string[] = [];
  runtime().batch.log = (line) => lines.push(line);
  return lines;
};

const entry = (version: string) => ({ version, ms: 1, candidates: { [version]: 1, other: 2 } });
// A matmul shape no model runs, tuned to a version that is the default on neither kind of device.
const DIMS: MatmulDims = { M: 37, K: 23, N: 11, transA: false, transB: true, batch: 1 };
const KEY = matmulShapeKey(DIMS.M, DIMS.K, DIMS.N, DIMS.transA, DIMS.transB, DIMS.batch);
const deviceDefault = () => defaultVersion(DIMS);

describe("cache file", () => {
  it("lives in the settings' cache folder, named by a hash of the adapter", () => {
    expect(dirname(tuneCachePath())).toBe(dir);
    expect(basename(tuneCachePath())).toMatch(/^tune-[0-9a-f]{16}\.json$/);
    expect(tuneCachePath("another adapter")).not.toBe(tuneCachePath());
  });

  it("round trip: store, reload, merge, clear", async () => {
    const path = await storeTuned({ [`matmul/${KEY}`]: entry("reg4x8") });
    expect(path).toBe(tuneCachePath());
    const file = JSON.parse(readFileSync(path, "utf8"));
    expect(file.adapter).toBe(adapterKey());
    expect(Number.isNaN(Date.parse(file.created))).toBe(false);
    expect(file.entries[`matmul/${KEY}`]).toEqual(entry("reg4x8"));
    expect(readdirSync(dir)).toEqual([basename(path)]); // the temp file was renamed, not left behind

    reloadTuneCache();
    expect(tunedVersion("matmul", KEY)).toBe("reg4x8");
    await storeTuned({ "rows/layernorm/7x13": entry("2") });
    reloadTuneCache();
    expect(tunedVersion("matmul", KEY)).toBe("reg4x8");
    expect(tunedVersion("rows", "layernorm/7x13")).toBe("2");
    expect(JSON.parse(readFileSync(path, "utf8")).created).toBe(file.created);

    expect(clearTuneCache()).toBe(true);
    expect(existsSync(path)).toBe(false);
    expect(tunedVersion("matmul", KEY)).toBeUndefined();
    expect(clearTuneCache()).toBe(false);
  });

  it("is read once per process: a file written by someone else is seen only after reloadTuneCache", () => {
    expect(tunedVersion("matmul", KEY)).toBeUndefined();
    const file = { adapter: adapterKey(), created: new Date().toISOString(), entries: { [`matmul/${KEY}`]: entry("reg8x8") } };
    writeFileSync(tuneCachePath(), JSON.stringify(file));
    expect(tunedVersion("matmul", KEY)).toBeUndefined();
    reloadTuneCache();
    expect(tunedVersion("matmul", KEY)).toBe("reg8x8");
  });

  for (const [what, text] of [
    ["not JSON", "{ not json"],
    ["without entries", JSON.stringify({ adapter: "x" })],
    ["for another adapter", JSON.stringify({ adapter: "some other GPU", created: "", entries: { [`matmul/${KEY}`]: entry("reg4x8") } })],
  ]) {
    it(`a cache file ${what} is reported naming the file, then ignored`, () => {
      writeFileSync(tuneCachePath(), text);
      warnings.length = 0;
      expect(tunedVersion("matmul", KEY)).toBeUndefined();
      expect(chooseVersion(undefined, DIMS)).toBe(deviceDefault());
      expect(warnings).toHaveLength(1); // loaded once, not once per look-up
      expect(warnings[0]).toContain(tuneCachePath());
      warnings.length = 0;
    });
  }
});

describe("matmul version precedence", () => {
  beforeEach(async () => {
    await storeTuned({ [`matmul/${KEY}`]: entry("reg4x8"), "matmul/5x5x5/nn/b1": entry("no-such-version") });
    reloadTuneCache();
  });

  it("explicit version > PEFT_MATMUL > cache > device default", () => {
    expect(chooseVersion(undefined, DIMS)).toBe("reg4x8");
    expect(chooseVersion(undefined, { ...DIMS, transB: false })).toBe(deviceDefault()); // other layout
    expect(chooseVersion(undefined, { ...DIMS, batch: 2 })).toBe(deviceDefault()); // other batch
    force("matmul", "reg8x8");
    expect(chooseVersion(undefined, DIMS)).toBe("reg8x8");
    expect(chooseVersion("reg8x16", DIMS)).toBe("reg8x16");
  });

  it("a product with a GELU epilogue is tuned as a shape of its own", async () => {
    const gelu = { ...DIMS, gelu: true };
    expect(matmulShapeKey(DIMS.M, DIMS.K, DIMS.N, DIMS.transA, DIMS.transB, DIMS.batch, true)).toBe(`${KEY}/gelu`);
    await storeTuned({ [`matmul/${KEY}`]: entry("tiled128") });
    reloadTuneCache();
    expect(chooseVersion(undefined, DIMS)).toBe("tiled128");
    expect(chooseVersion(undefined, gelu)).toBe(defaultVersion(gelu)); // the plain product's winner is not its
    await storeTuned({ [`matmul/${KEY}`]: entry("tiled128"), [`matmul/${KEY}/gelu`]: entry("reg8x8") });
    reloadTuneCache();
    expect(chooseVersion(undefined, gelu)).toBe("reg8x8");
  });

  it("PEFT_TUNE=0 ignores the cache; a version this build lacks falls back to the default", () => {
    runtime().settings.tune = false;
    expect(chooseVersion(undefined, DIMS)).toBe(deviceDefault());
    runtime().settings.tune = true;
    expect(chooseVersion(undefined, DIMS)).toBe("reg4x8");
    const stale: MatmulDims = { M: 5, K: 5, N: 5, transA: false, transB: false, batch: 1 };
    expect(chooseVersion(undefined, stale)).toBe(defaultVersion(stale));
  });

  it("matmulForward dispatches the tuned version and stays correct", async () => {
    const [M, K, N] = [37, 23, 11];
    const a = randn(M * K, 1);
    const b = randn(N * K, 2);
    const log = dispatchLog();
    const y = matmulForward(Tensor.fromArray(a, [M, K]), Tensor.fromArray(b, [N, K]), { transB: true });
    const keys = log.filter((l) => l.startsWith("[dispatch] matmul/"));
    expect(keys).toHaveLength(1);
    expect(keys[0]).toContain("version=reg4x8");
    expectClose("y", await y.data(), matmulRef(a, b, { batch: 1, M, K, N, transB: true }), { atol: 1e-4, rtol: 1e-4 });
  });
});

describe("attention version", () => {
  // A shape no model runs, tuned to the version that is not the device default.
  const [B, N, H, D] = [2, 5, 3, 8];
  const DIMS = { B, N, H, D };
  const SHAPE = attentionShapeKey(B, H, N, D);
  const STALE = { B: 1, N: 1, H: 1, D: 4 };
  const tuned = () => (runtime().gpu.isCpu ? "v2" : "v1");
  const fallback = () => (runtime().gpu.isCpu ? "v1" : "v2");
  beforeEach(async () => {
    await storeTuned({ [`attention/${SHAPE}`]: entry(tuned()), [`attention/${attentionShapeKey(1, 1, 1, 4)}`]: entry("v1r8") });
    reloadTuneCache();
  });

  it("explicit version > PEFT_ATTENTION > cache > device default; a stale name or PEFT_TUNE=0 falls back", () => {
    expect(attentionShapeKey(8, 6, 197, 64)).toBe("8x6x197x64");
    expect(attentionVersion(undefined, DIMS)).toBe(tuned());
    expect(attentionVersion(undefined, { ...DIMS, D: 4 })).toBe(fallback()); // other head dim
    expect(attentionVersion(undefined, { ...DIMS, B: B + 1 })).toBe(fallback()); // other batch
    expect(attentionVersion(fallback(), DIMS)).toBe(fallback());
    expect(attentionVersion(undefined, STALE)).toBe(fallback());
    force("attention", "unfused");
    expect(attentionVersion(undefined, DIMS, true)).toBe("unfused");
    expect(attentionVersion("v1", DIMS, true)).toBe("v1");
    delete runtime().settings.versions.attention;
    runtime().settings.tune = false;
    expect(attentionVersion(undefined, DIMS)).toBe(fallback());
  });

  it("defaults to unfused on CPU drivers for ops.attention past 64 tokens while the scores fit a binding", async () => {
    const maxBinding = runtime().gpu.limits.maxStorageBufferBindingSize;
    const vitS = { B: 8, N: 197, H: 6, D: 64 };
    if (!runtime().gpu.isCpu) {
      expect(attentionVersion(undefined, vitS, true)).toBe("v2");
      return;
    }
    expect(attentionVersion(undefined, vitS, true)).toBe("unfused");
    expect(attentionVersion(undefined, vitS)).toBe("v1"); // the fused kernels' own entry points
    expect(attentionVersion(undefined, { ...vitS, N: 17 }, true)).toBe("v1"); // the default study's 17 tokens
    const tooBig = Math.ceil(maxBinding / (4 * 6 * 197 * 197)) + 1; // batch whose (B·H, N, N) scores exceed it
    expect(attentionVersion(undefined, { ...vitS, B: tooBig }, true)).toBe("v1");
    await storeTuned({ [`attention/${attentionShapeKey(tooBig, 6, 197, 64)}`]: entry("unfused") });
    reloadTuneCache();
    expect(attentionVersion(undefined, { ...vitS, B: tooBig }, true)).toBe("v1"); // a tuned unfused that cannot fit
  });

  it("attentionForward and attentionBackward both dispatch the tuned version and stay correct", async () => {
    const qkv = randn(B * N * 3 * H * D, 3);
    const dout = randn(B * N * H * D, 4);
    const x = Tensor.fromArray(qkv, [B, N, 3 * H * D]);
    const log = dispatchLog();
    const { o, lse } = attentionForward(x, H);
    const dqkv = attentionBackward(x, o, lse, Tensor.fromArray(dout, [B, N, H * D]), H);
    const lines = log.filter((l) => l.startsWith("[dispatch] attention/"));
    expect(lines).toHaveLength(3); // forward, dq, dkdv
    for (const l of lines) expect(l).toContain(`version=${tuned()}`);
    const s = { B, N, H, D };
    const tol = { atol: 2e-5, rtol: 1e-4 };
    expectClose("o", await o.data(), attentionRef(qkv, s, 1 / Math.sqrt(D)).o, tol);
    expectClose("dqkv", await dqkv.data(), attentionBackwardRef(qkv, dout, s, 1 / Math.sqrt(D)), tol);
  });
});

describe("row version", () => {
  it("explicit version (the callers' default argument) > cache > device default", async () => {
    const tuned = runtime().gpu.isCpu ? 2 : 1; // the non-default one
    await storeTuned({ [`rows/${rowShapeKey("layernorm", 7, 13)}`]: entry(String(tuned)) });
    reloadTuneCache();
    const fallback = runtime().gpu.isCpu ? 1 : 2;
    expect(defaultRowVersion("layernorm", 7, 13)).toBe(tuned);
    expect(defaultRowVersion("softmax", 7, 13)).toBe(fallback);
    expect(defaultRowVersion("layernorm", 7, 14)).toBe(fallback);
    expect(defaultRowVersion()).toBe(fallback);
    runtime().settings.tune = false;
    expect(defaultRowVersion("layernorm", 7, 13)).toBe(fallback);
    runtime().settings.tune = true;
    force("rows", String(fallback)); // the environment beats the cache
    expect(defaultRowVersion("layernorm", 7, 13)).toBe(fallback);
    expect(defaultRowVersion()).toBe(fallback);
    force("rows", "4");
    expect(() => defaultRowVersion("softmax", 7, 13)).toThrow('rows: expected PEFT_ROWS to be one of 1, 2, 3, got "4"');
  });
});
