// What the commands write and the files a study leaves: output paths that cannot be written (`features --out`,
// `--dump-dir`, `export --out`), `knn --json` with k past the bank, and `export` of a study cell's checkpoint:
// working as its help says, and refusing damaged, edited, foreign or mismatched files by name. A rerun of a study
// whose last checkpoint was damaged names the file and the way out.
import { cp, mkdir, readFile, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect } from "vitest";
import { readSafetensors } from "../../vit/safetensors.js";
import { type At, type BadCase, RAW_NODE, runCases, tempRoot } from "./harness.js";
import { f32Safetensors, images, npy, tinyVit, write } from "./files.js";
import { type StudyRun, sharedStudy } from "./study.js";

const root = tempRoot("outputs");
const study = sharedStudy(root);

// ---- features and knn outputs

const featuresArgv = (at: At, ...more: string[]) => ["features", "--weights", at("w.safetensors"), "--input", at("x.npy"), "--heads", "2", ...more];
const featuresSetup = async (at: At) => {
  await write(at("w.safetensors"), f32Safetensors(tinyVit()));
  await write(at("x.npy"), images(2));
  await write(at("file.txt"), "in the way");
  await mkdir(at("folder"));
};

const outputCases: BadCase[] = [
  { what: "features --out a folder", setup: featuresSetup, argv: (at) => featuresArgv(at, "--out", at("folder")), code: 1, says: (at) => [at("folder"), "folder"], never: [RAW_NODE] },
  { what: "features --out below a file", setup: featuresSetup, argv: (at) => featuresArgv(at, "--out", at("file.txt", "f.npy")), code: 1, says: (at) => [at("file.txt")], never: [RAW_NODE] },
  // Node's recursive mkdir loops for ever there (util/make-folder.ts).
  { what: "features --out under /proc", setup: featuresSetup, argv: (at) => featuresArgv(at, "--out", "/proc/peft-vit-webgpu-test/f.npy"), code: 1, says: ["cannot create the folder /proc/peft-vit-webgpu-test"], never: [RAW_NODE] },
  {
    what: "features --out in a folder not made yet",
    setup: featuresSetup,
    argv: (at) => featuresArgv(at, "--out", at("new", "f.npy")),
    code: 0,
    says: (at) => [at("new", "f.npy")],
    after: (at) => expect(existsSync(at("new", "f.npy"))).toBe(true),
  },
  {
    what: "features --dump-dir a file: nothing written",
    setup: featuresSetup,
    argv: (at) => featuresArgv(at, "--out", at("f.npy"), "--dump-blocks", "0", "--dump-dir", at("file.txt")),
    code: 1,
    says: (at) => ["--dump-dir", at("file.txt")],
    never: [RAW_NODE],
    after: (at) => expect(existsSync(at("f.npy"))).toBe(false),
  },
  {
    what: "features --dump-dir below a file",
    setup: featuresSetup,
    argv: (at) => featuresArgv(at, "--out", at("f.npy"), "--dump-attention", "1", "--dump-dir", at("file.txt", "dumps")),
    code: 1,
    says: (at) => ["--dump-dir", at("file.txt")],
    never: [RAW_NODE],
    after: (at) => expect(existsSync(at("f.npy"))).toBe(false),
  },
  {
    what: "features with a NaN pixel",
    setup: async (at) => {
      await featuresSetup(at);
      const x = new Float32Array(2 * 3 * 16 * 16);
      x[1 * 768 + 2 * 256 + 3 * 16 + 4] = NaN;
      await write(at("x.npy"), npy(x, [2, 3, 16, 16]));
    },
    argv: (at) => featuresArgv(at, "--out", at("f.npy")),
    code: 1,
    says: (at) => [at("x.npy"), "NaN", "(1, 2, 3, 4)"],
    after: (at) => expect(existsSync(at("f.npy"))).toBe(false),
  },
  { what: "features --dump-attention past the last block", setup: featuresSetup, argv: (at) => featuresArgv(at, "--out", at("f.npy"), "--dump-attention", "5"), code: 2, says: ["block 5 does not exist", "2 blocks"] },
  {
    what: "knn --json with k past the bank says how many voted",
    setup: async (at) => {
      await write(at("x.npy"), npy(new Float32Array(40).map((_, i) => Math.cos(i)), [20, 2]));
      await write(at("y.npy"), npy(Int32Array.from({ length: 20 }, (_, i) => i % 2), [20]));
    },
    argv: (at) => ["knn", "--train", at("x.npy"), "--train-labels", at("y.npy"), "--test", at("x.npy"), "--test-labels", at("y.npy"), "--k", "5,100", "--json"],
    code: 0,
    says: [/"100":\{[^}]*"used":20/, /"5":\{[^}]*"used":5/],
  },
];

