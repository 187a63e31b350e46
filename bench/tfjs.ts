// TensorFlow.js's WebGPU backend on the engine's own Dawn device, as a yardstick for `bench matmul`.
// Loaded only through loadTfjs() (dynamic imports), so commands that do not compare never evaluate TF.js.
//
// TF.js normally finds its device through navigator.gpu.requestAdapter(); here the backend is constructed on
// runtime().gpu.device instead, so both engines share one adapter, one queue and one shader cache. Its
// constructor only checks that navigator.gpu exists (Node has no navigator, or one without gpu), so we give it
// a stand-in that refuses to open a second adapter: TF.js never calls it when it is handed a device.
//
// Timing mirrors ours (bench/matmul.ts): warm-up (pipeline compile, upload), then timed runs of `inner` products,
// each run ending with the queue idle, taken in turns with our versions' runs. TF.js batches dispatches in its own
// command encoder, so a run first submits that encoder, then awaits onSubmittedWorkDone. dawn-node burns a core
// while a GPU promise is pending (on a 2-core CPU driver that is half the "GPU"), so, like engine/batch.ts, we
// sleep for most of the expected time first (80% of the fastest run so far) and await the rest quietly
// (engine/quiet-await.ts): both engines wait the same way, and the comparison is of their kernels.
import type { Gpu } from "../engine/device.js";
import { awaitQuietly } from "../engine/quiet-await.js";
import type { TimedCase } from "./harness.js";

export interface TfjsMatmul {
  version: string; // of @tensorflow/tfjs-core (the backend is released with it)
  // y = a · b for a (M, K), b (K, N) row-major; resolves with y (M, N). For validation.
  product(a: Float32Array, b: Float32Array, M: number, K: number, N: number): Promise<Float32Array>;
  // Random (M, K) and (K, N) operands, warmed up; each once() is a timed run of `inner` products and resolves
  // with wall milliseconds per product. dispose() frees the operands.
  prepare(M: number, K: number, N: number, inner: number): Promise<TimedCase>;
}

// Resolves with the adapter, or rejects with why TF.js could not start on `gpu` (the caller prints it).
export async function loadTfjs(gpu: Gpu): Promise<TfjsMatmul> {
  const nav = ((globalThis as { navigator?: { gpu?: unknown } }).navigator ??= {});
  nav.gpu ??= {
    requestAdapter: () => Promise.reject(new Error("tfjs: navigator.gpu is a stand-in; use the engine's device")),
  };
  const tf = await import("@tensorflow/tfjs-core");
  const webgpu = await import("@tensorflow/tfjs-backend-webgpu");
  // Importing registers the kernels under "webgpu" and, since navigator.gpu now exists, a factory that would open
  // its own adapter through it: replace that with a backend on our device (the kernels stay; they go by name).
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  const backend = new webgpu.WebGPUBackend(gpu.device, gpu.adapterInfo as unknown as GPUAdapterInfo);
  tf.registerBackend("webgpu", () => backend);
  if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs: setBackend(\"webgpu\") failed");

  const idle = async (estimateMs: number) => {
    backend.ensureCommandEncoderReady(); // submitQueue() assumes an encoder with its compute pass ended
    backend.endComputePassEncoder();
    backend.submitQueue();
    if (estimateMs > 2) await new Promise((resolve) => setTimeout(resolve, 0.8 * estimateMs));
    await awaitQuietly(() => gpu.device.queue.onSubmittedWorkDone());
  };

  return {
    version: tf.version_core,
    async product(a, b, M, K, N) {
      const [at, bt] = [tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N])];
      const y = tf.matMul(at, bt);
      const data = (await y.data()) as Float32Array;
      tf.dispose([at, bt, y]);
      return data;
    },
    async prepare(M, K, N, inner) {
      // Values do not matter for speed; uniform in [-1, 1) like ours.
      const a = tf.randomUniform([M, K], -1, 1, "float32", 3);
      const b = tf.randomUniform([K, N], -1, 1, "float32", 4);
      const run = () => {
        for (let i = 0; i < inner; i++) tf.matMul(a, b).dispose();
      };
      // Two warm-ups: the first compiles and uploads, the second (awaited without sleeping) is the first estimate.
      let best = Infinity;
      try {
        run();
        await idle(0);
        const t0 = performance.now();
        run();
        await idle(0);
        best = performance.now() - t0;
      } catch (e) {
        tf.dispose([a, b]);
        throw e;
      }
      return {
        async once() {
          const t0 = performance.now();
          run();
          await idle(best);
          const elapsed = performance.now() - t0;
          best = Math.min(best, elapsed);
          return elapsed / inner;
        },
        dispose: () => tf.dispose([a, b]),
      };
    },
  };
}
