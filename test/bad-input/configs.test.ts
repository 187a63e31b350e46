// Bad study configs through `experiment --config`: the file (missing, a folder, not JSON), every kind of bad value
// at its key path (unknown keys, wrong types, out-of-range values, strategies that do not parse or do not fit),
// and what only the data or the checkpoint can tell (a missing dataset root, a class range the dataset lacks).
// Each error names the key path, or the file.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { beforeAll, describe, expect } from "vitest";
import { type At, type BadCase, RAW_NODE, runCases, tempRoot } from "./harness.js";
import { f32Safetensors, tinyVit, write } from "./files.js";
import { miniConfig, writeMiniData } from "./study.js";

const root = tempRoot("configs");
const dataRoot = () => join(root(), "data");
beforeAll(() => writeMiniData(dataRoot()));

// The miniature study every case edits.
const baseConfig = () => miniConfig(dataRoot(), join(root(), "cache"));

const DELETE = Symbol("delete");
type Edits = Record<string, unknown>; // "a.b.c" -> the new value, or DELETE

function edited(edits: Edits): Record<string, unknown> {
  const c = baseConfig();
  for (const [path, value] of Object.entries(edits)) {
    const keys = path.split(".");
    let o = c as Record<string, unknown>;
    for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
    const last = keys[keys.length - 1];
    if (value === DELETE) delete o[last];
    else o[last] = value;
  }
  return c;
}

interface ConfigCase {
  what: string;
  edits?: Edits | ((at: At) => Edits);
  text?: string; // the config file's text as it is, instead of an edited base config
  setup?: (at: At) => Promise<unknown>; // instead of writing c.json
  says: (string | RegExp)[] | ((at: At) => (string | RegExp)[]);
  after?: (at: At) => unknown;
}

function configCase(c: ConfigCase): BadCase {
  return {
    what: c.what,
    setup: async (at) => {
      if (c.setup) return c.setup(at);
      const edits = typeof c.edits === "function" ? c.edits(at) : (c.edits ?? {});
      await write(at("c.json"), c.text ?? JSON.stringify(edited(edits)));
    },
    argv: (at) => ["experiment", "--config", at("c.json"), "--out", at("run")],
    code: 1,
    says: c.says,
    never: [RAW_NODE],
    after: c.after,
  };
}

// A single edit whose message is "<key path>: <what is wrong>".
const bad = (key: string, value: unknown, word: string | RegExp): ConfigCase => ({ what: `${key} = ${JSON.stringify(value) ?? "absent"}`, edits: { [key]: value }, says: [key, word] });

