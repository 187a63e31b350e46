// Study configs: the shipped ones parse, and bad input is rejected with every problem named by its key path.
import { describe, expect, it } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { type AnalysisSpec, type StudyConfig, ConfigError, DEFAULTS, DEFAULT_MODEL, DEFAULT_STUDY, SUPERVISED_STUDY, configJson, headInitFor, parseStudyConfig, ratesFor, studyIdentity } from "../../study/config.js";
import { cellsOf } from "../../study/cells.js";
import type { DataSpec } from "../../data/spec.js";
import { configChanges } from "../../study/changes.js";
import { parseStrategy, strategyName } from "../../peft/strategy.js";
import type { PretrainSpec } from "../../train/pretrain.js";
import { parsePretrainConfig } from "../../study/pretrain-config.js";
import { sha256File } from "../../peft/save.js";
import { readArchitecture } from "../../vit/checkpoint.js";
import { TOOL_ROOT, resolveShipped } from "../../util/shipped.js";
import { learningRate } from "../../train/schedule.js";

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

// The supervised default study (its backbone's model known from the config) as a template with `strategies` in
// place of its own, and one plain list of learning rates for them all: the default's learningRates may be per
// strategy, naming its own strategies only.
function withStrategies(strategies: string[]): Record<string, any> {
  const c = clone(SUPERVISED_STUDY) as Record<string, any>;
  c.strategies = strategies;
  c.learningRates = [0.1];
  return c;
}

// A shipped config file, parsed.
const shipped = (path: string): StudyConfig => parseStudyConfig(JSON.parse(readFileSync(path, "utf8")));

// One step down the rate sweeps' half-decade grid (..., 0.01, 0.03, 0.1, 0.3, ...), past their lowest rate too.
function down(r: number): number {
  const decade = 10 ** Math.floor(Math.log10(r) + 1e-9);
  return Number((Math.round(r / decade) === 3 ? decade : 0.3 * decade).toPrecision(12));
}

// A val set of `of`'s split, classes and transform, the images of each class after those `of` takes (its perClass),
// `perClass` of them where given.
function expectAfter(val: DataSpec | undefined, of: DataSpec, perClass?: number): void {
  const { perClass: taken, ...place } = of;
  expect(val).toEqual({ ...place, skipPerClass: taken, perClass: perClass ?? taken });
}

// Four other banks of the bank's split, classes, transform and size, each class's images in turn after the 400 the
// bank and knn.val take.
function expectOtherBanks(c: StudyConfig): void {
  const { perClass, ...place } = c.knn.bank;
  expect(c.knn.otherBanks).toEqual([2, 3, 4, 5].map((n) => ({ ...place, skipPerClass: n * perClass!, perClass })));
}

// A rate study's config: `of`'s but for its name and learning rates, with a knn.val of the bank's split, classes and
// transform, the images after the bank's, and the other banks after those.
function expectRatesOf(rates: StudyConfig, of: StudyConfig): void {
  const rest = ({ name: _n, learningRates: _l, knn: { val: _v, otherBanks: _o, ...knn }, ...c }: StudyConfig) => ({ ...c, knn });
  expect(rest(rates)).toEqual(rest(of));
  expectAfter(rates.knn.val, rates.knn.bank);
  expectOtherBanks(rates);
}

