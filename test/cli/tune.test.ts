// `tune` (cli/tune.ts) on the default study's tiny model with 1 rep: the shapes it enumerates, the entries it
// writes, that the kernels then choose those winners (including the version a real matmul and a real attention
// dispatch), --dry-run, --families, --show, --clear and flag errors. Timings themselves are noise at this size; only their bookkeeping is checked.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "../../engine/tensor.js";
import { runtime } from "../../engine/runtime.js";
import type { Settings } from "../../engine/settings.js";
import { type TuneCache, matmulShapeKey, reloadTuneCache, tuneCachePath } from "../../engine/tuning.js";
import { MATMUL_VERSIONS, chooseVersion, matmulForward } from "../../kernels/matmul.js";
import { ATTENTION_VERSIONS, pickVersion as attentionVersion } from "../../kernels/attention.js";
import * as ops from "../../autograd/ops.js";
import { type RowOp, availableRowVersions, defaultRowVersion } from "../../kernels/rows.js";
import { UsageError } from "../../util/command.js";
import { modelShapes, tune } from "../../cli/tune.js";
import { parseStrategy } from "../../peft/strategy.js";
import { namedConfig, validateConfig } from "../../vit/config.js";
import { useEngine } from "../helpers.js";

useEngine();

let dir: string;
let saved: Settings;
beforeAll(() => {
  const { settings } = runtime();
  saved = structuredClone(settings);
  dir = mkdtempSync(join(tmpdir(), "tune-cli-"));
  // A forced version or PEFT_TUNE=0 would hide the cache from the version choosers.
  Object.assign(settings, { tuneCacheDir: dir, tune: true, versions: {} });
  reloadTuneCache();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  Object.assign(runtime().settings, saved);
  reloadTuneCache();
});

// Runs `f` and returns the DEBUG=1 dispatch log lines it made.
function dispatches(f: () => void): string[] {
  const lines: string[] = [];
  runtime().batch.log = (line) => lines.push(line);
  try {
    f();
    return lines.filter((l) => l.startsWith("[dispatch] "));
  } finally {
    runtime().batch.log = undefined;
  }
}

// Runs the command, returning what it printed.
async function run(...argv: string[]): Promise<string> {
  const log = vi.spyOn(console, "log").mockImplementation(() => {});
  try {
    await tune.run(argv);
    return log.mock.calls.map((c) => c.join(" ")).join("\n");
  } finally {
    log.mockRestore();
  }
}

const TINY = validateConfig({ imageSize: 28, patchSize: 7, width: 64, depth: 4, heads: 2, mlpHidden: 256, classes: 5, eps: 1e-6 });

