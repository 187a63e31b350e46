// Tracing which kernel shapes a piece of work runs: while a trace is open, the kernel families' resolver
// (kernels/registry.ts resolveVersion) reports every version look-up here, with the family, the shape key and the
// shape. The work runs in a dry run of the command batch (engine/batch.ts), so a traced training step costs host
// time only. `tune` times the shapes one traced training step looked up (train/trace.ts).
import { runtime } from "./runtime.js";

// One look-up: the family, its shape key, and the shape as the family's resolver took it.
export interface Resolution {
  family: string;
  key: string;
  shape: object;
}

// A shape and what ran it (a strategy, or a version of another family).
export interface TracedShape extends Resolution {
  uses: string[];
}

let open: Resolution[] | undefined;

export function tracing(): boolean {
  return open !== undefined;
}

export function noteResolution(r: Resolution): void {
  open?.push(r);
}

// Runs `run` in a dry run and returns its look-ups in order. Synchronous, like the dry run: nothing else can run
// inside the trace, and nothing of it outlives the call.
export function traceDry(run: () => void): Resolution[] {
  if (open) throw new Error("trace: expected no trace in progress, got a nested traceDry");
  const seen: Resolution[] = [];
  open = seen;
  try {
    runtime().batch.dryRun(run);
  } finally {
    open = undefined;
  }
  return seen;
}

// Adds `seen` to `shapes` (keyed "<family>/<key>"), each shape once, with `use` among its uses.
export function addUses(shapes: Map<string, TracedShape>, seen: Resolution[], use: string): void {
  for (const r of seen) {
    const id = `${r.family}/${r.key}`;
    const old = shapes.get(id);
    if (!old) shapes.set(id, { ...r, uses: [use] });
    else if (!old.uses.includes(use)) old.uses.push(use);
  }
}
