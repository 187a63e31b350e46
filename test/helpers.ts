// Shared test helpers: the engine per test file, tolerance comparison with useful failure messages,
// finite differences in float64, and seeded random inputs.
import { type TestContext, afterAll, afterEach, beforeAll, beforeEach, expect } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initEngine, runtime } from "../engine/runtime.js";
import type { RecordedCommand, RecordedDispatch } from "../engine/batch.js";
import type { Settings } from "../engine/settings.js";
import { reloadTuneCache } from "../engine/tuning.js";
import { Rng } from "../util/random.js";
import type { F32Tensor } from "../vit/safetensors.js";

// Opens the device once for the calling test file.
export function useEngine(): void {
  beforeAll(async () => {
    await initEngine();
  });
}

// Skips the test where the adapter lacks shader-f16 (Dawn offers none on NVIDIA's Vulkan driver), saying so.
export function skipWithoutF16(ctx: TestContext): void {
  const { gpu } = runtime();
  ctx.skip(!gpu.features.has("shader-f16"), `needs shader-f16, which ${gpu.adapterInfo.description} lacks`);
}

// Runs `run` (synchronous) with the batch recording; returns its result and the kernels it dispatched, in order.
export function recordKernels<T>(run: () => T): { result: T; kernels: RecordedDispatch["kernel"][] } {
  const { batch } = runtime();
  batch.startRecording();
  let recorded: RecordedCommand[];
  let result: T;
  try {
    result = run();
  } finally {
    recorded = batch.stopRecording();
  }
  return { result, kernels: recorded.flatMap((c) => (c.kind === "dispatch" ? [c.kernel] : [])) };
}

// Runs `run` as on an adapter whose subgroups may be narrower than 8 lanes (4 to 8), so that the CPU kernels load in
// every lane what they otherwise load once and hand round by subgroup operations (kernels/registry.ts laneBroadcast).
export async function withoutLaneBroadcast(run: () => Promise<void>): Promise<void> {
  const { gpu } = runtime();
  const saved = gpu.subgroupMinSize;
  gpu.subgroupMinSize = 4;
  try {
    await run();
  } finally {
    gpu.subgroupMinSize = saved;
  }
}

// Runs `run` with the adapter taken for a GPU (gpu.isCpu false), so that the kernels plan as on one (split-K, chunked
// int8 slices, constant-bound slabs) while they run on this adapter.
export async function asGpu(run: () => Promise<void>): Promise<void> {
  const { gpu } = runtime();
  const saved = gpu.isCpu;
  gpu.isCpu = false;
  try {
    await run();
  } finally {
    gpu.isCpu = saved;
  }
}

// An empty tuning cache in a temporary folder, with tuning on and no forced version (either would hide the cache
// from the version choosers), before each test or once for the file; the settings and the cache are restored after.
// Returns the folder's path, for the test that looks into it.
export function useEmptyTuneCache(scope: "each" | "file" = "each"): () => string {
  let saved: Settings;
  let dir = "";
  const setUp = () => {
    const { settings } = runtime();
    saved = structuredClone(settings);
    dir = mkdtempSync(join(tmpdir(), "tune-cache-"));
    Object.assign(settings, { tuneCacheDir: dir, tune: true, versions: {} });
    reloadTuneCache();
  };
  const tearDown = () => {
    Object.assign(runtime().settings, saved);
    runtime().batch.log = undefined;
    rmSync(dir, { recursive: true, force: true });
    reloadTuneCache();
  };
  if (scope === "each") {
    beforeEach(setUp);
    afterEach(tearDown);
  } else {
    beforeAll(setUp);
    afterAll(tearDown);
  }
  return () => dir;
}

export interface Tolerance {
  atol: number;
  rtol: number;
}

// Passes when |got - want| <= atol + rtol*|want| everywhere; otherwise throws naming the tensor, the first bad
// index, expected, got and how many elements mismatch.
export function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): void {
  if (got.length !== want.length) throw new Error(`${name}: expected ${want.length} values, got ${got.length}`);
  let bad = 0;
  let first = -1;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const diff = Math.abs(got[i] - want[i]);
    const ok = diff <= tol.atol + tol.rtol * Math.abs(want[i]);
    if (!ok || Number.isNaN(got[i]) !== Number.isNaN(want[i])) {
      bad++;
      if (first < 0) first = i;
      worst = Math.max(worst, diff);
    }
  }
  if (bad > 0) {
    throw new Error(
      `${name}: ${bad} of ${want.length} elements mismatch (atol ${tol.atol}, rtol ${tol.rtol}); ` +
        `first at index ${first}: expected ${want[first]}, got ${got[first]}; largest difference ${worst}`,
    );
  }
}

// Passes when every element is within rel x the reference's largest magnitude ("relative to its scale"), the
// comparison with a PyTorch fixture, where an element near 0 carries the rounding of its larger neighbours;
// otherwise throws with the worst element.
export function expectScaled(name: string, got: ArrayLike<number>, want: F32Tensor, rel: number): void {
  expect(got.length, `${name} length`).toBe(want.data.length);
  const scale = want.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
  let worst = 0;
  let at = -1;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want.data[i]);
    if (!(d <= worst)) [worst, at] = [d, i];
  }
  if (!(worst <= rel * scale)) {
    throw new Error(`${name}: max |diff| ${worst} at ${at} (expected ${want.data[at]}, got ${got[at]}) exceeds ${rel} x scale ${scale}`);
  }
}

// Central finite differences of a scalar function f at x, in float64.
export function numericGrad(f: (x: Float64Array) => number, x: ArrayLike<number>, eps = 1e-4): Float64Array {
  const xs = Float64Array.from(x);
  const g = new Float64Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const keep = xs[i];
    xs[i] = keep + eps;
    const fp = f(xs);
    xs[i] = keep - eps;
    const fm = f(xs);
    xs[i] = keep;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

export function randn(n: number, seed: number, std = 1): Float32Array {
  const rng = new Rng(seed);
  return rng.fill(n, () => rng.normal(0, std));
}

export function randu(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const rng = new Rng(seed);
  return rng.fill(n, () => rng.uniform(lo, hi));
}

// Dot product in float64, for turning a tensor function into a scalar loss sum(f(x) * w).
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
