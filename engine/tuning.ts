// The autotuner's cache: which version of a kernel family won for a given shape on this adapter and driver.
// `node dist/run.js tune` (cli/tune.ts) times the candidates and stores the winners here; the kernels' one version
// resolver (kernels/registry.ts resolveVersion) looks them up, by the family's name and shape key.
//
// One JSON file per adapter + driver, so a driver upgrade (the Mesa version is in llvmpipe's description) or
// another GPU starts from the device defaults instead of another machine's winners:
//   <dir>/tune-<sha256(adapter) first 16 hex>.json
//   { adapter, created, entries: { "<family>/<shape key>": { version, ms, candidates: { version: ms } } } }
// <dir> is $PEFT_TUNE_CACHE, else $XDG_CACHE_HOME/peft-vit-webgpu, else ~/.cache/peft-vit-webgpu (engine/settings.ts).
//
// Look-ups are exact (family and shape key); a shape that was not tuned gets the device default. The file is read
// once per process, on the first look-up; PEFT_TUNE=0 disables look-ups. Explicit versions (call options,
// PEFT_<FAMILY>) are resolved before the resolver asks here. Writes are atomic (util/atomic.ts), so a reader never
// sees half a file.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { runtime, warn } from "./runtime.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { describeFileError, isFileError } from "../util/file-errors.js";
import { isObject } from "../util/json-file.js";

export interface TuneEntry {
  version: string; // the winner
  ms: number; // its median time
  candidates: Record<string, number>; // version -> median ms (a single run for candidates dropped early)
}

export interface TuneCache {
  adapter: string;
  created: string; // ISO date of the first write
  entries: Record<string, TuneEntry>; // "<family>/<shape key>"
}

// The cache's identity: the adapter description (vendor, architecture, device and driver, see engine/device.ts)
// and the Dawn backend, since one adapter can be reached through several backends with different compilers.
export function adapterKey(): string {
  const { gpu } = runtime();
  return `${gpu.adapterInfo.description} [backend ${gpu.backend}]`;
}

export function tuneCachePath(adapter: string = adapterKey()): string {
  const hash = createHash("sha256").update(adapter).digest("hex").slice(0, 16);
  return join(runtime().settings.tuneCacheDir, `tune-${hash}.json`);
}

// The loaded cache (undefined: none, unreadable or not yet read; `loaded` says whether we tried).
let cache: TuneCache | undefined;
let loaded = false;

// The tuned version for "<family>/<key>", or undefined (not tuned, PEFT_TUNE=0, or no usable cache file).
export function tunedVersion(family: string, key: string): string | undefined {
  if (!runtime().settings.tune) return undefined;
  if (!loaded) {
    loaded = true;
    cache = readCache(tuneCachePath());
  }
  return cache?.entries[`${family}/${key}`]?.version;
}

// Reads a cache file. A missing file is normal (undefined); an unreadable one, one that is no cache (bad JSON, a
// field of the wrong type, a folder in its place), or one written for another adapter is reported as an engine
// warning naming the file and what is wrong, then ignored, so a bad cache never stops a run (`tune` rewrites it).
export function readCache(path: string): TuneCache | undefined {
  if (!existsSync(path)) {
    // PEFT_TUNE_CACHE naming a file, not a folder: "no cache" would hide why `tune`'s winners are never found.
    const folder = dirname(path);
    if (existsSync(folder) && !statSync(folder).isDirectory()) warn(`ignoring the tuning cache: its folder ${folder} (PEFT_TUNE_CACHE) is a file, not a folder`);
    return undefined;
  }
  try {
    const cache = asCache(JSON.parse(readFileSync(path, "utf8")));
    if (cache.adapter !== adapterKey()) throw new Error(`written for adapter "${cache.adapter}", not "${adapterKey()}"`);
    return cache;
  } catch (err) {
    warn(isFileError(err) ? `ignoring the tuning cache: ${describeFileError(err, path)}` : `ignoring the tuning cache ${path}: ${err instanceof Error ? err.message : err}`);
    return undefined;
  }
}

// The parsed file as a TuneCache, or an error naming the first field of the wrong shape.
function asCache(parsed: unknown): TuneCache {
  const got = (v: unknown) => (v === undefined ? "nothing" : Array.isArray(v) ? "an array" : typeof v === "object" && v !== null ? "an object" : JSON.stringify(v));
  const isMs = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;
  if (!isObject(parsed)) throw new Error(`expected a JSON object, got ${got(parsed)}`);
  for (const field of ["adapter", "created"]) {
    if (typeof parsed[field] !== "string") throw new Error(`expected "${field}" to be a string, got ${got(parsed[field])}`);
  }
  if (!isObject(parsed.entries)) throw new Error(`expected "entries" to be an object of "<family>/<shape key>": entry, got ${got(parsed.entries)}`);
  for (const [key, e] of Object.entries(parsed.entries)) {
    const at = `entries["${key}"]`;
    if (!isObject(e)) throw new Error(`expected ${at} to be an object, got ${got(e)}`);
    if (typeof e.version !== "string") throw new Error(`expected ${at}.version to be a string, got ${got(e.version)}`);
    if (!isMs(e.ms)) throw new Error(`expected ${at}.ms to be milliseconds (a number >= 0), got ${got(e.ms)}`);
    if (!isObject(e.candidates)) throw new Error(`expected ${at}.candidates to be an object of version: milliseconds, got ${got(e.candidates)}`);
    for (const [version, ms] of Object.entries(e.candidates)) {
      if (!isMs(ms)) throw new Error(`expected ${at}.candidates["${version}"] to be milliseconds (a number >= 0), got ${got(ms)}`);
    }
  }
  return parsed as unknown as TuneCache;
}

// Merges `entries` into this adapter's cache file (atomically) and into the loaded cache. Returns the path.
export async function storeTuned(entries: Record<string, TuneEntry>): Promise<string> {
  const path = tuneCachePath();
  const old = readCache(path);
  const next: TuneCache = {
    adapter: adapterKey(),
    created: old?.created ?? new Date().toISOString(),
    entries: { ...old?.entries, ...entries },
  };
  await writeJsonAtomic(path, next);
  cache = next;
  loaded = true;
  return path;
}

// Deletes this adapter's cache file; returns whether there was one. Later look-ups get the device defaults. What
// cannot be deleted (a folder in its place, no permission) is an error naming the path.
export function clearTuneCache(): boolean {
  const path = tuneCachePath();
  let existed = true;
  try {
    unlinkSync(path);
  } catch (err) {
    if (!isFileError(err)) throw err;
    if (err.code !== "ENOENT") throw new Error(describeFileError(err, path), { cause: err });
    existed = false;
  }
  cache = undefined;
  loaded = true;
  return existed;
}

// Forgets the loaded cache so that the next look-up reads the file again (tests; a changed PEFT_TUNE_CACHE).
export function reloadTuneCache(): void {
  cache = undefined;
  loaded = false;
}
