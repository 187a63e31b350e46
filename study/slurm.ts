// A study as Slurm jobs (experiment --slurm): the job scripts go into the run folder's slurm/ and are submitted with
// sbatch as three steps, each depending on the one before:
//
//   prepare.sh   experiment --prepare-only: the backbone (pre-training) and the original backbone's k-NN
//   cells.sh     an array with one task per cell (--array=1-N%M), each `experiment --cells $SLURM_ARRAY_TASK_ID`;
//                after the preparation succeeded (afterok)
//   collect.sh   experiment --collect: results.json, the table and the figures from whatever finished, naming the
//                missing cells; after the array ended however it ended (afterany)
//
// The tasks share the run folder through claims (study/claims.ts). A task that failed, hit its time limit or was
// cancelled is resubmitted by `--resubmit-failed`, which asks Slurm how each task ended and submits the cells
// without a result again (with a new collect job; a collect job alone where only it did not finish); each resumes
// from its last checkpoint. `--slurm` again on the same folder submits only the cells without a result, once no
// job of an earlier submission waits or runs. Where Slurm keeps no accounting database (sacct says "accounting
// storage is disabled", as on a one-node test Slurm), the states come from the controller's memory of recent jobs
// (squeue --states=all). Only sbatch, squeue and sacct are used.
//
//   slurm/study.json   the study's config as the jobs read it (configJson)
//   slurm/jobs.json    every submission: job ids, the array's cells
//   slurm/logs/        each job's output: prepare-<job>.out, cell-<n>-<array job>.out, collect-<job>.out
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { describeJson, isObject, readJsonFile } from "../util/json-file.js";
import { type StudyConfig, configJson } from "./config.js";
import { cellResultPath, cellsFolder, cellsOf, formatCellList, parseCellList } from "./cells.js";
import { makeFolder } from "../util/make-folder.js";
import { checkOutputFolder } from "../util/args.js";

export interface SlurmOptions {
  out: string; // the run folder, absolute
  cwd: string; // the jobs' working directory: relative paths in the config are relative to it
  command: string[]; // how to run this program, absolute: [node, .../dist/run.js]
  flags: string[]; // passed on to every job's `experiment`, e.g. ["--backend", "vulkan"]
  partition?: string;
  gpusPerTask?: number;
  time?: string; // each job's time limit, as sbatch's --time takes it
  arrayMax?: number; // at most this many cell tasks at once (%M)
  dryRun?: boolean; // write the scripts, submit nothing
}

export interface Submission {
  time: string; // ISO
  prepare?: string; // job ids
  array?: string; // absent where only a collect job was resubmitted
  cells: string; // the array's cell numbers, "1-30" or "3,7"; "" without an array
  collect: string;
}

// A submission's jobs in words: "preparation job 10, array job 11 (cells 3), collect job 12".
export function describeSubmission(s: Submission): string {
  const jobs = [s.prepare && `preparation job ${s.prepare}`, s.array && `array job ${s.array} (cells ${s.cells})`, `collect job ${s.collect}`];
  return jobs.filter(Boolean).join(", ");
}

interface JobsFile {
  arrayMax?: number;
  cells: string[]; // cell ids by number - 1, as at the first submission
  submissions: Submission[];
}

const slurmDir = (out: string) => join(out, "slurm");
const jobsPath = (out: string) => join(slurmDir(out), "jobs.json");

