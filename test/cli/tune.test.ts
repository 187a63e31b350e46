// `tune` (cli/tune.ts) on the default study's tiny model with 1 rep: the shapes it traces (every shape the hand
// list it had before named), the entries it writes, that the kernels then choose those winners (including the
// version a real matmul and a real attention dispatch), --dry-run, --families, --precision int8 (emulated), --show,
// --clear and flag errors. Timings themselves are noise at this size; only their bookkeeping is checked.
import { beforeEach, describe, expect, it, vi } from "vitest";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { Tensor } from "../../engine/tensor.js";
import { maxTensorBytes, runtime, warnings } from "../../engine/runtime.js";
import { type TuneCache, adapterKey, storeTuned, tuneCachePath } from "../../engine/tuning.js";
import { matmulForward } from "../../kernels/matmul.js";
import { MATMUL, familyNamed, resolveVersion } from "../../kernels/registry.js";
import { candidates, withComposedShapes } from "../../kernels/tune.js";
import * as ops from "../../autograd/ops.js";
import { UsageError } from "../../util/command.js";
import { tune, tunedLine } from "../../cli/tune.js";
import { traceTrainingStep } from "../../train/trace.js";
import { parseStrategy } from "../../peft/strategy.js";
import { namedConfig, validateConfig } from "../../vit/config.js";
import { skipWithoutF16, useEmptyTuneCache, useEngine } from "../helpers.js";
import { MATMUL_ARRAYS, useEmulatedSubgroupMatrices } from "../subgroup-matrix-emulation.js";
useEngine();

useEmptyTuneCache("file");

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

// The default study's backbone with 5 classes, as --model default builds it.
const TINY = validateConfig({ imageSize: 28, patchSize: 7, width: 64, depth: 4, heads: 2, mlpHidden: 256, classes: 5, eps: 1e-6 });
// What `tune` times for `config` at batch B with `strategies`.
const planned = (config = TINY, B = 2, strategies = ["full"]) => withComposedShapes(traceTrainingStep(config, B, strategies.map(parseStrategy)));

describe("the traced shapes", () => {
  it("include every shape the hand-written list had: each linear layer's forward (nt), dx (nn) and dw (tn), the row ops, attention and unfused attention's", () => {
    const keys = planned().map((s) => `${s.family}/${s.key}`); // B*T = 2 * 17 = 34 tokens, 2 * 16 = 32 patches
    expect(new Set(keys).size).toBe(keys.length);
    const linear = (M: number, K: number, N: number, dx = true) => [`${M}x${K}x${N}/nt/b1`, ...(dx ? [`${M}x${N}x${K}/nn/b1`] : []), `${N}x${M}x${K}/tn/b1`];
    const old = [
      "32x147x64/nt/b1", "147x32x64/nn/b1", // patch embedding: dw computed transposed (ops.patchEmbed), no dx
      ...linear(34, 64, 192), // qkv
      ...linear(34, 64, 64), // proj
      "34x64x256/nt/b1/gelu", "34x256x64/nn/b1", "256x34x64/tn/b1", // fc1, with its GELU epilogue
      "34x256x64/nt/b1", "34x64x256/nn/b1/gelu", "64x34x256/tn/b1", // fc2, its dx with GELU's backward (dgelu)
      ...linear(2, 64, 5), // head
      "17x32x17/nt/b4", "17x17x32/nn/b4", "17x17x32/tn/b4", // unfused attention over the B·H = 4 heads
    ].map((k) => `matmul/${k}`);
    expect(old).toHaveLength(20);
    for (const k of [...old, "rows/layernorm/34x64", "rows/layernorm/2x64", "rows/softmax/68x17", "rows/cross-entropy/2x5", "attention/2x2x17x32"]) {
      expect(keys).toContain(k);
    }
  });

  it("of a ViT-S/16 block at batch 8: attention over (B, heads, 1 + patches, width / heads)", () => {
    const vitS = planned(namedConfig("vit-s16", 100, { depth: 1 }), 8).filter((s) => s.family === "attention");
    expect(vitS.map((s) => s.key)).toEqual(["8x6x197x64"]);
  });
});

