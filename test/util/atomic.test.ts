// Atomic writes (buffered and streamed): the target is replaced whole, its folder is created, no temporary file is
// left behind, and a failed write leaves the old file untouched.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { removeStaleTemporaries, writeChunksAtomic, writeFileAtomic, writeJsonAtomic } from "../../util/atomic.js";
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";

const dir = mkdtempSync(join(tmpdir(), "atomic-test-"));

describe("atomic writes", () => {
  it("buffered: replaces an existing file, creates the folder, leaves no temporary file", async () => {
    const sub = join(dir, "a", "b");
    await writeFileAtomic(join(sub, "x.txt"), "first, longer contents");
    await writeFileAtomic(join(sub, "x.txt"), new Uint8Array([104, 105]));
    expect(readFileSync(join(sub, "x.txt"), "utf8")).toBe("hi");
    await writeJsonAtomic(join(sub, "y.json"), { a: [1] });
    expect(readFileSync(join(sub, "y.json"), "utf8")).toBe('{\n  "a": [\n    1\n  ]\n}\n');
    expect(readdirSync(sub).sort()).toEqual(["x.txt", "y.json"]);
  });

  it("streamed: chunks in order, views at an offset and empty chunks included", async () => {
    const path = join(dir, "s", "c.bin");
    const big = new Uint8Array([9, 1, 2, 3, 9]);
    await writeChunksAtomic(path, [new Uint8Array([0]), new Uint8Array(0), big.subarray(1, 4), new Uint8Array([4])]);
    expect([...readFileSync(path)]).toEqual([0, 1, 2, 3, 4]);
    expect(readdirSync(join(dir, "s"))).toEqual(["c.bin"]);
  });

  it("a failed write keeps the old file and removes the temporary one", async () => {
    const sub = mkdtempSync(join(dir, "fail-"));
    const path = join(sub, "c.bin");
    await writeChunksAtomic(path, [new Uint8Array([7])]);
    function* failing() {
      yield new Uint8Array([1, 2]);
      throw new Error("disk full");
    }
    await expect(writeChunksAtomic(path, failing())).rejects.toThrow("disk full");
    expect([...readFileSync(path)]).toEqual([7]);
    expect(readdirSync(sub)).toEqual(["c.bin"]);
  });

  it("names the target in the tool's words: a folder in its place, a file where a folder should be, a full disk", async () => {
    const sub = mkdtempSync(join(dir, "named-"));
    mkdirSync(join(sub, "taken"));
    await expect(writeFileAtomic(join(sub, "taken"), "x")).rejects.toThrow(`cannot write ${join(sub, "taken")}: it is a folder, not a file (EISDIR)`);
    writeFileSync(join(sub, "file"), "");
    await expect(writeFileAtomic(join(sub, "file", "x.txt"), "x")).rejects.toThrow(`cannot create the folder ${join(sub, "file")}: a file of that name is in the way (EEXIST)`);
    function* full() {
      yield new Uint8Array([1]);
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
    }
    await expect(writeChunksAtomic(join(sub, "big.bin"), full())).rejects.toThrow(`cannot write ${join(sub, "big.bin")}: the disk is full (ENOSPC)`);
    expect(readdirSync(sub).sort()).toEqual(["file", "taken"]);
  });
});

describe("the temporary files of interrupted writes", () => {
  it("are removed when their process is gone, and kept while it lives", async () => {
    const temp = join(dir, "temporaries");
    await mkdir(join(temp, "cells", "a"), { recursive: true });
    // The pid of a process that has exited, and one that lives (this test's parent).
    const gone = await new Promise<number>((done) => {
      const child = spawn(process.execPath, ["-e", ""]);
      child.on("close", () => done(child.pid!));
    });
    const files = {
      dead: join(temp, "cells", "a", `last.safetensors.tmp-${gone}-1700000000000`),
      own: join(temp, `results.json.tmp-${process.pid}-1700000000000`),
      live: join(temp, `backbone.safetensors.tmp-${process.ppid}-1700000000000`),
      other: join(temp, "notes.tmp-x"),
    };
    for (const f of Object.values(files)) await writeFile(f, "partial");
    expect(await removeStaleTemporaries(temp)).toBe(2);
    expect(Object.entries(files).filter(([, f]) => existsSync(f)).map(([k]) => k)).toEqual(["live", "other"]);
    expect(await removeStaleTemporaries(join(dir, "nowhere"))).toBe(0);
  });
});