// What goes into #SBATCH lines, checked before any script is written: a directive is not shell and cannot be
// quoted (a space ends it, a newline starts a line of script), and sbatch expands % patterns in --output's path.
function checkDirectiveValues(o: SlurmOptions): void {
  const plain = /^[^\s%'"\\]+$/;
  if (!plain.test(o.out)) throw new Error(`--out: expected a path without spaces, quotes, backslashes or % for --slurm (an #SBATCH line cannot quote them, and sbatch reads % in a log's path as a pattern), got "${o.out}"`);
  if (!plain.test(o.cwd)) throw new Error(`slurm: expected a working directory without spaces, quotes, backslashes or % (the jobs' --chdir), got "${o.cwd}": run from another folder`);
  if (o.partition !== undefined && !/^[\w.-]+(,[\w.-]+)*$/.test(o.partition)) throw new Error(`--partition: expected partition names (letters, digits, _ . -, comma-separated), got "${o.partition}"`);
  if (o.time !== undefined && !slurmTime(o.time)) {
    throw new Error(`--time: expected a time limit as sbatch takes it (minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S or UNLIMITED; minutes and seconds below 60 after a colon), got "${o.time}"`);
  }
}

// The folders the jobs write in, checked before anything is written or submitted: the run folder (or the folder
// it is to be made in) and those of cells/, slurm/ and slurm/logs that exist. Slurm takes the jobs whatever the
// folder: a preparation that cannot write the run folder fails, and the array waits for ever on it; a task whose
// log Slurm cannot open fails without a line. slurm/ of an earlier submission may be writable where the run folder
// is not (chmod -w, a quota), and --resubmit-failed writes nothing before it submits.
async function checkWritable(out: string): Promise<void> {
  for (const dir of [out, cellsFolder(out), slurmDir(out), join(slurmDir(out), "logs")]) {
    if (dir === out || existsSync(dir)) await checkOutputFolder(dir, "out");
  }
}

// Whether `t` is one of sbatch's --time forms.
function slurmTime(t: string): boolean {
  if (/^(unlimited|infinite)$/i.test(t)) return true;
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(t);
  if (!m) return false;
  const [, days, first, second, third] = m;
  // With days the first number is hours; without, a lone number is minutes and M:S or H:M:S follow.
  if (days === undefined && second === undefined) return true;
  const below60 = [second, third].every((x) => x === undefined || Number(x) < 60);
  return below60 && (days === undefined || Number(first) < 24);
}

// Single quotes for the shell.
function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function script(o: SlurmOptions, name: string, jobName: string, output: string, args: string[]): string {
  const directives = [
    `--job-name=${jobName}`,
    `--output=${join(slurmDir(o.out), "logs", output)}`,
    `--chdir=${o.cwd}`,
    "--ntasks=1",
    ...(o.partition ? [`--partition=${o.partition}`] : []),
    ...(o.gpusPerTask ? [`--gpus-per-task=${o.gpusPerTask}`] : []),
    ...(o.time ? [`--time=${o.time}`] : []),
  ];
  const line = [...o.command, "experiment", "--config", join(slurmDir(o.out), "study.json"), "--out", o.out, ...args, ...o.flags].map(quote).join(" ");
  return [
    "#!/bin/bash",
    `# ${name}: written by \`experiment --slurm\` (study/slurm.ts); submitted with its dependencies by it.`,
    ...directives.map((d) => `#SBATCH ${d}`),
    "set -euo pipefail",
    // The cell task's number comes from Slurm, so it is left outside the quotes.
    `exec ${line.replace(quote("$SLURM_ARRAY_TASK_ID"), '"$SLURM_ARRAY_TASK_ID"')}`,
    "",
  ].join("\n");
}

// Runs a Slurm command; resolves with its stdout. `what` names it in errors.
function slurmCommand(tool: string, args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    execFile(tool, args, { encoding: "utf8" }, (e, stdout, stderr) => {
      if (!e) return done(stdout);
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") fail(new Error(`slurm: ${tool} not found: Slurm's client commands are needed (on a cluster's login node; --dry-run writes the job scripts without them)`));
      else fail(new Error(`slurm: ${tool} ${args.join(" ")} failed: ${(stderr || e.message).trim()}`));
    });
  });
}

// sbatch --parsable prints "id" or "id;cluster".
async function sbatch(args: string[]): Promise<string> {
  return (await slurmCommand("sbatch", ["--parsable", ...args])).trim().split(";")[0];
}

