// A folder and the folders above it, created where missing (mkdir -p). Node's own recursive mkdir loops for ever
// where mkdir answers ENOENT under a folder that exists (anywhere under /proc, say): it takes the answer for a
// missing parent, creates the parent (which exists), and tries again. Here each missing folder is created once,
// from the nearest one that exists down, and the first refusal is thrown as it is (its code, syscall and path
// intact, for util/file-errors.ts to word).
import { mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";

export async function makeFolder(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let p = resolve(dir); ; p = dirname(p)) {
    const info = await stat(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT" || e.code === "ENOTDIR") return undefined; // a file on the path: found further up
      throw e;
    });
    // A file where a folder should be: mkdir refuses it in its own words (EEXIST, naming it).
    if (info && !info.isDirectory()) await mkdir(p);
    if (info || dirname(p) === p) break;
    missing.push(p);
  }
  for (const p of missing.reverse()) {
    // Another process (a worker beside this one) may have created it in the meantime.
    await mkdir(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e;
    });
  }
}
