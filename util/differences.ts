// Two JSON values compared key by key: every value that differs, by its key path ("training.steps: 60 -> 400"), with
// arrays compared whole. A refused config change or resume names what changed instead of printing both values.
import { isObject } from "./json-file.js";

export interface Difference {
  path: string; // "" for the values themselves
  text: string; // "training.steps: 60 -> 400"; a key absent on one side shows as "absent"
}

// A value as a difference shows it.
export const show = (v: unknown) => (v === undefined ? "absent" : JSON.stringify(v));

export function differences(a: unknown, b: unknown, path = ""): Difference[] {
  if (isObject(a) && isObject(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((key) => differences(a[key], b[key], path ? `${path}.${key}` : key));
  }
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  return [{ path, text: `${path ? `${path}: ` : ""}${show(a)} -> ${show(b)}` }];
}
