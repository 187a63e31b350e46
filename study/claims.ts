// Claims: how several workers (processes on one machine, Slurm tasks on many) share one run folder without doing
// a piece of work twice. A worker claims a cell (or the study's preparation) by creating its claim file, e.g.
// cells/<id>/claim.json, which names the owner (host, pid, Slurm job and task) and carries a heartbeat the owner
// refreshes while it works; it removes the file when done (the cell's result.json is what says "done").
//
// Creation is atomic on local and network file systems alike: the claim is written whole to a file of its own,
// then hard-linked to the claim's name, which fails when the name exists (link(2), as O_EXCL, is atomic on NFS
// too, where O_EXCL was not always). So a claim file never appears half written, and of two workers racing for a
// cell exactly one gets it.
//
// A claim is stale, and another worker takes it over (saying so), when its owner ran on this host and its process
// is gone (or has this process's pid without being one of its claims: an earlier process with the same pid), or
// when its heartbeat is older than `staleMs` (an owner on another host that died or lost the file system; clocks
// across hosts are assumed to agree to well within staleMs; a dead owner's pid reused by another process also
// waits for this). Taking over renames the stale claim to
// a name of the taker's own (rename is atomic: of two takers only one moves it) and checks that what it moved is
// the claim it judged stale; if a third worker had claimed the cell in between, that claim is put back.
import { hostname } from "node:os";
import { link, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { randomBytes } from "node:crypto";
import { writeJsonAtomic } from "../util/atomic.js";
import { makeFolder, nearestExisting } from "../util/make-folder.js";

export interface ClaimOwner {
  host: string;
  pid: number;
  slurm?: { jobId: string; arrayJobId?: string; arrayTaskId?: string }; // when the worker is a Slurm job
}

export interface ClaimRecord extends ClaimOwner {
  token: string; // this claim's own random name: tells it from a later claim by the same owner
  claimed: string; // ISO time
  heartbeat: string; // ISO time, refreshed every heartbeatMs while the owner works
}

export interface ClaimTiming {
  heartbeatMs: number; // how often a live owner refreshes its heartbeat
  staleMs: number; // a heartbeat older than this marks the owner dead (several heartbeats, for slow file systems)
  pollMs: number; // how often a worker waiting for another's claimed work looks again
}

export const CLAIM_TIMING: ClaimTiming = { heartbeatMs: 30_000, staleMs: 180_000, pollMs: 1_000 };

export function thisOwner(slurm?: ClaimOwner["slurm"]): ClaimOwner {
  return { host: hostname(), pid: process.pid, ...(slurm && { slurm }) };
}

// "host vm pid 123 (Slurm job 45_3)"
export function describeOwner(o: ClaimOwner): string {
  const job = o.slurm && (o.slurm.arrayJobId ? `${o.slurm.arrayJobId}_${o.slurm.arrayTaskId}` : o.slurm.jobId);
  return `host ${o.host} pid ${o.pid}${job ? ` (Slurm job ${job})` : ""}`;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // it exists, under another user
  }
}

// The tokens of the claims this process holds: a claim with this process's host and pid but another token was left
// by an earlier process that had the same pid (a container's processes often start with the same pids).
const HELD = new Set<string>();

// Why a claim is stale, or undefined when its owner looks alive.
export function staleness(c: ClaimRecord, timing: ClaimTiming, now = Date.now()): string | undefined {
  if (c.host === hostname() && c.pid === process.pid && !HELD.has(c.token)) return `an earlier process with this process's pid ${c.pid} left it`;
  if (c.host === hostname() && !processAlive(c.pid)) return `its process ${c.pid} on this host is gone`;
  const age = now - Date.parse(c.heartbeat);
  if (!(age <= timing.staleMs)) return `its heartbeat is ${Math.round(age / 1000)} s old (stale after ${timing.staleMs / 1000} s)`;
  return undefined;
}

export async function readClaim(path: string): Promise<ClaimRecord | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as ClaimRecord;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    // A file where a folder of its path should be (a cell's folder, cells/, the run folder): named, rather than
    // ENOTDIR's "not a directory" of the whole path.
    const why = code === "ENOTDIR" ? `${(await nearestExisting(dirname(path))).path} is a file, not a folder` : (e as Error).message;
    throw new Error(`claims: cannot read the claim ${path}: ${why}`, { cause: e });
  }
}

// A claim this process holds. Its heartbeat runs until release(); the timer does not keep the process alive.
export class Claim {
  private timer: ReturnType<typeof setInterval>;
  private lostReported = false;
  private released = false;
  private beating: Promise<unknown> = Promise.resolve(); // the heartbeat in flight, which release() waits for

  constructor(
    readonly path: string,
    private record: ClaimRecord,
    timing: ClaimTiming,
    private log: (line: string) => void,
  ) {
    HELD.add(record.token);
    this.timer = setInterval(() => void this.beat().catch((e: Error) => log(`warning: ${e.message}`)), timing.heartbeatMs);
    this.timer.unref();
  }

