// study/slurm.ts on a real Slurm: scripts/slurm-local.sh brings up a one-node Slurm (munged, slurmctld, slurmd) in a
// folder of this test's own, and stops it at the end. The miniature study of ./program.ts is submitted with
// `experiment --slurm`: a preparation job, an array of three cell tasks, a collect job. Two tasks are stopped after
// their cells' first checkpoint: one is cancelled with scancel, the other runs out of time (TIMEOUT); the collect
// job then reports the finished cell and names the missing ones, `--resubmit-failed` submits those cells again,
// which take over the dead tasks' claims and resume from the checkpoints, and the final results equal a single
// process's run of the same config, checkpoints byte for byte.
//
// How the task stops at a precise point: the jobs inherit the submitting process's environment, which loads a
// preload module (NODE_OPTIONS=--import, as in faults.test.ts) that holds the process just after the first atomic
// write of a target cell's last.safetensors: its one thread waits for good, so that only a signal ends it. (Not
// SIGSTOP: Slurm continues a stopped task (SIGCONT) before it sends SIGTERM, and on a busy machine a continued cell
// finished its last steps in between.) The resubmission runs without it.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { pathToFileURL } from "node:url";
import { readSafetensors } from "../../vit/safetensors.js";
import { describeSubmission, parseTaskStates, resubmitFailed, submitStudy } from "../../study/slurm.js";
import { parseStudyConfig } from "../../study/config.js";
import { MINI_CELLS, ROOT, buildProgram, expectSameResults, runProgram, writeMiniStudy } from "./program.js";