// ---- export of the study's cell

// The cell's best checkpoint with its metadata changed (no checksum: a file as other tools would write it).
async function withMetadata(s: StudyRun, edit: (metadata: Record<string, string>) => void): Promise<Uint8Array> {
  const { tensors, metadata } = await readSafetensors(join(s.cell, "best.safetensors"));
  delete metadata.data_sha256;
  edit(metadata);
  return f32Safetensors(tensors, metadata);
}
const manifestEdit = (edit: (m: Record<string, unknown>) => void) => (md: Record<string, string>) => {
  const key = Object.keys(md).find((k) => md[k].includes("peft-vit-webgpu/finetuned"))!;
  const m = JSON.parse(md[key]) as Record<string, unknown>;
  edit(m);
  md[key] = JSON.stringify(m);
};

interface ExportCase {
  what: string;
  finetuned?: (s: StudyRun) => Promise<Uint8Array>; // written as ft.safetensors; default the cell's best
  base?: (s: StudyRun, at: At) => string | Promise<string>; // default the study's backbone
  out?: (at: At) => string; // default at("out.safetensors")
  setupOut?: (at: At) => Promise<unknown>; // puts something where --out points
  flags?: string[]; // default --heads 2 (the backbone is 16 wide with 2 heads)
  code?: 0 | 1 | 2; // default 1
  says: (at: At) => (string | RegExp)[];
  after?: (at: At) => unknown;
}

function exportCase(c: ExportCase): BadCase {
  let base = "";
  return {
    what: `export: ${c.what}`,
    setup: async (at) => {
      const s = await study();
      await write(at("ft.safetensors"), c.finetuned ? await c.finetuned(s) : await readFile(join(s.cell, "best.safetensors")));
      base = c.base ? await c.base(s, at) : s.backbone;
      await c.setupOut?.(at);
    },
    argv: (at) => ["export", "--base", base, "--finetuned", at("ft.safetensors"), "--out", (c.out ?? ((a) => a("out.safetensors")))(at), ...(c.flags ?? ["--heads", "2"])],
    code: c.code ?? 1,
    says: c.says,
    never: [RAW_NODE],
    after: c.after,
  };
}