describe("shipped configs", () => {
  it("the default study parses into strategy objects and fills in defaults", () => {
    const c = parseStudyConfig(DEFAULT_STUDY);
    expect(c.backbone).toEqual({ checkpoint: "backbones/dino-fashion-mnist-50ep-grid/backbone.safetensors", heads: 2, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(c.strategies.map(strategyName)).toEqual(["full", "top-1", "linear", "lora-r4", "block-p1"]);
    expect(c.strategies[3]).toEqual({ kind: "lora", rank: 4 });
    expect(c.strategies[4]).toEqual({ kind: "block", p: 1 });
    // One rate per strategy, each its own size: the linear head's would destroy a fully fine-tuned backbone.
    expect(c.strategies.map((s) => ratesFor(c, s))).toEqual([[0.01], [0.1], [1], [0.1], [0.03]]);
    expect(c.seeds).toEqual([0, 1]);
    expect(c.training).toMatchObject({ steps: 300, batchSize: 64, evalEvery: 100 });
    expect(c.knn.bank.classes).toEqual([0, 1, 2, 3, 4]);
    expect(c.transfer.train.classes).toEqual([5, 6, 7, 8, 9]);
    expect(c.training.optimizer).toBe("sgd");
    expect(c.training.momentum).toBe(0.9);
    expect(c.training.microBatch).toBeUndefined(); // one pass per step
    expect(c.analysis).toEqual({ images: 500, gridImages: 4, bankPerClass: 100 });
  });

  it("the default study's backbone ships with the tool: pinned by its SHA-256, described by its manifest, the default model", async () => {
    const { checkpoint, sha256, heads } = parseStudyConfig(DEFAULT_STUDY).backbone;
    const path = resolveShipped(checkpoint!, "backbone.checkpoint");
    expect(path).toBe(join(TOOL_ROOT, checkpoint!));
    expect(await sha256File(path)).toBe(sha256);
    const manifest = JSON.parse(readFileSync(join(dirname(path), "backbone.json"), "utf8"));
    expect(manifest).toMatchObject({ file: "backbone.safetensors", sha256, method: "dino", hyperParameters: { steps: 11700, crops: { sampling: "grid" }, model: DEFAULT_MODEL } });
    // The manifest is the output of the config the README names, key for key.
    const made = parsePretrainConfig(JSON.parse(readFileSync("configs/dino-fashion-mnist-50ep-grid.json", "utf8")));
    expect(manifest.hyperParameters).toEqual(JSON.parse(JSON.stringify(made.spec)));
    const arch = await readArchitecture(path, { heads });
    expect(arch).toMatchObject(DEFAULT_MODEL);
    expect(arch.hasHead).toBe(false);
  });

  it("accepts training.microBatch, any integer >= 1 (above batchSize: one pass)", () => {
    for (const m of [1, 7, 32, 1000]) {
      const c = clone(DEFAULT_STUDY) as Record<string, any>;
      c.training.microBatch = m;
      expect(parseStudyConfig(c).training.microBatch).toBe(m);
    }
  });

  it("takes training.schedule cosine (as if absent, so the identity stays) or constant, and names a bad one", () => {
    const at = (schedule: string) => parseStudyConfig({ ...DEFAULT_STUDY, training: { ...DEFAULT_STUDY.training, schedule } });
    const plain = parseStudyConfig(DEFAULT_STUDY);
    expect(at("cosine").training.schedule).toBeUndefined();
    expect(studyIdentity(at("cosine"))).toBe(studyIdentity(plain));
    expect(at("constant").training.schedule).toBe("constant");
    expect(studyIdentity(at("constant"))).not.toBe(studyIdentity(plain));
    expect(() => at("linear")).toThrow('training.schedule: expected one of cosine, constant, got "linear"');
  });

  it("takes training.precision f32 (as if absent, so the identity stays), f16, int8 or int8x2, each a study of its own", () => {
    const at = (precision: string) => parseStudyConfig({ ...DEFAULT_STUDY, training: { ...DEFAULT_STUDY.training, precision } });
    const plain = parseStudyConfig(DEFAULT_STUDY);
    expect(at("f32").training.precision).toBeUndefined();
    expect(studyIdentity(at("f32"))).toBe(studyIdentity(plain));
    expect(at("int8").training.precision).toBe("int8");
    expect(new Set([plain, at("f16"), at("int8"), at("int8x2")].map(studyIdentity)).size).toBe(4);
    expect(JSON.stringify(configJson(at("int8")))).toContain('"precision":"int8"');
  });

  it("reads the analysis key with its defaults, and names each bad value", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.analysis = {};
    expect(parseStudyConfig(c).analysis).toEqual({ images: DEFAULTS.analysis.images, gridImages: DEFAULTS.analysis.gridImages, bankPerClass: undefined });
    c.analysis = { images: 0, gridImages: 1.5, bankPerClass: "10", extra: 1 };
    const text = problems(c);
    for (const p of [
      "analysis.extra: unknown key (known keys: images, gridImages, bankPerClass, atSteps, resets, resetsBetweenSteps, interpolate, interpolateHead, strategies, tableRates)",
      "analysis.images: expected an integer >= 2, got 0",
      "analysis.gridImages: expected an integer >= 1, got 1.5",
      'analysis.bankPerClass: expected an integer >= 1, got "10"',
    ]) expect(text).toContain(p);
    c.analysis = [];
    expect(problems(c)).toContain("analysis: expected an object, got an array of 0");
  });

  it("reads analysis.atSteps, ascending steps of training from 1 to training.steps, absent where absent", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.analysis = { atSteps: [10, 30, 100] };
    const read = parseStudyConfig(c);
    expect(read.analysis!.atSteps).toEqual([10, 30, 100]);
    c.analysis = {};
    expect("atSteps" in parseStudyConfig(c).analysis!).toBe(false);
    expect(JSON.stringify(configJson(parseStudyConfig(c)))).not.toContain("atSteps\":[1");
    for (const [atSteps, problem] of [
      [[0, 10], "analysis.atSteps[0]: expected an integer >= 1, got 0"],
      [[30, 10], "analysis.atSteps[1]: expected a step after 30 (ascending, distinct), got 10"],
      [[10, 10], "analysis.atSteps[1]: expected a step after 10 (ascending, distinct), got 10"],
      [[10, 301], `analysis.atSteps[1]: expected a step <= training.steps (${c.training.steps}), got 301`],
      [10, "analysis.atSteps: expected a non-empty array, got 10"],
    ] as const) {
      c.analysis = { atSteps };
      expect(problems(c)).toContain(problem);
    }
  });

  it("reads analysis.resetsBetweenSteps, true or \"layers\", which needs analysis.atSteps beside it", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.analysis = { atSteps: [10, 30], resetsBetweenSteps: "layers" };
    expect(parseStudyConfig(c).analysis!.resetsBetweenSteps).toBe("layers");
    c.analysis = { atSteps: [10, 30], resetsBetweenSteps: true };
    expect(parseStudyConfig(c).analysis!.resetsBetweenSteps).toBe(true);
    c.analysis = { resets: true, resetsBetweenSteps: true };
    expect(problems(c)).toContain("analysis.resetsBetweenSteps: expected analysis.atSteps beside it (the kept steps to put the parts back to), got none");
    c.analysis = { atSteps: [10], resetsBetweenSteps: "yes" };
    expect(problems(c)).toContain('analysis.resetsBetweenSteps: expected true, false or "layers", got "yes"');
  });
  it("reads analysis.resets, true, false or \"layers\", absent where absent", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.analysis = { resets: true };
    expect(parseStudyConfig(c).analysis!.resets).toBe(true);
    c.analysis = { resets: false };
    expect(parseStudyConfig(c).analysis!.resets).toBe(false);
    c.analysis = {};
    expect("resets" in parseStudyConfig(c).analysis!).toBe(false);
    c.analysis = { resets: "layers" };
    expect(parseStudyConfig(c).analysis!.resets).toBe("layers");
    c.analysis = { resets: "yes" };
    expect(problems(c)).toContain('analysis.resets: expected true, false or "layers", got "yes"');
  });

  it("reads analysis.strategies, strategies of the config, and analysis.tableRates, absent where absent", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.analysis = { strategies: ["full", "lora-r4"], tableRates: true };
    expect(parseStudyConfig(c).analysis).toMatchObject({ strategies: ["full", "lora-r4"], tableRates: true });
    c.analysis = {};
    expect(Object.keys(parseStudyConfig(c).analysis!)).not.toContain("strategies");
    expect(Object.keys(parseStudyConfig(c).analysis!)).not.toContain("tableRates");
    c.analysis = { strategies: ["full", "top-9", "full"], tableRates: "yes" };
    const msg = problems(c);
    expect(msg).toContain('analysis.strategies[1]: expected a strategy of the config (full, top-1, linear, lora-r4, block-p1), got "top-9"');
    expect(msg).toContain("analysis.strategies: expected distinct values, got [full, top-9, full]");
    expect(msg).toContain('analysis.tableRates: expected true or false, got "yes"');
  });

  it("accepts backbone.pretrain.microBatch, an integer >= 1", () => {
    const c = clone(SUPERVISED_STUDY) as Record<string, any>;
    c.backbone.pretrain.microBatch = 16;
    expect((parseStudyConfig(c).backbone.pretrain as PretrainSpec).microBatch).toBe(16);
    c.backbone.pretrain.microBatch = 0;
    expect(problems(c)).toContain("backbone.pretrain.microBatch: expected an integer >= 1, got 0");
  });

  it("identifies a run folder by everything but the microBatch settings", () => {
    const c = parseStudyConfig(SUPERVISED_STUDY);
    const split = parseStudyConfig({ ...SUPERVISED_STUDY, training: { ...SUPERVISED_STUDY.training, microBatch: 8 } });
    const pre = clone(SUPERVISED_STUDY) as Record<string, any>;
    pre.backbone.pretrain.microBatch = 8;
    const steps = parseStudyConfig({ ...SUPERVISED_STUDY, training: { ...SUPERVISED_STUDY.training, steps: SUPERVISED_STUDY.training.steps + 1 } });
    expect(studyIdentity(split)).toBe(studyIdentity(c));
    expect(studyIdentity(parseStudyConfig(pre))).toBe(studyIdentity(c));
    expect(studyIdentity(steps)).not.toBe(studyIdentity(c));
    // Earlier runs wrote config.json without the key: absent must stay absent, not become batchSize.
    expect(JSON.stringify(configJson(c))).not.toContain("microBatch");
  });

  // Each study's rates come from a sweep of its own: the same study with four rates per strategy, seed 0, no curve
  // nor analysis, each chosen rate inside the range tried.
  it.each([
    ["configs/default-lr-sweep.json", DEFAULT_STUDY],
    ["configs/default-supervised-lr-sweep.json", SUPERVISED_STUDY],
  ])("%s is its study but for its rates, seed, curve and analysis, and holds each chosen rate", (file, json) => {
    const sweep = shipped(file);
    const study = parseStudyConfig(json);
    const rest = ({ name: _n, learningRates: _l, seeds: _s, analysis: _an, knn: { atSteps: _a, ...knn }, ...c }: StudyConfig) => ({ ...c, knn });
    expect(rest(sweep)).toEqual(rest(study));
    expect(sweep.seeds).toEqual([study.seeds[0]]);
    for (const s of study.strategies) {
      const [chosen] = ratesFor(study, s);
      expect(ratesFor(sweep, s), strategyName(s)).toContain(chosen);
      // The chosen rate has a neighbour on each side, so the sweep shows it is not at the edge of what was tried.
      const sorted = [...ratesFor(sweep, s)].sort((a, b) => a - b);
      expect(sorted.indexOf(chosen), strategyName(s)).toBeGreaterThan(0);
      expect(sorted.indexOf(chosen), strategyName(s)).toBeLessThan(sorted.length - 1);
    }
  });

  // The paper's comparisons at the default's scale: Figure 3's blocks, Table 1's LoRA ranks. Each holds the default's
  // own cell of that strategy as it is, so its numbers are the default study's.
  it.each([
    ["configs/default-figure3.json", ["block-p1", "block-p2", "block-p4"], "block-p1"],
    ["configs/default-lora-ranks.json", ["lora-r1", "lora-r4", "lora-r16"], "lora-r4"],
  ])("%s is the default study but for its strategies and rates, curve and analysis", (file, strategies, ofDefault) => {
    const variant = shipped(file);
    const study = parseStudyConfig(DEFAULT_STUDY);
    const rest = ({ name: _n, strategies: _s, learningRates: _l, analysis: _an, knn: { atSteps: _a, ...knn }, ...c }: StudyConfig) => ({ ...c, knn });
    expect(rest(variant)).toEqual(rest(study));
    expect(variant.strategies.map(strategyName)).toEqual(strategies);
    const own = study.strategies.find((s) => strategyName(s) === ofDefault)!;
    expect(ratesFor(variant, own)).toContain(ratesFor(study, own)[0]);
    expect(variant.analysis).toBeUndefined();
  });

  it.each([
    ["configs/default-seeds.json", DEFAULT_STUDY],
    ["configs/default-supervised-seeds.json", SUPERVISED_STUDY],
  ])("%s is its study but for its seeds (the study's first) and analysis", (file, json) => {
    const seeds = shipped(file);
    const study = parseStudyConfig(json);
    const rest = ({ name: _n, seeds: _s, analysis: _an, ...c }: StudyConfig) => c;
    expect(rest(seeds)).toEqual(rest(study));
    expect(seeds.seeds).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(seeds.seeds.slice(0, study.seeds.length)).toEqual(study.seeds);
    expect(seeds.analysis).toBeUndefined();
  });

  // The default study's questions of its own: how soon it forgets, and each strategy across rates. Each holds every
  // strategy's default rate, so its cells at that rate are the default's (seed for seed).
  // The first steps count the draw of the bank too: four other draws (knn.otherBanks), the ten-seed rate studies'.
  it.each([
    ["configs/default-first-steps.json", ["full", "top-1"], 10, [0, 1, 2, 3, 5, 10, 20, 30, 100, 300], shipped("configs/default-seeds-rates.json").knn.otherBanks],
    ["configs/default-tradeoff.json", ["lora-r4", "block-p1"], 5, undefined, undefined],
  ])("%s is the default study but for its strategies, rates, seeds, curve, other banks and analysis, and holds each one's default rate", (file, strategies, seeds, atSteps, otherBanks) => {
    const variant = shipped(file);
    const study = parseStudyConfig(DEFAULT_STUDY);
    const rest = ({ name: _n, strategies: _s, learningRates: _l, seeds: _e, analysis: _an, knn: { atSteps: _a, otherBanks: _o, ...knn }, ...c }: StudyConfig) => ({ ...c, knn });
    expect(rest(variant)).toEqual(rest(study));
    expect(variant.strategies.map(strategyName)).toEqual(strategies);
    for (const s of variant.strategies) {
      const own = study.strategies.find((d) => strategyName(d) === strategyName(s))!;
      expect(ratesFor(variant, s), strategyName(s)).toContain(ratesFor(study, own)[0]);
    }
    expect(variant.seeds).toEqual([...Array(seeds).keys()]);
    expect(variant.knn.atSteps).toEqual(atSteps);
    expect(variant.knn.otherBanks).toEqual(otherBanks);
  });

  // The first steps' full fine-tuning with one thing of its training changed: the rate held after the warm-up, or
  // plain SGD at ten times the rate (the same step once momentum 0.9's has built up).
  it.each([
    ["configs/default-constant-rate.json", { schedule: "constant" }, 1],
    ["configs/default-no-momentum.json", { momentum: 0 }, 10],
  ] as const)("%s is the first steps' full fine-tuning but for its steps and its training's %o, at %d times the rate", (file, changed, times) => {
    const variant = shipped(file);
    const first = shipped("configs/default-first-steps.json");
    const rest = ({ name: _n, strategies: _s, learningRates: _l, knn: { atSteps: _a, ...knn }, training: { schedule: _t, momentum: _m, ...training }, ...c }: StudyConfig) => ({ ...c, knn, training });
    expect(rest(variant)).toEqual(rest(first));
    expect(variant.strategies.map(strategyName)).toEqual(["full"]);
    expect(ratesFor(variant, variant.strategies[0])).toEqual(ratesFor(first, first.strategies[0]).map((lr) => lr * times));
    expect({ schedule: variant.training.schedule, momentum: variant.training.momentum }).toEqual({ schedule: undefined, momentum: first.training.momentum, ...changed });
    expect(variant.knn.atSteps!.every((step) => first.knn.atSteps!.includes(step))).toBe(true);
  });

  it.each([
    ["configs/default-analysis-steps.json", DEFAULT_STUDY, "configs/default-seeds.json"],
    ["configs/default-supervised-analysis-steps.json", SUPERVISED_STUDY, "configs/default-supervised-seeds.json"],
  ])("%s is its study but for its name, ten seeds and analysis.atSteps", (file, of, seeds) => {
    const steps = shipped(file);
    const study = parseStudyConfig(of);
    const rest = ({ name: _n, seeds: _s, analysis: { atSteps: _a, ...analysis } = {} as AnalysisSpec, ...c }: StudyConfig) => ({ ...c, analysis });
    expect(rest(steps)).toEqual(rest(study));
    expect(steps.name).not.toBe(study.name);
    expect(steps.seeds).toEqual(shipped(seeds).seeds);
    expect(steps.analysis!.atSteps).toEqual([3, 10, 30, 100, 300]);
    // The forgetting curve's steps after 0, and one before its first: the backbones whose k-NN the curve plots.
    for (const step of steps.analysis!.atSteps!.slice(1)) expect(study.knn.atSteps).toContain(step);
  });

  it("configs/default-analysis-steps-banks.json is the ten-seed analysis along fine-tuning but for its name and the rate studies' other banks", () => {
    const banks = shipped("configs/default-analysis-steps-banks.json");
    const steps = shipped("configs/default-analysis-steps.json");
    const rest = ({ name: _n, knn: { otherBanks: _o, ...knn }, ...c }: StudyConfig) => ({ ...c, knn });
    expect(rest(banks)).toEqual(rest(steps));
    expect(banks.name).not.toBe(steps.name);
    expect(banks.knn.otherBanks).toEqual(shipped("configs/default-seeds-rates.json").knn.otherBanks);
  });

  it("configs/default-patch-steps.json is the ten-seed analysis along fine-tuning but for its name, full fine-tuning alone, the curve and the kept steps", () => {
    const dense = shipped("configs/default-patch-steps.json");
    const steps = shipped("configs/default-analysis-steps.json");
    const rest = ({ name: _n, strategies: _s, learningRates: _l, knn: { atSteps: _k, ...knn }, analysis, ...c }: StudyConfig) => ({ ...c, knn, analysis: { ...analysis, atSteps: undefined } });
    expect(rest(dense)).toEqual(rest(steps));
    expect([dense.strategies.map(strategyName), dense.learningRates]).toEqual([["full"], { full: ratesFor(steps, parseStrategy("full")) }]);
    expect(dense.analysis!.atSteps).toHaveLength(25);
    expect(dense.knn.atSteps).toEqual([0, ...dense.analysis!.atSteps!]);
    expect(dense.analysis!.atSteps).toEqual(expect.arrayContaining(steps.analysis!.atSteps!));
  });

  it("configs/default-patch-steps-no-momentum.json, -no-warmup.json and -lpft.json are the patch steps' study but for their names, 17 of its kept steps and one setting each (momentum 0 at ten times the rate; no warm-up; a probe first)", () => {
    const dense = shipped("configs/default-patch-steps.json");
    const rest = ({ name: _n, learningRates: _l, training, knn: { atSteps: _k, ...knn }, analysis, ...c }: StudyConfig) => ({ ...c, knn, analysis: { ...analysis, atSteps: undefined }, training: { ...training, momentum: undefined, warmupSteps: undefined } });
    const [rate] = ratesFor(dense, parseStrategy("full"));
    for (const [name, training, lr] of [["no-momentum", { momentum: 0, warmupSteps: 20 }, 10 * rate], ["no-warmup", { momentum: 0.9, warmupSteps: 0 }, rate]] as const) {
      const variant = shipped(`configs/default-patch-steps-${name}.json`);
      expect(rest(variant), name).toEqual(rest(dense));
      expect([variant.training.momentum, variant.training.warmupSteps, variant.learningRates], name).toEqual([training.momentum, training.warmupSteps, { full: [lr] }]);
      expect(variant.analysis!.atSteps, name).toHaveLength(17);
      expect(dense.analysis!.atSteps, name).toEqual(expect.arrayContaining(variant.analysis!.atSteps!));
      expect(variant.knn.atSteps, name).toEqual([0, ...variant.analysis!.atSteps!]);
      expect(variant.name, name).not.toBe(dense.name);
    }
    expect([dense.training.momentum, dense.training.warmupSteps]).toEqual([0.9, 20]);
    // -lpft.json: its training, after a probe scaled to a drawn head's norm as configs/default-lpft-head-norm.json's.
    const probed = shipped("configs/default-patch-steps-lpft.json");
    const noWarmup = shipped("configs/default-patch-steps-no-warmup.json");
    const own = ({ name: _n, strategies: _s, learningRates: _l, linearProbe: _p, training: { warmupSteps: _w, ...training }, ...c }: StudyConfig) => ({ ...c, training });
    expect(own(probed)).toEqual(own(noWarmup));
    expect([probed.strategies.map(strategyName), probed.learningRates, probed.training]).toEqual([["full-lpft"], { "full-lpft": [rate] }, dense.training]);
    expect(probed.linearProbe).toEqual(shipped("configs/default-lpft-head-norm.json").linearProbe);
  });

  it("configs/default-keepflat.json is the ten-seed analysis along fine-tuning but for its name, full fine-tuning with and without the flat response held (at its rate, a third of it and three times it), and the first steps' curve", () => {
    const flat = shipped("configs/default-keepflat.json");
    const steps = shipped("configs/default-analysis-steps.json");
    const rest = ({ name: _n, strategies: _s, learningRates: _l, knn: { atSteps: _k, ...knn }, ...c }: StudyConfig) => ({ ...c, knn });
    expect(rest(flat)).toEqual(rest(steps));
    const rate = ratesFor(steps, parseStrategy("full"));
    expect([flat.strategies.map(strategyName), flat.learningRates]).toEqual([["full", "full-keepflat"], { full: rate, "full-keepflat": [0.003, ...rate, 0.03] }]);
    expect(rate).toEqual([0.01]);
    expect(flat.knn.atSteps).toEqual(shipped("configs/default-first-steps.json").knn.atSteps);
  });

  it("configs/default-lpft-head-norm-0.26.json is the norm-6.5 study but for its name, the head's norm and LP-FT's rates", () => {
    const small = shipped("configs/default-lpft-head-norm-0.26.json");
    const large = shipped("configs/default-lpft-head-norm-6.5.json");
    const rest = ({ name: _n, learningRates: _l, linearProbe: _p, ...c }: StudyConfig) => c;
    expect(rest(small)).toEqual(rest(large));
    expect(small.linearProbe).toEqual({ ...large.linearProbe, headNorm: 0.26 });
    expect(small.strategies.map((st) => ratesFor(small, st))).toEqual(large.strategies.map((st) => (strategyName(st) === "full-lpft" ? [0.001, 0.003, 0.01, 0.03, 0.1] : ratesFor(large, st))));
  });

  // top-4 on the default's 4-block backbone trains every block, the final norm and the head: all that full
  // fine-tuning trains but the embeddings.
  it.each([
    ["configs/default-frozen-embeddings.json", "configs/default-seeds.json", "configs/default-lr-sweep.json"],
    ["configs/default-supervised-frozen-embeddings.json", "configs/default-supervised-seeds.json", "configs/default-supervised-lr-sweep.json"],
  ])("%s is the ten-seed study with top-4 at full fine-tuning's swept rates", (file, ofSeeds, sweep) => {
    const frozen = shipped(file);
    const seeds = shipped(ofSeeds);
    const rest = ({ name: _n, strategies: _s, learningRates: _l, ...c }: StudyConfig) => c;
    expect(rest(frozen)).toEqual(rest(seeds));
    expect(frozen.strategies.map(strategyName)).toEqual(["full", "top-4", ...seeds.strategies.slice(1).map(strategyName)]);
    for (const s of seeds.strategies) expect(ratesFor(frozen, s), strategyName(s)).toEqual(ratesFor(seeds, s));
    const full = seeds.strategies.find((s) => s.kind === "full")!;
    expect(ratesFor(frozen, frozen.strategies[1])).toEqual(ratesFor(shipped(sweep), full));
  });

  it("configs/default-long-finetune.json is the default study but for its steps (five times), seeds, curve and name", () => {
    const long = shipped("configs/default-long-finetune.json");
    const study = parseStudyConfig(DEFAULT_STUDY);
    const rest = ({ name: _n, seeds: _s, training: { steps: _t, ...training }, knn: { atSteps: _a, ...knn }, ...c }: StudyConfig) => ({ ...c, training, knn });
    expect(rest(long)).toEqual(rest(study));
    expect(long.training.steps).toBe(5 * study.training.steps);
    expect(long.seeds).toEqual([0, 1, 2, 3, 4]);
    // The default's steps, then the two past them, the last the end of training.
    expect(long.knn.atSteps).toEqual([...study.knn.atSteps!, 1000, long.training.steps]);
  });

  it("configs/default-long-finetune-rates.json is the 1,500-step study but for its rates: each strategy's, then down the sweep's grid", () => {
    const rates = shipped("configs/default-long-finetune-rates.json");
    const long = shipped("configs/default-long-finetune.json");
    const sweep = shipped("configs/default-lr-sweep.json");
    expectRatesOf(rates, long);
    for (const s of rates.strategies) {
      const [own] = ratesFor(long, s);
      const swept = [...ratesFor(sweep, s)].sort((x, y) => x - y);
      expect(swept[swept.indexOf(own) - 1], strategyName(s)).toBe(down(own));
      const tried = ratesFor(rates, s);
      // Down from the 300-step study's rate, step by step to the first rate whose transfer accuracy fell
      // (docs/STUDY.md), for every strategy that trains the backbone.
      expect(tried[0], strategyName(s)).toBe(own);
      tried.slice(1).forEach((lr, i) => expect(lr, strategyName(s)).toBe(down(tried[i])));
      const steps: Record<string, number> = { full: 3, "top-1": 3, linear: 0, "lora-r4": 2, "block-p1": 2 };
      expect(tried.length - 1, strategyName(s)).toBe(steps[strategyName(s)]);
    }
  });

  it("configs/default-seeds-rates.json is the ten-seed study but for its rates: full's and top-1's, then two down the sweep's grid", () => {
    const rates = shipped("configs/default-seeds-rates.json");
    const seeds = shipped("configs/default-seeds.json");
    expectRatesOf(rates, seeds);
    for (const s of rates.strategies) {
      const [own] = ratesFor(seeds, s);
      const lower = ["full", "top-1"].includes(strategyName(s));
      expect(ratesFor(rates, s), strategyName(s)).toEqual(lower ? [own, down(own), down(down(own))] : [own]);
    }
  });

  it.each([
    ["configs/default-seeds-rates-val.json", "configs/default-seeds-rates.json"],
    ["configs/default-long-finetune-rates-val.json", "configs/default-long-finetune-rates.json"],
  ])("%s is %s choosing every checkpoint and rate on images that score nothing", (file, of) => {
    const val = shipped(file);
    const rates = shipped(of);
    const rest = ({ name: _n, selectBy: _s, transfer: { val: _v, ...transfer }, ...c }: StudyConfig) => ({ ...c, transfer });
    expect(rest(val)).toEqual(rest(rates));
    expect(val.selectBy).toBe("knee");
    expect(val.knn.val).toBeDefined();
    expectAfter(val.transfer.val as DataSpec, val.transfer.train, val.transfer.test.perClass);
  });

  it("configs/default-large-test.json is the default study's linear, LoRA and Block Expansion on every test image, ten seeds", () => {
    const large = shipped("configs/default-large-test.json");
    const study = parseStudyConfig(DEFAULT_STUDY);
    const rest = ({ name: _n, strategies: _s, learningRates: _l, seeds: _e, analysis: _an, knn: { atSteps: _a, queries: _q, otherBanks: _o, ...knn }, transfer: { test: _t, ...transfer }, ...c }: StudyConfig) => ({ ...c, knn, transfer });
    expect(rest(large)).toEqual(rest(study));
    expectOtherBanks(large);
    expect(large.strategies.map(strategyName)).toEqual(["linear", "lora-r4", "block-p1"]);
    for (const s of large.strategies) expect(ratesFor(large, s)).toEqual(ratesFor(study, study.strategies.find((d) => strategyName(d) === strategyName(s))!));
    expect(large.seeds).toEqual([...Array(10).keys()]);
    // Fashion-MNIST's test split holds 1,000 images per class: every one, of the default's classes and transform.
    expect(large.knn.queries).toEqual({ ...study.knn.queries, perClass: 1000 });
    expect(large.transfer.test).toEqual({ ...study.transfer.test, perClass: 1000 });
    expect([large.knn.atSteps, large.analysis]).toEqual([undefined, undefined]);
  });

  it("configs/default-supervised.json is the default study but for its backbone (pre-trained with labels) and rates", () => {
    const supervised = parseStudyConfig(SUPERVISED_STUDY);
    const study = parseStudyConfig(DEFAULT_STUDY);
    const rest = ({ name: _n, backbone: _b, learningRates: _l, ...c }: StudyConfig) => c;
    expect(rest(supervised)).toEqual(rest(study));
    expect(supervised.backbone.pretrain).toMatchObject({ steps: 400, batchSize: 128, model: DEFAULT_MODEL });
  });

  it("configs/default-dino-long.json is the supervised default study but for its backbone: the long DINO config's output", () => {
    const dino = shipped("configs/default-dino-long.json");
    const study = parseStudyConfig(SUPERVISED_STUDY);
    const rest = ({ name: _n, backbone: _b, ...c }: StudyConfig) => c;
    expect(rest(dino)).toEqual(rest(study));
    expect(dino.backbone).toMatchObject({ checkpoint: "runs/dino-fashion-mnist-long/backbone.safetensors", heads: 2 });
    expect(JSON.parse(readFileSync("configs/dino-fashion-mnist-long.json", "utf8")).$comment).toContain("--out runs/dino-fashion-mnist-long");
  });

  it("configs/paper/table1-cifar100.json holds Table 1: every strategy on CIFAR-100", () => {
    const c = shipped("configs/paper/table1-cifar100.json");
    expect(c.strategies.map(strategyName)).toEqual(["full", "top-3", "linear", "lora-r4", "lora-r8", "lora-r16", "block@11", "block-p2", "block-p3", "block-p4"]);
    expect(c.transfer.train.dataset).toBe("cifar100");
  });
});

