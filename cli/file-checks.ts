// Checks of the files a command is given, shared by the commands that take them, run before any work: an input that
// is a folder, an output path that is one of the command's inputs, and a fine-tuned model's file given where a
// checkpoint goes.
import { type Stats, statSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "../util/command.js";
import { MANIFEST_KEY, manifestIn } from "../peft/save.js";
import { readSafetensorsHeader } from "../vit/safetensors.js";

// What stat says of a path, or undefined where it cannot say (missing, or refused): the read that follows reports it.
function statOf(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

// Read as a file, a folder fails in Node's words ("EISDIR: illegal operation on a directory"), which name neither
// it nor its flag. inputs: [flag, path] of each input file.
export function refuseFolders(inputs: [string, string][]): void {
  for (const [flag, path] of inputs) if (statOf(path)?.isDirectory()) throw new Error(`--${flag}: expected a file, got the folder ${path}`);
}

// One file under two paths: the same path once resolved (a file still to be written has no other identity), or,
// both existing, the same file reached through a symbolic or hard link.
export function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  const [x, y] = [statOf(a), statOf(b)];
  return x !== undefined && y !== undefined && x.dev === y.dev && x.ino === y.ino;
}

// An output over an input would destroy what it is made from (a checkpoint, the images, a cell's tensors), and
// after the input was read, so that nothing would fail: refused. inputs: [flag, path] of each input.
export function refuseOverwrite(flag: string, out: string, inputs: [string, string][]): void {
  for (const [input, path] of inputs) {
    if (sameFile(out, path)) throw new UsageError(`--${flag}: expected a file other than --${input}, which it would overwrite, got ${out}`);
  }
}

// A fine-tuned model's file (a study cell's best.safetensors) holds only its trainable tensors, in the trainer's
// layout, with a manifest: read as a checkpoint it fails on its first missing tensor. Said in these words instead,
// with the export that makes a checkpoint of it. command: the refusing command, which the message names.
export async function refuseFinetuned(command: string, weights: string): Promise<void> {
  if (!weights.endsWith(".safetensors")) return;
  // An unreadable file is the checkpoint reader's to report, in its words.
  const header = await readSafetensorsHeader(weights).catch(() => undefined);
  if (!header?.metadata[MANIFEST_KEY]) return;
  const m = manifestIn(weights, header.metadata);
  throw new Error(
    `${command}: ${weights} holds a fine-tuned model's trainable tensors (${m.strategy}, fine-tuned from ${m.base.file}), not a checkpoint: ` +
      `write one with \`export --base ${m.base.file} --finetuned ${weights} --out OUT.safetensors --merge\``,
  );
}
