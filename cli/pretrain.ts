// `pretrain`: pre-trains a ViT backbone from a JSON config (study/pretrain-config.ts), supervised or with DINO, into
// a folder: backbone.safetensors (timm layout, no head) and its manifest backbone.json (with the file's SHA-256),
// which a study takes as backbone.checkpoint. A rerun resumes from the folder's last checkpoint.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { isObject, readJsonFile } from "../util/json-file.js";
import { initEngine, runtime } from "../engine/runtime.js";
import { classMismatch } from "../data/dataset.js";
import { type DataSpec, openData } from "../data/spec.js";
import { TransformCache } from "../data/transform-cache.js";
import type { VisionTransformer } from "../vit/model.js";
import { parsePretrainConfig } from "../study/pretrain-config.js";
import { datasetKnn } from "../eval/dataset-knn.js";
import { pretrainInto } from "../train/pretrain.js";
import { dinoPretrain } from "../train/dino-pretrain.js";
import { formatDuration } from "../train/progress.js";

export const FLAGS = { config: "string", out: "string", backend: "string", adapter: "string" } as const;

export const pretrainCommand: Command = {
  summary: "pre-train a ViT backbone (supervised, or self-supervised with DINO) from a config into a folder",
  usage: `usage: node dist/run.js pretrain --config FILE.json --out DIR

  --config     the pre-training: "method": "supervised" (the keys of a study's backbone.pretrain) or "dino"
               (see configs/dino-fashion-mnist*.json); "knn": {bank, queries, k, temperature, batchSize} (the
               last three optional) scores the backbone on held-out source images (for DINO every knnEvery steps;
               for either method before the first step and at the end)
  --out        the folder: backbone.safetensors and backbone.json (method, settings, data identity, seed, metrics,
               SHA-256), checkpoints and per-step metrics (metrics.csv); a study takes the backbone as
               backbone.checkpoint
  --backend, --adapter   choose the WebGPU backend / adapter (see \`info\`)

A rerun with the same config and folder resumes from the last checkpoint; another config is refused, naming the
settings that differ, and so is a folder holding the other method's pre-training. DINO logs per step the loss,
the teacher's output entropy, the entropy of its mean output and the teacher-student KL (metrics.csv), and stops
a run whose teacher collapses (uniform or constant outputs for collapse.window steps) with an error that names
the form and the steps. "precision": "f16" (either method) trains in mixed precision
with dynamic loss scaling ("lossScale"), the scale and the skipped steps in metrics.csv; "int8" and "int8x2" run
the products on 8-bit tensor cores, as a study's training.precision.`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    if (!flags.config) throw new UsageError("missing required flag --config");
    if (!flags.out) throw new UsageError("missing required flag --out");
    const config = parsePretrainConfig(await readJsonFile(flags.config, "pretrain", "read the config"), flags.config);
    await refuseStudyFolder(flags.out);
    const started = performance.now();
    await initEngine({ backend: flags.backend, adapter: flags.adapter });
    const { spec } = config;
    // `what` is the config key of the data, named in every error.
    const open = async (d: DataSpec, what: string) => {
      const ds = await openData(d, spec.seed).catch((e: Error) => {
        throw new Error(`pretrain: ${flags.config}: ${what}: ${e.message}`, { cause: e });
      });
      if (ds.length === 0) throw new Error(`pretrain: ${flags.config}: ${what}: expected images, got none (check classes, perClass and fraction)`);
      return ds;
    };
    const data = await open(spec.data, "data");
    console.error(`pretrain (${config.method}) on ${[data.identity.name, data.identity.subset].filter(Boolean).join(" ")} (${data.length} images) -> ${flags.out}`);
    let evaluate: ((backbone: VisionTransformer) => Promise<number>) | undefined;
    if (config.knn) {
      const k = config.knn;
      const bank = { dataset: await open(k.bank, "knn.bank"), spec: k.bank };
      const queries = { dataset: await open(k.queries, "knn.queries"), spec: k.queries };
      const mismatch = classMismatch(queries.dataset, bank.dataset, ["knn.queries", "knn.bank"]);
      if (mismatch) throw new Error(`pretrain: ${flags.config}: ${mismatch}`);
      const cache = new TransformCache(runtime().settings.imageCacheBytes); // the same images at every evaluation
      evaluate = async (backbone) => {
        const [r] = await datasetKnn(backbone, bank, queries, { ks: [k.k], temperature: k.temperature, batchSize: k.batchSize, size: spec.model.imageSize, cache });
        return r.top1;
      };
    }
    const log = (line: string) => console.error(line);
    if (config.method === "dino") {
      const r = await dinoPretrain({ spec: config.spec, data, dir: flags.out, evaluate, progress: process.stderr, log });
      for (const p of r.knn) console.log(`source ${config.knn!.k}-NN at step ${p.step}: ${p.accuracy.toFixed(2)}%`);
      console.log(`wrote ${r.path} (sha256 ${r.sha256}) and ${r.manifestPath}`);
    } else {
      const r = await pretrainInto(config.spec, data, flags.out, { progress: process.stderr, evaluate, log });
      for (const p of r.knn) console.log(`source ${config.knn!.k}-NN at step ${p.step}: ${p.accuracy.toFixed(2)}%`);
      console.log(`wrote ${r.path} (sha256 ${r.sha256}) and ${r.manifestPath}`);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`wall time: ${formatDuration(seconds)} (${seconds.toFixed(1)} s)`);
  },
};

// A study's run folder (its config.json names strategies) is no pre-training's: the backbone.json written there
// would stand where the study records its backbone, and the study could not report. A pre-training's own config
// kept in its folder is no study's, and passes.
async function refuseStudyFolder(out: string): Promise<void> {
  const path = join(out, "config.json");
  if (!existsSync(path)) return;
  const json = await readJsonFile(path, "pretrain").catch(() => undefined);
  if (isObject(json) && "strategies" in json && "learningRates" in json) {
    throw new UsageError(`--out: ${out} holds a study's run folder (${path}); pre-train into another folder`);
  }
}
