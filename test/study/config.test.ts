// Study configs: the shipped ones parse, and bad input is rejected with every problem named by its key path.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { ConfigError, DEFAULTS, DEFAULT_STUDY, configJson, parseStudyConfig, ratesFor, studyIdentity } from "../../study/config.js";
import { cellsOf } from "../../study/runner.js";
import { strategyName } from "../../peft/strategy.js";

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));

// The error message of parsing `json`, which must fail.
function problems(json: unknown): string {
  try {
    parseStudyConfig(json, "test.json");
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected the config to be rejected");
}

describe("shipped configs", () => {
  it("the default study parses into strategy objects and fills in defaults", () => {
    const c = parseStudyConfig(DEFAULT_STUDY);
    expect(c.strategies.map(strategyName)).toEqual(["full", "top-1", "linear", "lora-r4", "block-p1"]);
    expect(c.strategies[3]).toEqual({ kind: "lora", rank: 4 });
    expect(c.knn.bank.classes).toEqual([0, 1, 2, 3, 4]);
    expect(c.transfer.train.classes).toEqual([5, 6, 7, 8, 9]);
    expect(c.backbone.pretrain?.model.depth).toBe(4);
    expect(c.training.optimizer).toBe("sgd");
    expect(c.training.momentum).toBe(0.9);
    expect(c.training.microBatch).toBeUndefined(); // one pass per step
  });

  it("accepts training.microBatch, any integer >= 1 (above batchSize: one pass)", () => {
    for (const m of [1, 7, 32, 1000]) {
      const c = clone(DEFAULT_STUDY) as Record<string, any>;
      c.training.microBatch = m;
      expect(parseStudyConfig(c).training.microBatch).toBe(m);
    }
  });

  it("accepts backbone.pretrain.microBatch, an integer >= 1", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.backbone.pretrain.microBatch = 16;
    expect(parseStudyConfig(c).backbone.pretrain?.microBatch).toBe(16);
    c.backbone.pretrain.microBatch = 0;
    expect(problems(c)).toContain("backbone.pretrain.microBatch: expected an integer >= 1, got 0");
  });

  it("identifies a run folder by everything but the microBatch settings", () => {
    const c = parseStudyConfig(DEFAULT_STUDY);
    const split = parseStudyConfig({ ...DEFAULT_STUDY, training: { ...DEFAULT_STUDY.training, microBatch: 8 } });
    const pre = clone(DEFAULT_STUDY) as Record<string, any>;
    pre.backbone.pretrain.microBatch = 8;
    const steps = parseStudyConfig({ ...DEFAULT_STUDY, training: { ...DEFAULT_STUDY.training, steps: 61 } });
    expect(studyIdentity(split)).toBe(studyIdentity(c));
    expect(studyIdentity(parseStudyConfig(pre))).toBe(studyIdentity(c));
    expect(studyIdentity(steps)).not.toBe(studyIdentity(c));
    // Earlier runs wrote config.json without the key: absent must stay absent, not become batchSize.
    expect(JSON.stringify(configJson(c))).not.toContain("microBatch");
  });

  it("configs/paper-cifar100.json holds the paper's protocol", () => {
    const c = parseStudyConfig(JSON.parse(readFileSync("configs/paper-cifar100.json", "utf8")));
    expect(c.learningRates).toEqual([0.05, 0.01, 0.005]);
    expect(c.training).toMatchObject({ steps: 10000, evalEvery: 500, batchSize: 128, optimizer: "sgd", momentum: 0.9 });
    expect(c.strategies.map(strategyName)).toEqual(["full", "top-3", "linear", "lora-r4", "lora-r8", "lora-r16", "block-p1", "block-p2", "block-p3", "block-p4"]);
    expect(c.transfer.train.dataset).toBe("cifar100");
    expect(c.knn.bank.dataset).toBe("imagefolder");
    expect(c.knn.reportK).toBe(20);
    expect(c.imageSize).toBe(224);
  });
});

describe("defaults and the canonical form", () => {
  // A config with only the required keys.
  const minimal = {
    backbone: { checkpoint: "x.safetensors" },
    knn: { bank: { dataset: "npy", split: "train" }, queries: { dataset: "npy", split: "test" } },
    transfer: { train: { dataset: "npy", split: "train" }, test: { dataset: "npy", split: "test" } },
    strategies: ["LoRA-r8", "top3"],
    learningRates: [0.1],
    training: { steps: 10, batchSize: 4, evalEvery: 5 },
  };

  it("fills every missing value from DEFAULTS", () => {
    const c = parseStudyConfig(minimal);
    expect(c.name).toBe(DEFAULTS.name);
    expect(c.seeds).toEqual(DEFAULTS.seeds);
    expect(c.selectBy).toBe(DEFAULTS.selectBy);
    expect(c.knn).toMatchObject(DEFAULTS.knn);
    expect(c.training).toMatchObject(DEFAULTS.training);
    expect([c.knn.bank.transform, c.transfer.train.transform, c.transfer.test.transform]).toEqual([
      DEFAULTS.transform.knn,
      DEFAULTS.transform.transferTrain,
      DEFAULTS.transform.transferTest,
    ]);
    const model = { imageSize: 8, patchSize: 4, width: 16, depth: 4, heads: 2, mlpHidden: 32 };
    const pre = parseStudyConfig({ ...minimal, backbone: { pretrain: { model, data: { dataset: "npy", split: "train" }, steps: 1, batchSize: 2, lr: 0.1 } } });
    expect(pre.backbone.pretrain).toMatchObject(DEFAULTS.pretrain);
    expect(pre.backbone.pretrain!.data.transform).toBe(DEFAULTS.transform.pretrain);
  });

  it("writes strategies by their canonical names, and reads its own JSON form back to the same study", () => {
    const c = parseStudyConfig(minimal);
    const json = configJson(c);
    expect(json.strategies).toEqual(["lora-r8", "top-3"]);
    const again = parseStudyConfig(JSON.parse(JSON.stringify(json)));
    expect(again).toEqual(c);
    expect(studyIdentity(again)).toBe(studyIdentity(c));
  });
});

