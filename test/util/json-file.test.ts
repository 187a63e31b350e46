import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readJsonFile, repeatedKey } from "../../util/json-file.js";

describe("readJsonFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "json-file-"));

  it("reads a JSON value", async () => {
    writeFileSync(join(dir, "a.json"), '{"x": [1, 2]}');
    expect(await readJsonFile(join(dir, "a.json"), "who")).toEqual({ x: [1, 2] });
  });

  it("reads past a byte-order mark, which some editors write before UTF-8 text", async () => {
    writeFileSync(join(dir, "bom.json"), '\uFEFF{"x": 1}');
    expect(await readJsonFile(join(dir, "bom.json"), "who")).toEqual({ x: 1 });
  });

  it("names the file, who reads it and why it failed", async () => {
    await expect(readJsonFile(join(dir, "none.json"), "report", "read the config")).rejects.toThrow(`report: cannot read the config ${join(dir, "none.json")}: no such file or folder (ENOENT)`);
    await expect(readJsonFile(dir, "report")).rejects.toThrow(`report: cannot read ${dir}: it is a folder, not a file (EISDIR)`);
    writeFileSync(join(dir, "bad.json"), '{"x": ');
    await expect(readJsonFile(join(dir, "bad.json"), "analyze")).rejects.toThrow(`analyze: ${join(dir, "bad.json")}: expected JSON, got a parse error: `);
  });

  it("refuses a key given twice in one object, naming it and where", async () => {
    writeFileSync(join(dir, "twice.json"), '{"training": {"lr": 0.1, "steps": 3, "lr": 0.01}}');
    await expect(readJsonFile(join(dir, "twice.json"), "experiment")).rejects.toThrow(`experiment: ${join(dir, "twice.json")}: expected each key once in an object, got "lr" twice in training`);
  });
});

describe("repeatedKey", () => {
  it("finds the first key an object holds twice, with that object's path", () => {
    expect(repeatedKey('{"a": 1, "a": 2}')).toEqual({ key: "a", at: "" });
    expect(repeatedKey('{"s": [{"x": 1}, {"x": 1, "y": {"z": 0}, "x": 2}]}')).toEqual({ key: "x", at: "s[1]" });
    expect(repeatedKey('{"a": {"b": [1, [2, {"c": 1, "c": 1}]]}}')).toEqual({ key: "c", at: "a.b[1][1]" });
  });

  it("reads keys as JSON does: escapes, and strings that look like keys", () => {
    expect(repeatedKey('{"a\\"b": 1, "a\\u0022b": 2}')).toEqual({ key: 'a"b', at: "" });
    expect(repeatedKey('{"a": "b", "b": ["a", "a"], "c": {"a": 1}, "d": "{\\"a\\": 1, \\"a\\": 2}"}')).toBeUndefined();
  });
});
