// Faults: a miniature study run as a child process of the real program (the current source, bundled with the
// options of scripts/build.mjs), killed at chosen points and rerun with the same command. The rerun must finish with
// what an uninterrupted run writes: every cell's best/last checkpoint and the cached backbone byte for byte, and
// every number of results.json, results.csv, table.md, baseline.json and the cells' metrics, timings aside. After a
// kill no file is torn but the temporary file of the atomic write it cut short, and the next run removes that.
// Ctrl-C prints how to resume and exits with 130.
//
// The kills form one chain in one folder, in the order a run reaches them: each rerun is killed at the next point,
// so every kill is also a resume of a resumed run, and twelve processes cover ten kills (about 1 s each on the
// 2-core development machine's CPU driver, most of it the process start). After each kill the test checks that it interrupted something
// (the step of the last checkpoint, a missing result, a torn temporary file) and that whatever is already final
// matches the uninterrupted run, so a difference shows at the kill that caused it.
//
// How the kills hit precise points: a preload module (`node --import`, FAULT_HOOK below) wraps the calls
// util/atomic.ts makes (fs/promises' open and rename, FileHandle's write) and, at the n-th atomic write of a file
// whose path matches a pattern, stops the child with SIGSTOP: after the temporary file's first chunk ("write": a
// torn temporary file, the target untouched), with the temporary file complete but not renamed ("rename"), or just
// after the rename ("done"). The test then sends the stopped process SIGKILL (or SIGINT and SIGCONT), so the kill
// lands exactly there on every run. Watching the run folder instead (fs.watch or polling) cannot hit "while
// writing" reliably: an atomic write of this study takes 0.5 to 4 ms from open to rename (ext4, development
// machine, 2026-12-04), less than the way from a file event through the test's event loop to a kill. A
// fault-injection setting would put test machinery into the engine; the preload changes nothing in the program,
// and without it the child runs as `node dist/run.js experiment ...` does.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { readSafetensors } from "../../vit/safetensors.js";
import type { CellResult } from "../../study/results.js";
import { MINI_CELLS as CELLS, buildProgram, withoutTimings, writeMiniStudy } from "./program.js";

// The preload. FAULT_TARGET: a regular expression for the target path of an atomic write; FAULT_AT: write (for
// the chunked writes of checkpoints: fh.writeFile, which writes the JSON files, does not go through
// FileHandle.write), rename or done; FAULT_NTH: which matching write of this process (1-based). It announces the
// stop on stderr.
const FAULT_HOOK = `
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
const target = new RegExp(process.env.FAULT_TARGET);
const at = process.env.FAULT_AT;
const nth = Number(process.env.FAULT_NTH || "1");
const stop = (path) => {
  fs.writeSync(2, "\\nfault: stopped at " + at + " of " + path + "\\n");
  process.kill(process.pid, "SIGSTOP");
};
const p = fs.promises;
const { open, rename } = p;
let opened = 0, renamed = 0;
const torn = new Map(); // fd -> target, for the n-th matching temporary file while FAULT_AT is write
const handle = await open("/dev/null", "r");
const FileHandle = Object.getPrototypeOf(handle);
await handle.close();
const write = FileHandle.write;
FileHandle.write = async function (...args) {
  const result = await write.apply(this, args);
  const path = torn.get(this.fd);
  if (path !== undefined) { torn.delete(this.fd); stop(path); }
  return result;
};
p.open = async function (path, ...rest) {
  const fh = await open.call(this, path, ...rest);
  const m = /^(.*)\\.tmp-\\d+-\\d+$/.exec(String(path));
  if (at === "write" && m && target.test(m[1]) && ++opened === nth) torn.set(fh.fd, m[1]);
  return fh;
};
p.rename = async function (from, to) {
  const hit = at !== "write" && target.test(String(to)) && ++renamed === nth;
  if (hit && at === "rename") stop(String(to));
  await rename.call(this, from, to);
  if (hit && at === "done") stop(String(to));
};
syncBuiltinESMExports();
`;

let root: string;
let bundle: string; // the program, bundled from the current source
let chain: string; // the folder the study runs in (with relative paths: the run folder and the pre-training's cache)
let reference: string; // where the uninterrupted run's folder is moved when it has finished
let configPath: string;

