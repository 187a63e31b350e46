// The engine's process-wide state: the device, the buffer pools and the open command batch.
// `await initEngine()` once at start-up; everything after that encodes synchronously.
import { type DeviceOptions, type Gpu, getDevice, destroyDevice } from "./device.js";
import { BufferPool } from "./pool.js";
import { Batch } from "./batch.js";

export interface Runtime {
  gpu: Gpu;
  pool: BufferPool; // tensor storage
  readPool: BufferPool; // MAP_READ staging for read-backs
  batch: Batch;
}

let rt: Runtime | undefined;

export async function initEngine(opts: DeviceOptions = {}): Promise<Runtime> {
  if (rt) return rt;
  const gpu = await getDevice(opts);
  const pool = new BufferPool(gpu.device, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, "tensor");
  const readPool = new BufferPool(gpu.device, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, "readback");
  rt = { gpu, pool, readPool, batch: new Batch(gpu, pool) };
  return rt;
}

export function runtime(): Runtime {
  if (!rt) throw new Error("engine: not initialised; call `await initEngine()` first");
  return rt;
}

export async function shutdownEngine(): Promise<void> {
  if (!rt) return;
  await rt.batch.sync();
  rt = undefined;
  await destroyDevice();
}
