// cli/experiment.ts with --workers where a worker fails: the cells the others finished still make the report
// (table.md and the rest), and the command then fails naming the worker. The workers are emulated in this process
// (study/workers.ts mocked for this file alone): one finishes every cell, the other fails. The number of workers
// started is recorded, so that --workers beyond the cells left is seen capped without starting its processes.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { experiment } from "../../cli/experiment.js";
import { parseStudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import { parseCellList } from "../../study/cells.js";
import { useEngine } from "../helpers.js";
import { MINI_CELLS, writeMiniStudy } from "../study/program.js";

const WORKER_FAILED = "experiment: worker 2 (exit code 1) failed; their output is above. Rerunning the same command resumes their cells";
const started: number[] = []; // each runWorkers call's count

vi.mock("../../study/workers.js", async (importOriginal) => {
  const workers = await importOriginal<typeof import("../../study/workers.js")>();
  return {
    ...workers,
    // Worker 1 runs every cell; worker 2 fails.
    runWorkers: async (o: { args: string[]; count: number }) => {
      started.push(o.count);
      const at = (flag: string) => o.args[o.args.indexOf(flag) + 1];
      const { readFile } = await import("node:fs/promises");
      const config = parseStudyConfig(JSON.parse(await readFile(at("--config"), "utf8")));
      // As `experiment --cells ...` runs (a worker writes no report: the collect does).
      await runExperiment({ config, out: at("--out"), cells: parseCellList(at("--cells"), MINI_CELLS.length), log: () => undefined });
      throw new Error(WORKER_FAILED);
    },
  };
});

useEngine();

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "experiment-workers-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("experiment --workers with a failed worker", () => {
  it("writes the report of the finished cells, then fails naming the worker", async () => {
    const config = join(root, "study.json");
    await writeFile(config, JSON.stringify(await writeMiniStudy(root)));
    const out = join(root, "run");
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const err = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      await expect(experiment.run(["--config", config, "--out", out, "--workers", "2"])).rejects.toThrow(WORKER_FAILED);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
    for (const cell of MINI_CELLS) expect(existsSync(join(out, "cells", cell, "result.json")), cell).toBe(true);
    expect(existsSync(join(out, "table.md"))).toBe(true);
  });
});

describe("experiment --workers beyond the cells left", () => {
  // --workers 100000 started 100000 processes, each to find every cell claimed or finished.
  it("starts one worker per cell left, and none where every cell is finished, saying so", async () => {
    const config = join(root, "capped.json");
    await writeFile(config, JSON.stringify(await writeMiniStudy(root)));
    const out = join(root, "capped");
    const run = async () => {
      started.length = 0;
      const err: string[] = [];
      const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
      const spy = vi.spyOn(console, "error").mockImplementation((line: unknown) => void err.push(String(line)));
      try {
        await experiment.run(["--config", config, "--out", out, "--workers", "100000"]).catch((e: Error) => expect(e.message).toBe(WORKER_FAILED));
      } finally {
        log.mockRestore();
        spy.mockRestore();
      }
      return err;
    };
    const first = await run();
    expect(started).toEqual([MINI_CELLS.length]);
    expect(first).toContain(`--workers 100000: ${MINI_CELLS.length} cell(s) left to run, so ${MINI_CELLS.length} worker(s), one per cell`);
    expect(first).toContain(`starting ${MINI_CELLS.length} worker(s)`);
    const again = await run();
    expect(started).toEqual([]);
    expect(again).toContain("--workers 100000: no cell is left to run, so no worker starts");
    expect(existsSync(join(out, "table.md"))).toBe(true);
  });
});
