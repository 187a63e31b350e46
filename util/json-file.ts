// A JSON file read as one value, its failures in the tool's words: "<who>: cannot read the config x.json: no such
// file or folder (ENOENT)", "<who>: x.json: expected JSON, got a parse error: ...". A key given twice in one object
// is refused too: JSON.parse keeps the last silently, so a config with "lr" twice would run with one the reader
// may not have meant. The caller checks the shape.
import { readFile } from "node:fs/promises";
import { describeFileError, isFileError } from "./file-errors.js";

// A JSON object: not null, not an array.
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// A JSON value in words, for "expected ..., got ..." messages: "an array of 3", "an object", "null", or the value.
export function describeJson(v: unknown): string {
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v); // JSON's 1e400: Infinity, which JSON writes as null
  return JSON.stringify(v);
}

export async function readJsonFile(path: string, who: string, action = "read"): Promise<unknown> {
  let text = await readFile(path, "utf8").catch((e: Error) => {
    throw new Error(`${who}: ${isFileError(e) ? describeFileError(e, path, action) : `cannot ${action} ${path}: ${e.message}`}`);
  });
  // A byte-order mark, which some editors put before a UTF-8 file's text: not JSON, and JSON.parse's complaint names
  // an invisible character. Read past it, as the text without it is what the file means.
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${who}: ${path}: expected JSON, got a parse error: ${(e as Error).message}`);
  }
  const twice = repeatedKey(text);
  if (twice) throw new Error(`${who}: ${path}: expected each key once in an object, got "${twice.key}" twice${twice.at ? ` in ${twice.at}` : " at the top level"}`);
  return value;
}

// The first key that an object of valid JSON text holds twice, with the key path of that object ("training",
// "strategies[2]"). A scan of the text: JSON.parse has already checked its syntax.
export function repeatedKey(text: string): { key: string; at: string } | undefined {
  // One frame per open object (its keys) or array (its index); `name` is the path of the value being read in it.
  const frames: { keys?: Set<string>; index: number; path: string; name: string }[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = frames[frames.length - 1];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (top?.keys && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { key, at: top.path };
        top.keys.add(key);
        top.name = top.path ? `${top.path}.${key}` : key;
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      const path = top ? top.name : "";
      frames.push(c === "{" ? { keys: new Set(), index: 0, path, name: path } : { index: 0, path, name: `${path}[0]` });
      expectKey = c === "{";
    } else if (c === "}" || c === "]") frames.pop();
    else if (c === "," && top) {
      if (top.keys) expectKey = true;
      else top.name = `${top.path}[${++top.index}]`;
    }
  }
  return undefined;
}
