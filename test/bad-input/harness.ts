// The bad-input campaign's harness: each case writes its bad files into a folder of its own, runs one command line
// through the real entry (run.ts main, in-process, console captured), and checks the exit code and that the output
// names what is at fault (a file, tensor, key or flag) with a word saying what is wrong.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { main } from "../../run.js";

export interface CliResult {
  code: number; // main's exit code: 0 ok, 1 error, 2 bad command line
  out: string; // console.log lines
  err: string; // console.error / console.warn lines
}

// Runs `node dist/run.js ...argv` in this process and returns what it printed.
export async function runCli(argv: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const line = (sink: string[]) => (...args: unknown[]) => void sink.push(args.map(String).join(" "));
  const spies = [
    vi.spyOn(console, "log").mockImplementation(line(out)),
    vi.spyOn(console, "error").mockImplementation(line(err)),
    vi.spyOn(console, "warn").mockImplementation(line(err)),
  ];
  try {
    const code = await main(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

// A path inside the case's own folder.
export type At = (...parts: string[]) => string;
type PerCase<T> = T | ((at: At) => T);

export interface BadCase {
  what: string; // the test's name
  setup?: (at: At) => Promise<unknown> | unknown; // writes the bad input into the case's folder
  argv: PerCase<string[]>;
  code: 0 | 1 | 2;
  says: PerCase<(string | RegExp)[]>; // each must occur in stdout + stderr: the name at fault, a word for the fault
  never?: PerCase<(string | RegExp)[]>; // must not occur (raw Node or libvips messages, a wrong claim)
  after?: (at: At) => unknown; // further checks, e.g. on the files written
}

const resolve = <T>(v: PerCase<T>, at: At): T => (typeof v === "function" ? (v as (at: At) => T)(at) : v);

// A folder for the calling test file, removed after its tests.
export function tempRoot(prefix: string): () => string {
  let root = "";
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), `bad-input-${prefix}-`));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  return () => root;
}

// One `it` per case, each with a fresh folder under root.
export function runCases(root: () => string, cases: BadCase[]): void {
  it.each(cases)("$what", async (c) => {
    const dir = await mkdtemp(join(root(), "case-"));
    const at: At = (...parts) => join(dir, ...parts);
    await c.setup?.(at);
    const r = await runCli(resolve(c.argv, at));
    const text = `${r.out}\n${r.err}`;
    const shown = `exit ${r.code}\n--- stdout\n${r.out}\n--- stderr\n${r.err}`;
    // BAD_INPUT_SHOW=1 prints what every case printed, to read the messages as a user would.
    if (process.env.BAD_INPUT_SHOW) process.stdout.write(`\n=== ${c.what}\n${[r.out, r.err].filter(Boolean).join("\n")}\n`);
    expect(r.code, shown).toBe(c.code);
    for (const s of resolve(c.says, at)) {
      if (typeof s === "string") expect(text, shown).toContain(s);
      else expect(text, shown).toMatch(s);
    }
    for (const s of resolve(c.never ?? [], at)) {
      if (typeof s === "string") expect(text, shown).not.toContain(s);
      else expect(text, shown).not.toMatch(s);
    }
    await c.after?.(at);
  });
}

// A raw Node.js message ("ENOENT: no such file or directory, open ..."): the tool says what went wrong in its own
// words and names the path instead (it may add the code in brackets).
export const RAW_NODE = /\bE(NOENT|ISDIR|NOTDIR|NOSPC|ACCES|EXIST): /;
