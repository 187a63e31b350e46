// Every preset of configs/paper/ in miniature, end to end: its paths replaced by miniature copies of the datasets in
// their distributed layouts (CIFAR's binary files, ImageNet's train/ and val/ image folders) and its checkpoint by a
// tiny ViT of the same depth and head count (width 4 per head, 32 px, patch 16), so that every strategy is checked
// against the backbone as the real one would be; then a handful of steps per cell. What the miniature changes
// besides paths: image size, one step, batch sizes, the first steps' curve, and all but the first learning rate
// (Figure 3's preset keeps two of its rates, which are its subject). Then `report` over the runs draws every figure and the combined table.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { parseStudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import { cellsOf } from "../../study/cells.js";
import { buildVit, initialiser } from "../../vit/model.js";
import { saveVit } from "../../vit/load.js";
import { validateConfig } from "../../vit/config.js";
import { report } from "../../cli/report.js";
import { useEngine } from "../helpers.js";
import { cifarRecord, concat, pattern } from "../data/fixtures.js";
import { writeDtd, writeFlowers102, writeFood101 } from "../data/layouts.js";

useEngine();

const root = mkdtempSync(join(tmpdir(), "paper-presets-"));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// Labels 0..3 in turn, each image a seeded pattern.
function cifarFile(labelBytes: (label: number) => number[], n: number, seed: number): Uint8Array {
  return concat(Array.from({ length: n }, (_, i) => cifarRecord(labelBytes(i % 4), pattern(32 * 32 * 3, seed + i))));
}

async function writeCifar10(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (let k = 1; k <= 5; k++) await writeFile(join(dir, `data_batch_${k}.bin`), cifarFile((l) => [l], 4, 10 * k));
  await writeFile(join(dir, "test_batch.bin"), cifarFile((l) => [l], 8, 99));
  await writeFile(join(dir, "batches.meta.txt"), Array.from({ length: 10 }, (_, i) => `class${i}`).join("\n") + "\n");
  return dir;
}

async function writeCifar100(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "train.bin"), cifarFile((l) => [0, l], 16, 1));
  await writeFile(join(dir, "test.bin"), cifarFile((l) => [0, l], 8, 50));
  await writeFile(join(dir, "fine_label_names.txt"), Array.from({ length: 100 }, (_, i) => `fine${i}`).join("\n") + "\n");
  return dir;
}