describe("tune", () => {
  it("--dry-run lists the shapes and writes nothing", async () => {
    const cache = () => (existsSync(tuneCachePath()) ? readFileSync(tuneCachePath(), "utf8") : undefined);
    const before = cache();
    const out = await run("--model", "default", "--batch", "2", "--dry-run");
    expect(out).toContain("matmul/34x64x192/nt/b1");
    expect(out).toMatch(/attention\/2x2x17x32 +reg,tiled,unfused +now (reg|tiled) +full\n/);
    expect(out).toMatch(/rows\/softmax\/68x17 .* attention\/2x2x17x32 unfused/);
    expect(out.split("\n")).toHaveLength(planned().length);
    expect(cache()).toBe(before);
  });

  it("--precision int8 is refused where the adapter has no i8 subgroup matrices, naming the flag", async () => {
    await expect(run("--model", "default", "--batch", "2", "--families", "matmul", "--precision", "int8", "--dry-run")).rejects.toThrow(/precision "int8" \(--precision\) needs subgroup matrices of i8/);
  });

  it("--families attention lists only the attention shape", async () => {
    const out = await run("--model", "default", "--batch", "2", "--families", "attention", "--dry-run");
    expect(out.split("\n")).toHaveLength(1);
    expect(out).toContain("attention/2x2x17x32");
  });

  it("writes a winner per shape that later matmuls, row ops and attention use", async () => {
    await run("--model", "default", "--batch", "2", "--reps", "1");
    const cache = JSON.parse(readFileSync(tuneCachePath(), "utf8")) as TuneCache;
    const shapes = planned();
    expect(Object.keys(cache.entries).sort()).toEqual(shapes.map((s) => `${s.family}/${s.key}`).sort());
    for (const s of shapes) {
      const e = cache.entries[`${s.family}/${s.key}`];
      expect(Object.keys(e.candidates)).toEqual(candidates(s));
      expect(e.ms).toBe(Math.min(...Object.values(e.candidates)));
      expect(e.candidates[e.version]).toBe(e.ms);
      expect(resolveVersion(familyNamed(s.family), s.shape)).toBe(e.version);
    }
    // Real calls at tuned shapes dispatch the cached winners (qkv forward: x (34, 64) · w (192, 64)ᵀ; attention
    // over qkv (2, 17, 192) with 2 heads).
    const mmWinner = cache.entries[`matmul/${MATMUL.key({ M: 34, K: 64, N: 192, transA: false, transB: true, batch: 1 })}`].version;
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

  it("prints each shape's winner against the version before", () => {
    const entry = { version: "reg8x8", ms: 1, candidates: { reg8x8: 1, reg16x16: 2 } };
    expect(tunedLine("matmul/34x64x192/nt/b1", entry, "reg16x16", ["full"])).toBe(
      "matmul/34x64x192/nt/b1               -> reg8x8    x2.00 vs reg16x16  | reg8x8 1.00  reg16x16 2.00   (full)",
    );
  });

  it("--show prints the cache, --clear deletes it", async () => {
    await storeTuned({ "matmul/34x64x192/nt/b1": { version: "reg8x8", ms: 1, candidates: { reg8x8: 1, reg16x16: 2 } } });
    const shown = await run("--show");
    expect(shown).toContain(tuneCachePath());
    expect(shown).toContain("matmul/34x64x192/nt/b1");
    expect(await run("--clear")).toBe(`deleted ${tuneCachePath()}`);
    expect(existsSync(tuneCachePath())).toBe(false);
    expect(await run("--show")).toContain("no tuning cache");
  });

  it("--show of a cache with an entry of the wrong shape warns naming the file and the entry, and shows none", async () => {
    const entry = { version: "reg8x8", ms: "fast", candidates: { reg8x8: 1 } };
    writeFileSync(tuneCachePath(), JSON.stringify({ adapter: adapterKey(), created: "2026-01-01", entries: { "matmul/34x64x192/nt/b1": entry } }));
    warnings.length = 0;
    expect(await run("--show")).toBe(`no tuning cache at ${tuneCachePath()}: every kernel uses its device default`);
    expect(warnings).toEqual([`ignoring the tuning cache ${tuneCachePath()}: expected entries["matmul/34x64x192/nt/b1"].ms to be milliseconds (a number >= 0), got "fast"`]);
    warnings.length = 0;
    expect(await run("--clear")).toBe(`deleted ${tuneCachePath()}`);
  });

  it("refuses a family named in --families that the step runs no kernel of, rather than tune nothing", async () => {
    await expect(run("--model", "default", "--batch", "2", "--families", "knn", "--dry-run")).rejects.toThrow(
      new UsageError("--families: a training step of default runs no knn kernel, so there is nothing of it to tune"),
    );
  });

  it("refuses a --classes or --batch whose step has a tensor past one storage binding, before tracing it", async () => {
    const limit = maxTensorBytes();
    const classes = Math.floor(limit / (4 * 384)); // ViT-S/16's head (classes, 384) at most
    await expect(run("--classes", String(classes + 1), "--dry-run")).rejects.toThrow(
      new UsageError(`--classes: expected at most ${classes} for vit-s16, whose head's weight (classes, 384) must fit one storage binding, ${limit} bytes on this device, got ${classes + 1}`),
    );
    const batch = Math.floor(limit / (4 * 197 * 1536)); // its MLP activations (B·197, 1536)
    await expect(run("--batch", String(batch + 1), "--dry-run")).rejects.toThrow(
      new UsageError(`--batch: expected at most ${batch} for vit-s16, whose MLP activations (B·197, 1536) must fit one storage binding, ${limit} bytes on this device, got ${batch + 1}`),
    );
  });

  it("rejects bad flags with a UsageError naming them", async () => {
    await expect(run("--families", "matmul,conv")).rejects.toThrow(UsageError);
    await expect(run("--families", "matmul,conv")).rejects.toThrow(/conv/);
    await expect(run("--model", "vit-x9")).rejects.toThrow(/vit-x9/);
    await expect(run("--reps", "0")).rejects.toThrow(/--reps/);
    await expect(run("--show", "--clear")).rejects.toThrow(UsageError);
    await expect(run("--bogus")).rejects.toThrow(/--bogus/);
    await expect(run("--strategies", "lora-rx", "--dry-run")).rejects.toThrow(/--strategies/);
    await expect(run("--classes", "0")).rejects.toThrow("--classes: expected >= 1, got 0");
  });
});

// --precision int8 where the adapter lists i8 x i8 -> i32 (emulated): every product a shape of its own, with the
// int8 versions among its candidates, attention's too, and the products of its unfused version.
describe("tune --precision int8", () => {
  useEmulatedSubgroupMatrices({ matmul: MATMUL_ARRAYS, "attention-mma": { left: "Ws", right: "Ws", uniform: "p.n" } });
  beforeEach((ctx) => skipWithoutF16(ctx));
  it("plans the step's int8 shapes: the products with the int8 versions among the candidates, attention and unfused's products", async () => {
    const out = (await run("--model", "default", "--batch", "2", "--families", "matmul,attention", "--precision", "int8", "--dry-run")).split("\n");
    const products = out.filter((l) => l.startsWith("matmul/"));
    expect(products.length).toBeGreaterThanOrEqual(20);
    for (const line of products) expect(line).toMatch(/^matmul\/\S+\/int8 +\S*mma64i8,mma128i8 +now mma64i8 /);
    expect(out.some((l) => l.startsWith("matmul/17x32x17/nt/b4/int8 ") && l.includes("attention/2x2x17x32/int8 unfused"))).toBe(true);
    // mma too: the emulation lists f32 subgroup matrices as well, which it multiplies int8 runs' attention with.
    expect(out.filter((l) => l.startsWith("attention/"))).toEqual([expect.stringMatching(/^attention\/2x2x17x32\/int8 +reg,tiled,mma,unfused +now /)]);
  });
});