describe("learning rates per strategy", () => {
  const perStrategy = () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.strategies = ["full", "linear"];
    c.learningRates = { full: [0.01, 0.003], linear: [0.1] };
    return c;
  };

  it("gives each strategy its own list, and the cells follow it", () => {
    const c = parseStudyConfig(perStrategy());
    expect(ratesFor(c, c.strategies[0])).toEqual([0.01, 0.003]);
    expect(ratesFor(c, c.strategies[1])).toEqual([0.1]);
    expect(cellsOf(c).map((x) => x.id)).toEqual(["full_lr0.01_s0", "full_lr0.003_s0", "linear_lr0.1_s0"]);
    expect(parseStudyConfig(clone(configJson(c)))).toEqual(c);
  });

  it("a plain list serves every strategy", () => {
    const c = parseStudyConfig(DEFAULT_STUDY);
    for (const s of c.strategies) expect(ratesFor(c, s)).toEqual(c.learningRates);
  });

  it("names a missing strategy, a stranger, a bad rate and repeats", () => {
    const c = perStrategy();
    c.learningRates = { full: [0.01], "lora-r4": [0.1], linear: [0.1] };
    expect(problems(c)).toContain("learningRates.lora-r4: expected a strategy of the config (full, linear)");
    c.learningRates = { full: [0.01], linear: [-1] };
    expect(problems(c)).toContain("learningRates.linear[0]: expected a number > 0, got -1");
    c.learningRates = { full: [0.01, 0.01] };
    const again = problems(c);
    expect(again).toContain("learningRates.linear: missing");
    expect(again).toContain("learningRates.full: expected distinct values, got [0.01, 0.01]");
    c.learningRates = "fast";
    expect(problems(c)).toContain('learningRates: expected a non-empty array, got "fast"');
  });
});

describe("bad configs", () => {
  it("names unknown keys with their path", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.training.stpes = 10;
    c.knn.bank.clases = "0-4";
    c.extra = true;
    const msg = problems(c);
    expect(msg).toContain("training.stpes: unknown key");
    expect(msg).toContain("knn.bank.clases: unknown key");
    expect(msg).toContain("extra: unknown key");
    expect(msg).toContain("3 problems");
  });

  it("names wrong types with their path", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.training.steps = "100";
    c.learningRates = [0.01, -1];
    c.strategies = ["full", "lora-rx"];
    c.transfer.test.perClass = 2.5;
    c.knn.queries.transform = "center";
    c.backbone.pretrain.model.width = 60; // 60 / 2 heads = 30, not a multiple of 4
    c.name = "my/run";
    c.training.microBatch = 2.5;
    const msg = problems(c);
    expect(msg).toContain('training.steps: expected an integer >= 1, got "100"');
    expect(msg).toContain("learningRates[1]: expected a number > 0, got -1");
    expect(msg).toContain('strategies[1]: expected a strategy: full, linear, top-K, lora-rR, block-pP or block@POS[,POS], got "lora-rx"');
    expect(msg).toContain("transfer.test.perClass: expected an integer >= 1, got 2.5");
    expect(msg).toContain('knn.queries.transform: expected one of train, eval, knn, got "center"');
    expect(msg).toContain("backbone.pretrain.model.heads: expected a divisor of width 60");
    expect(msg).toContain(`name: expected a name of letters, digits, '.', '_' and '-', got "my/run"`);
    expect(msg).toContain("training.microBatch: expected an integer >= 1, got 2.5");
    const zero = clone(DEFAULT_STUDY) as Record<string, any>;
    zero.training.microBatch = 0;
    expect(problems(zero)).toContain("training.microBatch: expected an integer >= 1, got 0");
  });

  it("names missing keys and contradictions", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    delete c.training.batchSize;
    c.backbone.checkpoint = "x.safetensors";
    c.knn.reportK = 5;
    c.strategies = ["top-5", "block-p3", "full"];
    c.learningRates = [0.01, 0.01];
    const msg = problems(c);
    expect(msg).toContain("training.batchSize: missing (required)");
    expect(msg).toContain("backbone: expected exactly one of checkpoint and pretrain, got both");
    expect(msg).toContain("knn.reportK: expected one of ks (10, 20), got 5");
    expect(msg).toContain('strategies[0]: expected top-k with k <= depth 4, got "top-5"');
    expect(msg).toContain('strategies[1]: expected block-pP with P dividing depth 4, got "block-p3"');
    expect(msg).toContain("learningRates: expected distinct values, got [0.01, 0.01]");
  });

  it("rejects a non-object, an unknown dataset and a bad class list", () => {
    expect(() => parseStudyConfig([1, 2], "x.json")).toThrow("x.json: expected a JSON object at the top level, got an array of 2");
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.transfer.train.dataset = "cifar1000";
    c.transfer.test.classes = "9-5";
    const msg = problems(c);
    expect(msg).toMatch(/transfer\.train\.dataset: expected one of .*cifar100.*, got "cifar1000"/);
    expect(msg).toContain('transfer.test.classes: expected a class list like "0-4" or "0,2,7-9", got "9-5"');
  });
});