const valueCases: ConfigCase[] = [
  // Unknown keys (typos).
  bad("extra", true, "unknown key"),
  bad("training.stpes", 10, "unknown key"),
  bad("knn.bank.clases", "0-2", "unknown key"),
  bad("backbone.pretrain.model.widht", 16, "unknown key"),
  bad("transfer.valid", {}, "unknown key"),
  // Wrong types and out-of-range values.
  bad("training.steps", "100", 'expected an integer >= 1, got "100"'),
  bad("training.batchSize", 0, "expected an integer >= 1, got 0"),
  bad("training.evalEvery", 1.5, "expected an integer >= 1, got 1.5"),
  bad("training.momentum", 1, "expected a number in [0, 1), got 1"),
  bad("training.weightDecay", -1, "expected a number >= 0, got -1"),
  bad("training.optimizer", "adam2", 'got "adam2"'),
  bad("training.clipNorm", 0, "expected a number > 0, got 0"),
  bad("training.warmupSteps", 10, "expected fewer than steps (4), got 10"),
  bad("training.microBatch", 0, "expected an integer >= 1, got 0"),
  bad("training.lossEvery", 0, "expected an integer >= 1, got 0"),
  bad("training.precision", "bf16", 'got "bf16"'),
  bad("training.lossScale", { init: 1024 }, 'expected only with precision "f16"'),
  { what: "a loss-scale backoff of 1", edits: { "training.precision": "f16", "training.lossScale": { backoff: 1 } }, says: ["training.lossScale.backoff", "expected a number in (0, 1), got 1"] },
  { what: "a loss-scale typo", edits: { "training.precision": "f16", "training.lossScale": { intervall: 10 } }, says: ["training.lossScale.intervall", "unknown key"] },
  bad("learningRates", "0.1", "expected a non-empty array"),
  bad("learningRates", [], "expected a non-empty array"),
  { what: "a negative learning rate", edits: { learningRates: [0.1, -1] }, says: ["learningRates[1]", "expected a number > 0, got -1"] },
  { what: "duplicate learning rates", edits: { learningRates: [0.1, 0.1] }, says: ["learningRates", "distinct"] },
  { what: "a negative seed", edits: { seeds: [-1] }, says: ["seeds[0]", "expected an integer >= 0, got -1"] },
  bad("seeds", "0", "expected a non-empty array"),
  { what: "k of 0", edits: { "knn.ks": [0, 5] }, says: ["knn.ks[0]", "expected an integer >= 1, got 0"] },
  bad("knn.ks", "5", "expected a non-empty array"),
  bad("knn.reportK", 7, "expected one of ks (3, 5), got 7"),
  bad("knn.temperature", 0, "expected a number >= 1/700 (0.00143: below it the votes exp(sim / T) overflow), got 0"),
  bad("knn.temperature", 1e-300, "expected a number >= 1/700"),
  { what: "a seed JSON reads rounded", edits: { seeds: [9007199254740993] }, says: ["seeds[0]", "expected an integer >= 0 below 2^53 (larger ones are read rounded), got 9007199254740992"] },
  bad("knn.temperature", "hot", 'got "hot"'),
  bad("knn.batchSize", 0, "expected an integer >= 1, got 0"),
  bad("knn.atSteps", 4, "expected a non-empty array, got 4"),
  { what: "a curve step past training.steps", edits: { "knn.atSteps": [0, 5] }, says: ["knn.atSteps[1]", "expected a step <= training.steps (4), got 5"] },
  { what: "curve steps out of order", edits: { "knn.atSteps": [2, 1] }, says: ["knn.atSteps[1]", "expected a step after 2 (ascending, distinct), got 1"] },
  { what: "a negative curve step", edits: { "knn.atSteps": [-1] }, says: ["knn.atSteps[0]", "expected an integer >= 0, got -1"] },
  bad("knn.otherBanks", [], "expected a non-empty array, got an array of 0"),
  bad("knn.otherBanks", { dataset: "npy", split: "val" }, "expected a non-empty array, got an object"),
  { what: "another bank without a dataset", edits: { "knn.otherBanks": [{ split: "val" }] }, says: ["knn.otherBanks[0].dataset", "missing (required)"] },
  bad("name", "a/b", 'got "a/b"'),
  bad("name", 5, "expected a non-empty string, got 5"),
  bad("selectBy", "best", 'expected one of transfer, mean, knee, got "best"'),
  bad("imageSize", 0, "expected an integer >= 1, got 0"),
  bad("imageSize", 2.5, "expected an integer >= 1, got 2.5"),
  bad("backbone.pretrain.model.imageSize", 10, "expected a multiple of patchSize 4, got 10"),
  bad("backbone.pretrain.model.heads", 3, "expected a divisor of width 16"),
  bad("backbone.pretrain.model.depth", DELETE, "missing (required)"),
  bad("backbone.pretrain.steps", 0, "expected an integer >= 1, got 0"),
  bad("backbone.pretrain.lr", -1, "expected a number > 0, got -1"),
  bad("backbone.pretrain.optimizer", "rmsprop", 'got "rmsprop"'),
  bad("backbone.pretrain.cacheDir", "", 'expected a non-empty string, got ""'),
  bad("backbone.pretrain.method", "moco", 'expected one of supervised, dino, got "moco"'),
  { what: "a SHA-256 with pretrain", edits: { "backbone.sha256": "0".repeat(64) }, says: ["backbone.sha256", "only with a checkpoint"] },
  {
    what: "a SHA-256 that is not 64 hex digits",
    edits: { "backbone.pretrain": DELETE, "backbone.checkpoint": "w.safetensors", "backbone.sha256": "ABC" },
    says: ["backbone.sha256", 'expected 64 lower-case hex digits (a SHA-256), got "ABC"'],
  },
  { what: "DINO without crops", edits: { "backbone.pretrain.method": "dino" }, says: ["backbone.pretrain.crops", "missing (required)"] },
  ...[
    ["backbone.pretrain.teacherTemp", 0, "expected a number > 0, got 0"],
    ["backbone.pretrain.momentum", 1.5, "expected a number in [0, 1], got 1.5"],
    ["backbone.pretrain.head.prototypes", 0, "expected an integer >= 1, got 0"],
    ["backbone.pretrain.crops.localSize", 6, "expected a multiple of model.patchSize 4, got 6"],
    ["backbone.pretrain.crops.color", "sepia", 'expected one of rgb, grayscale, got "sepia"'],
    ["backbone.pretrain.crops.sampling", "affine", 'expected one of torchvision, grid, got "affine"'],
    ["backbone.pretrain.collapse", { window: -1 }, "collapse.window: expected an integer >= 0, got -1"],
    ["backbone.pretrain.optimizer", "adamw", "unknown key"],
  ].map(([key, value, word]) => ({
    what: `DINO ${key} = ${JSON.stringify(value)}`,
    edits: { "backbone.pretrain.method": "dino", "backbone.pretrain.crops": { localSize: 4, color: "grayscale" }, "backbone.pretrain.head": { hidden: 8, bottleneck: 4, prototypes: 6 }, [key as string]: value },
    says: [key as string, word as string],
  })),
  {
    what: "DINO grid crops with a resampler",
    edits: {
      "backbone.pretrain.method": "dino",
      "backbone.pretrain.crops": { localSize: 4, color: "grayscale", sampling: "grid" },
      "backbone.pretrain.head": { hidden: 8, bottleneck: 4, prototypes: 6 },
      "backbone.pretrain.data.resampler": "pil",
    },
    says: ["backbone.pretrain.data.resampler", 'expected none with crops.sampling "grid"', 'got "pil"'],
  },
  { what: "both checkpoint and pretrain", edits: { "backbone.checkpoint": "x.safetensors" }, says: ["backbone: expected exactly one of checkpoint and pretrain, got both"] },
  { what: "neither checkpoint nor pretrain", edits: { "backbone.pretrain": DELETE }, says: ["backbone: expected exactly one of checkpoint and pretrain, got neither"] },
  bad("backbone", DELETE, "missing (required)"),
  // Strategies.
  { what: "an unknown strategy", edits: { strategies: ["lora-rx"] }, says: ["strategies[0]", 'got "lora-rx"'] },
  { what: "a misspelt strategy", edits: { strategies: ["linear", "ful"] }, says: ["strategies[1]", 'got "ful"'] },
  { what: "top-k deeper than the model", edits: { strategies: ["top-9"] }, says: ["strategies[0]", "depth 2", 'got "top-9"'] },
  { what: "block expansion not dividing the depth", edits: { strategies: ["block-p3"] }, says: ["strategies[0]", "depth 2"] },
  { what: "top-k far deeper than the model", edits: { strategies: ["linear", "top-99-frozen-norm"] }, says: ["strategies[1]", "depth 2", 'got "top-99-frozen-norm"'] },
  { what: "a LoRA rank of 0", edits: { strategies: ["lora-r0"] }, says: ["strategies[0]", "width 16", 'got "lora-r0"'] },
  { what: "a layer decay above 1", edits: { strategies: ["full-lrd1.5"] }, says: ["strategies[0]", "-lrdD with 0 < D <= 1", 'got "full-lrd1.5"'] },
  { what: "a layer decay on linear probing", edits: { strategies: ["linear-lrd0.5"] }, says: ["strategies[0]", "a strategy that trains a block", 'got "linear-lrd0.5"'] },
  { what: "a LoRA rank above the width", edits: { strategies: ["lora-r17"] }, says: ["strategies[0]", "width 16", 'got "lora-r17"'] },
  { what: "block expansion after a block the model lacks", edits: { strategies: ["block@99"] }, says: ["strategies[0]", "depth 2", 'got "block@99"'] },
  { what: "block expansion at position 0", edits: { strategies: ["block@0"] }, says: ["strategies[0]", "depth 2", 'got "block@0"'] },
  { what: "block expansion twice after one block", edits: { strategies: ["block@1,1"] }, says: ["strategies[0]", "distinct", 'got "block@1,1"'] },
  { what: "block expansion of 0 blocks", edits: { strategies: ["block-p0"] }, says: ["strategies[0]", "P >= 1", 'got "block-p0"'] },
  { what: "an empty strategy name", edits: { strategies: [""] }, says: ["strategies[0]", "non-empty string"] },
  { what: "a number as strategy", edits: { strategies: [7] }, says: ["strategies[0]", "got 7"] },
  { what: "duplicate strategies", edits: { strategies: ["full", "full"] }, says: ["strategies", "distinct"] },
  bad("strategies", [], "expected a non-empty array"),
  bad("strategies", "full", "expected a non-empty array"),
  // transfer.val: a split of its own or a fraction held out of transfer.train, not both, and neither test nor train.
  { what: "transfer.val with a split and a fraction", edits: () => ({ "transfer.val": { dataset: "npy", root: dataRoot(), split: "val", fraction: 0.5 } }), says: ["transfer.val: expected either a split", "got both a split and a fraction"] },
  { what: "a held-out fraction of 1", edits: { "transfer.val": { fraction: 1 } }, says: ["transfer.val.fraction", "expected a number in (0, 1)", "got 1"] },
  { what: "a held-out fraction of 0", edits: { "transfer.val": { fraction: 0 } }, says: ["transfer.val.fraction", "got 0"] },
  { what: "transfer.val the test split", edits: () => ({ "transfer.val": { dataset: "npy", root: dataRoot(), split: "test", classes: "3-5" } }), says: ["transfer.val: expected a split other than transfer.test's"] },
  { what: "transfer.val the training split", edits: () => ({ "transfer.val": { dataset: "npy", root: dataRoot(), split: "train", classes: "3-5" } }), says: ["transfer.val: expected a split other than transfer.train's", "without a skipPerClass", '{"fraction": f}'] },
  { what: "transfer.val with another key", edits: { "transfer.val": { fraction: 0.1, seed: 3 } }, says: ["transfer.val.seed: unknown key"] },
  // Data specs.
  bad("transfer.test", DELETE, "missing (required)"),
  bad("transfer.train.dataset", "cifar1000", 'got "cifar1000"'),
  bad("transfer.train.split", DELETE, "missing (required)"),
  bad("knn.bank.classes", "9-5", 'got "9-5"'),
  bad("knn.bank.classes", "a", 'got "a"'),
  { what: "a negative class", edits: { "knn.bank.classes": [-1, 2] }, says: ["knn.bank.classes[0]", "got -1"] },
  bad("knn.bank.fraction", 1.5, "expected a number in (0, 1], got 1.5"),
  bad("knn.bank.fraction", 0, "expected a number in (0, 1], got 0"),
  bad("knn.bank.perClass", 0, "expected an integer >= 1, got 0"),
  bad("knn.queries.transform", "center", 'got "center"'),
  bad("knn.queries.root", "", 'expected a non-empty string, got ""'),
  bad("knn.bank.mean", [0.5, 0.5], "expected an array of 3 numbers, got an array of 2"),
  bad("knn.bank.mean", "imagenet", 'expected an array of 3 numbers, got "imagenet"'),
  { what: "a non-number mean", edits: { "transfer.train.mean": [0.5, "x", 0.5] }, says: ["transfer.train.mean[1]", 'expected a number, got "x"'] },
  { what: "a std of 0", edits: { "transfer.test.std": [0.5, 0, 0.5] }, says: ["transfer.test.std[1]", "expected a number > 0, got 0"] },
  bad("knn.queries.std", [1, 1, 1, 1], "expected an array of 3 numbers > 0, got an array of 4"),
  bad("backbone.pretrain.data.interpolation", "area", 'expected one of nearest, bilinear, bicubic, got "area"'),
  bad("transfer.train.interpolation", 3, "expected one of nearest, bilinear, bicubic, got 3"),
  bad("transfer.train.resampler", "pillow", 'expected one of libvips, pil, got "pillow"'),
  bad("transfer.test.scale", [0.5, 1], 'expected no scale with transform "eval"'),
  { what: "a scale range upside down", edits: { "transfer.train.transform": "train", "transfer.train.scale": [0.9, 0.1] }, says: ["transfer.train.scale", "min <= max, got [0.9, 0.1]"] },
  { what: "a scale above 1", edits: { "transfer.train.transform": "train", "transfer.train.scale": [0.5, 2] }, says: ["transfer.train.scale[1]", "expected a number in (0, 1], got 2"] },
  // The new head's initialisation.
  bad("headInit", "xavier", 'expected one of uniform, trunc-normal, got "xavier"'),
  bad("headInit", 1, "expected one of uniform, trunc-normal, got 1"),
  { what: "headInit for a strategy the config lacks", edits: { headInit: { linear: "uniform", full: "uniform" } }, says: ["headInit.full", "expected a strategy of the config (linear)"] },
  { what: "headInit missing a strategy", edits: { strategies: ["linear", "full"], headInit: { linear: "uniform" } }, says: ["headInit.full", "missing"] },
  { what: "a bad per-strategy headInit", edits: { headInit: { linear: "normal" } }, says: ["headInit.linear", 'got "normal"'] },
];