const TOOLS = ["sbatch", "squeue", "scancel", "scontrol", "slurmctld", "slurmd", "munged"];
const onPath = (tool: string) => [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin"].some((d) => existsSync(join(d, tool)));
const missing = TOOLS.filter((t) => !onPath(t));
const asRoot = process.getuid?.() === 0;
const skipReason = missing.length > 0 ? `${missing.join(", ")} not found (npm run setup -- --slurm installs Slurm)` : !asRoot ? "the one-node Slurm runs as root" : "";

// The preload: after the first rename onto a path matching FAULT_TARGET, wait for ever (Atomics.wait on a value that
// no one changes), signals' default actions still ending the process.
const STOP_HOOK = `
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
const target = new RegExp(process.env.FAULT_TARGET);
const p = fs.promises;
const { rename } = p;
let hit = false;
p.rename = async function (from, to) {
  await rename.call(this, from, to);
  if (!hit && target.test(String(to))) {
    hit = true;
    fs.writeSync(2, "\\nfault: stopped after " + to + "\\n");
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  }
};
syncBuiltinESMExports();
`;

let root: string;
let program: string;
let config: string;
let env: NodeJS.ProcessEnv; // SLURM_CONF of the test's Slurm
let started = false;

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 90_000): Promise<T> {
  for (const start = Date.now(); Date.now() - start < timeoutMs; await new Promise((r) => setTimeout(r, 200))) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Until none of these jobs is pending or running.
const jobsEnded = (ids: string[]) =>
  waitFor(`jobs ${ids.join(",")} to end`, () => execFileSync("squeue", ["-h", "-o", "%i", "-j", ids.join(",")], { env, encoding: "utf8" }).trim() === "");

describe("Slurm job scripts and task states, without Slurm", () => {
  it("writes the three job scripts and, with --dry-run, shows the sbatch commands without submitting", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurm-dry-"));
    try {
      const config = parseStudyConfig(await writeMiniStudy(dir));
      const out = join(dir, "run");
      // A quote and a space in the program's path: the exec line quotes every argument. (The run folder's path goes
      // into #SBATCH lines too, which cannot quote: submitStudy refuses one with a space or a quote, below.)
      const program = "/opt/it's here/run.js";
      const r = await submitStudy(config, { out, cwd: dir, command: ["/usr/bin/node", program], flags: ["--backend", "vulkan"], partition: "gpu", gpusPerTask: 1, time: "2:00:00", arrayMax: 2, dryRun: true });
      const slurm = join(out, "slurm");
      expect(r.scripts).toEqual(["prepare", "cells", "collect"].map((n) => join(slurm, `${n}.sh`)));
      expect(r.commands).toEqual([
        `sbatch --parsable ${join(slurm, "prepare.sh")}`,
        `sbatch --parsable --dependency=afterok:<prepare job> --array=1-3%2 ${join(slurm, "cells.sh")}`,
        `sbatch --parsable --dependency=afterany:<array job> ${join(slurm, "collect.sh")}`,
      ]);
      const cells = await readFile(join(slurm, "cells.sh"), "utf8");
      for (const directive of ["--job-name=mini-cells", `--output=${join(slurm, "logs", "cell-%a-%A.out")}`, `--chdir=${dir}`, "--partition=gpu", "--gpus-per-task=1", "--time=2:00:00"]) {
        expect(cells).toContain(`#SBATCH ${directive}\n`);
      }
      const quoted = `'${program.replace("'", `'\\''`)}'`;
      expect(cells).toContain(`exec '/usr/bin/node' ${quoted} 'experiment' '--config' '${join(out, "slurm", "study.json")}' '--out' '${out}' '--cells' "$SLURM_ARRAY_TASK_ID" '--backend' 'vulkan'\n`);
      expect(await readFile(join(slurm, "prepare.sh"), "utf8")).toContain(`'--out' '${out}' '--prepare-only' '--backend'`);
      expect(await readFile(join(slurm, "collect.sh"), "utf8")).toContain(`'--out' '${out}' '--collect' '--backend'`);
      // The script runs the command it shows: bash reads the quoted path back as it was.
      const echoed = execFileSync("bash", ["-c", `set -- ${quoted}; printf %s "$1"`], { encoding: "utf8" });
      expect(echoed).toBe(program);
      await expect(submitStudy(config, { out: join(dir, "it's a run"), cwd: dir, command: ["/usr/bin/node", program], flags: [], dryRun: true })).rejects.toThrow("--out: expected a path without spaces, quotes, backslashes or % for --slurm");
      expect(JSON.parse(await readFile(join(slurm, "study.json"), "utf8")).name).toBe("mini");
      expect(existsSync(join(slurm, "jobs.json"))).toBe(false); // nothing submitted
      await expect(resubmitFailed({ out })).rejects.toThrow(`slurm: no Slurm submission in ${out} (${join(slurm, "jobs.json")} is missing): submit the study with --slurm first`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("names a submission's jobs, those it has: a collect job alone, or with an array, or with a preparation", () => {
    const time = "2026-12-05T00:00:00Z";
    expect(describeSubmission({ time, collect: "12", cells: "" })).toBe("collect job 12");
    expect(describeSubmission({ time, array: "11", cells: "3", collect: "12" })).toBe("array job 11 (cells 3), collect job 12");
    expect(describeSubmission({ time, prepare: "10", array: "11", cells: "1-3", collect: "12" })).toBe("preparation job 10, array job 11 (cells 1-3), collect job 12");
  });

  it("refuses a malformed slurm/jobs.json naming the file and the key, before asking Slurm anything", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurm-jobs-"));
    try {
      const jobs = join(dir, "slurm", "jobs.json");
      await mkdir(join(dir, "slurm"));
      const submission = { time: "2026-12-05T00:00:00Z", prepare: "1", array: "2", cells: "1-3", collect: "3" };
      const hint = "; restore it, or delete it and submit again with --slurm once no job of the study waits or runs (squeue)";
      const cases: [string, string][] = [
        ["{", "expected JSON, got a parse error: "],
        ["null", `expected the submissions of experiment --slurm, an object with "cells" and "submissions", got null${hint}`],
        ["{}", `cells: expected a list of cell ids, got nothing${hint}`],
        [JSON.stringify({ cells: ["a", 5], submissions: [] }), `cells[1]: expected a cell id, got 5${hint}`],
        [JSON.stringify({ cells: MINI_CELLS }), `submissions: expected a list, got nothing${hint}`],
        [JSON.stringify({ cells: MINI_CELLS, arrayMax: 0, submissions: [] }), `arrayMax: expected an integer >= 1, got 0${hint}`],
        [JSON.stringify({ cells: MINI_CELLS, submissions: [null] }), `submissions[0]: expected an object with job ids, got null${hint}`],
        [JSON.stringify({ cells: MINI_CELLS, submissions: [{ ...submission, collect: 3 }] }), `submissions[0].collect: expected a job id (digits), got 3${hint}`],
        [JSON.stringify({ cells: MINI_CELLS, submissions: [{ ...submission, array: "2,9" }] }), `submissions[0].array: expected a job id (digits), got "2,9"${hint}`],
        [JSON.stringify({ cells: MINI_CELLS, submissions: [{ ...submission, time: undefined }] }), `submissions[0].time: expected the time it was submitted, got nothing${hint}`],
        [JSON.stringify({ cells: MINI_CELLS, submissions: [{ ...submission, cells: "1-9" }] }), `submissions[0].cells: expected cell numbers from 1 to 3 such as "3,7-9", got "1-9": 1-9 is outside 1-3`],
      ];
      for (const [text, message] of cases) {
        await writeFile(jobs, text);
        await expect(resubmitFailed({ out: dir, dryRun: true }), text).rejects.toThrow(`slurm: ${jobs}: ${message}`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reads array task states as sacct and squeue print them, pending ranges included", () => {
    const states = parseTaskStates("12_1|COMPLETED\n12_2|CANCELLED by 0\n12_[4-5,7%2]|PENDING\n13|RUNNING\n\n12_3|TIMEOUT\n");
    expect([...states]).toEqual([
      ["12_1", "COMPLETED"], ["12_2", "CANCELLED"], ["12_4", "PENDING"], ["12_5", "PENDING"], ["12_7", "PENDING"], ["13", "RUNNING"], ["12_3", "TIMEOUT"],
    ]);
  });
});

// Stand-ins for sbatch and sacct in a folder put first on PATH: sbatch logs its arguments and prints the next job id
// (from 10), or fails where its arguments contain the text in fail-on; sacct prints the file states as sacct -P would.
const FAKE_SBATCH = `#!/bin/bash
set -e
d="$(dirname "$0")"
if [ -f "$d/fail-on" ] && [[ "$*" == *"$(cat "$d/fail-on")"* ]]; then echo "sbatch: error: Batch job submission failed" >&2; exit 1; fi
echo "$*" >> "$d/sbatch.log"
n=$(( $(cat "$d/next" 2>/dev/null || echo 10) ))
echo $(( n + 1 )) > "$d/next"
echo "$n"
`;

describe("Slurm submissions and resubmissions, against stand-in sbatch and sacct", () => {
  let dir: string;
  let bin: string;
  let out: string;
  let mini: ReturnType<typeof parseStudyConfig>;
  const path = process.env.PATH;
  const options = () => ({ out, cwd: dir, command: ["/usr/bin/node", "/opt/run.js"], flags: [] });
  const scriptsIn = () => join(out, "slurm");
  const sbatchLog = () => (existsSync(join(bin, "sbatch.log")) ? readFileSync(join(bin, "sbatch.log"), "utf8") : "");
  const finish = (...cells: string[]) => Promise.all(cells.map(async (c) => {
    await mkdir(join(out, "cells", c), { recursive: true });
    await writeFile(join(out, "cells", c, "result.json"), "{}");
  }));
  // An earlier submission: preparation 1, array 2 (cells 1-3), collect 3; and the states sacct reports.
  const earlier = async (states: string) => {
    await mkdir(scriptsIn(), { recursive: true });
    await writeFile(join(scriptsIn(), "jobs.json"), JSON.stringify({ cells: MINI_CELLS, submissions: [{ time: "", prepare: "1", array: "2", cells: "1-3", collect: "3" }] }));
    await writeFile(join(bin, "states"), states);
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "slurm-fake-"));
    bin = join(dir, "bin");
    out = join(dir, "run");
    await mkdir(bin);
    await writeFile(join(bin, "sbatch"), FAKE_SBATCH, { mode: 0o755 });
    await writeFile(join(bin, "sacct"), `#!/bin/bash\ncat "$(dirname "$0")/states"\n`, { mode: 0o755 });
    process.env.PATH = `${bin}${delimiter}${path}`;
    mini = parseStudyConfig(await writeMiniStudy(dir));
  });
  afterEach(async () => {
    process.env.PATH = path;
    await rm(dir, { recursive: true, force: true });
  });

  it("has a resubmitted cell's collect job wait for the earlier array's tasks that still run", async () => {
    await mkdir(out, { recursive: true });
    await writeFile(join(out, "baseline.json"), "{}");
    await earlier("2_1|FAILED\n2_2|RUNNING\n2_3|RUNNING\n3|PENDING\n1|COMPLETED\n");
    // The failed task's log says why: the line is shown, so that a cause that stays is seen before resubmitting.
    const log = join(scriptsIn(), "logs", "cell-1-2.out");
    await mkdir(join(scriptsIn(), "logs"));
    await writeFile(log, "study \"mini\"\nerror: experiment: run/config.json holds another config than this one\nwall time: 1s\n");
    const r = await resubmitFailed({ out });
    expect(r.lines).toEqual([
      `cell 1 (${MINI_CELLS[0]}): task 2_1 ended FAILED, without a result; resubmitting; its log ${log} says: error: experiment: run/config.json holds another config than this one`,
      `cell 2 (${MINI_CELLS[1]}): task 2_2 is RUNNING; left alone`,
      `cell 3 (${MINI_CELLS[2]}): task 2_3 is RUNNING; left alone`,
    ]);
    expect(sbatchLog()).toBe(`--parsable --array=1 ${join(scriptsIn(), "cells.sh")}\n--parsable --dependency=afterany:10:2 ${join(scriptsIn(), "collect.sh")}\n`);
    expect(r.submission).toMatchObject({ array: "10", cells: "1", collect: "11" });
  });

  it("resubmits the collect job alone where every cell has a result but the collect job was cancelled", async () => {
    await finish(...MINI_CELLS);
    await earlier("1|COMPLETED\n2_[1-3]|COMPLETED\n3|CANCELLED by 0\n");
    const dry = await resubmitFailed({ out, dryRun: true });
    expect(dry.lines).toEqual(["collect job 3 ended CANCELLED; resubmitting it"]);
    expect(dry.commands).toEqual([`sbatch --parsable ${join(scriptsIn(), "collect.sh")}`]);
    expect(sbatchLog()).toBe("");
    const r = await resubmitFailed({ out });
    expect(sbatchLog()).toBe(`--parsable ${join(scriptsIn(), "collect.sh")}\n`);
    expect(JSON.parse(readFileSync(join(scriptsIn(), "jobs.json"), "utf8")).submissions[1]).toMatchObject({ cells: "", collect: "10" });
    expect(r.lines).toEqual(["collect job 3 ended CANCELLED; resubmitting it", "collect job 10 writes the report"]);
    // Once a collect job completed, nothing is left to do.
    await writeFile(join(bin, "states"), "1|COMPLETED\n2_[1-3]|COMPLETED\n3|CANCELLED by 0\n10|COMPLETED\n");
    expect((await resubmitFailed({ out })).commands).toEqual([]);
  });

  it("names the jobs left waiting for ever behind a cancelled preparation, and the new collect job does not wait for them", async () => {
    await earlier("1|CANCELLED by 0\n2_[1-3]|PENDING\n3|PENDING\n");
    const r = await resubmitFailed({ out });
    expect(r.lines.at(-1)).toBe("jobs 2 3 wait for ever on preparation job 1, which ended CANCELLED: scancel 2 3 removes them");
    expect(sbatchLog().split("\n").at(-2)).toBe(`--parsable --dependency=afterany:11 ${join(scriptsIn(), "collect.sh")}`);
  });

  it("refuses a second --slurm while jobs of the first wait or run, and submits only the cells without a result", async () => {
    await earlier("1|COMPLETED\n2_1|COMPLETED\n2_2|RUNNING\n2_3|PENDING\n3|PENDING\n");
    await expect(submitStudy(mini, options())).rejects.toThrow(`slurm: jobs 2 3 of an earlier submission to ${out} (${join(scriptsIn(), "jobs.json")}) are still waiting or running: wait for them (squeue), then --resubmit-failed resubmits the cells that ended without a result; or scancel 2 3 and submit again`);
    expect(sbatchLog()).toBe("");
    await writeFile(join(bin, "states"), "1|COMPLETED\n2_1|COMPLETED\n2_2|COMPLETED\n2_3|CANCELLED by 0\n3|COMPLETED\n");
    await finish(MINI_CELLS[0], MINI_CELLS[1]);
    const r = await submitStudy(mini, options());
    expect(r.submission).toMatchObject({ prepare: "10", array: "11", cells: "3", collect: "12" });
    expect(sbatchLog()).toContain(`--array=3 ${join(scriptsIn(), "cells.sh")}`);
    await finish(MINI_CELLS[2]);
    const none = await submitStudy(mini, options());
    expect(none.nothing).toMatch(new RegExp(`^every cell of ${out} has a result \\(3 of 3\\): nothing to submit; \`experiment --collect\` rewrites the report`));
    expect(none.commands).toEqual([]);
  });

  it("refuses --slurm and --resubmit-failed before submitting anything where the run folder cannot be written", async () => {
    // The program as a user who cannot write the run folder but can write its slurm/ (a chmod -w after the first
    // submission): as root, who writes anywhere, that is nobody, who is given the test's folders; else this user.
    const program = await buildProgram("run-slurm-fake");
    const config = join(dir, "study.json");
    await writeFile(config, JSON.stringify(await writeMiniStudy(dir)));
    const nobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
    if (nobody) execFileSync("chown", ["-R", `${nobody.uid}:${nobody.gid}`, dir]);
    await chmod(dir, 0o755); // mkdtemp's folder: nobody must get in
    const run = (...flags: string[]) =>
      spawnSync(process.execPath, [program, "experiment", "--config", config, "--out", out, ...flags], { cwd: dir, env: { ...process.env, PEFT_TUNE: "0" }, encoding: "utf8", ...nobody });
    const first = run("--slurm");
    expect(first.status, first.stderr).toBe(0);
    expect(sbatchLog().split("\n")).toHaveLength(4); // three jobs
    await writeFile(join(bin, "states"), "10|FAILED\n11_[1-3]|CANCELLED\n12|COMPLETED\n"); // ended: both would submit again

    if (nobody) await chown(out, 0, 0);
    await chmod(out, 0o555);
    const refusal = `error: --out: cannot write in ${out}: permission denied (EACCES)`;
    for (const flags of [["--slurm"], ["--resubmit-failed"]]) {
      const again = run(...flags);
      expect(again.status, flags.join(" ")).toBe(1);
      expect(again.stderr.trim(), flags.join(" ")).toBe(refusal);
    }
    expect(sbatchLog().split("\n")).toHaveLength(4); // nothing more submitted
    await chmod(out, 0o755); // for afterEach's rm, when not root
  });

  it("names the jobs already submitted when a later sbatch fails", async () => {
    await writeFile(join(bin, "fail-on"), "--array");
    await expect(submitStudy(mini, options())).rejects.toThrow(`sbatch: error: Batch job submission failed; already submitted: preparation job 10, which slurm/jobs.json does not record: scancel 10 removes them, then submit again`);
  });
});

describe.skipIf(skipReason !== "")(`a study on a one-node Slurm${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "slurm-test-"));
    const slurm = spawnSync(join(ROOT, "scripts", "slurm-local.sh"), ["start"], { env: { ...process.env, SLURM_LOCAL_DIR: join(root, "slurm") }, encoding: "utf8" });
    if (slurm.status !== 0) throw new Error(`scripts/slurm-local.sh start failed:\n${slurm.stderr}`);
    started = true;
    env = { SLURM_CONF: /export SLURM_CONF=(\S+)/.exec(slurm.stdout)![1] };
    program = await buildProgram("run-slurm");
    config = join(root, "study.json");
    await writeFile(config, JSON.stringify(await writeMiniStudy(root)));
    await writeFile(join(root, "stop-hook.mjs"), STOP_HOOK);
  });

  afterAll(async () => {
    if (started) {
      spawnSync("scancel", ["--user", "root"], { env: { ...process.env, ...env } });
      const stop = spawnSync(join(ROOT, "scripts", "slurm-local.sh"), ["stop"], { env: { ...process.env, SLURM_LOCAL_DIR: join(root, "slurm") }, encoding: "utf8" });
      if (stop.status !== 0) throw new Error(`scripts/slurm-local.sh stop failed:\n${stop.stderr}`);
    }
    await rm(root, { recursive: true, force: true });
  });

  it("runs the cells as an array, reports what finished, resubmits a cancelled and a timed-out task, and matches a single process", async () => {
    // The reference first: it pre-trains the backbone into the shared cache, which the Slurm run then reads.
    const reference = join(root, "reference");
    const single = await runProgram(program, ["experiment", "--config", config, "--out", reference]);
    expect(single.code, single.stderr).toBe(0);

    const run = join(root, "run");
    const [killed, late] = [MINI_CELLS[1], MINI_CELLS[2]];
    const submit = await runProgram(program, ["experiment", "--config", config, "--out", run, "--slurm", "--array-max", "3", "--time", "10"], {
      cwd: root,
      env: { ...env, NODE_OPTIONS: `--import ${pathToFileURL(join(root, "stop-hook.mjs")).href}`, FAULT_TARGET: `/cells/(${killed}|${late})/last\\.safetensors$` },
    });
    expect(submit.code, submit.stderr).toBe(0);
    const jobs = JSON.parse(await readFile(join(run, "slurm", "jobs.json"), "utf8"));
    expect(jobs.cells).toEqual(MINI_CELLS);
    const first = jobs.submissions[0];
    expect(first.cells).toBe("1-3");
    expect(submit.stdout).toContain(`--array=1-3%3 ${join(run, "slurm", "cells.sh")}`);
    expect(submit.stdout).toContain(`--dependency=afterok:${first.prepare}`);
    expect(submit.stdout).toContain(`--dependency=afterany:${first.array}`);
    expect(await readFile(join(run, "slurm", "cells.sh"), "utf8")).toContain("#SBATCH --time=10\n");

    // Tasks 2 and 3 stop after their cells' first checkpoint (step 2 of 4). Task 2 is cancelled; task 3 runs out of
    // time: Slurm's limits are whole minutes, so its end is brought forward to now, and slurmctld's next check of limits
    // (every 30 s) ends it as it ends any task past its limit (SIGTERM, then SIGKILL; state TIMEOUT).
    for (const n of [2, 3]) {
      const log = join(run, "slurm", "logs", `cell-${n}-${first.array}.out`);
      await waitFor(`task ${n} to stop`, () => existsSync(log) && readFileSync(log, "utf8").includes("fault: stopped after"));
      expect((await readSafetensors(join(run, "cells", MINI_CELLS[n - 1], "last.safetensors"))).metadata.step).toBe("2");
    }
    execFileSync("scancel", [`${first.array}_2`], { env });
    execFileSync("scontrol", ["update", `JobId=${first.array}_3`, "EndTime=now"], { env });
    await jobsEnded([first.array, first.collect]);

    // The collect job ran after both (afterany), wrote the report of the finished cell and named the missing ones.
    const partial = JSON.parse(await readFile(join(run, "results.json"), "utf8"));
    expect(partial.missing).toEqual([killed, late]);
    expect(partial.cells.map((c: { id: string }) => c.id)).toEqual([MINI_CELLS[0]]);
    expect(await readFile(join(run, "table.md"), "utf8")).toContain(`left out: ${killed}, ${late}.`);
    for (const cell of [killed, late]) expect(existsSync(join(run, "cells", cell, "claim.json")), cell).toBe(true); // the dead tasks'

    const again = await runProgram(program, ["experiment", "--config", config, "--out", run, "--resubmit-failed"], { cwd: root, env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`cell 2 (${killed}): task ${first.array}_2 ended CANCELLED, without a result; resubmitting`);
    // slurmstepd's line in the task's log says why.
    expect(again.stdout).toMatch(new RegExp(`cell 3 \\(${late}\\): task ${first.array}_3 ended TIMEOUT, without a result; resubmitting; its log \\S+/cell-3-${first.array}\\.out says: slurmstepd\\S*: error: \\*\\*\\* JOB \\d+ ON \\S+ CANCELLED AT \\S+ DUE TO TIME LIMIT \\*\\*\\*\n`));
    const second = JSON.parse(await readFile(join(run, "slurm", "jobs.json"), "utf8")).submissions[1];
    expect(second.cells).toBe("2-3");
    expect(second.prepare).toBeUndefined();
    await jobsEnded([second.array, second.collect]);

    for (const n of [2, 3]) {
      const cell = MINI_CELLS[n - 1];
      const log = await readFile(join(run, "slurm", "logs", `cell-${n}-${second.array}.out`), "utf8");
      expect(log).toMatch(new RegExp(`taking over the stale claim .*/cells/${cell}/claim\\.json of host \\S+ pid \\d+ \\(Slurm job ${first.array}_${n}\\): its process \\d+ on this host is gone`));
      expect(log).toContain(`resuming cell ${cell} from step 2 of 4`);
    }
    const final = JSON.parse(await readFile(join(run, "results.json"), "utf8"));
    expect(final.missing).toEqual([]);
    await expectSameResults(run, reference, MINI_CELLS);
    for (const cell of MINI_CELLS) expect(existsSync(join(run, "cells", cell, "claim.json")), cell).toBe(false);

    // Nothing left to resubmit.
    const none = await runProgram(program, ["experiment", "--config", config, "--out", run, "--resubmit-failed"], { cwd: root, env });
    expect(none.stdout).toContain("nothing to resubmit");
  }, 300_000); // a dozen processes one after another, and up to 30 s for the time limit: 40-100 s on the 2-core development machine, more when it is busy

  it("resubmits the preparation, and the cells that wait on it for ever, when it failed", async () => {
    // Data that is not there: the preparation fails, and the array's tasks stay pending (afterok can never be met).
    const broken = join(root, "broken.json");
    await writeFile(broken, (await readFile(config, "utf8")).replaceAll(join(root, "data"), join(root, "no-data")));
    const run = join(root, "broken");
    const submit = await runProgram(program, ["experiment", "--config", broken, "--out", run, "--slurm"], { cwd: root, env });
    expect(submit.code, submit.stderr).toBe(0);
    const first = JSON.parse(await readFile(join(run, "slurm", "jobs.json"), "utf8")).submissions[0];
    await jobsEnded([first.prepare]);
    expect(await readFile(join(run, "slurm", "logs", `prepare-${first.prepare}.out`), "utf8")).toContain("no-data");

    const again = await runProgram(program, ["experiment", "--config", broken, "--out", run, "--resubmit-failed", "--dry-run"], { cwd: root, env });
    expect(again.code, again.stderr).toBe(0);
    for (const [n, cell] of MINI_CELLS.entries()) {
      const task = `${first.array}_${n + 1}`;
      expect(again.stdout).toContain(`cell ${n + 1} (${cell}): task ${task} waits on a preparation that ended FAILED; resubmitting (scancel ${task} removes the old task)`);
    }
    expect(again.stdout).toContain(`jobs ${first.array} ${first.collect} wait for ever on preparation job ${first.prepare}, which ended FAILED: scancel ${first.array} ${first.collect} removes them`);
    const scripts = join(run, "slurm");
    expect(again.stdout).toContain(`would run: sbatch --parsable ${join(scripts, "prepare.sh")}\nwould run: sbatch --parsable --dependency=afterok:<prepare job> --array=1-3 ${join(scripts, "cells.sh")}`);
    execFileSync("scancel", [first.array, first.collect], { env });
  });
});
