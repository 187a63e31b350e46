// `pretrain` and `report` of pre-training folders: DINO settings each valid alone but not together (minLr above lr,
// local crops larger than the image, a last layer frozen throughout, a temperature warm-up past the end) and k-NN
// queries of other classes than the bank's refused by key and values before any folder is made; a folder holding the other method's pre-training refused by name, left
// as it was; and `report` of a supervised folder under way or without k-NN scores saying why it has no curve.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { describe, expect } from "vitest";
import { BACKBONE_MANIFEST_FORMAT } from "../../train/backbone-manifest.js";
import { writeSynthetic } from "../train/synthetic.js";
import { type At, type BadCase, runCases, tempRoot } from "./harness.js";
import { write } from "./files.js";

const root = tempRoot("pretrain");

const model = { imageSize: 8, patchSize: 4, width: 16, depth: 1, heads: 2, mlpHidden: 32 };
const data = (at: At) => ({ dataset: "npy", root: at("data"), split: "train" });
const dino = (at: At) => ({ method: "dino", model, data: data(at), head: { hidden: 16, bottleneck: 8, prototypes: 10 }, crops: { localSize: 4, localCrops: 2, color: "grayscale" }, steps: 4, batchSize: 8 });
const supervised = (at: At) => ({ method: "supervised", model, data: data(at), steps: 2, batchSize: 8, lr: 0.001 });
const argv = (at: At) => ["pretrain", "--config", at("c.json"), "--out", at("out")];

// A DINO config with `edits`, refused before any folder is made.
const conflict = (what: string, edits: Record<string, unknown>, says: string[]): BadCase => ({
  what,
  setup: (at) => write(at("c.json"), JSON.stringify({ ...dino(at), ...edits })),
  argv,
  code: 1,
  says: [...says, "c.json"],
  after: (at) => expect(existsSync(at("out"))).toBe(false),
});

const manifest = (method: string) => JSON.stringify({ format: BACKBONE_MANIFEST_FORMAT, file: "backbone.safetensors", sha256: "0".repeat(64), method, hyperParameters: {}, seed: 0, metrics: { knn: [] } });

// A config of one method into a folder holding the other's (its manifest, or the checkpoint of a run under way).
const held = (what: string, config: (at: At) => unknown, files: Record<string, string>, says: (at: At) => string[]): BadCase => ({
  what,
  setup: async (at) => {
    await writeSynthetic(at("data"), { size: 8, perClass: { train: 2 }, seed: 0 });
    await write(at("c.json"), JSON.stringify(config(at)));
    for (const [file, text] of Object.entries(files)) await write(at("out", file), text);
  },
  argv,
  code: 1,
  says: (at) => [at("out"), ...says(at)],
  after: async (at) => {
    for (const [file, text] of Object.entries(files)) expect(await readFile(at("out", file), "utf8")).toBe(text);
    expect(existsSync(at("out", "backbone.safetensors"))).toBe(false);
  },
});

const cases: BadCase[] = [
  conflict("DINO minLr above lr", { lr: 0.001, minLr: 1 }, ["minLr: expected at most lr (0.001), got 1"]),
  conflict("DINO local crops larger than the image", { crops: { localSize: 12, color: "grayscale" } }, ["crops.localSize: expected at most model.imageSize 8", "got 12"]),
  conflict("DINO last layer frozen throughout", { freezeLastLayerSteps: 1000 }, ["freezeLastLayerSteps: expected fewer than steps (4), got 1000", "never train"]),
  conflict("DINO temperature warm-up past the end", { teacherTempWarmupSteps: 5 }, ["teacherTempWarmupSteps: expected at most steps (4), got 5"]),
  {
    what: "k-NN queries of other classes than the bank's",
    setup: async (at) => {
      await writeSynthetic(at("data"), { size: 8, perClass: { train: 2 }, seed: 0 });
      const knn = { bank: { ...data(at), classes: "0-2" }, queries: { ...data(at), classes: "3-5" } };
      await write(at("c.json"), JSON.stringify({ ...supervised(at), knn }));
    },
    argv,
    code: 1,
    says: ["c.json", 'expected knn.queries to have the 3 classes of knn.bank in the same order, got label 0 "3" where knn.bank has "0"'],
    after: (at) => expect(existsSync(at("out"))).toBe(false),
  },
  held("supervised into a DINO folder", supervised, { "backbone.json": manifest("dino") }, (at) => ["holds a DINO pre-training", at("out", "backbone.json"), "method: dino -> supervised", "delete"]),
  held("supervised into a DINO run under way", supervised, { "last.safetensors": "" }, (at) => [at("out", "last.safetensors"), "method: dino -> supervised", "delete"]),
  held("DINO into a supervised folder", dino, { "backbone.json": manifest("supervised") }, () => ["holds a supervised pre-training", "method: supervised -> dino", "delete"]),
  held("DINO into a supervised run under way", dino, { "train/last.safetensors": "" }, (at) => [at("out", "train", "last.safetensors"), "method: supervised -> dino", "delete"]),
  held("a manifest that is not one", dino, { "backbone.json": "[]" }, (at) => [at("out", "backbone.json"), "expected a backbone manifest"]),
  {
    what: "report of a supervised run under way",
    setup: (at) => write(at("sup", "train", "last.safetensors"), ""),
    argv: (at) => ["report", at("sup"), "--out", at("report")],
    code: 1,
    says: (at) => [at("sup"), "no k-NN scores yet", "backbone.json when it finishes"],
  },
  {
    what: "report of a supervised run without k-NN scores",
    setup: (at) => write(at("sup", "backbone.json"), manifest("supervised")),
    argv: (at) => ["report", at("sup"), "--out", at("report")],
    code: 1,
    says: (at) => [`${at("sup")} has no k-NN curve`, '"knn" in its config'],
    after: (at) => expect(existsSync(at("report"))).toBe(false),
  },
];

describe("pre-training configs and folders", () => runCases(root, cases));