const fileCases: ConfigCase[] = [
  { what: "invalid JSON", text: '{"name": "mini", ', says: (a) => [a("c.json"), /JSON|parse/] },
  { what: "a trailing comma", text: '{"name": "mini",}', says: (a) => [a("c.json"), /JSON|parse/] },
  { what: "an empty file", text: "", says: (a) => [a("c.json"), /JSON|parse/] },
  { what: "a JSON array", text: "[1, 2]", says: (a) => [a("c.json"), "expected a JSON object at the top level, got an array of 2"] },
  { what: "JSON null", text: "null", says: (a) => [a("c.json"), "expected a JSON object at the top level, got null"] },
  { what: "a JSON string", text: '"mini"', says: (a) => [a("c.json"), "expected a JSON object at the top level"] },
  { what: "a missing file", setup: async () => undefined, says: (a) => [a("c.json"), /does not exist|no such file/] },
  { what: "a folder", setup: (a) => mkdir(a("c.json")), says: (a) => [a("c.json"), /folder|directory/] },
];

// Values only the files can refute: checked when the study opens its data and backbone, before any training.
const missing = (a: At) => a("nowhere");
const dataCases: ConfigCase[] = [
  { what: "a missing dataset root", edits: (a) => ({ "knn.bank.root": missing(a) }), says: (a) => ["knn.bank", missing(a), "does not exist"] },
  { what: "a missing pre-training root", edits: (a) => ({ "backbone.pretrain.data.root": missing(a) }), says: (a) => ["backbone.pretrain.data", missing(a), "does not exist"] },
  {
    what: "a dataset root that is a file",
    edits: (a) => ({ "transfer.test.root": a("c.json") }),
    says: (a) => ["transfer.test", a("c.json"), "folder"],
  },
  { what: "no root for a dataset without a default", edits: { "transfer.train.dataset": "cifar10", "transfer.train.root": DELETE }, says: ["transfer.train", "cifar10", "root"] },
  { what: "a split the dataset lacks", edits: { "knn.queries.split": "val" }, says: ["knn.queries", "val_images.npy", "does not exist"] },
  { what: "a class range past the dataset's classes", edits: { "transfer.train.classes": "3-9" }, says: ["transfer.train", "expected classes in [0, 6)", "got 6"] },
  { what: "transfer test with fewer classes than train", edits: { "transfer.test.classes": "3-4" }, says: ["transfer.test", "3 classes", "got 2"] },
  { what: "a fraction leaving no images", edits: { "knn.bank.fraction": 0.01 }, says: ["knn.bank", /none|no images/] },
  {
    what: "a missing backbone checkpoint",
    edits: (a) => ({ "backbone.pretrain": DELETE, "backbone.checkpoint": a("w.safetensors") }),
    says: (a) => [a("w.safetensors"), /does not exist|no such file/],
  },
  {
    what: "a backbone checkpoint of garbage",
    setup: async (a) => {
      await write(a("w.safetensors"), "garbage");
      await write(a("c.json"), JSON.stringify(edited({ "backbone.pretrain": DELETE, "backbone.checkpoint": a("w.safetensors") })));
    },
    says: (a) => [a("w.safetensors"), "expected at least 8 bytes"],
  },
  {
    what: "top-k deeper than the checkpoint",
    setup: async (a) => {
      await write(a("w.safetensors"), f32Safetensors(tinyVit()));
      const edits = { "backbone.pretrain": DELETE, "backbone.checkpoint": a("w.safetensors"), "backbone.heads": 2, strategies: ["top-5"] };
      await write(a("c.json"), JSON.stringify(edited(edits)));
    },
    says: ["strategies[0]", "top-5", /depth 2/],
  },
  ...[
    ["a LoRA rank above the checkpoint's width", "lora-r33", "width 32"],
    ["block expansion after a block the checkpoint lacks", "block@3", "depth 2"],
    ["block expansion not dividing the checkpoint's depth", "block-p3", "depth 2"],
  ].map(([what, strategy, word]) => ({
    what,
    setup: async (a: At) => {
      await write(a("w.safetensors"), f32Safetensors(tinyVit()));
      const edits = { "backbone.pretrain": DELETE, "backbone.checkpoint": a("w.safetensors"), "backbone.heads": 2, strategies: ["linear", strategy] };
      await write(a("c.json"), JSON.stringify(edited(edits)));
    },
    says: (a: At) => ["strategies[1]", `got ${strategy}`, word, a("w.safetensors")],
    after: (a: At) => expect(existsSync(a("run")), "a run folder").toBe(false), // refused from the header, before any work
  })),
  {
    what: "a backbone checkpoint whose SHA-256 is not the pinned one",
    setup: async (a) => {
      await write(a("w.safetensors"), f32Safetensors(tinyVit()));
      const edits = { "backbone.pretrain": DELETE, "backbone.checkpoint": a("w.safetensors"), "backbone.heads": 2, "backbone.sha256": "0".repeat(64) };
      await write(a("c.json"), JSON.stringify(edited(edits)));
    },
    says: (a: At) => ["backbone.sha256", a("w.safetensors"), `to hash to ${"0".repeat(64)}, got `],
    after: (a: At) => expect(existsSync(a("run")), "a run folder").toBe(false),
  },
  {
    what: "a LoRA rank of 0 with a checkpoint (fits no backbone: refused with the config)",
    edits: (a) => ({ "backbone.pretrain": DELETE, "backbone.checkpoint": a("w.safetensors"), strategies: ["lora-r0"] }),
    says: ["strategies[0]", "R >= 1", 'got "lora-r0"'],
  },
];

