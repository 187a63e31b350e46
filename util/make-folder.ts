// A folder and the folders above it, created where missing (mkdir -p). Node's own recursive mkdir loops for ever
// where mkdir answers ENOENT under a folder that exists (anywhere under /proc, say): it takes the answer for a
// missing parent, creates the parent (which exists), and tries again. Here each missing folder is created once,
// from the nearest one that exists down, and the first refusal is thrown as it is (its code, syscall and path
// intact, for util/file-errors.ts to word).
import type { Stats } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";

export interface NearestExisting {
  path: string; // the nearest of the folder and those above it that exists (a file, maybe), or the root
  info?: Stats; // its stats; absent where not even the root exists (a drive that is not there)
  missing: string[]; // the paths below it down to the folder, top first: the order to create them in
}

// The walk up from a folder to what exists, for makeFolder and util/args.ts checkOutputFolder. Errors of stat other
// than "not there" are thrown as they are (their path is the one stat was given).
export async function nearestExisting(dir: string): Promise<NearestExisting> {
  const missing: string[] = [];
  for (let p = resolve(dir); ; p = dirname(p)) {
    const info = await stat(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT" || e.code === "ENOTDIR") return undefined; // not there, or a file on its path: found further up
      throw e;
    });
    if (info || dirname(p) === p) return { path: p, info, missing: missing.reverse() };
    missing.push(p);
  }
}

export async function makeFolder(dir: string): Promise<void> {
  const { path, info, missing } = await nearestExisting(dir);
  // A file where a folder should be: mkdir refuses it in its own words (EEXIST, naming it).
  if (info && !info.isDirectory()) await mkdir(path);
  for (const p of missing) {
    // Another process (a worker beside this one) may have created it in the meantime.
    await mkdir(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e;
    });
  }
}
