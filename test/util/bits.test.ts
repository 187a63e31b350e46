// util/bits.ts: yes/no values packed into base64 and back, small whole numbers a byte each, and text that is not
// such a packing refused.
import { describe, expect, it } from "vitest";
import { packBits, packBytes, unpackBits, unpackBytes } from "../../util/bits.js";

describe("util/bits", () => {
  it("packs the first value into the lowest bit, eight to a byte, and unpacks every length back", () => {
    expect(packBits([1, 0, 0, 0, 0, 0, 0, 0, 1])).toBe(Buffer.from([1, 1]).toString("base64"));
    expect(packBits([false, true, true])).toBe(Buffer.from([6]).toString("base64"));
    expect(packBits([])).toBe("");
    for (const n of [0, 1, 7, 8, 9, 1000, 1003]) {
      const values = Uint8Array.from({ length: n }, (_, i) => (i * 7919) % 3 === 0 ? 1 : 0);
      expect(unpackBits(packBits(values), n), `${n} values`).toEqual(values);
    }
  });

  it("refuses text of another length, other characters, or bits set past the last value", () => {
    const text = packBits([1, 0, 1]);
    expect(unpackBits(text, 9)).toBeUndefined(); // two bytes expected
    expect(unpackBits(text, 2)).toBeUndefined(); // bit 2 set past 2 values
    expect(unpackBits("not base64!", 3)).toBeUndefined();
    expect(unpackBits(text, -1)).toBeUndefined();
    expect(unpackBits(text, 2.5)).toBeUndefined();
    expect(unpackBits(text, 3)).toEqual(Uint8Array.from([1, 0, 1]));
  });

  it("packs small whole numbers a byte each and unpacks them back; refuses text of another length or not base64", () => {
    expect(packBytes([0, 3, 255])).toBe(Buffer.from([0, 3, 255]).toString("base64"));
    for (const n of [0, 1, 2, 3, 1000]) {
      const values = Uint8Array.from({ length: n }, (_, i) => (i * 7919) % 20);
      expect(unpackBytes(packBytes(values), n), `${n} values`).toEqual(values);
    }
    const text = packBytes([4, 1, 9]);
    expect(unpackBytes(text, 4)).toBeUndefined();
    expect(unpackBytes(text, 2)).toBeUndefined();
    expect(unpackBytes("not base64!", 3)).toBeUndefined();
    expect(unpackBytes(text, -1)).toBeUndefined();
    expect(unpackBytes(packBytes([4, 1]).replace(/=+$/, ""), 2)).toBeUndefined(); // unpadded: not packBytes' text
  });
});
