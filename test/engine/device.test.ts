// engine/device.ts: the llvmpipe thread count set before the driver loads (see its header).
import { describe, expect, it } from "vitest";
import { llvmpipeThreads } from "../../engine/device.js";

describe("llvmpipeThreads", () => {
  it("sets two threads per core, at most 16, unless the user chose a count", () => {
    expect(llvmpipeThreads(undefined, 2)).toBe("4");
    expect(llvmpipeThreads(undefined, 1)).toBe("2");
    expect(llvmpipeThreads(undefined, 64)).toBe("16");
    expect(llvmpipeThreads("3", 2)).toBeUndefined();
    expect(llvmpipeThreads("0", 2)).toBeUndefined(); // 0: llvmpipe's single-threaded mode
  });
});