// Every preset of configs/paper/, read as JSON: the authors' protocol, key by key.
describe("the paper's presets (configs/paper/)", () => {
  const dir = "configs/paper";
  const presets = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  const parse = (file: string): StudyConfig => parseStudyConfig(JSON.parse(readFileSync(join(dir, file), "utf8")), file);

  it("has a preset per experiment, each named as its file", () => {
    expect(presets).toEqual([
      "figure2-cifar10.json", "figure2-cifar100.json", "figure2-dtd.json", "figure2-flowers102.json", "figure2-food101.json",
      "figure3-block-expansion.json", "figure4-vit-s16.json", "first-steps-cifar100.json", "layer-decay-cifar100.json", "lpft-cifar100.json",
      "table1-cifar100.json",
    ]);
    for (const f of presets) expect(JSON.parse(readFileSync(join(dir, f), "utf8")).name).toBe(f.replace(".json", ""));
  });

  for (const file of presets) {
    it(`${file} passes the config check and follows the authors' protocol`, () => {
      const json = JSON.parse(readFileSync(join(dir, file), "utf8"));
      parse(file);
      expect(json.$comment).toContain("Departures:");
      // The first steps' preset stops at 1,000 steps (its own test, below).
      expect(json.training).toMatchObject({ steps: file.startsWith("first-steps") ? 1000 : 10000, evalEvery: 500, batchSize: 128, warmupSteps: 500, optimizer: "sgd", momentum: 0.9, weightDecay: 0 });
      expect(json.imageSize).toBe(224);
      expect(json.knn).toMatchObject({ reportK: 20, temperature: 0.07 });
      // The authors' normalisation: 0.5 / 0.5 for the transfer task, ImageNet's statistics (the default) for k-NN.
      for (const spec of Object.values(json.transfer) as { mean: number[]; std: number[] }[]) expect([spec.mean, spec.std]).toEqual([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]);
      for (const spec of [json.knn.bank, json.knn.queries]) expect([spec.dataset, spec.mean, spec.std]).toEqual(["imagefolder", undefined, undefined]);
      // Their rates, linear probing's ten times larger; their head: Hugging Face's truncated normal, nn.Linear's for Block Expansion.
      const strategies: string[] = json.strategies;
      const rates = (s: string) => (Array.isArray(json.learningRates) ? json.learningRates : json.learningRates[s]);
      const init = (s: string) => (typeof json.headInit === "string" ? json.headInit : json.headInit[s]);
      for (const s of strategies) {
        expect(rates(s), s).toEqual(s === "linear" ? [0.5, 0.05, 0.005] : [0.05, 0.01, 0.005]);
        expect(init(s), s).toBe(s.startsWith("block") ? "uniform" : "trunc-normal");
      }
      // p = 1 is the authors' split 11: a block after block 11.
      expect(strategies).not.toContain("block-p1");
      const model = file.includes("vit-s16") ? { file: "dino_deitsmall16_pretrain.pth", heads: 6 } : { file: "dino_vitbase16_pretrain.pth", heads: 12 };
      expect(json.backbone).toEqual({ checkpoint: `/path/to/${model.file}`, heads: model.heads });
    });
  }

  it("Figure 2's and 4's presets hold the figure's four strategies; Figure 3's Block Expansion with 1 to 4 blocks", () => {
    const strategiesOf = (f: string) => JSON.parse(readFileSync(join(dir, f), "utf8")).strategies;
    for (const f of presets.filter((f) => f.startsWith("figure2") || f.startsWith("figure4"))) expect(strategiesOf(f), f).toEqual(["full", "linear", "lora-r8", "block-p3"]);
    expect(strategiesOf("figure3-block-expansion.json")).toEqual(["block@11", "block-p2", "block-p3", "block-p4"]);
    // DTD and Flowers102 have a val split, on which the authors choose the checkpoint; the others choose on test.
    const splits = (f: string) => Object.values(JSON.parse(readFileSync(join(dir, f), "utf8")).transfer).map((s) => (s as { split: string }).split);
    for (const f of ["figure2-dtd.json", "figure2-flowers102.json"]) expect(splits(f), f).toEqual(["train", "test", "val"]);
    for (const f of ["figure2-cifar10.json", "figure2-cifar100.json", "figure2-food101.json", "table1-cifar100.json"]) expect(splits(f), f).toEqual(["train", "test"]);
  });
});

