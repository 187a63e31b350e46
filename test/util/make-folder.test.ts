import { existsSync } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeFolder, nearestExisting } from "../../util/make-folder.js";

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

describe("nearestExisting", () => {
  it("a folder that exists is its own nearest, with nothing missing", async () => {
    await makeFolder(join(dir, "there"));
    const found = await nearestExisting(join(dir, "there"));
    expect(found.path).toBe(join(dir, "there"));
    expect(found.info?.isDirectory()).toBe(true);
    expect(found.missing).toEqual([]);
    expect((await nearestExisting("/")).path).toBe("/");
  });

  it("names the missing folders top first, from a relative path too, creating nothing", async () => {
    const deep = join(dir, "there", "x", "y", "z");
    const expected = { path: join(dir, "there"), missing: [join(dir, "there", "x"), join(dir, "there", "x", "y"), deep] };
    expect(await nearestExisting(deep)).toMatchObject(expected);
    expect(await nearestExisting(relative(process.cwd(), deep))).toMatchObject(expected);
    expect(existsSync(join(dir, "there", "x"))).toBe(false);
  });

  it("stops at a file on the path, returning the file", async () => {
    await writeFile(join(dir, "in-the-way"), "x");
    const found = await nearestExisting(join(dir, "in-the-way", "a", "b"));
    expect(found.path).toBe(join(dir, "in-the-way"));
    expect(found.info?.isFile()).toBe(true);
    expect(found.missing).toEqual([join(dir, "in-the-way", "a"), join(dir, "in-the-way", "a", "b")]);
  });

  it("throws a refusal of stat other than \"not there\" as it is, naming the path it was given", async () => {
    const long = join(dir, "n".repeat(300), "sub");
    await expect(nearestExisting(long)).rejects.toMatchObject({ code: "ENAMETOOLONG", syscall: "stat", path: long });
  });
});
