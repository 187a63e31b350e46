// Pre-training's cache key: what changes the trained backbone (the images' transform too), and nothing else. And what
// killed runs leave: a cache's backbone without its manifest gets it on the next call, and their temporary files go.
import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { SUPERVISED_STUDY, parseStudyConfig } from "../../study/config.js";
import { type PretrainSpec, pretrain, pretrainDir, pretrainHash, pretrainInto } from "../../train/pretrain.js";
import type { Dataset } from "../../data/dataset.js";
import { useEngine } from "../helpers.js";
import { useSyntheticData } from "./synthetic.js";

useEngine();

describe("pretrainHash", () => {
  const spec = parseStudyConfig(SUPERVISED_STUDY).backbone.pretrain! as PretrainSpec;
  const data = { identity: { hash: "data-a" } } as unknown as Dataset;

  it("covers the training settings and the data's identity", () => {
    expect(pretrainHash({ ...spec, steps: spec.steps + 1 }, data)).not.toBe(pretrainHash(spec, data));
    expect(pretrainHash(spec, { identity: { hash: "data-b" } } as unknown as Dataset)).not.toBe(pretrainHash(spec, data));
  });

  it("covers the transform of the data: its kind and every setting the spec gives", () => {
    const withData = (edit: Partial<typeof spec.data>) => pretrainHash({ ...spec, data: { ...spec.data, ...edit } }, data);
    const before = pretrainHash(spec, data);
    expect(withData({ transform: "train" })).not.toBe(before);
    expect(withData({ mean: [0.5, 0.5, 0.5] })).not.toBe(before);
    expect(withData({ std: [0.5, 0.5, 0.5] })).not.toBe(before);
    expect(withData({ interpolation: "bicubic" })).not.toBe(before);
    expect(withData({ transform: "train", scale: [0.5, 1] })).not.toBe(withData({ transform: "train" }));
    // Settings the spec leaves out add nothing to the key.
    expect(withData({ mean: undefined, std: undefined, interpolation: undefined, scale: undefined })).toBe(before);
  });

  it("ignores where the cache lives and microBatch, which changes only how a step's gradient is summed", () => {
    expect(pretrainHash({ ...spec, cacheDir: "/elsewhere" }, data)).toBe(pretrainHash(spec, data));
    expect(pretrainHash({ ...spec, microBatch: 4 }, data)).toBe(pretrainHash(spec, data));
  });
});

describe("pretrain (a study's cache)", () => {
  const data = useSyntheticData("pretrain-test-", { size: 8, perClass: { train: 8, test: 1 }, seed: 3 });
  const spec = (): PretrainSpec => ({
    model: { imageSize: 8, patchSize: 4, width: 16, depth: 1, heads: 2, mlpHidden: 32 },
    data: { dataset: "npy", root: join(data.root, "data"), split: "train", transform: "eval" },
    steps: 3,
    batchSize: 16,
    lr: 0.003,
    warmupSteps: 1,
    optimizer: "adamw",
    weightDecay: 0.05,
    seed: 0,
    cacheDir: join(data.root, "cache"),
  });

  // A kill between the backbone and its manifest left the backbone alone: the next call finds it cached and writes
  // the manifest the run would have written.
  it("writes a cached backbone's missing manifest, as the run writes it", async () => {
    const first = await pretrain(spec(), data.train);
    expect(first.cached).toBe(false);
    const manifestPath = join(pretrainDir(spec(), data.train), "backbone.json");
    const manifest = await readFile(manifestPath, "utf8");
    await rm(manifestPath);
    // The manifest's write a kill cut short left its temporary file (a pid that no longer runs): removed, saying so.
    const stale = `${manifestPath}.tmp-999999999-1`;
    await writeFile(stale, "{");
    const lines: string[] = [];
    const again = await pretrain(spec(), data.train, undefined, (line) => lines.push(line));
    expect(again.cached).toBe(true);
    expect(await readFile(manifestPath, "utf8")).toBe(manifest);
    expect(existsSync(stale)).toBe(false);
    expect(lines).toContain(`removed 1 temporary file(s) of writes cut short by an interrupted run, in ${pretrainDir(spec(), data.train)}`);
  });

  // The manifest's final loss comes from the run's metrics.json: a damaged one is refused, naming it and the ways
  // out; without one the manifest says the final loss is unknown.
  it("refuses a damaged metrics.json for a missing manifest, and writes one without the final loss where it is gone", async () => {
    await pretrain(spec(), data.train);
    const dir = pretrainDir(spec(), data.train);
    const manifestPath = join(dir, "backbone.json");
    const metricsPath = join(dir, "train", "metrics.json");
    await rm(manifestPath);
    await writeFile(metricsPath, JSON.stringify({ rows: 3 }));
    await expect(pretrain(spec(), data.train)).rejects.toThrow(
      `pretrain: ${metricsPath}: expected the metrics of the pre-training's steps ({"rows": [...]}), got "rows": 3; delete ${metricsPath} for a manifest without the final loss, or ${dir} to pre-train again`,
    );
    expect(existsSync(manifestPath)).toBe(false);
    await rm(metricsPath);
    expect((await pretrain(spec(), data.train)).cached).toBe(true);
    expect(JSON.parse(await readFile(manifestPath, "utf8")).metrics.finalLoss).toBeNull();
  });

  // Killed after its last checkpoint, before the backbone: the rerun resumes there, and says so.
  it("says where a killed run resumes", async () => {
    const dir = join(data.root, "resumed");
    await pretrainInto(spec(), data.train, dir);
    await rm(join(dir, "backbone.safetensors"));
    const log: string[] = [];
    await pretrainInto(spec(), data.train, dir, { log: (l) => log.push(l) });
    expect(log).toEqual([`resuming the pre-training in ${dir} from step 3 of 3`]);
    expect(existsSync(join(dir, "backbone.safetensors"))).toBe(true);
  });

  // A kill in the middle of an atomic write leaves its temporary file (util/atomic.ts), a checkpoint's size.
  it("removes the temporary files that killed runs left in its folder, saying so", async () => {
    const dir = join(data.root, "killed");
    await mkdir(join(dir, "train"), { recursive: true });
    const gone = spawnSync(process.execPath, ["-e", ""]).pid!;
    const left = [join(dir, "train", `last.safetensors.tmp-${gone}-1`), join(dir, `backbone.safetensors.tmp-${gone}-2`)];
    for (const path of left) await writeFile(path, "torn");
    const log: string[] = [];
    await pretrainInto(spec(), data.train, dir, { log: (l) => log.push(l) });
    for (const path of left) expect(existsSync(path), path).toBe(false);
    expect(log).toEqual([`removed 2 temporary file(s) of writes cut short by an interrupted run, in ${dir}`]);
  });
});