// An sbatch command line, as the log and --dry-run show it.
function submitLine(args: string[]): string {
  return ["sbatch", "--parsable", ...args].join(" ");
}

// Submits sbatch lines one after another. Where one fails after others went through, the error names those: they
// wait on a job that will never come, or run without the report after them, and no jobs.json records them.
function submitter() {
  const commands: string[] = [];
  const submitted: string[] = [];
  const submit = async (what: string, args: string[]): Promise<string> => {
    commands.push(submitLine(args));
    try {
      const id = await sbatch(args);
      submitted.push(`${what} ${id}`);
      return id;
    } catch (e) {
      if (submitted.length === 0) throw e;
      const ids = submitted.map((s) => s.split(" ").pop()).join(" ");
      throw new Error(`${(e as Error).message}; already submitted: ${submitted.join(", ")}, which slurm/jobs.json does not record: scancel ${ids} removes them, then submit again`);
    }
  };
  return { commands, submit };
}

export interface SubmitResult {
  scripts: string[];
  submission?: Submission; // absent with dryRun, or with nothing to submit
  commands: string[]; // the sbatch command lines, as run (or, with dryRun, as they would run)
  nothing?: string; // why nothing was submitted: every cell has a result
}

// Writes the three job scripts and submits them: preparation, the cell array (the cells without a result),
// collection. Refused while jobs of an earlier submission wait or run (their tasks hold the claims: new tasks would
// sit on their allocations waiting), and where the jobs could not write the run folder (checkWritable); nothing is
// submitted where every cell has a result already.
export async function submitStudy(config: StudyConfig, o: SlurmOptions): Promise<SubmitResult> {
  checkDirectiveValues(o);
  const cells = cellsOf(config);
  const todo = cells.flatMap((c, i) => (existsSync(cellResultPath(o.out, c.id)) ? [] : [i + 1]));
  if (todo.length === 0) {
    return { scripts: [], commands: [], nothing: `every cell of ${o.out} has a result (${cells.length} of ${cells.length}): nothing to submit; \`experiment --collect\` rewrites the report, --resubmit-failed resubmits a collect job that did not finish` };
  }
  await checkWritable(o.out);
  const earlier = existsSync(jobsPath(o.out)) ? await readJobs(o.out) : undefined;
  if (earlier) {
    const active = [...activeJobs(await taskStates(jobIds(earlier)))];
    if (active.length > 0) {
      throw new Error(`slurm: jobs ${active.join(" ")} of an earlier submission to ${o.out} (${jobsPath(o.out)}) are still waiting or running: wait for them (squeue), then --resubmit-failed resubmits the cells that ended without a result; or scancel ${active.join(" ")} and submit again`);
    }
  }
  const dir = slurmDir(o.out);
  await makeFolder(join(dir, "logs"));
  await writeJsonAtomic(join(dir, "study.json"), configJson(config));
  const scripts = {
    prepare: script(o, "the preparation", `${config.name}-prepare`, "prepare-%j.out", ["--prepare-only"]),
    cells: script(o, "one cell per array task", `${config.name}-cells`, "cell-%a-%A.out", ["--cells", "$SLURM_ARRAY_TASK_ID"]),
    collect: script(o, "the report", `${config.name}-collect`, "collect-%j.out", ["--collect"]),
  };
  const paths: string[] = [];
  for (const [name, text] of Object.entries(scripts)) {
    const path = join(dir, `${name}.sh`);
    await writeFileAtomic(path, text);
    await chmod(path, 0o755);
    paths.push(path);
  }
  const list = formatCellList(todo);
  if (o.dryRun) {
    return {
      scripts: paths,
      commands: [
        submitLine([paths[0]]),
        submitLine([`--dependency=afterok:<prepare job>`, `--array=${arrayList(list, o.arrayMax)}`, paths[1]]),
        submitLine([`--dependency=afterany:<array job>`, paths[2]]),
      ],
    };
  }
  const { commands, submit } = submitter();
  const prepare = await submit("preparation job", [paths[0]]);
  const array = await submit("array job", [`--dependency=afterok:${prepare}`, `--array=${arrayList(list, o.arrayMax)}`, paths[1]]);
  const collect = await submit("collect job", [`--dependency=afterany:${array}`, paths[2]]);
  const submission: Submission = { time: new Date().toISOString(), prepare, array, cells: list, collect };
  const jobs: JobsFile = earlier ?? { cells: [], submissions: [] };
  await writeJsonAtomic(jobsPath(o.out), { ...jobs, arrayMax: o.arrayMax, cells: cells.map((c) => c.id), submissions: [...jobs.submissions, submission] });
  return { scripts: paths, submission, commands };
}