describe("the presets run with Table 1's --out", () => {
  it("keep Table 1's finished cells: every change is one that grows its run folder", () => {
    const table1 = shipped("configs/paper/table1-cifar100.json");
    for (const f of ["figure2-cifar100.json", "figure3-block-expansion.json", "layer-decay-cifar100.json", "lpft-cifar100.json"]) {
      expect(configChanges(table1, shipped(`configs/paper/${f}`)).refusing, f).toEqual([]);
    }
  });

  it("LP-FT's preset probes first, its head scaled to the drawn head's norm", () => {
    const c = shipped("configs/paper/lpft-cifar100.json");
    expect(c.strategies.map(strategyName)).toEqual(["full-lpft", "lora-r8-lpft", "block-p3-lpft"]);
    expect(c.linearProbe).toEqual({ lr: 0.05, headNorm: "drawn" });
  });
});

describe("the first steps' preset (configs/paper/first-steps-cifar100.json)", () => {
  it("is Table 1's full fine-tuning at its three rates but for its steps and curve, every curve step up to 500 in Table 1's schedule", () => {
    const steps = shipped("configs/paper/first-steps-cifar100.json");
    const table1 = shipped("configs/paper/table1-cifar100.json");
    const rest = ({ name: _n, strategies: _s, learningRates: _l, headInit: _h, knn: { atSteps: _a, ...knn }, training: { steps: _t, ...training }, ...c }: StudyConfig) => ({ ...c, knn, training });
    expect(rest(steps)).toEqual(rest(table1));
    expect(steps.strategies.map(strategyName)).toEqual(["full"]);
    expect(ratesFor(steps, steps.strategies[0])).toEqual(ratesFor(table1, table1.strategies[0]));
    expect(steps.knn.atSteps).toEqual([0, 1, 2, 5, 10, 20, 50, 100, 500, 1000]);
    // Up to the end of the warm-up the rate depends on the warm-up alone: these curve steps train as Table 1's cells.
    const schedule = (total: number) => ({ base: 0.01, warmup: steps.training.warmupSteps, total });
    for (const step of steps.knn.atSteps!.filter((s) => s <= 500)) expect(learningRate(schedule(1000), step)).toBe(learningRate(schedule(10000), step));
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

  it("takes backbone.pretrain.method: supervised (dropped, so the identity stays) or dino (DINO's defaults and a cacheDir)", () => {
    const model = { imageSize: 8, patchSize: 4, width: 16, depth: 4, heads: 2, mlpHidden: 32 };
    const data = { dataset: "npy", split: "train" };
    const supervised = { model, data, steps: 1, batchSize: 2, lr: 0.1 };
    const withMethod = parseStudyConfig({ ...minimal, backbone: { pretrain: { method: "supervised", ...supervised } } });
    expect(studyIdentity(withMethod)).toBe(studyIdentity(parseStudyConfig({ ...minimal, backbone: { pretrain: supervised } })));
    const dino = parseStudyConfig({ ...minimal, backbone: { pretrain: { method: "dino", model, data, steps: 10, batchSize: 8, crops: { localSize: 4, color: "grayscale" } } } });
    expect(dino.backbone.pretrain).toMatchObject({ method: "dino", cacheDir: DEFAULTS.pretrain.cacheDir, momentum: 0.996, teacherTemp: 0.07, crops: { localCrops: 8 } });
    let msg = "";
    try {
      parseStudyConfig({ ...minimal, backbone: { pretrain: { method: "dino", model, data, steps: 10, batchSize: 8, optimizer: "sgd", crops: { localSize: 3, color: "rgb" } } } });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain("backbone.pretrain.optimizer: unknown key");
    expect(msg).toContain("backbone.pretrain.crops.localSize: expected a multiple of model.patchSize 4, got 3");
    // Settings each valid alone but not together (train/dino-pretrain.ts dinoSpecConflicts), by their study key paths.
    const conflicting = { method: "dino", model, data, steps: 10, batchSize: 8, lr: 0.001, minLr: 1, crops: { localSize: 12, color: "rgb" } };
    expect(() => parseStudyConfig({ ...minimal, backbone: { pretrain: conflicting } })).toThrow(
      /backbone\.pretrain\.minLr: expected at most lr \(0\.001\), got 1 .*\n  backbone\.pretrain\.crops\.localSize: expected at most model\.imageSize 8/,
    );
    expect(() => parseStudyConfig({ ...minimal, backbone: { pretrain: { method: "byol", ...supervised } } })).toThrow('backbone.pretrain.method: expected one of supervised, dino, got "byol"');
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
    const c = withStrategies(["full", "linear"]);
    c.learningRates = { full: [0.01, 0.003], linear: [0.1] };
    c.seeds = [0];
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
    const c = parseStudyConfig({ ...DEFAULT_STUDY, learningRates: [0.1, 0.01] });
    expect(c.strategies.length).toBeGreaterThan(1);
    for (const s of c.strategies) expect(ratesFor(c, s)).toEqual([0.1, 0.01]);
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

  it("takes selectBy transfer, mean or knee (test/bad-input/configs.test.ts names another)", () => {
    for (const rule of ["transfer", "mean", "knee"]) expect(parseStudyConfig({ ...clone(DEFAULT_STUDY), selectBy: rule }).selectBy).toBe(rule);
  });

  it("shows a number JSON read as Infinity (1e400) as Infinity, not as JSON's null", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.learningRates = [0.01, Infinity];
    expect(problems(c)).toContain("learningRates[1]: expected a number > 0, got Infinity");
  });

  // The name is the default run folder, runs/<name>: "." or ".." would put the run in runs/ or beside it.
  it("refuses a name of \".\" or \"..\", and takes other names of dots", () => {
    for (const name of [".", ".."]) expect(problems({ ...clone(DEFAULT_STUDY), name })).toContain(`name: expected a name other than "." or "..", got "${name}"`);
    expect(parseStudyConfig({ ...clone(DEFAULT_STUDY), name: "..." }).name).toBe("...");
    expect(parseStudyConfig({ ...clone(DEFAULT_STUDY), name: ".hidden" }).name).toBe(".hidden");
  });

  it("names wrong types with their path", () => {
    const c = clone(SUPERVISED_STUDY) as Record<string, any>;
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
    expect(msg).toContain('strategies[1]: expected a strategy: full, full-keepflat, linear, top-K, top-K-frozen-norm, lora-rR, block-pP or block@POS[,POS], each but linear with -lpft (a linear probe first) and -lrdD (layer-wise rate decay D), in that order, got "lora-rx"');
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
    const c = clone(SUPERVISED_STUDY) as Record<string, any>;
    delete c.training.batchSize;
    c.backbone.checkpoint = "x.safetensors";
    c.knn.reportK = 5;
    c.strategies = ["top-5", "block-p3", "full"];
    c.learningRates = [0.01, 0.01];
    const msg = problems(c);
    expect(msg).toContain("training.batchSize: missing (required)");
    expect(msg).toContain("backbone: expected exactly one of checkpoint and pretrain, got both");
    expect(msg).toContain("knn.reportK: expected one of ks (10, 20), got 5");
    expect(msg).toContain('strategies[0]: expected top-K with 0 <= K <= depth 4 (backbone.pretrain.model), got "top-5"');
    expect(msg).toContain('strategies[1]: expected block-pP with P >= 1 dividing depth 4 (backbone.pretrain.model), got "block-p3"');
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

describe("strategies checked against the backbone", () => {
  const onBackbone = (strategies: string[], backbone?: Record<string, unknown>) => {
    const c = withStrategies(strategies);
    if (backbone) c.backbone = backbone;
    return c;
  };

  it("a pre-trained backbone's depth and width are known: top-K, lora-rR and block@POS must fit them", () => {
    const msg = problems(onBackbone(["top-5", "lora-r0", "lora-r65", "block@5", "block@2,2", "top-4-frozen-norm", "lora-r64"]));
    expect(msg).toContain("5 problems");
    expect(msg).toContain('strategies[0]: expected top-K with 0 <= K <= depth 4 (backbone.pretrain.model), got "top-5"');
    expect(msg).toContain('strategies[1]: expected lora-rR with 1 <= R <= width 64 (backbone.pretrain.model), got "lora-r0"');
    expect(msg).toContain('strategies[2]: expected lora-rR with 1 <= R <= width 64 (backbone.pretrain.model), got "lora-r65"');
    expect(msg).toContain('strategies[3]: expected block@POS with distinct positions in 1..depth 4 (backbone.pretrain.model), got "block@5"');
    expect(msg).toContain('strategies[4]: expected block@POS with distinct positions in 1..depth 4 (backbone.pretrain.model), got "block@2,2"');
  });

  it("with a checkpoint, what fits no backbone is refused at once; the rest once its header is read", () => {
    const checkpoint = { checkpoint: "x.safetensors" };
    const msg = problems(onBackbone(["lora-r0", "block-p0", "block@0", "block@3,3"], checkpoint));
    expect(msg).toContain('strategies[0]: expected lora-rR with R >= 1, got "lora-r0"');
    expect(msg).toContain('strategies[1]: expected block-pP with P >= 1, got "block-p0"');
    expect(msg).toContain('strategies[2]: expected block@POS with distinct positions >= 1, got "block@0"');
    expect(msg).toContain('strategies[3]: expected block@POS with distinct positions >= 1, got "block@3,3"');
    expect(parseStudyConfig(onBackbone(["top-99", "lora-r4096", "block@99"], checkpoint)).strategies).toHaveLength(3);
  });
});

describe("data transforms: mean, std, interpolation, resampler, scale", () => {
  it("reads them, and absent ones stay absent in the canonical JSON (earlier run folders keep matching)", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.transfer.train = { ...c.transfer.train, transform: "train", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], interpolation: "bicubic", resampler: "pil", scale: [0.25, 1] };
    const parsed = parseStudyConfig(c);
    expect(parsed.transfer.train).toMatchObject({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], interpolation: "bicubic", resampler: "pil", scale: [0.25, 1] });
    expect(parseStudyConfig(clone(configJson(parsed)))).toEqual(parsed);
    expect(studyIdentity(parsed)).not.toBe(studyIdentity(parseStudyConfig(DEFAULT_STUDY)));
    const plain = JSON.stringify(configJson(parseStudyConfig(DEFAULT_STUDY)));
    for (const key of ["mean", "std", "interpolation", "resampler", "scale", "headInit"]) expect(plain).not.toContain(`"${key}"`);
  });

  it("names every bad value by its key path", () => {
    const c = clone(SUPERVISED_STUDY) as Record<string, any>;
    c.knn.bank.mean = [0.5, 0.5];
    c.knn.queries.std = [0.2, 0, 0.2];
    c.transfer.test.interpolation = "area";
    c.transfer.test.scale = [0.5, 1];
    c.transfer.train.transform = "train";
    c.transfer.train.scale = [0.9, 0.1];
    c.backbone.pretrain.data.mean = "imagenet";
    const msg = problems(c);
    expect(msg).toContain("knn.bank.mean: expected an array of 3 numbers, got an array of 2");
    expect(msg).toContain("knn.queries.std[1]: expected a number > 0, got 0");
    expect(msg).toContain('transfer.test.interpolation: expected one of nearest, bilinear, bicubic, got "area"');
    expect(msg).toContain('transfer.test.scale: expected no scale with transform "eval" (RandomResizedCrop\'s area range, train only), got [0.5, 1]');
    expect(msg).toContain("transfer.train.scale: expected [min, max] with min <= max, got [0.9, 0.1]");
    expect(msg).toContain('backbone.pretrain.data.mean: expected an array of 3 numbers, got "imagenet"');
  });
});

describe("the new head's initialisation", () => {
  const strategies = ["full", "top-1", "linear", "lora-r4", "block-p1"];

  it("is uniform unless headInit says otherwise, for every strategy or per strategy name", () => {
    const c = withStrategies(strategies);
    const plain = parseStudyConfig(c);
    expect(plain.headInit).toBeUndefined();
    expect(plain.strategies.map((s) => headInitFor(plain, s))).toEqual(new Array(5).fill("uniform"));
    c.headInit = "trunc-normal";
    const one = parseStudyConfig(c);
    expect(one.strategies.map((s) => headInitFor(one, s))).toEqual(new Array(5).fill("trunc-normal"));
    expect(studyIdentity(one)).not.toBe(studyIdentity(plain));
    // The authors' code: Hugging Face's classifier init, but nn.Linear for Block Expansion.
    c.headInit = { full: "trunc-normal", "top-1": "trunc-normal", linear: "trunc-normal", "lora-r4": "trunc-normal", "block-p1": "uniform" };
    const per = parseStudyConfig(c);
    expect(per.strategies.map((s) => headInitFor(per, s))).toEqual(["trunc-normal", "trunc-normal", "trunc-normal", "trunc-normal", "uniform"]);
    expect(parseStudyConfig(clone(configJson(per)))).toEqual(per);
  });

  it("names a bad value, a stranger and a missing strategy", () => {
    const c = withStrategies(strategies);
    c.headInit = "xavier";
    expect(problems(c)).toContain('headInit: expected one of uniform, trunc-normal, got "xavier"');
    c.headInit = { full: "uniform", "top-1": "uniform", linear: "normal", "lora-r4": "uniform", "block-p1": "uniform", "lora-r8": "uniform" };
    expect(problems(c)).toContain('headInit.linear: expected one of uniform, trunc-normal, got "normal"');
    c.headInit.linear = "uniform";
    expect(problems(c)).toContain("headInit.lora-r8: expected a strategy of the config (full, top-1, linear, lora-r4, block-p1), got one that is not");
    delete c.headInit["lora-r8"];
    delete c.headInit.full;
    expect(problems(c)).toContain("headInit.full: missing (a per-strategy headInit needs every strategy)");
  });
});

describe("knn.atSteps, the steps of the forgetting curve", () => {
  it("is absent unless given, and the default study measures it up to its last step", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    const shipped = parseStudyConfig(c);
    expect(shipped.knn.atSteps).toEqual([0, 10, 30, 100, 300]);
    expect(shipped.knn.atSteps!.at(-1)).toBe(shipped.training.steps);
    delete c.knn.atSteps;
    const plain = parseStudyConfig(c);
    expect(plain.knn.atSteps).toBeUndefined();
    // Earlier runs wrote config.json without the key: absent stays absent.
    expect(JSON.stringify(configJson(plain))).not.toContain("atSteps");
    c.knn.atSteps = [0, 60];
    expect(studyIdentity(parseStudyConfig(c))).not.toBe(studyIdentity(plain));
  });

  it("names a step that is not an integer >= 0, out of order, repeated or past training.steps", () => {
    const c = clone(DEFAULT_STUDY) as Record<string, any>;
    c.training.steps = 60;
    const problemsWith = (atSteps: unknown) => {
      c.knn.atSteps = atSteps;
      return problems(c);
    };
    expect(problemsWith([0, 1.5, 10])).toContain("knn.atSteps[1]: expected an integer >= 0, got 1.5");
    expect(problemsWith([-1, 10])).toContain("knn.atSteps[0]: expected an integer >= 0, got -1");
    expect(problemsWith([0, "10"])).toContain('knn.atSteps[1]: expected an integer >= 0, got "10"');
    expect(problemsWith([0, 30, 10])).toContain("knn.atSteps[2]: expected a step after 30 (ascending, distinct), got 10");
    expect(problemsWith([0, 10, 10])).toContain("knn.atSteps[2]: expected a step after 10 (ascending, distinct), got 10");
    expect(problemsWith([0, 10, 61])).toContain("knn.atSteps[2]: expected a step <= training.steps (60), got 61");
    expect(problemsWith([])).toContain("knn.atSteps: expected a non-empty array, got an array of 0");
    expect(problemsWith(10)).toContain("knn.atSteps: expected a non-empty array, got 10");
  });
});
