// study/claims.ts without Slurm: one claim per cell among racing workers (here: processes), who holds a claim,
// heartbeats, and stale claims taken over (a dead owner on this host, a heartbeat too old) but live ones not.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { type ClaimRecord, type ClaimTiming, claimOrWait, describeOwner, readClaim, staleness, thisOwner, tryClaim } from "../../study/claims.js";

const ROOT = resolve(__dirname, "../..");
// Short heartbeats and polls keep the tests quick; staleness after 10 s leaves room for a loaded machine (the
// stale cases set their heartbeat ages explicitly).
const FAST: ClaimTiming = { heartbeatMs: 50, staleMs: 10_000, pollMs: 20 };
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "claims-test-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const read = async (path: string) => JSON.parse(await readFile(path, "utf8")) as ClaimRecord;

function record(overrides: Partial<ClaimRecord>): ClaimRecord {
  const now = new Date().toISOString();
  return { host: hostname(), pid: process.pid, token: "t-old", claimed: now, heartbeat: now, ...overrides };
}

// A pid that no process has: a child that has exited.
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await new Promise((done) => child.on("exit", done));
  return child.pid!;
}

describe("claims", () => {
  it("gives a cell to one claimant, names the owner to the others, and frees it on release", async () => {
    const path = join(root, "a", "claim.json");
    const log: string[] = [];
    const first = await tryClaim(path, thisOwner({ jobId: "17", arrayJobId: "15", arrayTaskId: "3" }), FAST, (l) => log.push(l));
    expect("claim" in first).toBe(true);
    const second = await tryClaim(path, thisOwner(), FAST, (l) => log.push(l));
    expect("heldBy" in second && describeOwner(second.heldBy)).toBe(`host ${hostname()} pid ${process.pid} (Slurm job 15_3)`);
    if (!("claim" in first)) return;
    await first.claim.release();
    expect(existsSync(path)).toBe(false);
    const third = await tryClaim(path, thisOwner(), FAST, (l) => log.push(l));
    expect("claim" in third).toBe(true);
    if ("claim" in third) await third.claim.release();
    expect(log).toEqual([]);
  });

  it("refreshes the heartbeat while held", async () => {
    const path = join(root, "b", "claim.json");
    const attempt = await tryClaim(path, thisOwner(), FAST, () => undefined);
    if (!("claim" in attempt)) throw new Error("expected the claim");
    const before = (await read(path)).heartbeat;
    await new Promise((done) => setTimeout(done, 200));
    const after = await read(path);
    expect(Date.parse(after.heartbeat)).toBeGreaterThan(Date.parse(before));
    expect(after.claimed).toBe((await read(path)).claimed);
    await attempt.claim.release();
  });

  it("takes over the claim of a dead process on this host, of an earlier process with this pid, and of a heartbeat older than staleMs, saying why", async () => {
    const pid = await deadPid();
    const dead = join(root, "c", "claim.json");
    await rm(join(root, "c"), { recursive: true, force: true });
    const log: string[] = [];
    await tryClaim(dead, thisOwner(), FAST, () => undefined).then(async (a) => "claim" in a && a.claim.release());
    await writeFile(dead, JSON.stringify(record({ pid })));
    expect(staleness(await read(dead), FAST)).toBe(`its process ${pid} on this host is gone`);
    const took = await tryClaim(dead, thisOwner(), FAST, (l) => log.push(l));
    expect("claim" in took).toBe(true);
    expect(log).toEqual([`taking over the stale claim ${dead} of host ${hostname()} pid ${pid}: its process ${pid} on this host is gone`]);
    expect((await read(dead)).pid).toBe(process.pid);
    if ("claim" in took) await took.claim.release();

    // This host and this process's pid, but not a claim this process holds: an earlier process with the same pid.
    await writeFile(dead, JSON.stringify(record({ token: "earlier" })));
    log.length = 0;
    const reused = await tryClaim(dead, thisOwner(), FAST, (l) => log.push(l));
    expect("claim" in reused).toBe(true);
    expect(log).toEqual([`taking over the stale claim ${dead} of host ${hostname()} pid ${process.pid}: an earlier process with this process's pid ${process.pid} left it`]);
    if ("claim" in reused) await reused.claim.release();

    // Another host's worker whose heartbeats stopped 60 s ago; one whose last beat was just now is left alone.
    const old = join(root, "d", "claim.json");
    await tryClaim(old, thisOwner(), FAST, () => undefined).then(async (a) => "claim" in a && a.claim.release());
    await writeFile(old, JSON.stringify(record({ host: "elsewhere", pid: 1, heartbeat: new Date(Date.now() - 60_000).toISOString() })));
    const fresh = record({ host: "elsewhere", pid: 1 });
    expect(staleness(fresh, FAST)).toBeUndefined();
    log.length = 0;
    const tookOld = await tryClaim(old, thisOwner(), FAST, (l) => log.push(l));
    expect("claim" in tookOld).toBe(true);
    expect(log[0]).toMatch(/^taking over the stale claim .* of host elsewhere pid 1: its heartbeat is 60 s old \(stale after 10 s\)$/);
    if ("claim" in tookOld) await tookOld.claim.release();
    await writeFile(old, JSON.stringify(fresh));
    const refused = await tryClaim(old, thisOwner(), FAST, () => undefined);
    expect("heldBy" in refused && refused.heldBy.host).toBe("elsewhere");
  });

  // A heartbeat reads the claim, then rewrites it: one in flight when the claim is released must not put the file
  // back after the release removed it (a claim left on finished work, by a live process).
  it("leaves no claim behind when released during a heartbeat", async () => {
    for (let i = 0; i < 10; i++) {
      const path = join(root, "beat", `${i}.json`);
      const attempt = await tryClaim(path, thisOwner(), FAST, () => undefined);
      if (!("claim" in attempt)) throw new Error("expected the claim");
      const beating = attempt.claim.beat();
      await attempt.claim.release();
      await beating;
      expect(existsSync(path), path).toBe(false);
    }
  });

  it("waits while a live worker holds the work, and returns nothing once that work is done", async () => {
    const path = join(root, "e", "claim.json");
    const holder = await tryClaim(path, thisOwner(), FAST, () => undefined);
    if (!("claim" in holder)) throw new Error("expected the claim");
    const marker = join(root, "e", "done");
    const log: string[] = [];
    const waiting = claimOrWait(path, thisOwner(), FAST, (l) => log.push(l), () => existsSync(marker));
    await new Promise((done) => setTimeout(done, 100));
    await writeFile(marker, "");
    await holder.claim.release();
    expect(await waiting).toBeUndefined();
    expect(log).toEqual([`waiting for host ${hostname()} pid ${process.pid}, which holds ${path}`]);
  });

  // The holder marks its work done and releases between the waiter's look at done() and its claim: the waiter
  // must not run that work again. Here done() turns true just after the first look, and the claim is free.
  it("gives back a claim won after the work was done, and returns nothing", async () => {
    const path = join(root, "f", "claim.json");
    let looks = 0;
    const got = await claimOrWait(path, thisOwner(), FAST, () => undefined, () => looks++ > 0);
    expect(got).toBeUndefined();
    expect(looks).toBe(2);
    expect(existsSync(path)).toBe(false);
  });

  // An owner killed after marking its work done and before releasing: nobody would ever remove its claim.
  it("removes the claim a dead owner left on finished work, and leaves a live owner's", async () => {
    const gone = await deadPid();
    const dead = join(root, "g", "claim.json");
    const live = join(root, "h", "claim.json");
    await mkdir(join(root, "g"));
    await mkdir(join(root, "h"));
    await writeFile(dead, JSON.stringify(record({ pid: gone, token: "t-dead" })));
    await writeFile(live, JSON.stringify(record({ host: "elsewhere", pid: 1, token: "t-live" })));
    const log: string[] = [];
    expect(await claimOrWait(dead, thisOwner(), FAST, (l) => log.push(l), () => true)).toBeUndefined();
    expect(await claimOrWait(live, thisOwner(), FAST, (l) => log.push(l), () => true)).toBeUndefined();
    expect(existsSync(dead)).toBe(false);
    expect((await read(live)).token).toBe("t-live");
    expect(log).toEqual([`removed the claim ${dead} that host ${hostname()} pid ${gone} left on its finished work`]);
  });

  // Claims are written whole: an unreadable one was damaged by hand, and whose it was cannot be told. On work still
  // to do it stops the worker (the work might be another's); on finished work it holds nothing, and is left with a
  // warning rather than stopping a collect.
  it("leaves an unreadable claim on finished work with a warning, and refuses one on work to do", async () => {
    const path = join(root, "damaged", "claim.json");
    await mkdir(join(root, "damaged"));
    await writeFile(path, "{");
    const log: string[] = [];
    expect(await claimOrWait(path, thisOwner(), FAST, (l) => log.push(l), () => true)).toBeUndefined();
    expect(await readFile(path, "utf8")).toBe("{");
    expect(log).toHaveLength(1);
    expect(log[0]).toContain(`warning: claims: cannot read the claim ${path}: `);
    expect(log[0]).toContain("; its work is finished, so the claim holds nothing and is left as it is (delete it)");
    await expect(tryClaim(path, thisOwner(), FAST, () => undefined)).rejects.toThrow(`claims: cannot read the claim ${path}: `);
  });

  it("names a file where a folder of the claim's path should be", async () => {
    await writeFile(join(root, "afile"), "x");
    const path = join(root, "afile", "cells", "c", "claim.json");
    await expect(readClaim(path)).rejects.toThrow(`claims: cannot read the claim ${path}: ${join(root, "afile")} is a file, not a folder`);
  });

  // Separate processes race for the same twelve claims, each taking what it can: every claim has one winner. Each
  // holds its claims until every one has reported (then the test closes their stdin): a claim of an exited process
  // is stale, and rightly taken over.
  it("never gives one claim to two of several racing processes", async () => {
    const entry = join(root, "race.ts");
    await writeFile(entry, `
      import { tryClaim, thisOwner } from ${JSON.stringify(join(ROOT, "study", "claims.ts"))};
      const won: number[] = [];
      for (let i = 0; i < 12; i++) {
        const a = await tryClaim(${JSON.stringify(join(root, "race"))} + "/" + i + "/claim.json", thisOwner(), { heartbeatMs: 1000, staleMs: 60000, pollMs: 10 }, () => {});
        if ("claim" in a) won.push(i);
      }
      process.stdout.write(JSON.stringify(won) + "\\n");
      process.stdin.on("end", () => process.exit(0)).resume();
    `);
    const script = join(root, "race.mjs");
    await build({ entryPoints: [entry], outfile: script, bundle: true, platform: "node", format: "esm", logLevel: "warning" });
    const children = [0, 1, 2].map(() => spawn(process.execPath, [script]));
    const wins = await Promise.all(
      children.map(
        (child) =>
          new Promise<number[]>((done, fail) => {
            let text = "";
            child.stdout.on("data", (b: Buffer) => {
              text += b.toString();
              if (text.endsWith("\n")) done(JSON.parse(text));
            });
            child.on("close", (code) => fail(new Error(`race worker exited ${code} before reporting`)));
          }),
      ),
    );
    const exits = children.map((child) => new Promise((done) => child.on("close", done)));
    for (const child of children) child.stdin.end();
    await Promise.all(exits);
    expect(wins.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });
});