function arrayList(list: string, max: number | undefined): string {
  return max ? `${list}%${max}` : list;
}

// Every job of every submission.
function jobIds(jobs: JobsFile): string[] {
  return jobs.submissions.flatMap((s) => [s.prepare, s.array, s.collect].filter((id): id is string => id !== undefined));
}

async function readJobs(out: string): Promise<JobsFile> {
  const path = jobsPath(out);
  if (!existsSync(path)) throw new Error(`slurm: no Slurm submission in ${out} (${path} is missing): submit the study with --slurm first`);
  return checkJobs(await readJsonFile(path, "slurm"), path);
}

// jobs.json's content checked before any of it reaches sacct or a resubmission: an edited or truncated file is
// refused naming the file and the key, as a config is.
function checkJobs(json: unknown, path: string): JobsFile {
  const refuse = (key: string, what: string, got: unknown) => new Error(`slurm: ${path}: ${key}expected ${what}, got ${describeJson(got)}; restore it, or delete it and submit again with --slurm once no job of the study waits or runs (squeue)`);
  if (!isObject(json)) throw refuse("", `the submissions of experiment --slurm, an object with "cells" and "submissions"`, json);
  const { arrayMax, cells, submissions } = json;
  if (arrayMax !== undefined && !(Number.isInteger(arrayMax) && (arrayMax as number) >= 1)) throw refuse("arrayMax: ", "an integer >= 1", arrayMax);
  if (!Array.isArray(cells)) throw refuse("cells: ", "a list of cell ids", cells);
  const badCell = cells.findIndex((c) => typeof c !== "string");
  if (badCell >= 0) throw refuse(`cells[${badCell}]: `, "a cell id", cells[badCell]);
  if (!Array.isArray(submissions)) throw refuse("submissions: ", "a list", submissions);
  for (const [i, s] of submissions.entries()) {
    const at = `submissions[${i}]`;
    if (!isObject(s)) throw refuse(`${at}: `, "an object with job ids", s);
    for (const key of ["prepare", "array", "collect"]) {
      if ((key === "collect" || s[key] !== undefined) && !(typeof s[key] === "string" && /^\d+$/.test(s[key]))) throw refuse(`${at}.${key}: `, "a job id (digits)", s[key]);
    }
    if (typeof s.time !== "string") throw refuse(`${at}.time: `, "the time it was submitted", s.time);
    if (typeof s.cells !== "string") throw refuse(`${at}.cells: `, "the array's cell numbers", s.cells);
    if (s.array !== undefined) parseCellList(s.cells, cells.length, `slurm: ${path}: ${at}.cells`);
  }
  return json as unknown as JobsFile;
}

// How Slurm says a task ended, or that it still waits or runs.
const ACTIVE = new Set(["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED"]);

// The jobs with a task that still waits or runs: by job, not by task (an array of hundreds of cells is one job).
function activeJobs(states: Map<string, string>): Set<string> {
  return new Set([...states].filter(([, state]) => ACTIVE.has(state)).map(([task]) => task.split("_")[0]));
}