// ImageNet as the presets read it: ROOT/train/<wnid>/*.JPEG and ROOT/val/<wnid>/*.JPEG, here two classes of PNGs.
async function writeImageNet(dir: string): Promise<string> {
  for (const [split, n] of [["train", 3], ["val", 2]] as const) {
    for (const wnid of ["n01440764", "n01443537"]) {
      await mkdir(join(dir, split, wnid), { recursive: true });
      for (let i = 0; i < n; i++) {
        const pixels = pattern(40 * 40 * 3, wnid.length * 7 + i + (split === "val" ? 100 : 0));
        await sharp(pixels, { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(join(dir, split, wnid, `${wnid}_${i}.png`));
      }
    }
  }
  return dir;
}

// The miniature root of each dataset the presets read, by registry name.
const MINIATURES: Record<string, (dir: string) => Promise<string>> = {
  imagefolder: writeImageNet,
  cifar10: writeCifar10,
  cifar100: writeCifar100,
  dtd: (dir) => writeDtd(dir, { perClass: 6 }), // two train images per class: a batch of 4 fits
  flowers102: (dir) => writeFlowers102(dir, { classes: 4 }), // one train image per class (as its setid.mat has it): four classes for a batch of 4
  food101: (dir) => writeFood101(dir),
};

const PRESETS = readdirSync("configs/paper").filter((f) => f.endsWith(".json")).sort();
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const presetJson = (file: string): Json => JSON.parse(readFileSync(join("configs/paper", file), "utf8"));
const dataSpecs = (j: Json): Json[] => [j.knn.bank, j.knn.queries, ...Object.values(j.transfer as Record<string, Json>)];

const roots = new Map<string, Promise<string>>();
const rootOf = (dataset: string) => {
  if (!roots.has(dataset)) roots.set(dataset, MINIATURES[dataset](join(root, "data", dataset)));
  return roots.get(dataset)!;
};

// A tiny ViT of DINO's depth with the preset's head count, as a checkpoint file.
const checkpoints = new Map<number, Promise<string>>();
function tinyVit(heads: number): Promise<string> {
  if (!checkpoints.has(heads)) {
    checkpoints.set(heads, (async () => {
      const width = 4 * heads;
      const model = buildVit(validateConfig({ imageSize: 32, patchSize: 16, width, depth: 12, heads, mlpHidden: 2 * width, classes: 0, eps: 1e-6 }), initialiser(heads));
      const path = join(root, `vit-tiny-h${heads}.safetensors`);
      await saveVit(model, path);
      model.dispose();
      return path;
    })());
  }
  return checkpoints.get(heads)!;
}

async function miniature(file: string): Promise<Json> {
  const j = presetJson(file);
  j.backbone.checkpoint = await tinyVit(j.backbone.heads);
  for (const spec of dataSpecs(j)) spec.root = await rootOf(spec.dataset);
  j.imageSize = 32;
  j.knn.batchSize = 8;
  j.knn.ks = [2, 5]; // within the miniature banks' 6 images
  j.knn.reportK = 5;
  j.training = { ...j.training, steps: 1, evalEvery: 1, warmupSteps: 0, batchSize: 4, lossEvery: 1 };
  if (j.knn.atSteps) j.knn.atSteps = [0, 1]; // the first steps' curve, within the one step
  {
    const first = (rates: number[]) => rates.slice(0, file.startsWith("figure3") ? 2 : 1);
    j.learningRates = Array.isArray(j.learningRates) ? first(j.learningRates) : Object.fromEntries(Object.entries(j.learningRates as Record<string, number[]>).map(([s, r]) => [s, first(r)]));
  }
  return j;
}

const runs: string[] = [];

describe("the presets of configs/paper/ in miniature", () => {
  beforeAll(async () => {
    await mkdir(join(root, "runs"), { recursive: true });
  });

  for (const file of PRESETS) {
    it(`${file} passes the config check and runs end to end`, async () => {
      const config = parseStudyConfig(await miniature(file), file);
      const out = join(root, "runs", config.name);
      const r = await runExperiment({ config, out });
      expect(r.complete).toBe(true);
      expect(r.results.cells.length + r.results.diverged.length).toBe(cellsOf(config).length);
      expect(r.results.table.length).toBeGreaterThan(0);
      expect(existsSync(join(out, "figure2.png"))).toBe(true);
      // A study's own folder has Figure 3 when it holds Block Expansion at several numbers of blocks and rates.
      expect(existsSync(join(out, "figure3.png"))).toBe(file.startsWith("figure3"));
      // The first steps' preset: its result is its own forgetting curve, not a panel of the report's figures.
      expect(existsSync(join(out, "forgetting.png"))).toBe(file.startsWith("first-steps"));
      if (!file.startsWith("first-steps")) runs.push(out);
    });
  }

  it("`report` over the runs draws Figures 2, 3 and 4 and the combined Table 1, and says what it drew", async () => {
    expect(runs.length).toBe(10); // table 1, Figure 2 on five datasets, Figures 3 and 4, the layer decay's and LP-FT's extensions
    const out = join(root, "report");
    const lines: string[] = [];
    const log = vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
    try {
      await report.run([...runs, "--out", out]);
    } finally {
      log.mockRestore();
    }
    for (const f of ["figure2", "figure3", "figure4"]) {
      for (const ext of [".vl.json", ".svg", ".png"]) expect(existsSync(join(out, f + ext)), f + ext).toBe(true);
    }
    const tiny = "ViT (patch 16, width 48, depth 12)";
    const small = "ViT (patch 16, width 24, depth 12)";
    const left = "left out, not in every panel: block@11, block-p2, block-p4, full-lrd0.65, full-lrd0.75, top-12, full-lpft, lora-r8-lpft, block-p3-lpft, top-3, lora-r4, lora-r16";
    const cifar100 = "CIFAR-100 (figure2-cifar100, figure3-block-expansion, layer-decay-cifar100, lpft-cifar100, table1-cifar100)"; // the runs each strategy came from
    expect(lines).toContain(`drew figure2: 5 panel(s): ${cifar100}; CIFAR-10 (figure2-cifar10); DTD (figure2-dtd); Food-101 (figure2-food101); Flowers102 (figure2-flowers102); strategies full, linear, lora-r8, block-p3; ${left}`);
    expect(lines).toContain(`drew figure3: Block Expansion in figure3-block-expansion (${tiny}, CIFAR-100)`);
    expect(lines).toContain(`drew figure4: 2 panel(s): ${small}, CIFAR-100 (figure4-vit-s16); ${tiny}, ${cifar100}; strategies full, linear, lora-r8, block-p3; ${left}`);
    const svg2 = await readFile(join(out, "figure2.svg"), "utf8");
    for (const text of [">CIFAR-100<", ">CIFAR-10<", ">DTD<", ">Flowers102<", ">Food-101<", ">Strategy<", ">block-p3<", ">Transfer accuracy (%)<"]) expect(svg2).toContain(text);
    const svg4 = await readFile(join(out, "figure4.svg"), "utf8");
    // Each panel's title names its backbone, in lines broken after a comma; its reference line is that backbone's.
    expect(svg4).toContain(`<tspan>${small},</tspan><tspan x="0" dy="15">CIFAR-100</tspan>`);
    expect(svg4.match(/>original backbone \(/g)?.length).toBe(2);
    const table = await readFile(join(out, "table1.md"), "utf8");
    expect(table.split("\n").filter((l) => l.startsWith(`| ${tiny} | CIFAR-100 | block@11 |`)).length).toBe(2); // Table 1's and Figure 3's runs
    expect(table).toContain("- table1-cifar100 (");
    expect(table).toContain("all 10 cells finished");
    const csv = (await readFile(join(out, "table1.csv"), "utf8")).trim().split("\n");
    // One row per table row and original backbone (10 + 4 x 5 + 4 + 4 + 4 + 3, and 10), every row as wide as the
    // header; a backbone's name with commas is quoted.
    expect(csv.length).toBe(1 + 45 + 10);
    expect(csv.slice(1).every((l) => l.startsWith(`"${tiny}",`) || l.startsWith(`"${small}",`))).toBe(true);
    expect(csv.every((l) => l.replace(/"[^"]*"/g, "x").split(",").length === 20)).toBe(true);
  });
});
