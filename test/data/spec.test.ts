// A data spec's transform: the settings it gives, and nothing for those it leaves to the transform's defaults.
import { describe, expect, it } from "vitest";
import { type DataSpec, transformFor } from "../../data/spec.js";
import { Transform } from "../../data/transforms.js";

describe("transformFor", () => {
  const spec: DataSpec = { dataset: "npy", split: "train", transform: "train" };

  it("gives the kind and size, and only the settings the spec sets", () => {
    expect(transformFor(spec, 28)).toEqual({ kind: "train", size: 28 });
    expect(Object.keys(transformFor(spec, 28))).toEqual(["kind", "size"]);
    const full: DataSpec = { ...spec, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], interpolation: "bicubic", scale: [0.2, 1] };
    expect(transformFor(full, 224)).toEqual({ kind: "train", size: 224, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], interpolation: "bicubic", scale: [0.2, 1] });
  });

  it("normalises with the spec's statistics", async () => {
    const pixel = { width: 1, height: 1, channels: 3 as const, data: Uint8Array.from([255, 0, 51]) }; // one RGB pixel
    const t = new Transform(transformFor({ ...spec, transform: "eval", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, 1));
    expect(Array.from(await t.tensor(pixel))).toEqual([1, -1, Math.fround(Math.fround(Math.fround(51 / 255) - 0.5) / 0.5)]);
  });
});