// "12_3|CANCELLED by 0", "12_[4-6%2]|PENDING" and "11|FAILED" lines (sacct -P, squeue -o %i|%T) -> state by
// "job_task" for array tasks, by "job" for other jobs.
export function parseTaskStates(text: string): Map<string, string> {
  const states = new Map<string, string>();
  for (const line of text.split("\n")) {
    const [id, state] = line.trim().split("|");
    if (!id || !state) continue;
    const m = /^(\d+)(?:_(?:(\d+)|\[([^\]]+)\]))?$/.exec(id);
    if (!m) continue;
    const word = state.trim().split(/\s+/)[0];
    if (m[2] === undefined && m[3] === undefined) states.set(m[1], word);
    const tasks = m[2] ? [Number(m[2])] : m[3] ? parseCellList(m[3].replace(/%\d+$/, ""), Number.MAX_SAFE_INTEGER, "a Slurm array") : [];
    for (const t of tasks) states.set(`${m[1]}_${t}`, word);
  }
  return states;
}

// The states of these jobs and of every task of those that are arrays: from sacct, else (no accounting database)
// from squeue.
async function taskStates(jobIds: string[]): Promise<Map<string, string>> {
  const ids = jobIds.join(",");
  try {
    return parseTaskStates(await slurmCommand("sacct", ["-X", "-n", "-P", "-o", "JobID,State", "-j", ids]));
  } catch (e) {
    if (!/accounting storage is disabled/i.test((e as Error).message)) throw e;
  }
  // squeue refuses a job id the controller has forgotten: one array at a time.
  const states = new Map<string, string>();
  for (const id of jobIds) {
    const text = await slurmCommand("squeue", ["--states=all", "-r", "-h", "-o", "%i|%T", "-j", id]).catch(() => "");
    for (const [task, state] of parseTaskStates(text)) states.set(task, state);
  }
  return states;
}

// The last line of a task's log that says "error:" (the program's own, or slurmstepd's on a cancel or a time
// limit), with the log's path: a task that failed for a reason that stays (a config edited under the run folder, a
// full disk) fails again when resubmitted, and this says so before. Undefined without a log.
async function lastError(log: string): Promise<string | undefined> {
  if (!existsSync(log)) return undefined;
  const error = (await readFile(log, "utf8")).split(/[\r\n]+/).filter((l) => l.includes("error:")).pop();
  return error ? `; its log ${log} says: ${error.trim()}` : `; its log: ${log}`;
}

export interface ResubmitResult {
  lines: string[]; // per cell without a result: how its task ended, and what is done about it; then the collect job
  submission?: Submission; // absent when nothing needed resubmitting, or with dryRun
  commands: string[];
}

