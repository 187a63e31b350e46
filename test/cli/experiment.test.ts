// cli/experiment.ts's commands that need no device: --list-cells (numbers, ids, each cell's state read from the run
// folder) and --slurm --dry-run (the job scripts, and the sbatch lines it would run).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../bad-input/harness.js";
import { DEFAULT_STUDY } from "../../study/config.js";

let root: string;
let config: string; // the default study with ten cells of its own: five strategies, one rate, two seeds

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "experiment-cli-"));
  config = join(root, "study.json");
  await writeFile(config, JSON.stringify({ ...DEFAULT_STUDY, name: "ten", strategies: ["full", "top-1", "linear", "lora-r4", "block-p1"], learningRates: [0.1], seeds: [0, 1] }));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// A finished cell's result.json with what the study reads of it (study/result-files.ts checks it when read).
function finished(id: string) {
  const knn = { "20": { top1: 70, top5: 90 } };
  const numbers = ["trainableParams", "paperParams", "totalParams", "transferAccuracy", "finalTransferAccuracy", "bestStep", "finalLoss", "trainSeconds", "imagesPerSecond", "knnSeconds"];
  return { id, strategy: "full", lr: 0.1, seed: 0, ...Object.fromEntries(numbers.map((k) => [k, 1])), knn, knnCurve: DEFAULT_STUDY.knn.atSteps!.map((step) => ({ step, knn })) };
}

