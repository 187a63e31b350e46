// A small, strict flag parser: `--name value`, `--name=value` and boolean `--name`. No command takes positional
// arguments but `report` (cli/report.ts sets its run folders apart first): those, unknown flags, missing or empty
// values and a flag given twice are UsageErrors that name the argument or flag. A value that starts with "--" is a
// flag, not a value (`--out --list-cells` once trained a whole study into a folder named --list-cells); one that
// must start so is written `--name=--value`. Also the checks of output flags that commands run before any work.
import { stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { HelpRequested, UsageError } from "./command.js";
import { describeFileError, isFileError } from "./file-errors.js";
import { nearestExisting } from "./make-folder.js";

export type FlagType = "string" | "number" | "int" | "boolean" | "list";
export type FlagSpec = Record<string, FlagType>;
type FlagValue<T extends FlagType> = T extends "boolean"
  ? boolean
  : T extends "number" | "int"
    ? number
    : T extends "list"
      ? string[]
      : string;
export type Flags<S extends FlagSpec> = { [K in keyof S]?: FlagValue<S[K]> };

export function parseArgs<S extends FlagSpec>(argv: string[], spec: S): Flags<S> {
  const flags: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") throw new HelpRequested();
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const type = spec[name];
    if (type === undefined) throw new UsageError(`unknown flag --${name}`);
    // The last of two would win silently: `--classes 5 ... --classes 7` is a slip, not a choice.
    if (name in flags) throw new UsageError(`flag --${name} is given twice`);
    if (type === "boolean") {
      if (eq >= 0) throw new UsageError(`flag --${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new UsageError(`flag --${name} needs a value`);
      if (argv[i + 1].startsWith("--")) throw new UsageError(`flag --${name} needs a value, got the flag ${argv[i + 1]}`);
      raw = argv[++i];
    }
    flags[name] = convert(name, type, raw);
  }
  return flags as Flags<S>;
}

function convert(name: string, type: FlagType, raw: string): unknown {
  // An empty path is no path: taken as absent it ran the embedded study, as a folder it wrote into the current one.
  if (type === "string") {
    if (raw === "") throw new UsageError(`flag --${name}: expected a value, got an empty string`);
    return raw;
  }
  if (type === "list") {
    const items = raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    if (items.length === 0) throw new UsageError(`flag --${name}: expected a comma-separated list, got "${raw}"`);
    return items;
  }
  const n = decimal(raw);
  if (n === undefined) throw new UsageError(`flag --${name}: expected a decimal number, got "${raw}"`);
  if (type === "int" && !Number.isInteger(n)) throw new UsageError(`flag --${name}: expected an integer, got "${raw}"`);
  // Past 2^53 a double holds no longer every integer: 9007199254740993 would be read as ...992.
  if (type === "int" && !Number.isSafeInteger(n)) throw new UsageError(`flag --${name}: expected an integer of magnitude below 2^53, got "${raw}"`);
  return n;
}

// A finite number written in decimal ("12", "-0.5", "1e-3"), else undefined: Number() alone also reads "0x10" as
// 16, "0b11" as 3 and " 7 " as 7. For numbers inside list flags too.
export function decimal(raw: string): number | undefined {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw)) return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

// For flags that must be present.
export function required<T>(value: T | undefined, flag: string): T {
  if (value === undefined) throw new UsageError(`missing required flag --${flag}`);
  return value;
}

// A folder's flag: the folder, or its nearest existing parent where it is still to be made, must not be a file.
// Returns that nearest existing path (undefined where not even the root exists: a drive that is not there).
// verb: what the command would do with a folder still to be made there ("create", "read"), for the message.
async function nearestFolder(dir: string, flag: string, verb: string): Promise<{ path: string; missing: string[] } | undefined> {
  // A refusal of stat names the path it was given: the folder, or the one above it where stat stopped.
  const { path, info, missing } = await nearestExisting(dir).catch((e: Error) => {
    throw new Error(`--${flag}: ${isFileError(e) ? describeFileError(e) : e.message}`, { cause: e });
  });
  if (info && !info.isDirectory()) {
    throw new Error(`--${flag}: ${missing.length === 0 ? `expected a folder, got the file ${dir}` : `cannot ${verb} the folder ${dir}: ${path} is a file, not a folder`}`);
  }
  return info ? { path, missing } : undefined;
}

// A folder the command only reads (another user's, maybe, that this one cannot write in): a file on its path is
// refused as checkOutputFolder refuses it, without its probe of writing.
export async function checkInputFolder(dir: string, flag: string): Promise<void> {
  await nearestFolder(dir, flag, "read");
}

// An output folder's flag, checked before any work so that a run does not compute for minutes and then fail to
// write (or write some files and not others): the folder, or its nearest existing parent where it is still to be
// made, must be a folder this process can write in. It writes an empty file there and removes it at once: access()
// answers from the mode bits, which a read-only export, a root-squashed NFS share or an ACL can contradict. Nothing
// else is created (a kill between the two leaves a file whose name the run folder's sweep of temporaries removes).
export async function checkOutputFolder(dir: string, flag: string): Promise<void> {
  const nearest = await nearestFolder(dir, flag, "create");
  if (!nearest) return; // writing will say so
  const { path, missing } = nearest;
  const probe = join(path, `.write-probe.tmp-${process.pid}-${Date.now()}`);
  await writeFile(probe, "", { flag: "wx" }).catch((e: NodeJS.ErrnoException) => {
    const why = isFileError(e) ? describeFileError(e, path, "write in") : e.message;
    throw new Error(`--${flag}: ${missing.length === 0 ? why : `cannot create the folder ${dir}: ${why}`}`, { cause: e });
  });
  await unlink(probe);
}

// An output file's flag: not a folder, in a folder checkOutputFolder accepts.
export async function checkOutputFile(path: string, flag: string): Promise<void> {
  if ((await stat(path).catch(() => undefined))?.isDirectory()) throw new Error(`--${flag}: cannot write ${path}: it is a folder, not a file`);
  await checkOutputFolder(dirname(path), flag);
}
