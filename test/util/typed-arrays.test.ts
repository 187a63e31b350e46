// util/typed-arrays.ts: parts end to end, in order, in one array of the asked kind; none gives an empty one.
import { describe, expect, it } from "vitest";
import { joined } from "../../util/typed-arrays.js";

describe("joined", () => {
  it("puts the parts end to end", () => {
    const f = joined([Float32Array.of(1.5, 2), new Float32Array(0), Float32Array.of(-3)], Float32Array);
    expect(f).toBeInstanceOf(Float32Array);
    expect(Array.from(f)).toEqual([1.5, 2, -3]);
    const i = joined([Int32Array.of(7), Int32Array.of(-1, 2147483647)], Int32Array);
    expect(i).toBeInstanceOf(Int32Array);
    expect(Array.from(i)).toEqual([7, -1, 2147483647]);
    expect(Array.from(joined([Uint8Array.of(255), Uint8Array.of(0, 1)], Uint8Array))).toEqual([255, 0, 1]);
    expect(joined([], Int32Array).length).toBe(0);
  });
});
