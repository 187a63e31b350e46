// Atomic file writes: the bytes go to a temporary file in the same folder, which is then renamed over the target.
// rename() within one file system is atomic, so a reader (or a rerun after a kill) sees the old file or the new
// one, never a torn one. The temporary name carries the pid so that two processes never share one.
// A failure names the target, not the temporary file (util/file-errors.ts).
import { existsSync } from "node:fs";
import { open, readdir, rename, rm, unlink, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describeFileError, isFileError } from "./file-errors.js";
import { makeFolder } from "./make-folder.js";

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await atomically(path, (fh) => fh.writeFile(data));
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

// The chunks one after another, so a large file (a ViT-B checkpoint, ~350 MB) is never assembled in memory.
export async function writeChunksAtomic(path: string, chunks: Iterable<Uint8Array>): Promise<void> {
  await atomically(path, async (fh) => {
    let pos = 0;
    for (const bytes of chunks) {
      for (let done = 0; done < bytes.length; ) done += (await fh.write(bytes, done, bytes.length - done, pos + done)).bytesWritten;
      pos += bytes.length;
    }
  });
}

async function atomically(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  try {
    await writeThroughTemp(path, write);
  } catch (e) {
    if (!isFileError(e)) throw e;
    // Creating a folder names that folder; anything else is writing the target.
    const mkdirFailed = e.syscall === "mkdir";
    throw new Error(describeFileError(e, mkdirFailed ? e.path : path, mkdirFailed ? undefined : "write"), { cause: e });
  }
}

async function writeThroughTemp(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  await makeFolder(dirname(path));
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`; // TEMPORARY below reads this name
  const fh = await open(tmp, "w");
  try {
    await write(fh);
    // Flush before the rename: otherwise a power cut can leave the new name pointing at an empty file.
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

// A killed process leaves behind the temporary file of the atomic write it was in: the writes above name it
// <target>.tmp-<pid>-<milliseconds>. Those under `dir` whose process is gone are removed; this process's own pid
// counts as gone (a container restarts its pids; nothing of this process is being written when this runs). A live
// process's are left alone: another study may be pre-training into a shared cache. Returns how many were removed.
const TEMPORARY = /\.tmp-(\d+)-\d+$/;

export async function removeStaleTemporaries(dir: string): Promise<number> {
  const alive = (pid: number) => {
    if (pid === process.pid) return false;
    try {
      process.kill(pid, 0); // signal 0: only asks whether the process exists
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === "EPERM"; // it exists, under another user
    }
  };
  if (!existsSync(dir)) return 0;
  let removed = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const m = TEMPORARY.exec(entry.name);
    if (entry.isDirectory()) removed += await removeStaleTemporaries(path);
    else if (m && !alive(Number(m[1]))) {
      await rm(path, { force: true });
      removed++;
    }
  }
  return removed;
}
