// The tuning cache (engine/tuning.ts) and its use by the version resolver (kernels/registry.ts resolveVersion):
// round trip, PEFT_TUNE=0, corrupt and stale entries, and that a matmul and attention actually dispatch the tuned
// version (checked through the DEBUG=1 dispatch log and against the CPU reference: matmul atol 1e-4 + rtol 1e-4 for
// K = 23 sums in f32; attention atol 2e-5 + rtol 1e-4, as test/kernels/attention.test.ts). The resolver's
// precedence for every family is test/kernels/registry.test.ts's.
import { beforeEach, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { runtime, warnings } from "../../engine/runtime.js";
import { Tensor } from "../../engine/tensor.js";
import { adapterKey, clearTuneCache, reloadTuneCache, storeTuned, tuneCachePath, tunedVersion } from "../../engine/tuning.js";
import { matmulForward } from "../../kernels/matmul.js";
import { attentionBackward, attentionForward } from "../../kernels/attention.js";
import { ATTENTION, type AttentionShape, MATMUL, type MatmulShape, ROWS, resolveVersion } from "../../kernels/registry.js";
import { expectClose, randn, useEmptyTuneCache, useEngine } from "../helpers.js";
import { matmulRef } from "../ref/matmul.js";
import { attentionBackwardRef, attentionRef } from "../ref/attention.js";

useEngine();

const tuneCacheDir = useEmptyTuneCache();

// Starts collecting the DEBUG=1 dispatch log; the returned array fills as kernels dispatch.
const dispatchLog = (): string[] => {
  const lines: string[] = [];
  runtime().batch.log = (line) => lines.push(line);
  return lines;
};

const entry = (version: string) => ({ version, ms: 1, candidates: { [version]: 1, other: 2 } });
// A matmul shape no model runs, tuned to a version that is the default on neither kind of device.
const DIMS: MatmulShape = { M: 37, K: 23, N: 11, transA: false, transB: true, batch: 1 };
const KEY = MATMUL.key(DIMS);
const chooseVersion = (dims: MatmulShape) => resolveVersion(MATMUL, dims);
const defaultVersion = (dims: MatmulShape) => MATMUL.defaultVersion(dims, runtime().gpu);
const deviceDefault = () => defaultVersion(DIMS);

describe("cache file", () => {
  it("lives in the settings' cache folder, named by a hash of the adapter", () => {
    expect(dirname(tuneCachePath())).toBe(tuneCacheDir());
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
    expect(readdirSync(tuneCacheDir())).toEqual([basename(path)]); // the temp file was renamed, not left behind

    reloadTuneCache();
    expect(tunedVersion("matmul", KEY)).toBe("reg4x8");
    await storeTuned({ "rows/layernorm/7x13": entry("tree") });
    reloadTuneCache();
    expect(tunedVersion("matmul", KEY)).toBe("reg4x8");
    expect(tunedVersion("rows", "layernorm/7x13")).toBe("tree");
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

  // A file of our adapter (known once the engine is open) whose entry for matmul/KEY is `e`.
  const ours = (entries: unknown, created: unknown = "2026-01-01") => () => JSON.stringify({ adapter: adapterKey(), created, entries });
  const withEntry = (e: object) => ours({ [`matmul/${KEY}`]: e });
  const at = `entries["matmul/${KEY}"]`;
  const cases: [string, () => string, string][] = [
    ["not JSON", () => "{ not json", "JSON"],
    ["without entries", () => JSON.stringify({ adapter: "x", created: "" }), 'expected "entries" to be an object'],
    ["whose entries are a list", ours([]), 'expected "entries" to be an object of "<family>/<shape key>": entry, got an array'],
    ["with a number for its date", ours({}, 5), 'expected "created" to be a string, got 5'],
    ["for another adapter", () => JSON.stringify({ adapter: "some other GPU", created: "", entries: { [`matmul/${KEY}`]: entry("reg4x8") } }), 'written for adapter "some other GPU"'],
    ["with an entry without candidates", withEntry({ version: "reg4x8", ms: 1 }), `expected ${at}.candidates to be an object of version: milliseconds, got nothing`],
    ["with an entry's time a word", withEntry({ ...entry("reg4x8"), ms: "fast" }), `expected ${at}.ms to be milliseconds (a number >= 0), got "fast"`],
    ["with an entry's time null", withEntry({ ...entry("reg4x8"), ms: null }), `expected ${at}.ms to be milliseconds (a number >= 0), got null`],
    ["with a candidate's time a word", withEntry({ ...entry("reg4x8"), candidates: { reg4x8: "x" } }), `expected ${at}.candidates["reg4x8"] to be milliseconds (a number >= 0), got "x"`],
  ];
  for (const [what, text, says] of cases) {
    it(`a cache file ${what} is reported naming the file and what is wrong, then ignored`, () => {
      writeFileSync(tuneCachePath(), text());
      warnings.length = 0;
      expect(tunedVersion("matmul", KEY)).toBeUndefined();
      expect(chooseVersion(DIMS)).toBe(deviceDefault());
      expect(warnings).toHaveLength(1); // loaded once, not once per look-up
      expect(warnings[0]).toContain(tuneCachePath());
      expect(warnings[0]).toContain(says);
      warnings.length = 0;
    });
  }

  it("a folder in the cache file's place is reported in the tool's words and ignored; clearing it is refused naming it", () => {
    mkdirSync(tuneCachePath());
    warnings.length = 0;
    expect(tunedVersion("matmul", KEY)).toBeUndefined();
    expect(warnings).toEqual([`ignoring the tuning cache: cannot read ${tuneCachePath()}: it is a folder, not a file (EISDIR)`]);
    warnings.length = 0;
    expect(() => clearTuneCache()).toThrow(`cannot remove ${tuneCachePath()}: it is a folder, not a file (EISDIR)`);
  });

  it("a file in the cache folder's place (PEFT_TUNE_CACHE naming a file) is reported, not taken for no cache", () => {
    const file = `${tuneCacheDir()}/not-a-folder`;
    writeFileSync(file, "x");
    runtime().settings.tuneCacheDir = file;
    reloadTuneCache();
    warnings.length = 0;
    expect(tunedVersion("matmul", KEY)).toBeUndefined();
    expect(warnings).toEqual([`ignoring the tuning cache: its folder ${file} (PEFT_TUNE_CACHE) is a file, not a folder`]);
    warnings.length = 0;
  });
});

describe("matmul and the cache", () => {
  beforeEach(async () => {
    await storeTuned({ [`matmul/${KEY}`]: entry("reg4x8"), "matmul/5x5x5/nn/b1": entry("no-such-version") });
    reloadTuneCache();
  });

  it("a product with a GELU epilogue is tuned as a shape of its own", async () => {
    const gelu = { ...DIMS, gelu: true };
    expect(MATMUL.key(gelu)).toBe(`${KEY}/gelu`);
    await storeTuned({ [`matmul/${KEY}`]: entry("tiled128") });
    reloadTuneCache();
    expect(chooseVersion(DIMS)).toBe("tiled128");
    expect(chooseVersion(gelu)).toBe(defaultVersion(gelu)); // the plain product's winner is not its
    await storeTuned({ [`matmul/${KEY}`]: entry("tiled128"), [`matmul/${KEY}/gelu`]: entry("reg8x8") });
    reloadTuneCache();
    expect(chooseVersion(gelu)).toBe("reg8x8");
  });

  it("PEFT_TUNE=0 ignores the cache; a version this build lacks falls back to the default", () => {
    runtime().settings.tune = false;
    expect(chooseVersion(DIMS)).toBe(deviceDefault());
    runtime().settings.tune = true;
    expect(chooseVersion(DIMS)).toBe("reg4x8");
    const stale: MatmulShape = { M: 5, K: 5, N: 5, transA: false, transB: false, batch: 1 };
    expect(chooseVersion(stale)).toBe(defaultVersion(stale));
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

describe("attention and the cache", () => {
  // A shape no model runs, tuned to the fused version that is not the device default.
  const [B, N, H, D] = [2, 5, 3, 8];
  const tuned = () => (runtime().gpu.isCpu ? "tiled" : "reg");

  it("on CPU drivers unfused is the default past 64 tokens while the scores fit a binding; a tuned unfused that cannot fit is ignored", async () => {
    const maxBinding = runtime().gpu.limits.maxStorageBufferBindingSize;
    const vitS: AttentionShape = { B: 8, N: 197, H: 6, D: 64 };
    const version = (s: AttentionShape) => resolveVersion(ATTENTION, s);
    if (!runtime().gpu.isCpu) {
      expect(version(vitS)).toBe("tiled");
      return;
    }
    expect(version(vitS)).toBe("unfused");
    expect(version({ ...vitS, N: 17 })).toBe("reg"); // the default study's 17 tokens
    const tooBig = Math.ceil(maxBinding / (4 * 6 * 197 * 197)) + 1; // batch whose (B·H, N, N) scores exceed it
    expect(version({ ...vitS, B: tooBig })).toBe("reg");
    await storeTuned({ [`attention/${ATTENTION.key({ ...vitS, B: tooBig })}`]: entry("unfused") });
    reloadTuneCache();
    expect(version({ ...vitS, B: tooBig })).toBe("reg");
  });

  it("attentionForward and attentionBackward both dispatch the tuned version and stay correct", async () => {
    await storeTuned({ [`attention/${ATTENTION.key({ B, N, H, D })}`]: entry(tuned()) });
    reloadTuneCache();
    const qkv = randn(B * N * 3 * H * D, 3);
    const dout = randn(B * N * H * D, 4);
    const x = Tensor.fromArray(qkv, [B, N, 3 * H * D]);
    const log = dispatchLog();
    const { o, saved } = attentionForward(x, H);
    const dqkv = attentionBackward(saved, Tensor.fromArray(dout, [B, N, H * D]));
    const lines = log.filter((l) => l.startsWith("[dispatch] attention/"));
    expect(lines).toHaveLength(3); // forward, dq, dkdv
    for (const l of lines) expect(l).toContain(`version=${tuned()}`);
    const s = { B, N, H, D };
    const tol = { atol: 2e-5, rtol: 1e-4 };
    expectClose("o", await o.data(), attentionRef(qkv, s, 1 / Math.sqrt(D)).o, tol);
    expectClose("dqkv", await dqkv.data(), attentionBackwardRef(qkv, dout, s, 1 / Math.sqrt(D)), tol);
  });
});

describe("rows and the cache", () => {
  it("the tuned version for the op's exact shape, else the device default; the old numbered names are stale", async () => {
    const tuned = runtime().gpu.isCpu ? "tree" : "lane"; // the non-default one
    const fallback = runtime().gpu.isCpu ? "lane" : "tree";
    const version = (op: "layernorm" | "softmax", rows: number, C: number) => resolveVersion(ROWS, { op, rows, C });
    await storeTuned({ [`rows/${ROWS.key({ op: "layernorm", rows: 7, C: 13 })}`]: entry(tuned), "rows/softmax/7x13": entry("2") });
    reloadTuneCache();
    expect(version("layernorm", 7, 13)).toBe(tuned);
    expect(version("softmax", 7, 13)).toBe(fallback); // "2" was tree's name in an older build
    expect(version("layernorm", 7, 14)).toBe(fallback);
  });
});
