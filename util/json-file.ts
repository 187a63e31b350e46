// A JSON file read as one value, its failures in the tool's words: "<who>: cannot read the config x.json: no such
// file or folder (ENOENT)", "<who>: x.json: expected JSON, got a parse error: ...". The caller checks the shape.
import { readFile } from "node:fs/promises";
import { describeFileError, isFileError } from "./file-errors.js";

export async function readJsonFile(path: string, who: string, action = "read"): Promise<unknown> {
  const text = await readFile(path, "utf8").catch((e: Error) => {
    throw new Error(`${who}: ${isFileError(e) ? describeFileError(e, path, action) : `cannot ${action} ${path}: ${e.message}`}`);
  });
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${who}: ${path}: expected JSON, got a parse error: ${(e as Error).message}`);
  }
}
