// The pretrain command's config: DINO's defaults filled in (some from steps and batchSize), a study's
// backbone.pretrain accepted as a supervised config, configs/dino-fashion-mnist.json valid, and every problem named
// by key path at once, settings that conflict (minLr above lr, local crops larger than the image, a last layer
// frozen throughout, a temperature warm-up past the end) too, with a missing key's conflicts skipped.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { SUPERVISED_STUDY } from "../../study/config.js";
import { parsePretrainConfig } from "../../study/pretrain-config.js";
import { COLLAPSE_DEFAULTS } from "../../train/dino-collapse.js";

const model = { imageSize: 28, patchSize: 7, width: 64, depth: 4, heads: 2, mlpHidden: 256 };
const data = { dataset: "fashion-mnist", split: "train" };

describe("parsePretrainConfig", () => {
  it("fills in DINO's defaults", () => {
    const c = parsePretrainConfig({ method: "dino", model, data, steps: 1000, batchSize: 512, crops: { localSize: 14, color: "rgb" } });
    expect(c.method).toBe("dino");
    expect(c.spec).toMatchObject({
      head: { hidden: 2048, bottleneck: 256, prototypes: 65536 },
      crops: { localSize: 14, localCrops: 8, globalScale: [0.4, 1], localScale: [0.05, 0.4], color: "rgb" },
      lr: 0.001,
      minLr: 1e-6,
      warmupSteps: 100,
      weightDecay: 0.04,
      weightDecayEnd: 0.4,
      momentum: 0.996,
      warmupTeacherTemp: 0.04,
      teacherTemp: 0.07,
      teacherTempWarmupSteps: 300,
      studentTemp: 0.1,
      centerMomentum: 0.9,
      clipGrad: 3,
      freezeLastLayerSteps: 0,
      collapse: COLLAPSE_DEFAULTS,
      checkpointEvery: 100,
    });
    expect(c.knn).toBeUndefined();
  });

  it("takes a study's backbone.pretrain as a supervised config", () => {
    const c = parsePretrainConfig({ method: "supervised", ...SUPERVISED_STUDY.backbone.pretrain });
    expect(c.method).toBe("supervised");
    expect(c.spec).toMatchObject({ steps: 400, batchSize: 128, optimizer: "adamw" });
    expect(parsePretrainConfig(SUPERVISED_STUDY.backbone.pretrain).method).toBe("supervised");
  });

  it("reads the shipped DINO configs", () => {
    const files = ["", "-sharp", "-long", "-50ep", "-100ep", "-50ep-grid"].map((v) => `configs/dino-fashion-mnist${v}.json`);
    for (const file of files) {
      const c = parsePretrainConfig(JSON.parse(readFileSync(file, "utf8")), file);
      expect(c.method).toBe("dino");
      expect(c.knn).toMatchObject({ k: 20, temperature: 0.07, bank: { transform: "eval" } });
    }
    expect(parsePretrainConfig(JSON.parse(readFileSync("configs/dino-fashion-mnist-50ep-grid.json", "utf8"))).spec).toMatchObject({ crops: { sampling: "grid" } });
  });

  it("names every problem by key path", () => {
    expect(() =>
      parsePretrainConfig({ method: "dino", model, data: { ...data, scale: [0.2, 1] }, steps: 10, warmupSteps: 10, crops: { localSize: 14, color: "rgb", extra: 1 }, collapse: { uniform: 2 } }, "c.json"),
    ).toThrow(
      "c.json: 5 problems:\n  batchSize: missing (required)\n  crops.extra: unknown key (known keys: localSize, localCrops, globalScale, localScale, color, blur, sampling)\n" +
        "  collapse.uniform: expected a fraction in (0, 1], got 2\n  warmupSteps: expected fewer than steps (10), got 10\n" +
        "  data.scale: expected no scale for DINO (its crops take crops.globalScale and crops.localScale), got [0.2, 1]",
    );
    const dino = { method: "dino", model, data, steps: 30, batchSize: 8, crops: { localSize: 14, color: "rgb" } };
    expect(() => parsePretrainConfig({ ...dino, lr: 0.001, minLr: 1, crops: { localSize: 56, color: "rgb" }, freezeLastLayerSteps: 1000, teacherTempWarmupSteps: 31 }, "c.json")).toThrow(
      "c.json: 4 problems:\n  minLr: expected at most lr (0.001), got 1 (the cosine would raise the learning rate to it)\n" +
        "  crops.localSize: expected at most model.imageSize 28 (the global crops' size), got 56\n" +
        "  freezeLastLayerSteps: expected fewer than steps (30), got 1000 (the head's last layer would never train)\n" +
        "  teacherTempWarmupSteps: expected at most steps (30), got 31 (the teacher's temperature would never reach teacherTemp)",
    );
    expect(parsePretrainConfig({ ...dino, lr: 0.001, minLr: 0.001, crops: { localSize: 28, color: "rgb" }, freezeLastLayerSteps: 29, teacherTempWarmupSteps: 30 }).spec).toMatchObject({ minLr: 0.001 });
    expect(() => parsePretrainConfig({ method: "dino", data, batchSize: 8, freezeLastLayerSteps: 5 })).toThrow(
      /^config: 3 problems:\n {2}model: missing \(required\)\n {2}steps: missing \(required\)\n {2}crops: missing \(required\)$/,
    );
    expect(() => parsePretrainConfig([1])).toThrow("config: expected a JSON object at the top level, got an array of 1");
    expect(() => parsePretrainConfig({ method: "supervised", model, data, steps: 5, batchSize: 2, lr: 1, head: {} })).toThrow("head: unknown key");
  });
});
