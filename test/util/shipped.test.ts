// Files shipped with the tool: a relative path is the working directory's file where there is one, else the tool's.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TOOL_ROOT, resolveShipped } from "../../util/shipped.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "shipped-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("resolveShipped", () => {
  it("is the folder above util/ under vitest: the repository, which holds configs/ and backbones/", () => {
    expect(existsSync(join(TOOL_ROOT, "configs", "default.json"))).toBe(true);
    expect(existsSync(join(TOOL_ROOT, "util", "shipped.ts"))).toBe(true);
  });

  it("takes the working directory's file first, then the tool's, for a relative path", async () => {
    const before = process.cwd();
    process.chdir(dir);
    try {
      expect(resolveShipped("configs/default.json", "k")).toBe(join(TOOL_ROOT, "configs", "default.json"));
      await mkdir(join(dir, "configs"));
      await writeFile(join(dir, "configs", "default.json"), "{}");
      expect(resolveShipped("configs/default.json", "k")).toBe(join(process.cwd(), "configs", "default.json"));
      expect(resolveShipped(join(TOOL_ROOT, "configs", "default.json"), "k")).toBe(join(TOOL_ROOT, "configs", "default.json"));
    } finally {
      process.chdir(before);
    }
  });

  it("names every place it looked in, and the key, where there is no file", () => {
    expect(() => resolveShipped("nowhere/w.safetensors", "backbone.checkpoint")).toThrow(
      new RegExp(`backbone\\.checkpoint: .*nowhere/w\\.safetensors does not exist \\(nor ${TOOL_ROOT.replace(/[/.]/g, "\\$&")}nowhere/w\\.safetensors, in the tool's folder\\)`),
    );
    expect(() => resolveShipped(join(dir, "none.safetensors"), "k")).toThrow(`k: ${join(dir, "none.safetensors")} does not exist`);
  });
});