describe("experiment --list-cells", () => {
  it("numbers the cells and tells finished, diverged, claimed, started and to do apart", async () => {
    const out = join(root, "run");
    const cell = (id: string) => join(out, "cells", id);
    for (const id of ["full_lr0.1_s0", "full_lr0.1_s1", "top-1_lr0.1_s0", "top-1_lr0.1_s1", "linear_lr0.1_s0"]) await mkdir(cell(id), { recursive: true });
    await writeFile(join(cell("full_lr0.1_s0"), "result.json"), JSON.stringify(finished("full_lr0.1_s0")));
    await writeFile(join(cell("full_lr0.1_s1"), "result.json"), JSON.stringify({ id: "full_lr0.1_s1", strategy: "full", lr: 0.1, seed: 1, diverged: { step: 3, loss: "NaN", message: "m" } }));
    const now = new Date().toISOString();
    const claim = { host: hostname(), pid: process.ppid, slurm: { jobId: "9", arrayJobId: "7", arrayTaskId: "3" }, token: "t", claimed: now, heartbeat: now };
    await writeFile(join(cell("top-1_lr0.1_s0"), "claim.json"), JSON.stringify(claim));
    await writeFile(join(cell("top-1_lr0.1_s1"), "claim.json"), JSON.stringify({ ...claim, slurm: undefined, host: "elsewhere", heartbeat: new Date(Date.now() - 600_000).toISOString() }));
    await writeFile(join(cell("linear_lr0.1_s0"), "last.safetensors"), "");
    const r = await runCli(["experiment", "--config", config, "--out", out, "--list-cells"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out.split("\n")).toEqual([
      ` 1  full_lr0.1_s0      finished`,
      ` 2  full_lr0.1_s1      diverged`,
      ` 3  top-1_lr0.1_s0     claimed by host ${hostname()} pid ${process.ppid} (Slurm job 7_3)`,
      ` 4  top-1_lr0.1_s1     claimed by host elsewhere pid ${process.ppid} (stale: its heartbeat is 600 s old (stale after 180 s))`,
      ` 5  linear_lr0.1_s0    started, resumable`,
      ` 6  linear_lr0.1_s1    to do`,
      ` 7  lora-r4_lr0.1_s0   to do`,
      ` 8  lora-r4_lr0.1_s1   to do`,
      ` 9  block-p1_lr0.1_s0  to do`,
      `10  block-p1_lr0.1_s1  to do`,
    ]);
  });

  it("refuses a run folder of another config, whose states are not this config's, and names a damaged result", async () => {
    const out = join(root, "other");
    await mkdir(join(out, "cells", "full_lr0.1_s0"), { recursive: true });
    await writeFile(join(out, "config.json"), JSON.stringify({ ...JSON.parse(await readFile(config, "utf8")), training: { ...DEFAULT_STUDY.training, steps: 400 } }));
    const r = await runCli(["experiment", "--config", config, "--out", out, "--list-cells"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`holds a run of another config (${join(out, "config.json")}), whose finished cells this one cannot use:\n  training.steps: 400 -> 300`);
    await writeFile(join(out, "config.json"), await readFile(config, "utf8"));
    const result = join(out, "cells", "full_lr0.1_s0", "result.json");
    await writeFile(result, JSON.stringify({ id: "full_lr0.1_s0" }));
    const damaged = await runCli(["experiment", "--config", config, "--out", out, "--list-cells"]);
    expect(damaged.code).toBe(1);
    expect(damaged.err).toContain(`${result}: expected a cell's result, found no "strategy" (a name)`);
  });
});

// A file where the run folder, or a folder in it, should be: named, rather than ENOTDIR's "not a directory".
describe("experiment --out below a file", () => {
  it("names the file in --out's path, for --list-cells and for a run, before any work", async () => {
    await writeFile(join(root, "afile"), "x");
    const out = join(root, "afile", "sub");
    const listed = await runCli(["experiment", "--config", config, "--out", out, "--list-cells"]);
    expect(listed.code).toBe(1);
    expect(listed.err).toBe(`error: --out: cannot read the folder ${out}: ${join(root, "afile")} is a file, not a folder`);
    const file = await runCli(["experiment", "--config", config, "--out", join(root, "afile"), "--list-cells"]);
    expect(file.err).toBe(`error: --out: expected a folder, got the file ${join(root, "afile")}`);
    const run = await runCli(["experiment", "--config", config, "--out", out, "--prepare-only"]);
    expect(run.code).toBe(1);
    expect(run.err).toBe(`error: --out: cannot create the folder ${out}: ${join(root, "afile")} is a file, not a folder`);
    // A resubmission's dry run only reads the folder, as the list does: the read check, not the write probe.
    const dry = await runCli(["experiment", "--config", config, "--out", out, "--resubmit-failed", "--dry-run"]);
    expect(dry.err).toBe(`error: --out: cannot read the folder ${out}: ${join(root, "afile")} is a file, not a folder`);
  });

  it("names a cell's folder that is a file", async () => {
    const out = join(root, "cell-file");
    await mkdir(join(out, "cells", "full_lr0.1_s0"), { recursive: true });
    await writeFile(join(out, "cells", "full_lr0.1_s0", "result.json"), JSON.stringify(finished("full_lr0.1_s0")));
    await writeFile(join(out, "cells", "full_lr0.1_s1"), "x");
    const r = await runCli(["experiment", "--config", config, "--out", out, "--list-cells"]);
    expect(r.code).toBe(1);
    expect(r.out).toBe(" 1  full_lr0.1_s0      finished");
    expect(r.err).toBe(`error: claims: cannot read the claim ${join(out, "cells", "full_lr0.1_s1", "claim.json")}: ${join(out, "cells", "full_lr0.1_s1")} is a file, not a folder`);
  });
});

describe("experiment --slurm --dry-run", () => {
  it("writes the job scripts and shows the three sbatch lines, submitting nothing", async () => {
    const out = join(root, "slurm-run");
    const r = await runCli(["experiment", "--config", config, "--out", out, "--slurm", "--dry-run", "--partition", "gpu", "--array-max", "4"]);
    expect(r.code, r.err).toBe(0);
    const scripts = join(out, "slurm");
    expect(r.out.split("\n")).toEqual([
      `study "ten" (${config}): 10 cell(s) -> ${out}; job scripts ${["prepare", "cells", "collect"].map((n) => join(scripts, `${n}.sh`)).join(", ")}`,
      `would run: sbatch --parsable ${join(scripts, "prepare.sh")}`,
      `would run: sbatch --parsable --dependency=afterok:<prepare job> --array=1-10%4 ${join(scripts, "cells.sh")}`,
      `would run: sbatch --parsable --dependency=afterany:<array job> ${join(scripts, "collect.sh")}`,
    ]);
    expect(existsSync(join(scripts, "jobs.json"))).toBe(false);
  });

  it("refuses a run folder of a config whose finished cells it cannot keep, before writing any script", async () => {
    const out = join(root, "slurm-other");
    await mkdir(join(out, "cells", "full_lr0.1_s0"), { recursive: true });
    await writeFile(join(out, "cells", "full_lr0.1_s0", "result.json"), JSON.stringify(finished("full_lr0.1_s0")));
    const other = { ...DEFAULT_STUDY, name: "ten", strategies: ["full", "top-1", "linear", "lora-r4", "block-p1"], learningRates: [0.1], seeds: [0, 1], training: { ...DEFAULT_STUDY.training, steps: 400 } };
    await writeFile(join(out, "config.json"), JSON.stringify(other));
    const r = await runCli(["experiment", "--config", config, "--out", out, "--slurm", "--dry-run"]);
    expect(r.code, r.err).toBe(1);
    expect(r.err).toContain(`experiment: ${out} holds a run of another config (${join(out, "config.json")})`);
    expect(r.err).toContain("training.steps: 400 -> 300");
    expect(existsSync(join(out, "slurm"))).toBe(false);
  });

  it("refuses what an #SBATCH line cannot hold, before writing any script: a newline, a space, a quote, % or a bad --time", async () => {
    const dry = (out: string, ...flags: string[]) => runCli(["experiment", "--config", config, "--out", out, "--slurm", "--dry-run", ...flags]);
    const out = join(root, "slurm-bad");
    for (const [flags, says] of [
      [["--partition", "gpu\ntouch /tmp/pwned"], '--partition: expected partition names (letters, digits, _ . -, comma-separated), got "gpu\ntouch /tmp/pwned"'],
      [["--partition", "a'b"], "--partition: expected partition names"],
      [["--time", "abc"], '--time: expected a time limit as sbatch takes it'],
      [["--time", "99:99:99"], '--time: expected a time limit as sbatch takes it'],
      [["--time", "-5"], '--time: expected a time limit as sbatch takes it'],
    ] as [string[], string][]) {
      const r = await dry(out, ...flags);
      expect(r.code, flags.join(" ")).toBe(1);
      expect(r.err).toContain(says);
      expect(existsSync(join(out, "slurm")), flags.join(" ")).toBe(false);
    }
    for (const bad of [join(root, "with space"), join(root, "pct%j")]) {
      const r = await dry(bad);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`--out: expected a path without spaces, quotes, backslashes or % for --slurm`);
    }
    for (const time of ["90", "8:00:00", "2-12", "1-0:30", "1-00:00:00", "30:00", "UNLIMITED"]) {
      const r = await dry(join(root, "slurm-time"), "--time", time);
      expect(r.code, `${time}: ${r.err}`).toBe(0);
    }
  });
});