describe("configs through experiment --config", () => runCases(root, [...valueCases, ...fileCases, ...dataCases].map(configCase)));

// The pretrain command's config: the mini study's backbone.pretrain, edited; the file cases as for a study.
function pretrainCase(c: ConfigCase): BadCase {
  return {
    what: `pretrain: ${c.what}`,
    setup: async (at) => {
      if (c.setup) return c.setup(at);
      const edits = typeof c.edits === "function" ? c.edits(at) : (c.edits ?? {});
      await write(at("c.json"), c.text ?? JSON.stringify((edited(edits).backbone as Record<string, unknown>).pretrain));
    },
    argv: (at) => ["pretrain", "--config", at("c.json"), "--out", at("run")],
    code: 1,
    says: c.says,
    never: [RAW_NODE],
  };
}

const pretrainCases: ConfigCase[] = [
  ...fileCases,
  { what: "an unknown key", edits: { "backbone.pretrain.stpes": 3 }, says: ["stpes: unknown key"] },
  { what: "an unknown method", edits: { "backbone.pretrain.method": "moco" }, says: ['method: expected one of supervised, dino, got "moco"'] },
  { what: "DINO without crops", edits: { "backbone.pretrain.method": "dino" }, says: ["crops: missing (required)"] },
  { what: "a missing data root", edits: (a) => ({ "backbone.pretrain.data.root": missing(a) }), says: (a) => [a("c.json"), "data:", missing(a), "does not exist"] },
  {
    what: "a k-NN bank of a split the dataset lacks",
    edits: (a) => ({ "backbone.pretrain.knn": { bank: { dataset: "npy", root: dataRoot(), split: "val" }, queries: { dataset: "npy", root: dataRoot(), split: "test" } }, "backbone.pretrain.cacheDir": a("cache") }),
    says: (a) => [a("c.json"), "knn.bank", "val_images.npy", "does not exist"],
  },
];

describe("configs through pretrain --config", () => runCases(root, pretrainCases.map(pretrainCase)));