interface Fault {
  target: string; // a regular expression for the target path of an atomic write
  at: "write" | "rename" | "done";
  nth?: number;
  signal?: "SIGKILL" | "SIGINT"; // default SIGKILL
}

interface Outcome {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stopped: boolean; // the fault point was reached
  seconds: number;
}

const CHILD_LIMIT_MS = 60_000;

// `experiment --config FILE --out run` in `cwd`, as a child process; with a fault, stopped there and then killed.
function runStudy(cwd: string, fault?: Fault): Promise<Outcome> {
  const started = performance.now();
  const env: NodeJS.ProcessEnv = { ...process.env, PEFT_TUNE: "0" };
  const args = [bundle, "experiment", "--config", configPath, "--out", "run"];
  if (fault) {
    Object.assign(env, { FAULT_TARGET: fault.target, FAULT_AT: fault.at, FAULT_NTH: String(fault.nth ?? 1) });
    args.unshift("--import", pathToFileURL(join(root, "fault-hook.mjs")).href);
  }
  const child: ChildProcess = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let stopped = false;
  let resume: ReturnType<typeof setInterval> | undefined;
  child.stdout!.resume();
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    if (fault && !stopped && stderr.includes("fault: stopped at ")) {
      stopped = true;
      if (fault.signal === "SIGINT") {
        // The announcement comes just before the child stops itself: a single SIGCONT could arrive first and be
        // lost, leaving it stopped for good. It is repeated until the child has exited.
        child.kill("SIGINT");
        child.kill("SIGCONT");
        resume = setInterval(() => child.kill("SIGCONT"), 20);
      } else child.kill("SIGKILL");
    }
  });
  // A child that hangs is killed, and the test fails with its output, before vitest's own timeout.
  const watchdog = setTimeout(() => child.kill("SIGKILL"), CHILD_LIMIT_MS);
  return new Promise((done, fail) => {
    child.on("error", fail);
    child.on("close", (code, signal) => {
      clearTimeout(watchdog);
      clearInterval(resume);
      const seconds = (performance.now() - started) / 1000;
      if (seconds * 1000 >= CHILD_LIMIT_MS) fail(new Error(`the study ran past ${CHILD_LIMIT_MS / 1000} s and was killed:\n${stderr}`));
      done({ pid: child.pid!, code, signal, stderr, stopped, seconds });
    });
  });
}

// Every file under `dir`, relative to it, sorted.
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  if (existsSync(dir)) await walk(dir);
  return out.sort();
}

const TEMPORARY = /\.tmp-\d+-\d+$/;

// Nothing torn: every file but an atomic write's temporary file reads whole.
async function expectNothingTorn(dir: string): Promise<void> {
  for (const f of await filesUnder(dir)) {
    if (TEMPORARY.test(f)) continue;
    const path = join(dir, f);
    if (f.endsWith(".json")) expect(() => JSON.parse(readFileSync(path, "utf8")), f).not.toThrow();
    if (f.endsWith(".safetensors")) await expect(readSafetensors(path), f).resolves.toBeDefined();
  }
}

const bytes = (path: string) => readFile(path);
const json = async (path: string) => JSON.parse(await readFile(path, "utf8"));
const step = async (path: string) => (await readSafetensors(path)).metadata.step;

// A CSV without the named columns.
function csvWithout(text: string, columns: string[]): string[][] {
  const rows = text.trim().split("\n").map((l) => l.split(","));
  const keep = rows[0].map((name, i) => (columns.includes(name) ? -1 : i)).filter((i) => i >= 0);
  return rows.map((r) => keep.map((i) => r[i]));
}

const cellFile = (dir: string, cell: string, name: string) => join(dir, "run", "cells", cell, name);
async function pretrainDir(dir: string): Promise<string> {
  const hashes = await readdir(join(dir, "cache", "pretrain"));
  expect(hashes.length).toBe(1);
  return join(dir, "cache", "pretrain", hashes[0]);
}

