// engine/device.ts: the llvmpipe thread count set before the driver loads (see its header), and closeDevice, the
// exit's teardown (this file opens the device only for it).
import { describe, expect, it } from "vitest";
import { closeDevice, llvmpipeThreads } from "../../engine/device.js";
import { initEngine } from "../../engine/runtime.js";
import { Tensor } from "../../engine/tensor.js";
import { matmulForward } from "../../kernels/matmul.js";

describe("llvmpipeThreads", () => {
  it("sets two threads per core, at most 16, unless the user chose a count", () => {
    expect(llvmpipeThreads(undefined, 2)).toBe("4");
    expect(llvmpipeThreads(undefined, 1)).toBe("2");
    expect(llvmpipeThreads(undefined, 64)).toBe("16");
    expect(llvmpipeThreads("3", 2)).toBeUndefined();
    expect(llvmpipeThreads("0", 2)).toBeUndefined(); // 0: llvmpipe's single-threaded mode
  });
});

describe("closeDevice", () => {
  it("destroys the open device with work in flight, and then does nothing", async () => {
    const { gpu, batch } = await initEngine();
    const a = Tensor.fromArray(new Float32Array(512 * 512).fill(1), [512, 512]);
    matmulForward(a, a);
    batch.submit(); // not waited for
    closeDevice();
    expect((await gpu.device.lost).reason).toBe("destroyed");
    expect(() => closeDevice()).not.toThrow();
  });
});
