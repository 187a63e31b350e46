// The program as a user starts it in a terminal (a pseudo-terminal from util-linux's `script`): Dawn's two start-up
// warnings are left out, everything else and the exit code come through; redirected, it is one plain process.
import { beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildProgram } from "./study/program.js";

const ROOT = resolve(__dirname, "..");
let BUNDLE: string;
const NOISE = "artificially reduced";

// `script -qec CMD /dev/null` runs CMD on a pseudo-terminal, prints what it printed there, and exits with its code.
function inTerminal(args: string): { out: string; status: number | null } {
  const r = spawnSync("script", ["-qec", `${process.execPath} ${BUNDLE} ${args}`, "/dev/null"], { encoding: "utf8" });
  return { out: r.stdout, status: r.status };
}

function childrenOf(pid: number): number[] {
  const r = spawnSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" });
  return r.stdout.split("\n").filter((l) => l.trim() !== "").map(Number);
}

function alive(pid: number): boolean {
  const r = spawnSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8" });
  return r.status === 0 && !r.stdout.trim().startsWith("Z");
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  for (const start = Date.now(); Date.now() - start < timeoutMs; await new Promise((r) => setTimeout(r, 100))) {
    const value = probe();
    if (value !== undefined) return value;
  }
  throw new Error("timed out waiting");
}

beforeAll(async () => {
  BUNDLE = await buildProgram("run-terminal");
});

describe("run.js in a terminal", () => {
  const hasScript = spawnSync("script", ["--version"]).status === 0;

  it.skipIf(!hasScript)("leaves out Dawn's two warnings and keeps the rest, stdout and stderr", () => {
    const { out, status } = inTerminal("info");
    expect(status).toBe(0);
    expect(out).not.toContain(NOISE);
    expect(out).toContain("adapter");
    const bad = inTerminal("params --strategies top-99");
    expect(bad.status).toBe(2);
    expect(bad.out).toContain('expected top-K with 0 <= K <= depth');
    expect(bad.out).not.toContain(NOISE);
  });

  it.skipIf(!hasScript)("a parent killed outright (SIGKILL) takes its child with it", async () => {
    const out = mkdtempSync(join(tmpdir(), "run-terminal-"));
    const term = spawn("script", ["-qec", `${process.execPath} ${BUNDLE} experiment --config ${join(ROOT, "configs", "default.json")} --out ${out}`, "/dev/null"], { stdio: "ignore" });
    try {
      const parent = await waitFor(() => childrenOf(term.pid!)[0]);
      const child = await waitFor(() => childrenOf(parent)[0]);
      process.kill(parent, "SIGKILL");
      await waitFor(() => (alive(child) ? undefined : true));
    } finally {
      term.kill("SIGKILL");
      rmSync(out, { recursive: true, force: true });
    }
  }, 30_000);

  // `experiment --workers` starts its workers so: the IPC channel closes when the parent dies, however it dies.
  it("a process whose parent holds an IPC channel to it stops when the channel closes", async () => {
    const out = mkdtempSync(join(tmpdir(), "run-ipc-"));
    const child = spawn(process.execPath, [BUNDLE, "experiment", "--config", join(ROOT, "configs", "default.json"), "--out", out], { stdio: ["ignore", "pipe", "pipe", "ipc"] });
    let said = "";
    let exited: number | null | undefined;
    for (const stream of [child.stdout!, child.stderr!]) stream.on("data", (d) => (said += d));
    child.on("exit", (code) => (exited = code));
    try {
      await waitFor(() => (said.includes("k-NN of the original backbone") ? true : undefined), 60_000);
      child.disconnect(); // as the parent's death would
      await waitFor(() => (exited !== undefined ? true : undefined), 20_000);
      expect(exited).toBe(137);
    } finally {
      child.kill("SIGKILL");
      rmSync(out, { recursive: true, force: true });
    }
  }, 90_000);

  // Dawn prints the two warnings on lavapipe and none on SwiftShader: the tool's lines are compared with what Dawn
  // prints in a process of its own on the same adapter.
  it("redirected, prints Dawn's lines as they come (one process, nothing filtered)", () => {
    const noise = (stderr: string) => stderr.split("\n").filter((line) => line.includes(NOISE));
    const dawn = spawnSync(process.execPath, ["--input-type=module", "-e", 'import { create } from "webgpu"; await create([]).requestAdapter();'], { cwd: ROOT, encoding: "utf8" });
    expect(dawn.status).toBe(0);
    const r = spawnSync(process.execPath, [BUNDLE, "info"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(noise(r.stderr)).toEqual(noise(dawn.stderr));
  });
});

describe("run.js with no arguments", () => {
  it("runs the embedded default study on the shipped backbone, from any folder", async () => {
    const tool = await buildProgram("run-shipped", { shipped: true });
    const cwd = mkdtempSync(join(tmpdir(), "run-elsewhere-"));
    const child = spawn(process.execPath, [tool], { cwd });
    let out = "";
    let exited: number | null | undefined;
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => (exited = code));
    try {
      // The backbone is found, hashed and described before any other work; the study's first k-NN follows.
      await waitFor(() => (out.includes("k-NN of the original backbone") || exited !== undefined ? true : undefined), 60_000);
      expect(out).toMatch(/backbone: ViT \(64 wide, 4 blocks, 2 heads, patch 7\) pre-trained with DINO for 11700 steps on fashion-mnist .*\(checkpoint .*run-shipped\/backbones\/dino-fashion-mnist-50ep-grid\/backbone\.safetensors\)/);
      expect(out).toContain("k-NN of the original backbone");
    } finally {
      child.kill("SIGKILL");
      await waitFor(() => (exited !== undefined ? true : undefined));
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 90_000);
});
