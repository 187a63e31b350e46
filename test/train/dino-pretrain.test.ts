// DINO pre-training end to end on a synthetic dataset with a tiny ViT (8 px, patch 4, 4 px local crops): the files
// it writes and the manifest's SHA-256, a metric row per step, k-NN scores at 0, every knnEvery steps and the end,
// an interrupted run resumed to the very same backbone, refused settings (a changed one named with both values; ones
// that conflict named by key), and a forced uniform collapse stopped with a CollapseError naming it. In mixed precision (precision "f16"): forced overflows skipped and recorded in the
// metrics, the loss scale and the device's step counts checkpointed, and an interrupted run resumed exactly. In
// precision int8 (subgroup matrices emulated): every product as int8 slices, the metrics close to f32's.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Dataset } from "../../data/dataset.js";
import { openNpyImages } from "../../data/npy-dataset.js";
import { readSafetensors } from "../../vit/safetensors.js";
import { runtime } from "../../engine/runtime.js";
import { type DinoSpec, dinoPretrain, stepValues } from "../../train/dino-pretrain.js";
import { rowSeconds } from "../../train/train.js";
import { COLLAPSE_DEFAULTS, CollapseError } from "../../train/dino-collapse.js";
import { skipWithoutF16, useEngine } from "../helpers.js";
import { useEmulatedSubgroupMatrices } from "../subgroup-matrix-emulation.js";
import { int8SelfCheck } from "../../autograd/precision.js";
import { writeSynthetic } from "./synthetic.js";

useEngine();