// A cell's files as far as they must match the uninterrupted run: checkpoints byte for byte, metrics without
// throughput, the k-NN curve and the result without timings.
async function expectCellAsReference(cell: string): Promise<void> {
  for (const name of ["best.safetensors", "last.safetensors"]) {
    expect((await bytes(cellFile(chain, cell, name))).equals(await bytes(cellFile(reference, cell, name))), `${cell}/${name}`).toBe(true);
  }
  expect(withoutTimings(await json(cellFile(chain, cell, "metrics.json"))), `${cell}/metrics.json`).toEqual(withoutTimings(await json(cellFile(reference, cell, "metrics.json"))));
  const csv = async (dir: string) => csvWithout(await readFile(cellFile(dir, cell, "metrics.csv"), "utf8"), ["images_per_second"]);
  expect(await csv(chain), `${cell}/metrics.csv`).toEqual(await csv(reference));
  expect(withoutTimings(await json(cellFile(chain, cell, "knn-curve.json"))), `${cell}/knn-curve.json`).toEqual(withoutTimings(await json(cellFile(reference, cell, "knn-curve.json"))));
  expect(withoutTimings(await json(cellFile(chain, cell, "result.json"))), `${cell}/result.json`).toEqual(withoutTimings(await json(cellFile(reference, cell, "result.json"))));
}

// Every file that is final in the chain's folder (a finished cell's, the cached backbone, the baseline) matches
// the uninterrupted run.
async function expectFinalAsReference(): Promise<void> {
  for (const cell of CELLS) if (existsSync(cellFile(chain, cell, "result.json"))) await expectCellAsReference(cell);
  const backbone = join(await pretrainDir(chain), "backbone.safetensors");
  if (existsSync(backbone)) {
    expect((await bytes(backbone)).equals(await bytes(join(await pretrainDir(reference), "backbone.safetensors"))), "the cached backbone").toBe(true);
  }
  const baseline = (dir: string) => json(join(dir, "run", "baseline.json"));
  if (existsSync(join(chain, "run", "baseline.json"))) expect(withoutTimings(await baseline(chain))).toEqual(withoutTimings(await baseline(reference)));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "faults-test-"));
  bundle = await buildProgram("run-faults");
  await writeFile(join(root, "fault-hook.mjs"), FAULT_HOOK);
  // program.ts's miniature study (its noisy data: numbers that a wrong resume could change) with a k-NN curve. Both
  // runs use the same folder, one after the other (the uninterrupted run is moved away when it has finished), and
  // the backbone's cache is inside it, relative to it: the checkpoints record the backbone's path.
  const mini = await writeMiniStudy(root, "cache");
  configPath = join(root, "study.json");
  await writeFile(configPath, JSON.stringify({ ...mini, knn: { ...mini.knn, atSteps: [0, 1, 2, 4] } }, null, 2));
  reference = join(root, "reference");
  chain = join(root, "study");
  await mkdir(chain);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// The kills, in the order a run reaches them; `interrupted` shows what each left unfinished.
