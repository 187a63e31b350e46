// `analyze` killed while it writes its files: analysis.json, which a rerun takes for the analysis of the same cells
// and keeps with the table and figures beside it, comes last, so a kill before the last figure leaves the earlier
// analysis.json (here none) and the rerun makes every file again. The kill is emulated by a writeFileAtomic that
// fails on a chosen file (util/atomic.ts mocked for this file alone).
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import { analysisFileNames, analyzeRun } from "../../study/analysis.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { miniStudy } from "./program.js";

// The name of the file whose write fails, as a kill would stop the writes there.
const fault = vi.hoisted(() => ({ failOn: "" }));
vi.mock("../../util/atomic.js", async (importOriginal) => {
  const atomic = await importOriginal<typeof import("../../util/atomic.js")>();
  return {
    ...atomic,
    writeFileAtomic: async (path: string, data: string | Uint8Array) => {
      if (fault.failOn !== "" && path.endsWith(fault.failOn)) throw new Error(`killed before ${fault.failOn}`);
      return atomic.writeFileAtomic(path, data);
    },
  };
});

useEngine();

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "analysis-interrupted-test-"));
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 16, test: 8 }, seed: 4, noise: 160 });
});

afterAll(async () => {
  fault.failOn = "";
  await rm(root, { recursive: true, force: true });
});

describe("analyze, killed while writing its files", () => {
  it("writes analysis.json after every other file, so a rerun makes them all again", async () => {
    const run = join(root, "run");
    const config = parseStudyConfig({ ...miniStudy(join(root, "data"), join(root, "cache")), strategies: ["linear"], learningRates: [0.05] });
    await runExperiment({ config, out: run, log: () => undefined });
    const last = analysisFileNames({}).filter((f) => f !== "analysis.json").at(-1)!;
    fault.failOn = last;
    await expect(analyzeRun(run, { images: 8 })).rejects.toThrow(`killed before ${last}`);
    expect(existsSync(join(run, "analysis.csv"))).toBe(true);
    expect(existsSync(join(run, "analysis.json"))).toBe(false);
    fault.failOn = "";
    const again = await analyzeRun(run, { images: 8 });
    expect(again.reused).toBe(false);
    for (const f of analysisFileNames({})) expect(existsSync(join(run, f)), f).toBe(true);
  });
});
