// Several tensors read back in one transfer. Each read-back waits for the device, and a wait costs far more than
// its bytes where the CPU is shared (the driver's threads and the waiting poll compete for the cores): the
// per-block analysis reads dozens of small tensors per batch, so it joins them on the device first.
import type { Tensor } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { noGrad } from "../autograd/tape.js";

// The values of each tensor, in order (views into one array).
export async function readAll(tensors: Tensor[]): Promise<Float32Array[]> {
  if (tensors.length === 0) return [];
  const joined = noGrad(() => ops.concat(tensors.map((t) => ops.reshape(t, [t.size])), 0));
  const all = await joined.data();
  joined.dispose();
  let at = 0;
  return tensors.map((t) => all.subarray(at, (at += t.size)));
}
