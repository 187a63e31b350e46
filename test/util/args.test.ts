// The flag parser's numbers (decimal only), lists (never empty), and the output-flag checks commands run before
// any work.
import { mkdir, mkdtemp, readdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkOutputFile, checkOutputFolder, decimal, parseArgs } from "../../util/args.js";
import { UsageError } from "../../util/command.js";

describe("numbers", () => {
  it("decimal forms are read", () => {
    for (const [raw, n] of [["12", 12], ["-0.5", -0.5], ["+3", 3], [".5", 0.5], ["3.", 3], ["1e-3", 1e-3], ["2E4", 2e4]] as const) {
      expect(decimal(raw), raw).toBe(n);
      expect(parseArgs(["--t", raw], { t: "number" }).t).toBe(n);
    }
  });
  it("hex, binary, octal, blanks and infinities are not numbers here", () => {
    for (const raw of ["0x10", "0b11", "0o7", " 7", "7 ", "", "Infinity", "1e999", "NaN", "1_000", "--1"]) {
      expect(decimal(raw), raw).toBeUndefined();
      expect(() => parseArgs([`--t=${raw}`], { t: "number" }), raw).toThrow(`flag --t: expected a decimal number, got "${raw}"`);
    }
    expect(() => parseArgs(["--n=1.5"], { n: "int" })).toThrow('flag --n: expected an integer, got "1.5"');
  });
  it("integers past 2^53, which a double cannot all hold, are refused", () => {
    expect(parseArgs(["--n", "9007199254740991"], { n: "int" }).n).toBe(2 ** 53 - 1);
    for (const raw of ["9007199254740993", "99999999999999999999", "-1e20"]) {
      expect(() => parseArgs(["--n", raw], { n: "int" }), raw).toThrow(`flag --n: expected an integer of magnitude below 2^53, got "${raw}"`);
    }
  });
});

describe("values", () => {
  const spec = { out: "string", n: "int", l: "list", quiet: "boolean" } as const;
  it("a flag is no value: the flag before it is refused, naming both", () => {
    // Once `experiment --out --list-cells` trained the whole default study into a folder named --list-cells.
    expect(() => parseArgs(["--out", "--quiet"], spec)).toThrow("flag --out needs a value, got the flag --quiet");
    expect(() => parseArgs(["--n", "--l", "a"], spec)).toThrow("flag --n needs a value, got the flag --l");
    expect(() => parseArgs(["--out", "--help"], spec)).toThrow(UsageError);
    // Written with "=", a value may start with "--"; a negative number is a value.
    expect(parseArgs(["--out=--odd-name"], spec).out).toBe("--odd-name");
    expect(parseArgs(["--n", "-3"], spec).n).toBe(-3);
  });
  it("an empty string is no path", () => {
    for (const argv of [["--out", ""], ["--out="]]) expect(() => parseArgs(argv, spec)).toThrow("flag --out: expected a value, got an empty string");
  });
  it("a flag given twice is refused, whichever way it is written", () => {
    for (const argv of [["--n", "5", "--n", "7"], ["--n=5", "--n", "5"], ["--quiet", "--quiet"]]) {
      expect(() => parseArgs(argv, spec), argv.join(" ")).toThrow(`is given twice`);
    }
    expect(() => parseArgs(["--out", "a", "--n", "1", "--out", "b"], spec)).toThrow("flag --out is given twice");
  });
});

describe("lists", () => {
  it("items are trimmed, empty ones dropped", () => {
    expect(parseArgs(["--l", " a, b,,c "], { l: "list" }).l).toEqual(["a", "b", "c"]);
  });
  it("a list of nothing is refused, naming the flag", () => {
    for (const raw of [",", "", " , "]) {
      expect(() => parseArgs(["--strategies", raw], { strategies: "list" })).toThrow(UsageError);
      expect(() => parseArgs(["--strategies", raw], { strategies: "list" })).toThrow(`flag --strategies: expected a comma-separated list, got "${raw}"`);
    }
  });
});

describe("output flags, checked before any work and creating nothing", async () => {
  const dir = await mkdtemp(join(tmpdir(), "args-"));
  await writeFile(join(dir, "file.txt"), "in the way");
  await mkdir(join(dir, "folder"));

  it("folders that exist or can be made pass, and are not made", async () => {
    await checkOutputFolder(join(dir, "folder"), "out");
    expect(await readdir(join(dir, "folder"))).toEqual([]); // the probe of writing there is gone
    await checkOutputFolder(join(dir, "new", "deeper"), "out");
    expect(existsSync(join(dir, "new"))).toBe(false);
    await checkOutputFile(join(dir, "new", "f.npy"), "out");
    await checkOutputFile(join(dir, "file.txt"), "out"); // replaced when written
  });
  it("a file where a folder goes is refused, naming the flag and the file", async () => {
    await expect(checkOutputFolder(join(dir, "file.txt"), "dump-dir")).rejects.toThrow(`--dump-dir: expected a folder, got the file ${join(dir, "file.txt")}`);
    await expect(checkOutputFolder(join(dir, "file.txt", "a", "b"), "out")).rejects.toThrow(
      `--out: cannot create the folder ${join(dir, "file.txt", "a", "b")}: ${join(dir, "file.txt")} is a file, not a folder`,
    );
    await expect(checkOutputFile(join(dir, "file.txt", "f.npy"), "out")).rejects.toThrow(`--out: expected a folder, got the file ${join(dir, "file.txt")}`);
  });
  it("a path stat refuses is refused, naming the flag and the path", async () => {
    const long = join(dir, "n".repeat(300), "sub");
    await expect(checkOutputFolder(long, "out")).rejects.toThrow(`--out: cannot read ${long}: the name is too long (ENAMETOOLONG)`);
  });
  it("a folder where a file goes is refused", async () => {
    await expect(checkOutputFile(join(dir, "folder"), "out")).rejects.toThrow(`--out: cannot write ${join(dir, "folder")}: it is a folder, not a file`);
  });
});
