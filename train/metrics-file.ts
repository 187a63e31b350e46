// A run's metrics.json read back: train/train.ts writes {"rows": [...]} (a row per step), train/dino-pretrain.ts
// {"rows": [...], "knn": [...]} (the k-NN scores by step too). Read to resume a run, which keeps the rows up to
// its checkpoint's step, and by train/pretrain.ts for a manifest's final loss. Strict: a file that is not JSON,
// lacks one of the arrays, or holds an entry without its step is refused naming the file, what was expected, what
// it got, and the caller's way out, so a run never continues from metrics it did not write. Whether the file may
// be absent is the caller's question.
import { describeJson, isObject, readJsonFile } from "../util/json-file.js";

// An entry of the arrays: a row or a k-NN score, each with the step it describes.
export interface StepEntry {
  step: number;
}

// `keys`: the arrays the file holds; `what`: what it holds, in words ("the metrics of last.safetensors's steps");
// `wayOut`: what the user can do about a damaged file ("delete runs/x to start over").
export async function readMetricsFile<K extends string>(path: string, who: string, keys: readonly K[], what: string, wayOut: string): Promise<Record<K, StepEntry[]>> {
  const value = await readJsonFile(path, who).catch((e: Error) => {
    throw new Error(`${e.message}; ${wayOut}`, { cause: e });
  });
  const got = wrongPart(value, keys);
  if (got) throw new Error(`${who}: ${path}: expected ${what} ({${keys.map((k) => `"${k}": [...]`).join(", ")}}), got ${got}; ${wayOut}`);
  return value as Record<K, StepEntry[]>;
}

// The first part of `value` that is not as the writers leave it, in words; undefined where there is none.
function wrongPart(value: unknown, keys: readonly string[]): string | undefined {
  if (!isObject(value)) return describeJson(value);
  for (const key of keys) {
    if (!(key in value)) return `no "${key}"`;
    const entries = value[key];
    if (!Array.isArray(entries)) return `"${key}": ${describeJson(entries)}`;
    const i = entries.findIndex((e) => !isObject(e) || typeof e.step !== "number");
    if (i >= 0) return `${key}[${i}] without a step: ${JSON.stringify(entries[i])}`;
  }
  return undefined;
}
