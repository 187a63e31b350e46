// Awaiting a GPU promise without spinning a core.
//
// dawn-node moves a pending promise (onSubmittedWorkDone, mapAsync) along by polling Dawn's events from a
// callback it queues with the global setImmediate, and re-queues on every tick until nothing is pending: a
// spin that takes a whole core for as long as the GPU works. On a 2-core CPU driver that core is what
// lavapipe's workers would have used: a 3200x192x576 matmul run back to back gained 6-10% when the spin stopped.
//
// awaitQuietly spins as dawn-node does for the first spinMs of the await (a short wait keeps its latency), then
// routes setImmediate through setTimeout(..., 1) until the promise settles, so the poll runs about once a
// millisecond: up to ~1 ms more latency on a long wait, a near-idle main thread meanwhile. Concurrent awaits
// share one patch (counted); the originals are back when the last one settles. Other code calling the global
// setImmediate in that window only runs a millisecond later. clearImmediate is wrapped on first use, and stays
// wrapped, so that a handle made in a window (a Timeout) is cleared as one even after the window closes.
let quietAwaits = 0;
let spinning: typeof setImmediate | undefined; // the global setImmediate while a window is open
let clearWrapped = false;
const throttled = new WeakSet<object>(); // handles made by the throttled setImmediate
export const quietPolls = { count: 0 }; // setImmediate calls routed through setTimeout since start-up

const throttledSetImmediate = ((fn: (...args: unknown[]) => void, ...args: unknown[]) => {
  quietPolls.count++;
  const handle = setTimeout(fn, 1, ...args);
  throttled.add(handle);
  return handle;
}) as unknown as typeof setImmediate;

function enter(): void {
  if (quietAwaits++ > 0) return;
  if (!clearWrapped) {
    const clear = globalThis.clearImmediate;
    globalThis.clearImmediate = ((handle: unknown) => {
      if (handle !== null && typeof handle === "object" && throttled.has(handle)) clearTimeout(handle as NodeJS.Timeout);
      else clear(handle as NodeJS.Immediate);
    }) as typeof clearImmediate;
    clearWrapped = true;
  }
  spinning = globalThis.setImmediate;
  globalThis.setImmediate = throttledSetImmediate;
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
