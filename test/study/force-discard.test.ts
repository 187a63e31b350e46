// experiment --force killed while it discards a run folder's results: wherever the kill lands, a rerun of the new
// config without --force either refuses the folder (it still holds results) or starts from a folder without the old
// report and analysis, never reusing the old config's analysis as its own. The kill is emulated by an `rm` that fails
// after a number of calls (node:fs/promises mocked for this file alone).
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { existsSync } from "node:fs";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { miniStudy } from "./program.js";

// How many more rm calls succeed before one fails, as a kill would stop the loop there.
const fault = vi.hoisted(() => ({ rmLeft: Infinity }));
vi.mock("node:fs/promises", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs/promises")>();
  const failing = async (...args: Parameters<typeof fs.rm>) => {
    if (fault.rmLeft-- <= 0) throw new Error("killed while discarding");
    return fs.rm(...args);
  };
  return { ...fs, default: { ...fs, rm: failing }, rm: failing };
});

useEngine();

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "force-discard-test-"));
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 24, test: 8 }, seed: 2 });
});

afterAll(async () => {
  fault.rmLeft = Infinity;
  await rm(root, { recursive: true, force: true });
});

const study = (steps: number) =>
  parseStudyConfig({ ...miniStudy(join(root, "data"), join(root, "cache")), strategies: ["linear"], training: { steps, batchSize: 16, evalEvery: 2, lossEvery: 2 }, analysis: { images: 8 } });

describe("experiment --force, killed while discarding", () => {
  it("leaves a folder that a rerun without --force refuses, or one without the old report and analysis", async () => {
    const finished = join(root, "finished");
    await runExperiment({ config: study(4), out: finished, log: () => undefined });
    expect(existsSync(join(finished, "analysis.json"))).toBe(true);
    // Each number of files discarded before the kill, up to all of them (the rerun then trains the new config).
    for (let discarded = 0; ; discarded++) {
      const out = join(root, `killed-${discarded}`);
      await cp(finished, out, { recursive: true });
      fault.rmLeft = discarded;
      const forced = await runExperiment({ config: study(6), out, force: true, log: () => undefined }).then(
        () => true,
        (e: Error) => {
          expect(e.message).toBe("killed while discarding");
          return false;
        },
      );
      fault.rmLeft = Infinity;
      if (forced) break;
      const log: string[] = [];
      const rerun = await runExperiment({ config: study(6), out, log: (l) => log.push(l) }).catch((e: Error) => e);
      if (rerun instanceof Error) expect(rerun.message, `after ${discarded} discarded`).toContain("holds a run of another config");
      else expect(log.filter((l) => l.includes("is up to date")), `after ${discarded} discarded`).toEqual([]);
    }
  });
});