describe("modelShapes", () => {
  it("lists each linear layer's forward (nt), dx (nn) and dw (tn), the row ops and attention, once per key", () => {
    const shapes = modelShapes(TINY, 2); // B*T = 2 * 17 = 34 tokens, 2 * 16 = 32 patches
    const keys = shapes.map((s) => `${s.family}/${s.key}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const k of [
      "matmul/32x147x64/nt/b1", // patch embedding; no dx (the images need no gradient)
      "matmul/64x32x147/tn/b1",
      "matmul/34x64x192/nt/b1", // qkv
      "matmul/34x192x64/nn/b1",
      "matmul/192x34x64/tn/b1",
      "matmul/2x64x5/nt/b1", // head
      "rows/layernorm/34x64",
      "rows/softmax/68x17",
      "rows/cross-entropy/2x5",
      "attention/2x2x17x32", // (B, heads, 1 + patches, width / heads)
    ]) {
      expect(keys).toContain(k);
    }
    expect(keys).not.toContain("matmul/32x64x147/nn/b1");
    // fc1 forward (34, 64)·(64, 256) and fc2 dx (34, 64)·(64, 256) are the same product: one entry, both uses.
    expect(shapes.find((s) => s.key === "34x64x256/nn/b1")?.uses).toEqual(["fc2 dx"]);
    expect(shapes.find((s) => s.key === "34x64x256/nt/b1/gelu")?.uses).toEqual(["fc1"]); // its GELU epilogue, timed with it
    // 17 linear-layer products and the 3 batched products of unfused attention over the B·H = 4 heads.
    expect(shapes.filter((s) => s.family === "matmul")).toHaveLength(20);
    for (const k of ["matmul/17x32x17/nt/b4", "matmul/17x17x32/nn/b4", "matmul/17x17x32/tn/b4"]) expect(keys).toContain(k);
    expect(modelShapes({ ...TINY, classes: 0 }, 2).some((s) => s.key.includes("cross-entropy"))).toBe(false);
    const vitS = modelShapes(namedConfig("vit-s16", 100), 8).filter((s) => s.family === "attention");
    expect(vitS.map((s) => s.key)).toEqual(["8x6x197x64"]);
  });

  it("adds LoRA's rank-r products for its targets; other strategies run the model's own shapes", () => {
    const base = modelShapes(TINY, 2).map((s) => s.key);
    for (const other of ["linear", "top-2", "block-p2"]) expect(modelShapes(TINY, 2, [parseStrategy(other)]).map((s) => s.key)).toEqual(base);
    // rank 4 on q and v: A_cat (8, 64), B_full (192, 8), over the 34 tokens.
    const lora = modelShapes(TINY, 2, [parseStrategy("full"), parseStrategy("lora-r4")]);
    const added = lora.map((s) => s.key).filter((k) => !base.includes(k));
    expect(added.sort()).toEqual(
      ["34x64x8/nt/b1", "34x8x64/nn/b1", "8x34x64/tn/b1", "34x8x192/nt/b1", "34x192x8/nn/b1", "192x34x8/tn/b1"].sort(),
    );
    const all = modelShapes(TINY, 2, [{ kind: "lora", rank: 2, targets: ["q", "k", "v", "fc1"] }]).map((s) => s.key);
    for (const k of ["34x64x6/nt/b1", "34x6x192/nt/b1", "34x64x2/nt/b1", "34x2x256/nt/b1"]) expect(all).toContain(k);
  });
});

describe("tune", () => {
  it("--dry-run lists the shapes and writes nothing", async () => {
    const out = await run("--model", "default", "--batch", "2", "--dry-run");
    expect(out).toContain("matmul/34x64x192/nt/b1");
    expect(out).toMatch(/attention\/2x2x17x32 +v1,v2,unfused +now v[12]/);
    expect(out.split("\n")).toHaveLength(modelShapes(TINY, 2).length);
    expect(existsSync(tuneCachePath())).toBe(false);
  });

  it("--families attention lists only the attention shape", async () => {
    const out = await run("--model", "default", "--batch", "2", "--families", "attention", "--dry-run");
    expect(out.split("\n")).toHaveLength(1);
    expect(out).toContain("attention/2x2x17x32");
  });

  it("writes a winner per shape that later matmuls, row ops and attention use", async () => {
    await run("--model", "default", "--batch", "2", "--reps", "1");
    const cache = JSON.parse(readFileSync(tuneCachePath(), "utf8")) as TuneCache;
    const shapes = modelShapes(TINY, 2);
    expect(Object.keys(cache.entries).sort()).toEqual(shapes.map((s) => `${s.family}/${s.key}`).sort());
    for (const s of shapes) {
      const e = cache.entries[`${s.family}/${s.key}`];
      const versions = s.family === "matmul" ? MATMUL_VERSIONS : s.family === "attention" ? ATTENTION_VERSIONS : availableRowVersions().map(String);
      expect(Object.keys(e.candidates).sort()).toEqual([...versions].sort());
      expect(e.ms).toBe(Math.min(...Object.values(e.candidates)));
      expect(e.candidates[e.version]).toBe(e.ms);
      if (s.family === "matmul") expect(chooseVersion(undefined, s)).toBe(e.version);
      else if (s.family === "attention") expect(attentionVersion(undefined, { B: s.B, N: s.T, H: s.H, D: s.D }, true)).toBe(e.version);
      else expect(String(defaultRowVersion(s.op as RowOp, s.rows, s.C))).toBe(e.version);
    }
    // Real calls at tuned shapes dispatch the cached winners (qkv forward: x (34, 64) · w (192, 64)ᵀ; attention
    // over qkv (2, 17, 192) with 2 heads).
    const mmWinner = cache.entries[`matmul/${matmulShapeKey(34, 64, 192, false, true, 1)}`].version;
    const mm = dispatches(() => matmulForward(Tensor.empty([34, 64]), Tensor.empty([192, 64]), { transB: true }).dispose());
    expect(mm.find((l) => l.startsWith("[dispatch] matmul/"))).toContain(`version=${mmWinner}`);
    const attWinner = cache.entries["attention/2x2x17x32"].version;
    const att = dispatches(() => ops.attention(Tensor.empty([2, 17, 192]), 2).dispose());
    const fused = att.filter((l) => l.startsWith("[dispatch] attention/"));
    if (attWinner === "unfused") {
      expect(fused).toHaveLength(0);
      expect(att.some((l) => l.startsWith("[dispatch] softmax/"))).toBe(true);
    } else {
      expect(fused).toHaveLength(1);
      expect(fused[0]).toContain(`version=${attWinner}`);
    }
  });

  it("--show prints the cache, --clear deletes it", async () => {
    const shown = await run("--show");
    expect(shown).toContain(tuneCachePath());
    expect(shown).toContain("matmul/34x64x192/nt/b1");
    expect(await run("--clear")).toBe(`deleted ${tuneCachePath()}`);
    expect(existsSync(tuneCachePath())).toBe(false);
    expect(await run("--show")).toContain("no tuning cache");
  });

  it("rejects bad flags with a UsageError naming them", async () => {
    await expect(run("--families", "matmul,conv")).rejects.toThrow(UsageError);
    await expect(run("--families", "matmul,conv")).rejects.toThrow(/conv/);
    await expect(run("--model", "vit-x9")).rejects.toThrow(/vit-x9/);
    await expect(run("--reps", "0")).rejects.toThrow(/--reps/);
    await expect(run("--show", "--clear")).rejects.toThrow(UsageError);
    await expect(run("--bogus")).rejects.toThrow(/--bogus/);
    await expect(run("--strategies", "lora-rx", "--dry-run")).rejects.toThrow(/--strategies/);
  });
});
