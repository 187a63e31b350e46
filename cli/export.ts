// `export`: a fine-tuned model (base checkpoint + saved trainable tensors) as one checkpoint file.
import { type Command, UsageError } from "../util/command.js";
import { checkOutputFile, parseArgs, required } from "../util/args.js";
import { initEngine } from "../engine/runtime.js";
import { exportMerged, loadFinetuned } from "../peft/save.js";
import { HeadsError } from "../vit/checkpoint.js";
import { saveVit } from "../vit/load.js";
import { refuseFolders, refuseOverwrite } from "./file-checks.js";

export const FLAGS = { base: "string", finetuned: "string", out: "string", merge: "boolean", heads: "int", key: "string", "allow-other-base": "boolean" } as const;

export const exportCommand: Command = {
  summary: "write a fine-tuned model as one checkpoint (--merge: a plain timm-layout ViT)",
  usage: `usage: node dist/run.js export --base FILE --finetuned F.safetensors --out OUT.safetensors [--merge]

  --base              the checkpoint the model was fine-tuned from (checked against the manifest's SHA-256)
  --finetuned         the saved trainable tensors with their manifest (written by the trainer: a study cell's
                      best.safetensors or last.safetensors)
  --out               the checkpoint to write, a .safetensors file
  --merge             fold LoRA into the weights: a plain ViT that \`features\` and timm load; without it the file
                      holds every tensor, adapters included, under their own names (without LoRA the two are the
                      same file)
  --heads, --key      as for \`features\` (default heads: the number the manifest records, and no other; else as
                      for \`features\`)
  --allow-other-base  skip the base checkpoint hash check`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const base = required(flags.base, "base");
    const finetuned = required(flags.finetuned, "finetuned");
    const out = required(flags.out, "out");
    if (flags.heads !== undefined && flags.heads < 1) throw new UsageError(`--heads: expected an integer >= 1, got ${flags.heads}`);
    // Both forms are safetensors; a .pth name would promise torch.load a file it cannot read.
    if (!out.endsWith(".safetensors")) throw new UsageError(`--out: expected a file name ending in .safetensors, got ${out}`);
    await checkOutputFile(out, "out");
    const inputs: [string, string][] = [["base", base], ["finetuned", finetuned]];
    refuseOverwrite("out", out, inputs);
    refuseFolders(inputs);
    await initEngine();
    const { model, manifest } = await loadFinetuned(base, finetuned, { heads: flags.heads, key: flags.key, allowOtherBase: flags["allow-other-base"] }).catch((e) => {
      throw e instanceof HeadsError ? new UsageError(`--heads: ${e.message}`) : e;
    });
    const metadata = { finetuned_from: manifest.base.file, base_sha256: manifest.base.sha256, strategy: manifest.strategy };
    // Unmerged, the file is the model's state dict in timm's layout with its adapters under their own names
    // (saveVit): what timm and `features` read, but for the adapters, which `features` refuses (merge them first).
    if (flags.merge) await exportMerged(model, out, metadata);
    else await saveVit(model, out, metadata);
    console.error(`wrote ${out} (${manifest.strategy}${flags.merge ? ", merged" : ""})`);
  },
};
