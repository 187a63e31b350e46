// What the readers of listed layouts share (DTD's labels/train1.txt, Food101's meta/train.txt, Flowers102's
// setid.mat): the lines of a split file with their line numbers, the check that nothing is listed twice, the check
// that every listed image is on disk, and the check of a complete set against its published sizes. Also files of
// class names, one a line (Food101's, CIFAR's, an NPY set's classes.txt).
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { dirname, basename } from "node:path";
import { readWhole } from "./dataset.js";
import { describeFileError, isFileError } from "../util/file-errors.js";

export interface ListLine {
  text: string; // trimmed, never empty
  line: number; // 1-based, counting blank lines
}

// The non-blank lines of a text file (LF or CRLF).
export async function readLines(module: string, path: string, what: string): Promise<ListLine[]> {
  if (!existsSync(path)) throw new Error(`${module}: expected ${what} ${path}, it does not exist`);
  const text = (await readWhole(module, path)).toString("utf8");
  return text
    .split("\n")
    .map((t, k) => ({ text: t.trim(), line: k + 1 }))
    .filter((l) => l.text.length > 0);
}

// Throws at the first key given twice, naming both places: an image listed twice in one split, or in two splits
// that are disjoint, or a class named twice. `what` completes "expected each ...".
export function checkOnce(module: string, what: string, items: { key: string; at: string }[]): void {
  const first = new Map<string, string>();
  for (const { key, at } of items) {
    const before = first.get(key);
    if (before !== undefined) throw new Error(`${module}: expected each ${what}, got ${key} at ${before} and again at ${at}`);
    first.set(key, at);
  }
}

// Class names, one a line, in label order; a name given twice would make two classes no one can tell apart.
export async function readClassNames(module: string, path: string, what: string): Promise<string[]> {
  const lines = await readLines(module, path, what);
  checkOnce(module, `class once in ${path}`, lines.map((l) => ({ key: `"${l.text}"`, at: `line ${l.line}` })));
  return lines.map((l) => l.text);
}

// An image a split file lists, and where it is listed (for the message when it is missing).
export interface Listed {
  path: string; // absolute
  listedAt: string; // e.g. "labels/train1.txt line 3" or "setid.mat trnid[4]"
}

// Throws naming the first listed image that is not on disk. Each folder is listed once (Food101 lists 101,000
// files in 101 folders), rather than a stat per file.
export async function checkListed(module: string, files: Listed[]): Promise<void> {
  const folders = new Map<string, Set<string> | undefined>();
  for (const f of files) {
    const dir = dirname(f.path);
    if (!folders.has(dir)) {
      try {
        folders.set(dir, new Set(await readdir(dir)));
      } catch (e) {
        if (!isFileError(e) || (e.code !== "ENOENT" && e.code !== "ENOTDIR")) throw isFileError(e) ? new Error(`${module}: ${describeFileError(e, dir, "scandir")}`, { cause: e }) : e;
        folders.set(dir, undefined);
      }
    }
    const present = folders.get(dir);
    if (!present?.has(basename(f.path))) throw new Error(`${module}: expected the image ${f.path} listed in ${f.listedAt}, it does not exist${present ? "" : " (nor its folder)"}`);
  }
}

// A set whose class count is the published one is taken as complete, so its split sizes must be the published
// ones: a truncated download or a damaged split file then fails here rather than training on part of the data.
// Fewer classes make a miniature or partial copy (test fixtures, a quick look), which is not checked.
export function checkPublishedCount(module: string, file: string, what: string, got: number, published: number, complete: string): void {
  if (got !== published) throw new Error(`${module}: expected ${published} ${what} in ${file} (the published size; ${complete}), got ${got}`);
}
