import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readJsonFile } from "../../util/json-file.js";

describe("readJsonFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "json-file-"));

  it("reads a JSON value", async () => {
    writeFileSync(join(dir, "a.json"), '{"x": [1, 2]}');
    expect(await readJsonFile(join(dir, "a.json"), "who")).toEqual({ x: [1, 2] });
  });

  it("names the file, who reads it and why it failed", async () => {
    await expect(readJsonFile(join(dir, "none.json"), "report", "read the config")).rejects.toThrow(`report: cannot read the config ${join(dir, "none.json")}: no such file or folder (ENOENT)`);
    await expect(readJsonFile(dir, "report")).rejects.toThrow(`report: cannot read ${dir}: it is a folder, not a file (EISDIR)`);
    writeFileSync(join(dir, "bad.json"), '{"x": ');
    await expect(readJsonFile(join(dir, "bad.json"), "analyze")).rejects.toThrow(`analyze: ${join(dir, "bad.json")}: expected JSON, got a parse error: `);
  });
});
