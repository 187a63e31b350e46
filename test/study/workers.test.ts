// study/workers.ts through the real program: `experiment --workers 2` prepares once, runs two worker processes that
// share the cells through their claims (no cell trained twice), then collects; the results are those of a single
// process, checkpoints byte for byte.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MINI_CELLS, buildProgram, expectSameResults, runProgram, writeMiniStudy } from "./program.js";
import { runWorkers, workerAdapters, workerCount } from "../../study/workers.js";

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

describe("runWorkers", () => {
  // run.ts stops a process whose IPC channel closes: a worker whose parent died, however it died (test/run.test.ts).
  it("starts each worker with an IPC channel to this process", async () => {
    const connected = [process.execPath, "-e", "process.exit(process.connected ? 0 : 3)"];
    await expect(runWorkers({ command: connected, args: [], count: 2, log: () => undefined })).resolves.toBeUndefined();
  });
});

describe("workerCount", () => {
  it("starts as many workers as asked up to the cells left, and says so where it starts fewer", () => {
    expect(workerCount(2, 10)).toEqual({ count: 2 });
    expect(workerCount(10, 10)).toEqual({ count: 10 });
    expect(workerCount(100000, 3)).toEqual({ count: 3, note: "--workers 100000: 3 cell(s) left to run, so 3 worker(s), one per cell" });
    expect(workerCount(4, 0)).toEqual({ count: 0, note: "--workers 4: no cell is left to run, so no worker starts" });
  });
});

describe("workerAdapters", () => {
  const gpus = [
    { address: "0000:41:00.0", vendor: "10de", device: "2335" },
    { address: "0000:c1:00.0", vendor: "10de", device: "2335" },
  ];

  it("gives each-gpu as every GPU's PCI address, so identical GPUs get one worker each", () => {
    expect(workerAdapters(["each-gpu"], gpus)).toEqual(["pci:0000:41:00.0", "pci:0000:c1:00.0"]);
  });

  it("keeps other lists as given, checking their PCI addresses", () => {
    expect(workerAdapters(["nvidia", "pci:41:00.0"], gpus)).toEqual(["nvidia", "pci:41:00.0"]);
    expect(() => workerAdapters(["pci:0000:42:00.0"], gpus)).toThrow("experiment: --adapters: no display device at PCI address 0000:42:00.0; there are pci:");
  });

  it("refuses each-gpu with other entries, or on a machine without GPUs on its PCI bus", () => {
    expect(() => workerAdapters(["each-gpu", "nvidia"], gpus)).toThrow("--adapters each-gpu stands alone");
    expect(() => workerAdapters(["each-gpu"], [])).toThrow("found no display device on the PCI bus");
  });
});