  // Refreshes the heartbeat while the claim is still this one's. Another worker takes a claim over only after this
  // one's heartbeats stopped for staleMs: then the work is done twice, to the same files (atomic writes of
  // deterministic results), and the log says so. One beat at a time, none after release(): a beat reads the file
  // and then rewrites it, and one in flight would put the file back after release() removed it.
  beat(): Promise<void> {
    const beat = this.beating.then(() => (this.released ? undefined : this.refresh()));
    this.beating = beat.catch(() => undefined);
    return beat;
  }

  private async refresh(): Promise<void> {
    const now = await readClaim(this.path);
    if (now?.token !== this.record.token) {
      if (!this.lostReported) this.log(`warning: ${this.path} was taken over by ${now ? describeOwner(now) : "nobody (removed)"}; this worker goes on with the work`);
      this.lostReported = true;
      return;
    }
    this.record = { ...this.record, heartbeat: new Date().toISOString() };
    await writeJsonAtomic(this.path, this.record);
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    this.released = true;
    await this.beating;
    // The file goes before the token leaves HELD: in between, a claim of this pid whose token is not held would
    // pass for one an earlier process with the same pid left, and be taken over as stale.
    if ((await readClaim(this.path))?.token === this.record.token) await unlink(this.path).catch(() => undefined);
    HELD.delete(this.record.token);
  }
}

export type ClaimAttempt = { claim: Claim } | { heldBy: ClaimRecord };

// Claims `path` for `owner`, taking over a stale claim; else says who holds it.
export async function tryClaim(path: string, owner: ClaimOwner, timing: ClaimTiming, log: (line: string) => void): Promise<ClaimAttempt> {
  const token = `${owner.host}-${owner.pid}-${randomBytes(6).toString("hex")}`;
  await makeFolder(dirname(path));
  for (let attempt = 0; ; attempt++) {
    const time = new Date().toISOString();
    const record: ClaimRecord = { ...owner, token, claimed: time, heartbeat: time };
    // Named as util/atomic.ts names its temporary files, so that a rerun removes one a kill left behind.
    const own = `${path}.tmp-${owner.pid}-${Date.now()}`;
    await writeFile(own, JSON.stringify(record, null, 2) + "\n");
    try {
      await link(own, path);
      return { claim: new Claim(path, record, timing, log) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`claims: cannot create the claim ${path}: ${(e as Error).message}`, { cause: e });
    } finally {
      await unlink(own).catch(() => undefined);
    }
    const held = await readClaim(path);
    if (held === undefined) continue; // released in between: try again
    const why = staleness(held, timing);
    if (why === undefined || attempt >= 3) return { heldBy: held };
    if (await takeOver(path, held, own)) log(`taking over the stale claim ${path} of ${describeOwner(held)}: ${why}`);
  }
}

// Removes the stale claim `held` from `path`; false when another worker removed or replaced it first.
async function takeOver(path: string, held: ClaimRecord, aside: string): Promise<boolean> {
  try {
    await rename(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
  const moved = await readClaim(aside);
  if (moved?.token !== held.token) {
    // A fresh claim made after the stale one was removed by another worker: put it back, unless yet another
    // worker claimed the cell meanwhile (then the moved one's owner learns at its next heartbeat).
    await link(aside, path).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    return false;
  }
  await unlink(aside);
  return true;
}

// Removes the claim at `path` of finished work whose owner is gone: one killed after marking its work done and before
// releasing the claim. Nobody would claim that work again, so nobody else would ever remove the file. A live
// owner's claim is left to it. The log names what was removed. A claim that cannot be read is left too, with a
// warning: it holds nothing once the work is finished, and whose it was cannot be told (claims are written whole,
// so it was damaged by hand); a claim on unfinished work that cannot be read stops the worker (tryClaim).
export async function removeStaleClaim(path: string, timing: ClaimTiming, log: (line: string) => void): Promise<void> {
  const held = await readClaim(path).catch((e: Error) => {
    log(`warning: ${e.message}; its work is finished, so the claim holds nothing and is left as it is (delete it)`);
    return undefined;
  });
  if (held === undefined || staleness(held, timing) === undefined) return;
  if (await takeOver(path, held, `${path}.tmp-${process.pid}-${Date.now()}`)) log(`removed the claim ${path} that ${describeOwner(held)} left on its finished work`);
}

// Claims `path`, waiting while a live worker holds it, until `done()` says that work is finished (by whoever held
// it): then resolves with undefined, having removed a claim its dead owner left on the finished work. The log names
// the holder once. A holder marks its work done before it releases the claim, so done() is asked again once the
// claim is ours: the holder may have finished and released between the last look and the claim, and its work must
// not run twice.
export async function claimOrWait(path: string, owner: ClaimOwner, timing: ClaimTiming, log: (line: string) => void, done: () => boolean): Promise<Claim | undefined> {
  let reported = false;
  while (!done()) {
    const attempt = await tryClaim(path, owner, timing, log);
    if ("claim" in attempt) {
      if (!done()) return attempt.claim;
      await attempt.claim.release();
      return undefined;
    }
    if (!reported) log(`waiting for ${describeOwner(attempt.heldBy)}, which holds ${path}`);
    reported = true;
    await sleep(timing.pollMs);
  }
  await removeStaleClaim(path, timing, log);
  return undefined;
}
