// study/workers.ts through the real program: `experiment --workers 2` prepares once, runs two worker processes that
// share the cells through their claims (no cell trained twice), then collects; the results are those of a single
// process, checkpoints byte for byte.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MINI_CELLS, buildProgram, expectSameResults, runProgram, writeMiniStudy } from "./program.js";

let root: string;
let program: string;
let config: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "workers-test-"));
  program = await buildProgram("run-workers");
  config = join(root, "study.json");
  await writeFile(config, JSON.stringify(await writeMiniStudy(root)));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("experiment --workers", () => {
  it("shares the cells among worker processes, each cell trained once, with a single process's results", async () => {
    const reference = await runProgram(program, ["experiment", "--config", config, "--out", join(root, "reference")]);
    expect(reference.code, reference.stderr).toBe(0);

    const run = join(root, "workers");
    const r = await runProgram(program, ["experiment", "--config", config, "--out", run, "--workers", "2"]);
    expect(r.code, r.stderr).toBe(0);
    const started = r.stderr.split("\n").filter((l) => /^\[worker [12]\] cell \d\/3: /.test(l));
    expect(started.map((l) => l.replace(/^\[worker \d\] /, "").split(":")[0]).sort()).toEqual(["cell 1/3", "cell 2/3", "cell 3/3"]);
    expect(r.stdout).toContain("| lora-r2 |");
    await expectSameResults(run, join(root, "reference"), MINI_CELLS);
    for (const cell of MINI_CELLS) expect(existsSync(join(run, "cells", cell, "claim.json")), cell).toBe(false);
    expect(existsSync(join(run, "prepare.claim.json"))).toBe(false);
  });
});
