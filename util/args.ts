// A small, strict flag parser: `--name value`, `--name=value` and boolean `--name`. No command takes positional
// arguments but `report` (cli/report.ts sets its run folders apart first): those, unknown flags and missing values
// are UsageErrors that name the argument or flag.
import { HelpRequested, UsageError } from "./command.js";

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
    if (type === "boolean") {
      if (eq >= 0) throw new UsageError(`flag --${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new UsageError(`flag --${name} needs a value`);
      raw = argv[++i];
    }
    flags[name] = convert(name, type, raw);
  }
  return flags as Flags<S>;
}

function convert(name: string, type: FlagType, raw: string): unknown {
  if (type === "string") return raw;
  if (type === "list") return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n)) throw new UsageError(`flag --${name}: expected a number, got "${raw}"`);
  if (type === "int" && !Number.isInteger(n)) throw new UsageError(`flag --${name}: expected an integer, got "${raw}"`);
  return n;
}

// For flags that must be present.
export function required<T>(value: T | undefined, flag: string): T {
  if (value === undefined) throw new UsageError(`missing required flag --${flag}`);
  return value;
}