const KILLS: { name: string; fault: Fault; interrupted: (dir: string, o: Outcome) => Promise<void> }[] = [
  {
    name: "during pre-training, after its first checkpoint",
    fault: { target: "/pretrain/[0-9a-f]+/train/last\\.safetensors$", at: "done" },
    interrupted: async (dir) => {
      expect(await step(join(await pretrainDir(dir), "train", "last.safetensors"))).toBe("2");
      expect(existsSync(join(await pretrainDir(dir), "backbone.safetensors"))).toBe(false);
    },
  },
  {
    name: "while writing a pre-training checkpoint",
    fault: { target: "/pretrain/[0-9a-f]+/train/last\\.safetensors$", at: "write" },
    interrupted: async (dir) => {
      const train = join(await pretrainDir(dir), "train");
      expect(await step(join(train, "last.safetensors"))).toBe("2");
      await expectTorn(train, "last.safetensors");
    },
  },
  {
    name: "while writing the pre-trained backbone",
    fault: { target: "/pretrain/[0-9a-f]+/backbone\\.safetensors$", at: "write" },
    interrupted: async (dir) => {
      expect(await step(join(await pretrainDir(dir), "train", "last.safetensors"))).toBe("6");
      expect(existsSync(join(await pretrainDir(dir), "backbone.safetensors"))).toBe(false);
      await expectTorn(await pretrainDir(dir), "backbone.safetensors");
    },
  },
  {
    name: "by Ctrl-C in the middle of the first cell",
    fault: { target: `/cells/${CELLS[0]}/last\\.safetensors$`, at: "done", signal: "SIGINT" },
    interrupted: async (dir, o) => {
      expect(o.code).toBe(130);
      expect(o.stderr).toContain("interrupted; rerun the same command to resume");
      expect(await step(cellFile(dir, CELLS[0], "last.safetensors"))).toBe("2");
      expect(existsSync(cellFile(dir, CELLS[0], "result.json"))).toBe(false);
    },
  },
  {
    name: "while writing a cell's checkpoint",
    fault: { target: `/cells/${CELLS[0]}/last\\.safetensors$`, at: "write" },
    interrupted: async (dir) => {
      expect(await step(cellFile(dir, CELLS[0], "last.safetensors"))).toBe("2");
      await expectTorn(join(dir, "run", "cells", CELLS[0]), "last.safetensors");
    },
  },
  {
    // A checkpoint writes the metrics first, then the tensors: the metrics run ahead of the checkpoint.
    name: "between a checkpoint's metrics and its tensors",
    fault: { target: `/cells/${CELLS[1]}/metrics\\.csv$`, at: "done", nth: 2 },
    interrupted: async (dir) => {
      expect(await step(cellFile(dir, CELLS[1], "last.safetensors"))).toBe("2");
      expect((await json(cellFile(dir, CELLS[1], "metrics.json"))).rows.length).toBe(4);
    },
  },
  {
    // Training from scratch again, the rerun keeps the point of step 0 and measures step 1 again.
    name: "after a k-NN curve point, before the cell's first checkpoint",
    fault: { target: `/cells/${CELLS[2]}/knn-curve\\.json$`, at: "done", nth: 2 },
    interrupted: async (dir) => {
      expect(existsSync(cellFile(dir, CELLS[2], "last.safetensors"))).toBe(false);
      expect((await json(cellFile(dir, CELLS[2], "knn-curve.json"))).points.map((p: { step: number }) => p.step)).toEqual([0, 1]);
    },
  },
  {
    // The checkpoint of step 2 is written before its point: the rerun, resuming from it, measures step 2 first.
    name: "while storing the k-NN curve point of a checkpoint's step",
    fault: { target: `/cells/${CELLS[2]}/knn-curve\\.json$`, at: "rename", nth: 2 },
    interrupted: async (dir) => {
      expect(await step(cellFile(dir, CELLS[2], "last.safetensors"))).toBe("2");
      expect((await json(cellFile(dir, CELLS[2], "knn-curve.json"))).points.map((p: { step: number }) => p.step)).toEqual([0, 1]);
      await expectTorn(join(dir, "run", "cells", CELLS[2]), "knn-curve.json", false);
    },
  },
  {
    name: "while writing a cell's result",
    fault: { target: `/cells/${CELLS[2]}/result\\.json$`, at: "rename" },
    interrupted: async (dir) => {
      expect(await step(cellFile(dir, CELLS[2], "last.safetensors"))).toBe("4");
      expect(existsSync(cellFile(dir, CELLS[2], "result.json"))).toBe(false);
      await expectTorn(join(dir, "run", "cells", CELLS[2]), "result.json", false);
    },
  },
  {
    name: "while writing the results",
    fault: { target: "/run/results\\.json$", at: "rename" },
    interrupted: async (dir) => {
      for (const cell of CELLS) expect(existsSync(cellFile(dir, cell, "result.json")), cell).toBe(true);
      for (const f of ["results.json", "table.md", "results.csv"]) expect(existsSync(join(dir, "run", f)), f).toBe(false);
      await expectTorn(join(dir, "run"), "results.json", false);
    },
  },
];

// The killed write's temporary file is there, and after a "write" stop shorter than the uninterrupted run's file.
async function expectTorn(dir: string, name: string, torn = true): Promise<void> {
  const left = (await readdir(dir)).filter((f) => f.startsWith(`${name}.tmp-`));
  expect(left.length, `a temporary file of ${name}`).toBe(1);
  const size = (await stat(join(dir, left[0]))).size;
  expect(size).toBeGreaterThan(0);
  if (torn) expect(size).toBeLessThan((await stat(join(reference, relative(chain, dir), name))).size);
}