let root: string;
let data: Dataset;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "dino-pretrain-test-"));
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 4 }, seed: 1 });
  data = await openNpyImages(join(root, "data"), "train");
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const SPEC: DinoSpec = {
  method: "dino",
  model: { imageSize: 8, patchSize: 4, width: 16, depth: 1, heads: 2, mlpHidden: 32 },
  data: { dataset: "npy", split: "train", transform: "train", mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
  head: { hidden: 16, bottleneck: 8, prototypes: 12 },
  crops: { localSize: 4, localCrops: 2, globalScale: [0.4, 1], localScale: [0.05, 0.4], color: "grayscale" },
  steps: 6,
  batchSize: 8,
  lr: 0.005,
  minLr: 1e-6,
  warmupSteps: 2,
  weightDecay: 0.04,
  weightDecayEnd: 0.4,
  momentum: 0.9,
  warmupTeacherTemp: 0.04,
  teacherTemp: 0.07,
  teacherTempWarmupSteps: 3,
  studentTemp: 0.1,
  centerMomentum: 0.9,
  clipGrad: 3,
  freezeLastLayerSteps: 3,
  seed: 0,
  collapse: { ...COLLAPSE_DEFAULTS, window: 0 },
  knnEvery: 4,
  logEvery: 2,
  checkpointEvery: 3,
};

async function tensorsOf(path: string) {
  return [...(await readSafetensors(path)).tensors].map(([n, t]) => [n, Array.from(t.data)]);
}

describe("dinoPretrain", () => {
  it("trains, scores, checkpoints and writes the teacher's backbone with its manifest", async () => {
    const dir = join(root, "run");
    const scored: number[] = [];
    const lines: string[] = [];
    const r = await dinoPretrain({
      spec: SPEC,
      data,
      dir,
      evaluate: async (backbone) => {
        scored.push(backbone.config.classes);
        return 50 + scored.length;
      },
      log: (line) => lines.push(line),
    });
    expect(r.rows.map((x) => x.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const row of r.rows) {
      for (const v of [row.loss, row.entropy, row.marginalEntropy, row.kl]) expect(Number.isFinite(v)).toBe(true);
      expect(row.entropy).toBeLessThanOrEqual(Math.log(12) + 1e-4);
      expect(row.kl).toBeGreaterThanOrEqual(-1e-4);
    }
    // DINO's schedules: the warm-up starts at lr 0 (np.linspace(0, lr, warmup)), the weight decay and momentum at their base.
    expect(r.rows[0]).toMatchObject({ lr: 0, momentum: 0.9, teacherTemp: 0.04 });
    expect(r.rows[0].weightDecay).toBeCloseTo(0.04, 12);
    expect(r.rows[1].lr).toBe(SPEC.lr);
    expect(r.rows[1].teacherTemp).toBeCloseTo(0.055, 12);
    const { freezeLastLayer: _frozen, ...last } = stepValues(SPEC, 5);
    expect(r.rows[5]).toMatchObject(last);
    expect(Object.keys(r.rows[0])).not.toContain("freezeLastLayer");
    expect(r.knn).toEqual([
      { step: 0, accuracy: 51 },
      { step: 4, accuracy: 52 },
      { step: 6, accuracy: 53 },
    ]);
    expect(scored).toEqual([0, 0, 0]); // a backbone without a classifier
    expect(lines.filter((l) => l.includes("loss")).length).toBe(2); // checkpoints at 3 and 6
    const manifest = JSON.parse(await readFile(r.manifestPath, "utf8"));
    expect(manifest.sha256).toBe(createHash("sha256").update(await readFile(r.path)).digest("hex"));
    expect(manifest).toMatchObject({ method: "dino", seed: 0, data: { hash: data.identity.hash }, metrics: { knn: r.knn } });
    const backbone = await readSafetensors(r.path);
    expect([...backbone.tensors.keys()]).toContain("blocks.0.attn.qkv.weight");
    expect([...backbone.tensors.keys()].some((n) => n.startsWith("head"))).toBe(false);
    const csv = (await readFile(join(dir, "metrics.csv"), "utf8")).trim().split("\n");
    expect(csv.length).toBe(7);
    expect(csv[0]).toBe("step,loss,teacher_entropy,mean_output_entropy,kl,lr,weight_decay,momentum,teacher_temp,knn,images_per_second");
  });

  it("resumes an interrupted run to the same backbone", async () => {
    const straight = await dinoPretrain({ spec: SPEC, data, dir: join(root, "straight") });
    const dir = join(root, "interrupted");
    const stop = (line: string) => {
      if (line.startsWith("step 3/")) throw new Error("interrupted");
    };
    await expect(dinoPretrain({ spec: SPEC, data, dir, log: stop })).rejects.toThrow("interrupted");
    const log: string[] = [];
    const t0 = performance.now();
    const resumed = await dinoPretrain({ spec: SPEC, data, dir, log: (l) => log.push(l) });
    const here = (performance.now() - t0) / 1000;
    expect(resumed.resumedFrom).toBe(3);
    expect(log[0]).toBe(`resuming the DINO pre-training in ${dir} from step 3 of 6`);
    expect(resumed.rows.map((r) => r.loss)).toEqual(straight.rows.map((r) => r.loss));
    expect(await tensorsOf(resumed.path)).toEqual(await tensorsOf(straight.path));
    // Its time is more than this process's: the three steps before the resume count, at their rows' speeds.
    const before = rowSeconds(resumed.rows.filter((r) => r.step <= 3), SPEC.batchSize);
    expect(before).toBeGreaterThan(0);
    expect(resumed.seconds).toBeGreaterThan(here);
    expect(resumed.seconds).toBeLessThanOrEqual(here + before);
  });

  // A kill in the middle of an atomic write leaves its temporary file (util/atomic.ts), a checkpoint's size.
  it("removes the temporary files that killed runs left in its folder, saying so", async () => {
    const dir = join(root, "killed");
    await mkdir(dir, { recursive: true });
    const gone = spawnSync(process.execPath, ["-e", ""]).pid!;
    const left = [join(dir, `last.safetensors.tmp-${gone}-1`), join(dir, `metrics.json.tmp-${gone}-2`)];
    for (const path of left) await writeFile(path, "torn");
    const log: string[] = [];
    await dinoPretrain({ spec: { ...SPEC, steps: 3, freezeLastLayerSteps: 1 }, data, dir, log: (l) => log.push(l) });
    for (const path of left) expect(existsSync(path), path).toBe(false);
    expect(log).toContain(`removed 2 temporary file(s) of writes cut short by an interrupted run, in ${dir}`);
  });

  it("refuses to resume a folder of other settings, and bad settings", async () => {
    const dir = join(root, "other");
    const short = { ...SPEC, steps: 3, freezeLastLayerSteps: 1 };
    await dinoPretrain({ spec: short, data, dir });
    await expect(dinoPretrain({ spec: { ...short, lr: 0.001, seed: 2 }, data, dir })).rejects.toThrow(
      `dino: ${join(dir, "last.safetensors")} was written by a run with other settings or data (lr: 0.005 -> 0.001; seed: 0 -> 2); delete ${dir}`,
    );
    await expect(dinoPretrain({ spec: { ...SPEC, crops: { ...SPEC.crops, localSize: 6 } }, data, dir })).rejects.toThrow(
      "dino: expected crops.localSize to be a multiple of the patch size 4, got 6",
    );
    await expect(dinoPretrain({ spec: { ...SPEC, warmupSteps: 6 }, data, dir })).rejects.toThrow("dino: expected warmupSteps < steps (6), got 6");
    // Each valid alone, not together: named by key, both values, before any work.
    await expect(dinoPretrain({ spec: { ...SPEC, minLr: 1, freezeLastLayerSteps: 6 }, data, dir: join(root, "never") })).rejects.toThrow(
      "dino: minLr: expected at most lr (0.005), got 1 (the cosine would raise the learning rate to it); freezeLastLayerSteps: expected fewer than steps (6), got 6 (the head's last layer would never train)",
    );
    await expect(dinoPretrain({ spec: { ...SPEC, crops: { ...SPEC.crops, localSize: 12 } }, data, dir })).rejects.toThrow("dino: crops.localSize: expected at most model.imageSize 8 (the global crops' size), got 12");
    await expect(dinoPretrain({ spec: { ...SPEC, teacherTempWarmupSteps: 7 }, data, dir })).rejects.toThrow("dino: teacherTempWarmupSteps: expected at most steps (6), got 7");
    expect(existsSync(join(root, "never"))).toBe(false);
  });

  // A finished run resumes from its last checkpoint, reading its metrics.json back: one damaged (cut short, or not
  // the metrics it wrote) is refused naming the file, what was expected and got, and the way out.
  it("refuses to resume from a damaged metrics.json, naming it and the way out", async () => {
    const dir = join(root, "damaged-metrics");
    const short = { ...SPEC, steps: 3, freezeLastLayerSteps: 1 };
    await dinoPretrain({ spec: short, data, dir });
    const metrics = join(dir, "metrics.json");
    const written = await readFile(metrics, "utf8");
    const { rows, knn } = JSON.parse(written);
    const damaged: [string, string][] = [
      [written.slice(0, written.length >> 1), "expected JSON, got a parse error"],
      [JSON.stringify({ rows: { ...rows }, knn }), 'got "rows": an object'],
      [JSON.stringify({ rows }), 'got no "knn"'],
    ];
    for (const [text, got] of damaged) {
      await writeFile(metrics, text);
      const e = (await dinoPretrain({ spec: short, data, dir }).catch((err: unknown) => err)) as Error;
      expect(e.message).toContain(`dino: ${metrics}: `);
      expect(e.message).toContain(got);
      expect(e.message).toContain(`delete ${dir} to start over`);
    }
  });

  // Forced overflows as in test/train/train.test.ts: from a scale of 2^40, lowered 2^12-fold at each, the scaled
  // gradients overflow f16 until the scale is small enough.
  it("trains in f16: skips the overflowed steps, records the scale and the skips, and resumes exactly", async (ctx) => {
    skipWithoutF16(ctx);
    const spec: DinoSpec = { ...SPEC, precision: "f16", lossScale: { init: 2 ** 40, backoff: 2 ** -12 } };
    const straight = await dinoPretrain({ spec, data, dir: join(root, "f16-straight") });
    const scales = straight.rows.map((r) => r.lossScale!);
    const skipped = straight.rows.map((r) => r.skippedSteps!);
    // Each overflow is one skip and one backoff: DINO's gradients overflow f16 at 2^40, 2^28 and 2^16, not at 2^4.
    expect(skipped).toEqual([1, 2, 3, 3, 3, 3]);
    scales.forEach((scale, i) => expect(scale).toBe(2 ** 40 * (2 ** -12) ** skipped[i]));
    expect(straight.rows.every((r) => Number.isFinite(r.loss))).toBe(true);
    const csv = (await readFile(join(root, "f16-straight", "metrics.csv"), "utf8")).trim().split("\n");
    expect(csv[0]).toBe("step,loss,teacher_entropy,mean_output_entropy,kl,lr,weight_decay,momentum,teacher_temp,knn,images_per_second,loss_scale,skipped_steps");
    const { tensors } = await readSafetensors(join(root, "f16-straight", "last.safetensors"));
    expect(tensors.get("lossScale.scale")!.data).toEqual(new Float32Array([scales.at(-1)!]));
    // AdamW's step counts: the 3 steps not skipped; the last layer, frozen for the first 3 steps, took the same 3.
    expect(tensors.get("optimizer.decayed.step")!.data).toEqual(new Float32Array([3]));
    expect(tensors.get("optimizer.plain.step")!.data).toEqual(new Float32Array([3]));
    expect(tensors.get("optimizer.lastLayer.step")!.data).toEqual(new Float32Array([3]));

    const dir = join(root, "f16-interrupted");
    const stop = (line: string) => {
      if (line.startsWith("step 3/")) throw new Error("interrupted");
    };
    await expect(dinoPretrain({ spec, data, dir, log: stop })).rejects.toThrow("interrupted");
    const resumed = await dinoPretrain({ spec, data, dir });
    expect(resumed.resumedFrom).toBe(3);
    const columns = (r: typeof resumed) => r.rows.map((x) => [x.loss, x.lossScale, x.skippedSteps]);
    expect(columns(resumed)).toEqual(columns(straight));
    expect(await tensorsOf(resumed.path)).toEqual(await tensorsOf(straight.path));
  });

  it("refuses an unknown precision, and f16 on an adapter without shader-f16, naming the key and the adapter", async () => {
    const dir = join(root, "bad-precision");
    await expect(dinoPretrain({ spec: { ...SPEC, precision: "bf16" as "f16" }, data, dir })).rejects.toThrow('dino: expected precision (precision) to be one of f32, f16, int8, int8x2, got "bf16"');
    const { gpu } = runtime();
    const had = gpu.features.delete("shader-f16");
    try {
      await expect(dinoPretrain({ spec: { ...SPEC, precision: "f16" }, data, dir })).rejects.toThrow(
        `dino: precision "f16" (precision) needs the adapter's shader-f16 feature, which ${gpu.adapterInfo.description} lacks`,
      );
    } finally {
      if (had) gpu.features.add("shader-f16");
    }
  });

  it("stops a collapsed run: a teacher temperature of 1000 gives uniform outputs", async () => {
    const spec = { ...SPEC, warmupTeacherTemp: 1000, teacherTemp: 1000, collapse: { ...COLLAPSE_DEFAULTS, window: 3 }, logEvery: 1 };
    const err = await dinoPretrain({ spec, data, dir: join(root, "collapse") }).catch((e) => e);
    expect(err).toBeInstanceOf(CollapseError);
    expect(err.kind).toBe("uniform");
    expect(err.message).toMatch(/^dino: the teacher collapsed to uniform outputs: its mean entropy stayed at or above 99% of log K from step 1 to 3/);
    const saved = JSON.parse(await readFile(join(root, "collapse", "metrics.json"), "utf8"));
    expect(saved.rows.length).toBe(3);
  });

  it("judges no collapse or divergence on Dawn's null backend, whose read-backs are no results: every step runs", async () => {
    const spec = { ...SPEC, warmupTeacherTemp: 1000, teacherTemp: 1000, collapse: { ...COLLAPSE_DEFAULTS, window: 3 }, logEvery: 1 };
    const { gpu } = runtime();
    const backend = gpu.backend;
    gpu.backend = "null";
    try {
      await dinoPretrain({ spec, data, dir: join(root, "collapse-null-backend") });
    } finally {
      gpu.backend = backend;
    }
    const saved = JSON.parse(await readFile(join(root, "collapse-null-backend", "metrics.json"), "utf8"));
    expect(saved.rows.length).toBe(SPEC.steps);
  });
});

// Precision int8 runs every product of the student's and the teacher's passes as int8 slices (within 2^-17 K
// max|a| max|b| of the exact product each); no loss scaling. MEASURED_GAP is the largest gap between its losses and
// f32's over the 6 steps (2026-12-05); the bound is ten times it.
const MEASURED_GAP = 2.1e-6;
describe("dinoPretrain in precision int8 (subgroup matrices emulated)", () => {
  useEmulatedSubgroupMatrices({ matmul: { left: "Ws", right: "Ws", uniform: "p.M" } });
  beforeEach((ctx) => skipWithoutF16(ctx));
  it("runs every product as int8 slices and follows the f32 run's losses", async () => {
    await int8SelfCheck("int8"); // the device's check (kernels/tensor-core-check.ts) runs both versions once: not watched
    const rt = runtime();
    const get = rt.pipelines.get;
    const versions = new Set<string>();
    rt.pipelines.get = ((name: string, spec: { version?: string }, ...rest: unknown[]) => {
      if (name === "matmul") versions.add(String(spec.version));
      return (get as (...a: unknown[]) => unknown).call(rt.pipelines, name, spec, ...rest);
    }) as typeof get;
    let int8;
    try {
      int8 = await dinoPretrain({ spec: { ...SPEC, precision: "int8" }, data, dir: join(root, "int8") });
    } finally {
      rt.pipelines.get = get;
    }
    expect([...versions]).toEqual(["mma64i8"]);
    const f32 = await dinoPretrain({ spec: SPEC, data, dir: join(root, "int8-f32") });
    expect(int8.rows.map((r) => r.lossScale)).toEqual(int8.rows.map(() => undefined));
    int8.rows.forEach((r, i) => expect(Math.abs(r.loss - f32.rows[i].loss), `step ${r.step}`).toBeLessThanOrEqual(10 * MEASURED_GAP));
  });
});
