import { existsSync } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeFolder } from "../../util/make-folder.js";

const dir = await mkdtemp(join(tmpdir(), "make-folder-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("makeFolder", () => {
  it("creates a folder and the missing folders above it; one that exists is left as it is", async () => {
    const deep = join(dir, "a", "b", "c");
    await makeFolder(deep);
    expect((await stat(deep)).isDirectory()).toBe(true);
    await writeFile(join(deep, "kept"), "x");
    await makeFolder(deep);
    await makeFolder(join(dir, "a"));
    expect(existsSync(join(deep, "kept"))).toBe(true);
  });

  it("throws the refusal of the folder it cannot create (a file in the way), code and path intact", async () => {
    await writeFile(join(dir, "file"), "x");
    await expect(makeFolder(join(dir, "file", "sub"))).rejects.toMatchObject({ code: "EEXIST", syscall: "mkdir", path: join(dir, "file") });
    await expect(makeFolder(join(dir, "file"))).rejects.toMatchObject({ code: "EEXIST", syscall: "mkdir", path: join(dir, "file") });
  });

  // Node's recursive mkdir never returns here: mkdir answers ENOENT under /proc, which exists.
  it.runIf(existsSync("/proc/self"))("refuses a folder under /proc rather than looping (Linux)", async () => {
    await expect(makeFolder("/proc/peft-vit-webgpu-test/out")).rejects.toMatchObject({ code: "ENOENT", syscall: "mkdir", path: "/proc/peft-vit-webgpu-test" });
  });
});