const exportCases: ExportCase[] = [
  { what: "a study cell's best checkpoint", code: 0, says: (at) => [at("out.safetensors")], after: (at) => expect(existsSync(at("out.safetensors"))).toBe(true) },
  { what: "a study cell's best checkpoint, merged", flags: ["--heads", "2", "--merge"], code: 0, says: (at) => [at("out.safetensors"), "merged"] },
  {
    what: "a study cell's last checkpoint",
    finetuned: async (s) => readFile(join(s.cell, "last.safetensors")),
    code: 0,
    says: (at) => [at("out.safetensors")],
  },
  {
    what: "a scrambled checkpoint",
    finetuned: async (s) => {
      const b = await readFile(join(s.cell, "best.safetensors"));
      for (let i = b.length - 40; i < b.length; i++) b[i] ^= 0xff;
      return b;
    },
    says: (at) => [at("ft.safetensors"), "checksum"],
  },
  { what: "a plain ViT instead of a fine-tuned file", finetuned: async () => f32Safetensors(tinyVit()), says: (at) => [at("ft.safetensors"), "manifest"] },
  { what: "garbage", finetuned: async () => new TextEncoder().encode("garbage!garbage!"), says: (at) => [at("ft.safetensors"), "header length"] },
  { what: "a manifest that is not JSON", finetuned: (s) => withMetadata(s, (md) => { for (const k of Object.keys(md)) if (md[k].includes("finetuned@")) md[k] = "{oops"; }), says: (at) => [at("ft.safetensors"), "manifest", /JSON|parse/] },
  { what: "a manifest of another format", finetuned: (s) => withMetadata(s, manifestEdit((m) => (m.format = "other/2"))), says: (at) => [at("ft.safetensors"), '"other/2"'] },
  { what: "a manifest naming a tensor the file lacks", finetuned: (s) => withMetadata(s, manifestEdit((m) => (m.tensors = [...(m.tensors as string[]), "blocks.0.lora_A"]))), says: (at) => [at("ft.safetensors"), "blocks.0.lora_A"] },
  {
    what: "another base than the one trained from",
    base: async (_s, at) => write(at("other.safetensors"), f32Safetensors(tinyVit())),
    says: (at) => [at("ft.safetensors"), at("other.safetensors"), "sha256"],
  },
  {
    what: "another base of another width, with --allow-other-base",
    base: async (_s, at) => write(at("other.safetensors"), f32Safetensors(tinyVit())),
    flags: ["--allow-other-base", "--heads", "2"],
    says: (at) => [at("ft.safetensors"), "head.weight", "(3, 16)"],
  },
  // The study's pre-trained backbone states its 2 heads (saveVit writes them).
  { what: "--heads against the backbone's own count", flags: ["--heads", "3"], code: 2, says: () => ["--heads", "expected 2 heads", "got 3"] },
  { what: "no --heads: the backbone states them", flags: [], code: 0, says: (at) => [at("out.safetensors")] },
  { what: "a missing base", base: (_s, at) => at("missing.safetensors"), says: (at) => [at("missing.safetensors"), /does not exist|no such file/] },
  { what: "--out a folder", out: (at) => at("x.safetensors"), setupOut: (at) => mkdir(at("x.safetensors")), says: (at) => ["--out", at("x.safetensors"), "folder"] },
  { what: "--out a .pth name", out: (at) => at("y.pth"), flags: ["--heads", "2", "--merge"], code: 2, says: (at) => ["--out", at("y.pth"), ".safetensors"], after: (at) => expect(existsSync(at("y.pth"))).toBe(false) },
];

// features reads a full ViT; a cell's checkpoint holds only the trainable tensors.
const cellAsWeights: BadCase = {
  what: "features --weights a cell's checkpoint",
  setup: async (at) => {
    const s = await study();
    await write(at("x.npy"), images(1, 8));
    await write(at("best.safetensors"), await readFile(join(s.cell, "best.safetensors")));
  },
  argv: (at) => ["features", "--weights", at("best.safetensors"), "--input", at("x.npy"), "--out", at("f.npy")],
  code: 1,
  says: (at) => [at("best.safetensors"), "holds a fine-tuned model's trainable tensors", `--finetuned ${at("best.safetensors")} --out OUT.safetensors --merge`],
};

// ---- resuming a study whose unfinished cell's last checkpoint was damaged

function resumeCase(what: string, damage: (b: Buffer) => void): BadCase {
  return {
    what: `experiment resume: ${what}`,
    setup: async (at) => {
      const s = await study();
      await cp(s.run, at("run"), { recursive: true });
      const cell = at("run", "cells", "linear_lr0.05_s0");
      await rm(join(cell, "result.json"));
      const b = await readFile(join(cell, "last.safetensors"));
      damage(b);
      await write(join(cell, "last.safetensors"), b);
    },
    argv: (at) => ["experiment", "--config", join(root(), "study", "mini.json"), "--out", at("run")],
    code: 1,
    says: (at) => [at("run", "cells", "linear_lr0.05_s0", "last.safetensors"), "checksum", /best|scratch|delete/],
  };
}

const resumeCases = [
  resumeCase("a scrambled last checkpoint", (b) => {
    for (let i = b.length - 64; i < b.length; i++) b[i] = (b[i] + 77) & 0xff;
  }),
  resumeCase("an edited last checkpoint", (b) => b.writeFloatLE(0.125, b.length - 4)),
];

// analyze computes for minutes before it writes: where it writes is checked first.
const analyzeOut: BadCase = {
  what: "analyze --out a file",
  setup: async (at) => {
    await study();
    await write(at("afile"), "in the way");
  },
  argv: (at) => ["analyze", join(root(), "study", "run"), "--out", at("afile")],
  code: 1,
  says: (at) => ["--out", "expected a folder", at("afile")],
  never: [RAW_NODE, "analysis:"],
};

describe("command outputs", () => runCases(root, outputCases));
describe("export and resume of a study's checkpoints", () => runCases(root, [...exportCases.map(exportCase), cellAsWeights, ...resumeCases, analyzeOut]));