// Resubmits the cells of earlier submissions that have no result and whose latest task is not waiting or running:
// failed, timed out, cancelled, or unknown to Slurm. The preparation too, when it has not finished. The new collect
// job waits for the earlier arrays still running as well, so that its report is the complete one. Where every cell
// has a result but the latest collect job ended otherwise than COMPLETED (or Slurm has forgotten it and there is no
// results.json), the collect job alone.
export async function resubmitFailed(o: { out: string; dryRun?: boolean }): Promise<ResubmitResult> {
  const jobs = await readJobs(o.out);
  await checkWritable(o.out);
  const dir = slurmDir(o.out);
  const states = await taskStates(jobIds(jobs));
  const lines: string[] = [];
  const again: number[] = [];
  const active = activeJobs(states);
  // A preparation that ended without baseline.json leaves its array's tasks pending for ever (afterok can no longer
  // be met), and its collect job behind them: those cells are resubmitted too, and a line says how to remove the old jobs.
  const prepareAgain = !existsSync(join(o.out, "baseline.json"));
  const stuck = jobs.submissions.filter((s) => prepareAgain && s.prepare && s.array && states.has(s.prepare) && !ACTIVE.has(states.get(s.prepare)!));
  const stuckArrays = new Set(stuck.map((s) => s.array));
  for (const [i, id] of jobs.cells.entries()) {
    const n = i + 1;
    if (existsSync(cellResultPath(o.out, id))) continue;
    // The latest submission that included the cell says how it stands.
    const last = [...jobs.submissions].reverse().find((s) => s.array && parseCellList(s.cells, jobs.cells.length).includes(n));
    const task = last && `${last.array}_${n}`;
    const state = task ? states.get(task) : undefined;
    if (state && ACTIVE.has(state) && !stuckArrays.has(last!.array)) {
      lines.push(`cell ${n} (${id}): task ${task} is ${state}; left alone`);
      continue;
    }
    if (state && ACTIVE.has(state)) {
      lines.push(`cell ${n} (${id}): task ${task} waits on a preparation that ended ${states.get(last!.prepare!)}; resubmitting (scancel ${task} removes the old task)`);
      again.push(n);
      continue;
    }
    const why = last && (await lastError(join(dir, "logs", `cell-${n}-${last.array}.out`)));
    lines.push(`cell ${n} (${id}): task ${task ?? "none"} ${state ? `ended ${state}` : "unknown to Slurm"}, without a result; resubmitting${why ?? ""}`);
    again.push(n);
  }
  for (const s of stuck) {
    const waiting = [s.array!, s.collect].filter((job) => active.has(job));
    if (waiting.length > 0) lines.push(`jobs ${waiting.join(" ")} wait for ever on preparation job ${s.prepare}, which ended ${states.get(s.prepare!)}: scancel ${waiting.join(" ")} removes them`);
  }
  const scripts = ["prepare", "cells", "collect"].map((name) => join(dir, `${name}.sh`));
  // Earlier arrays that still run: the new collect job waits for them too.
  const running = jobs.submissions.flatMap((s) => (s.array && !stuckArrays.has(s.array) && active.has(s.array) ? [s.array] : []));
  const { commands, submit } = submitter();
  if (again.length === 0) {
    const latest = jobs.submissions[jobs.submissions.length - 1];
    const state = latest && states.get(latest.collect);
    const ended = state ? !ACTIVE.has(state) && state !== "COMPLETED" : !existsSync(join(o.out, "results.json"));
    if (!latest || running.length > 0 || !ended) return { lines, commands: [] };
    lines.push(`collect job ${latest.collect} ${state ? `ended ${state}` : "is unknown to Slurm and there is no results.json"}; resubmitting it`);
    const args = [scripts[2]];
    if (o.dryRun) return { lines, commands: [submitLine(args)] };
    const collect = await submit("collect job", args);
    await writeJsonAtomic(jobsPath(o.out), { ...jobs, submissions: [...jobs.submissions, { time: new Date().toISOString(), cells: "", collect }] });
    return { lines: [...lines, `collect job ${collect} writes the report`], commands };
  }
  const cells = formatCellList(again);
  const after = (array: string) => `--dependency=afterany:${[array, ...running].join(":")}`;
  if (o.dryRun) {
    const commands = [
      ...(prepareAgain ? [submitLine([scripts[0]])] : []),
      submitLine([...(prepareAgain ? ["--dependency=afterok:<prepare job>"] : []), `--array=${arrayList(cells, jobs.arrayMax)}`, scripts[1]]),
      submitLine([after("<array job>"), scripts[2]]),
    ];
    return { lines, commands };
  }
  const prepare = prepareAgain ? await submit("preparation job", [scripts[0]]) : undefined;
  const array = await submit("array job", [...(prepare ? [`--dependency=afterok:${prepare}`] : []), `--array=${arrayList(cells, jobs.arrayMax)}`, scripts[1]]);
  const collect = await submit("collect job", [after(array), scripts[2]]);
  const submission: Submission = { time: new Date().toISOString(), ...(prepare && { prepare }), array, cells, collect };
  await writeJsonAtomic(jobsPath(o.out), { ...jobs, submissions: [...jobs.submissions, submission] });
  return { lines, submission, commands };
}