// The chain's stages, each run once and shared: 0 the uninterrupted run, 1..KILLS.length the kills, then the final
// rerun. Asking for a stage runs the ones before it first, so each test also runs alone or shuffled; a stage checks
// its folder right after its process ends, before the next stage changes it. A failed kill is reported by its own
// test and the chain goes on; without the uninterrupted run there is nothing to compare with.
const stages: Promise<Outcome>[] = [];
function stage(i: number): Promise<Outcome> {
  stages[i] ??= (async () => {
    if (i === 1) await stage(0);
    else if (i > 1) await stage(i - 1).catch(() => stage(0));
    if (i === 0) return uninterrupted();
    if (i <= KILLS.length) return killed(KILLS[i - 1]);
    return rerun();
  })();
  return stages[i];
}

async function uninterrupted(): Promise<Outcome> {
  const o = await runStudy(chain);
  expect(o.code, o.stderr).toBe(0);
  await rename(chain, reference);
  await mkdir(chain);
  return o;
}

async function killed(kill: (typeof KILLS)[number]): Promise<Outcome> {
  const o = await runStudy(chain, kill.fault);
  expect(o.stopped, `the fault point was never reached (exit ${o.code}):\n${o.stderr}`).toBe(true);
  if (kill.fault.signal !== "SIGINT") expect(o.signal).toBe("SIGKILL");
  await kill.interrupted(chain, o);
  await expectNothingTorn(chain);
  // The temporary files of earlier kills are gone: this process removed them when it started.
  const left = (await filesUnder(chain)).filter((f) => TEMPORARY.test(f));
  expect(left.filter((f) => !f.includes(`.tmp-${o.pid}-`))).toEqual([]);
  await expectFinalAsReference();
  return o;
}

async function rerun(): Promise<Outcome> {
  const o = await runStudy(chain);
  expect(o.code, o.stderr).toBe(0);
  expect(o.stderr).toMatch(/removed \d+ temporary file\(s\) of writes cut short/);
  return o;
}

describe("a study killed at any point and rerun", () => {
  it("runs uninterrupted, for reference", async () => {
    await stage(0);
    // Numbers that a wrong resume could change: they differ between cells, and between a cell's best and last step.
    const { cells } = await json(join(reference, "run", "results.json"));
    expect(new Set(cells.map((c: CellResult) => c.knn["5"].top1)).size).toBeGreaterThan(1);
    expect(cells.some((c: CellResult) => c.transferAccuracy !== c.finalTransferAccuracy)).toBe(true);
    expect(cells.some((c: CellResult) => new Set(c.knnCurve!.map((p) => p.knn["5"].top1)).size > 1)).toBe(true);
  });

  for (const [i, kill] of KILLS.entries()) {
    it(`is killed ${kill.name}`, async () => {
      await stage(i + 1);
    });
  }

  it("finishes on the rerun with the results of the uninterrupted run, and leaves no temporary file", async () => {
    await stage(KILLS.length + 1);
    for (const cell of CELLS) await expectCellAsReference(cell);
    await expectFinalAsReference();
    const [a, b] = [join(chain, "run"), join(reference, "run")];
    expect(withoutTimings(await json(join(a, "results.json")))).toEqual(withoutTimings(await json(join(b, "results.json"))));
    const timings = ["train_seconds", "images_per_second"];
    expect(csvWithout(await readFile(join(a, "results.csv"), "utf8"), timings)).toEqual(csvWithout(await readFile(join(b, "results.csv"), "utf8"), timings));
    for (const f of ["table.md", "figure2.svg", "forgetting.svg", "forgetting.vl.json"]) expect((await bytes(join(a, f))).equals(await bytes(join(b, f))), f).toBe(true);
    const left = [...(await filesUnder(chain)), ...(await filesUnder(reference))].filter((f) => TEMPORARY.test(f));
    expect(left).toEqual([]);
    expect(await filesUnder(chain)).toEqual(await filesUnder(reference));
  });
});
