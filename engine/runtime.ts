// The engine's process-wide state: the settings, the device, the buffer pools, the pipeline cache and the open
// command batch. `await initEngine()` once at start-up; everything after that encodes synchronously.
import { type Gpu, getDevice } from "./device.js";
import { BufferPool } from "./pool.js";
import { DerivedCache } from "./derived.js";
import { Batch } from "./batch.js";
import { type Kernel, PipelineCache, type Spec } from "./pipeline.js";
import { type Settings, readSettings } from "./settings.js";

export interface Runtime {
  settings: Settings; // the environment, read once; tests may change fields and restore them
  gpu: Gpu;
  pool: BufferPool; // tensor storage
  readPool: BufferPool; // MAP_READ staging for read-backs
  pipelines: PipelineCache;
  batch: Batch;
  derived: DerivedCache; // tensors derived from buffers, kept until the buffer is written (engine/derived.ts)
}

export interface EngineOptions {
  backend?: string; // --backend, over PEFT_BACKEND
  adapter?: string; // --adapter, over PEFT_ADAPTER
  env?: NodeJS.ProcessEnv; // default: process.env
}

let rt: Runtime | undefined;

export async function initEngine(opts: EngineOptions = {}): Promise<Runtime> {
  if (rt) return rt;
  const settings = readSettings(opts.env);
  settings.backend = opts.backend ?? settings.backend;
  settings.adapter = opts.adapter ?? settings.adapter;
  const sources = { backend: opts.backend !== undefined ? "--backend" : "PEFT_BACKEND", adapter: opts.adapter !== undefined ? "--adapter" : "PEFT_ADAPTER" };
  const gpu = await getDevice({ backend: settings.backend, adapter: settings.adapter, llvmpipeThreads: settings.llvmpipeThreads, vulkanDataDirs: settings.vulkanDataDirs, deviceSelectOff: settings.deviceSelectOff, dawnToggles: settings.dawnToggles, sources });
  const pool = new BufferPool(gpu.device, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, "tensor", gpu.limits);
  const readPool = new BufferPool(gpu.device, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, "readback", gpu.limits);
  // DEBUG's logs go to stderr from here: the one place below cli/ that writes to the terminal.
  const debugLog = (line: string) => void process.stderr.write(`${line}\n`);
  const pipelines = new PipelineCache(gpu.device, settings.debug >= 2 ? debugLog : undefined);
  const derived = new DerivedCache();
  const batch = new Batch(gpu, pool, pipelines, derived, settings.wait, settings.debug >= 1 ? debugLog : undefined);
  rt = { settings, gpu, pool, readPool, pipelines, batch, derived };
  return rt;
}

export function runtime(): Runtime {
  if (!rt) throw new Error("engine: not initialised; call `await initEngine()` first");
  return rt;
}

// The compute pipeline of a kernel specialisation, compiled on first use (engine/pipeline.ts).
export function getKernel<S extends Spec>(name: string, spec: S, wgsl: (spec: S) => string): Kernel {
  return runtime().pipelines.get(name, spec, wgsl);
}

// Engine warnings (e.g. an unreadable tuning cache): to the sink the command line set, else kept in `warnings`
// for the caller to read.
export const warnings: string[] = [];
let warningSink: ((message: string) => void) | undefined;

export function setWarningSink(sink: (message: string) => void): void {
  warningSink = sink;
}

export function warn(message: string): void {
  if (warningSink) warningSink(message);
  else warnings.push(message);
}

// The most bytes one tensor may hold on this device: kernels bind whole tensors, so one storage binding, within one
// buffer. Commands check the sizes their flags ask for against it before they make anything that large.
export function maxTensorBytes(): number {
  const { limits } = runtime().gpu;
  return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
}

// The line every benchmark and the tuner print first.
export function deviceLine(): string {
  const { gpu } = runtime();
  return `device: ${gpu.adapterInfo.description} (${gpu.isCpu ? "CPU driver" : "GPU"}, backend ${gpu.backend})`;
}
