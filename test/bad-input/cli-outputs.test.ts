// The file arguments of `features`, `export`, `params` and `knn` through the real entry: an output over an input or
// over another output (refused before any work, the input left as it was), inputs that are folders (named with
// their flag, not in Node's words), images smaller than a patch, a fine-tuned model's file where a checkpoint goes,
// and a k past the training rows, however large (every row votes, as the help says).
import { mkdir, readFile } from "node:fs/promises";
import { describe, expect } from "vitest";
import { MANIFEST_KEY, manifestOf } from "../../peft/save.js";
import { parseStrategy } from "../../peft/strategy.js";
import { type At, type BadCase, RAW_NODE, runCases, tempRoot } from "./harness.js";
import { f32Safetensors, filled, images, npy, tinyVit, write } from "./files.js";

const root = tempRoot("cli-outputs");

const setup = async (at: At) => {
  await write(at("w.safetensors"), f32Safetensors(tinyVit()));
  await write(at("x.npy"), images(2));
  await mkdir(at("folder"));
};
const features = (at: At, ...more: string[]) => ["features", "--weights", at("w.safetensors"), "--input", at("x.npy"), "--heads", "2", ...more];
// The file an output was refused over holds what it held.
const unchanged = (file: string, bytes: () => Uint8Array) => async (at: At) => expect(new Uint8Array(await readFile(at(file)))).toEqual(bytes());

const featuresCases: BadCase[] = [
  {
    what: "features --out the --weights",
    setup,
    argv: (at) => features(at, "--out", at("w.safetensors")),
    code: 2,
    says: (at) => [`--out: expected a file other than --weights, which it would overwrite, got ${at("w.safetensors")}`],
    after: unchanged("w.safetensors", () => f32Safetensors(tinyVit())),
  },
  {
    what: "features --out the --input",
    setup,
    argv: (at) => features(at, "--out", `${at("folder")}/../x.npy`),
    code: 2,
    says: (at) => [`--out: expected a file other than --input, which it would overwrite, got ${at("folder")}/../x.npy`],
    after: unchanged("x.npy", () => images(2)),
  },
  {
    what: "features --out a dump's file",
    setup,
    argv: (at) => features(at, "--out", at("block.0.npy"), "--dump-blocks", "0", "--dump-dir", at()),
    code: 2,
    says: (at) => [`--out: expected a file other than the dump of --dump-blocks 0 (${at("block.0.npy")}), which would overwrite it`],
  },
  { what: "features --input a folder", setup, argv: (at) => ["features", "--weights", at("w.safetensors"), "--input", at("folder"), "--out", at("f.npy")], code: 1, says: (at) => [`--input: expected a file, got the folder ${at("folder")}`], never: [RAW_NODE] },
  {
    what: "features on 0 x 0 images",
    setup: async (at) => {
      await setup(at);
      await write(at("x0.npy"), npy(new Float32Array(0), [2, 3, 0, 0]));
    },
    argv: (at) => ["features", "--weights", at("w.safetensors"), "--input", at("x0.npy"), "--out", at("f.npy"), "--heads", "2"],
    code: 1,
    says: (at) => [`${at("x0.npy")}: expected images of at least the patch size (4 x 4), got (2, 3, 0, 0)`],
  },
];

// A fine-tuned model's file as other tools would see it: its trainable tensors and the manifest, no checksum.
const finetunedSetup = async (at: At) => {
  await setup(at);
  const manifest = manifestOf([], { strategyOptions: parseStrategy("linear"), classes: 3, seed: 0, base: { file: at("w.safetensors"), sha256: "0".repeat(64) }, hyperParameters: {} });
  const tensors = new Map([["head.weight", filled([3, 32], 0)], ["head.bias", filled([3], 0)]]);
  await write(at("best.safetensors"), f32Safetensors(tensors, { [MANIFEST_KEY]: JSON.stringify({ ...manifest, tensors: [...tensors.keys()] }) }));
};

const otherCases: BadCase[] = [
  { what: "export --finetuned a folder", setup, argv: (at) => ["export", "--base", at("w.safetensors"), "--finetuned", at("folder"), "--out", at("o.safetensors")], code: 1, says: (at) => [`--finetuned: expected a file, got the folder ${at("folder")}`], never: [RAW_NODE] },
  { what: "export --base a folder", setup: finetunedSetup, argv: (at) => ["export", "--base", at(), "--finetuned", at("best.safetensors"), "--out", at("o.safetensors")], code: 1, says: (at) => [`--base: expected a file, got the folder ${at()}`], never: [RAW_NODE] },
  {
    what: "params --weights a fine-tuned model's file",
    setup: finetunedSetup,
    argv: (at) => ["params", "--weights", at("best.safetensors")],
    code: 1,
    says: (at) => [`params: ${at("best.safetensors")} holds a fine-tuned model's trainable tensors (linear, fine-tuned from ${at("w.safetensors")})`, "export --base"],
    never: ["got nothing"],
  },
  ...["100000000", "99999999999999"].map(
    (k): BadCase => ({
      what: `knn --k ${k}, past the training rows`,
      setup: async (at) => {
        await write(at("x.npy"), npy(new Float32Array(40).map((_, i) => Math.cos(i)), [20, 2]));
        await write(at("y.npy"), npy(Int32Array.from({ length: 20 }, (_, i) => i % 2), [20]));
      },
      argv: (at) => ["knn", "--train", at("x.npy"), "--train-labels", at("y.npy"), "--test", at("x.npy"), "--test-labels", at("y.npy"), "--k", k],
      code: 0,
      says: ["(20 used: the training set has 20 rows)"],
      never: ["buffer", "split the queries"],
    }),
  ),
];

describe("features' file arguments", () => runCases(root, featuresCases));
describe("export, params and knn arguments", () => runCases(root, otherCases));
