// util/file-errors.ts: Node's file-system errors in the tool's words.
import { describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { describeFileError, isFileError } from "../../util/file-errors.js";

describe("describeFileError", () => {
  it("names the path and the reason, from the error's own system call", async () => {
    const e = await readFile("/no/such/file.npy").catch((err: unknown) => err);
    expect(isFileError(e)).toBe(true);
    if (!isFileError(e)) return;
    expect(describeFileError(e)).toBe("cannot open /no/such/file.npy: no such file or folder (ENOENT)");
    expect(describeFileError(e, "x.npy", "read")).toBe("cannot read x.npy: no such file or folder (ENOENT)");
  });

  it("leaves other errors alone", () => {
    expect(isFileError(new Error("plain"))).toBe(false);
    expect(isFileError(Object.assign(new Error("x"), { code: "ERR_SOMETHING" }))).toBe(false);
  });
});
