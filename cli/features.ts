// `features`: CLS features of an .npy batch of images with a checkpoint (a stable contract: other tools and the
// parity tests rely on it).
import type { Command } from "../util/command.js";
import { checkOutputFile, checkOutputFolder, decimal, parseArgs, required } from "../util/args.js";
import { UsageError } from "../util/command.js";
import { initEngine } from "../engine/runtime.js";
import { readNpy, writeNpy } from "../data/npy.js";
import { HeadsError } from "../vit/checkpoint.js";
import { loadVit } from "../vit/load.js";
import { isLoraKey } from "../peft/lora.js";
import { FEATURE_BATCH, extractFeatures } from "../eval/features.js";
import { join } from "node:path";
import { refuseFinetuned, refuseFolders, refuseOverwrite, sameFile } from "./file-checks.js";

export const FLAGS = {
  weights: "string",
  input: "string",
  out: "string",
  heads: "int",
  batch: "int",
  key: "string",
  "dump-attention": "list",
  "dump-blocks": "list",
  "dump-dir": "string",
  "allow-nonfinite": "boolean",
  backend: "string",
  adapter: "string",
} as const;

export const features: Command = {
  summary: "CLS features (after the final norm) of N x 3 x H x W images from a checkpoint",
  usage: `usage: node dist/run.js features --weights FILE --input X.npy --out F.npy [--heads H] [--batch B]

  --weights         checkpoint: .safetensors, or .pth (official DINO / timm), Hugging Face ViTModel layout too
  --input           float32 .npy of shape (N, 3, H, W), already normalised; H, W positive multiples of the patch size
                    (another resolution than the checkpoint's interpolates the position embeddings as DINO does)
  --out             float32 .npy of shape (N, C): the CLS token after the final LayerNorm
  --heads           attention heads (default: the count the checkpoint states, in its safetensors metadata or
                    the backbone.json beside it, else width / 64; a count contradicting the file's is refused)
  --batch           images per forward pass (default ${FEATURE_BATCH})
  --key             .pth only: the sub-dictionary holding the weights (e.g. teacher)
  --dump-attention  block indices (e.g. 0,11): write attention probabilities (N, H, T, T) as .npy
  --dump-blocks     block indices: write block outputs (N, T, C) as .npy
  --dump-dir        folder for the dumps (default: beside --out)
  --allow-nonfinite load a checkpoint with NaN or infinite weights (a warning names them) instead of refusing it
  --backend, --adapter   choose the WebGPU backend / adapter (see \`info\`)`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const weights = required(flags.weights, "weights");
    const input = required(flags.input, "input");
    const out = required(flags.out, "out");
    const indices = (list: string[] | undefined, flag: string) =>
      (list ?? []).map((s) => {
        const n = decimal(s);
        if (n === undefined || !Number.isInteger(n) || n < 0) throw new UsageError(`--${flag}: expected block indices, got "${s}"`);
        return n;
      });
    const dumpAttention = indices(flags["dump-attention"], "dump-attention");
    const dumpBlocks = indices(flags["dump-blocks"], "dump-blocks");
    for (const flag of ["batch", "heads"] as const) {
      const v = flags[flag];
      if (v !== undefined && v < 1) throw new UsageError(`--${flag}: expected an integer >= 1, got ${v}`);
    }
    // Where the results go, before any work: a failed dump must not follow a written --out.
    const dumpDir = flags["dump-dir"] ?? join(out, "..");
    // Nor may a result land on an input, or --out on a dump (written after it, under the names eval/features.ts gives).
    const inputs: [string, string][] = [["weights", weights], ["input", input]];
    refuseOverwrite("out", out, inputs);
    const dumps: [string, number, string][] = [
      ...dumpAttention.map((i): [string, number, string] => ["dump-attention", i, join(dumpDir, `attention.${i}.npy`)]),
      ...dumpBlocks.map((i): [string, number, string] => ["dump-blocks", i, join(dumpDir, `block.${i}.npy`)]),
    ];
    for (const [flag, i, path] of dumps) {
      if (sameFile(out, path)) throw new UsageError(`--out: expected a file other than the dump of --${flag} ${i} (${path}), which would overwrite it, got ${out}`);
      refuseOverwrite(flag, path, inputs);
    }
    refuseFolders(inputs);
    await checkOutputFile(out, "out");
    // An .npy whatever its name: feat.txt would hold npy bytes.
    if (!out.endsWith(".npy")) throw new UsageError(`--out: expected a file name ending in .npy, got ${out}`);
    if (dumpAttention.length + dumpBlocks.length > 0) await checkOutputFolder(dumpDir, flags["dump-dir"] === undefined ? "out" : "dump-dir");
    await initEngine({ backend: flags.backend, adapter: flags.adapter });
    const x = await readNpy(input);
    if (x.dtype !== "float32" || x.shape.length !== 4 || x.shape[1] !== 3) {
      throw new Error(`features: ${input}: expected float32 (N, 3, H, W), got ${x.dtype} (${x.shape.join(", ")})`);
    }
    if (x.shape[0] === 0) throw new Error(`features: ${input}: expected at least one image, got 0`);
    const images = x.data as Float32Array;
    const bad = images.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      const [, C, H, W] = x.shape;
      const at = [Math.floor(bad / (C * H * W)), Math.floor(bad / (H * W)) % C, Math.floor(bad / W) % H, bad % W];
      throw new Error(`features: ${input}: expected finite pixel values, got ${images[bad]} at index (${at.join(", ")}) (image, channel, row, column)`);
    }
    await refuseFinetuned("features", weights);
    const loaded = await loadVit(weights, { heads: flags.heads, key: flags.key, allowNonfinite: flags["allow-nonfinite"] }).catch((e) => {
      throw e instanceof HeadsError ? new UsageError(`--heads: ${e.message}`) : e;
    });
    const { model, unused, nonfinite } = loaded;
    // An unmerged export's LoRA tensors: the model without them would give the base backbone's features.
    const adapters = unused.filter(isLoraKey);
    if (adapters.length > 0) throw new Error(`features: ${weights} holds LoRA adapters (${adapters.slice(0, 2).join(", ")}${adapters.length > 2 ? ", ..." : ""}), which this model would leave out: export it with --merge, which folds them into the weights`);
    // A guess is a warning: features of another split of the width into heads are other features, and nothing
    // would fail (a copy of a backbone pre-trained here, away from its backbone.json, states no count).
    const guessed = flags.heads === undefined && loaded.headsFrom.startsWith("width / 64");
    console.error(`${guessed ? "warning: " : ""}${weights}: ${model.config.heads} attention heads (${loaded.headsFrom}${guessed ? "; give --heads if the model has another count" : ""})`);
    if (unused.length) console.error(`warning: ${weights}: unused keys: ${unused.join(", ")}`);
    if (nonfinite.length) console.error(`warning: ${weights}: non-finite weights: ${nonfinite.join(", ")}`);
    const P = model.config.patchSize;
    // A grid of at least one patch each way (another grid than the checkpoint's interpolates the positions).
    if (x.shape[2] < P || x.shape[3] < P) {
      throw new Error(`features: ${input}: expected images of at least the patch size (${P} x ${P}), got (${x.shape.join(", ")})`);
    }
    if (x.shape[2] % P !== 0 || x.shape[3] % P !== 0) {
      throw new Error(`features: ${input}: expected a height and width that are multiples of the patch size ${P}, got ${x.shape[2]} x ${x.shape[3]}`);
    }
    for (const i of [...dumpAttention, ...dumpBlocks]) {
      if (i >= model.blocks.length) throw new UsageError(`block ${i} does not exist: the model has ${model.blocks.length} blocks`);
    }
    const result = await extractFeatures(model, images, x.shape, {
      batch: flags.batch,
      captureAttention: dumpAttention,
      captureBlocks: dumpBlocks,
    });
    await writeNpy(out, result.features, [x.shape[0], model.width]);
    for (const [name, t] of result.captured) await writeNpy(join(dumpDir, `${name}.npy`), t.data, t.shape);
    console.error(`wrote ${out} (${x.shape[0]} x ${model.width})${result.captured.size ? ` and ${result.captured.size} dumps in ${dumpDir}` : ""}`);
  },
};
