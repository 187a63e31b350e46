// Awaiting a GPU promise without spinning a core.
//
// dawn-node moves a pending promise (onSubmittedWorkDone, mapAsync) along by polling Dawn's events from a
// callback it queues with the global setImmediate, and re-queues on every tick until nothing is pending: a
// spin that takes a whole core for as long as the GPU works. On a 2-core CPU driver that core is what
// lavapipe's workers would have used: a 3200x192x576 matmul run back to back gained 6-10% when the spin stopped.
//
// awaitQuietly spins as dawn-node does for the first spinMs of the await (a short wait keeps its latency), then
// makes every setImmediate callback nap POLL_MS first, asleep in Atomics.wait (Node lets the main thread block),
// until the promise settles: the poll runs about every POLL_MS, the main thread near idle meanwhile. A timer would
// not do: Node's setTimeout waits at least 1 ms, and the poll so noticed finished work ~0.5 ms late on average,
// 5-7% of a 10 ms inference of the default model (docs/ENGINE.md, Waiting). Concurrent awaits share one patch
// (counted); the original is back when the last one settles. Other code calling the global setImmediate in that
// window runs POLL_MS later, and the event loop is blocked for those naps (timers and I/O wait at most POLL_MS).
let quietAwaits = 0;
let spinning: typeof setImmediate | undefined; // the global setImmediate while a window is open
export const quietPolls = { count: 0 }; // setImmediate calls that napped first, since start-up

// The nap between polls. At 0.25 ms a replayed inference of the default model (batch 32, ~9 ms on lavapipe) ran
// 3504-3572 images/s against 3263-3305 with 1 ms timers; 0.1 ms was no faster, and its polls cost more.
const POLL_MS = 0.25;
const napCell = new Int32Array(new SharedArrayBuffer(4)); // never notified: Atomics.wait only times out

// Returns a real Immediate, so that clearImmediate cancels it as usual.
const nappingSetImmediate = ((fn: (...args: unknown[]) => void, ...args: unknown[]) => {
  quietPolls.count++;
  return spinning!(() => {
    Atomics.wait(napCell, 0, 0, POLL_MS);
    fn(...args);
  });
}) as unknown as typeof setImmediate;

function enter(): void {
  if (quietAwaits++ > 0) return;
  spinning = globalThis.setImmediate;
  globalThis.setImmediate = nappingSetImmediate;
}

function leave(): void {
  if (--quietAwaits > 0 || !spinning) return;
  globalThis.setImmediate = spinning;
  spinning = undefined;
}

// Calls `start` (which creates the GPU promise) and resolves or rejects with it, spinning for at most spinMs.
export async function awaitQuietly<T>(start: () => Promise<T>, spinMs = 1): Promise<T> {
  const promise = start();
  let quiet = false;
  const timer = setTimeout(() => {
    quiet = true;
    enter();
  }, spinMs);
  try {
    return await promise;
  } finally {
    clearTimeout(timer);
    if (quiet) leave();
  }
}
