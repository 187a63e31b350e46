// util/differences.ts: two JSON values compared key by key.
import { describe, expect, it } from "vitest";
import { differences } from "../../util/differences.js";

describe("differences", () => {
  it("names every differing value by its key path, absent keys as absent, arrays whole", () => {
    const a = { training: { steps: 60, lr: 0.1 }, seeds: [0, 1], name: "a" };
    const b = { training: { steps: 400, lr: 0.1, clipNorm: 1 }, seeds: [0, 2], name: "a" };
    expect(differences(a, b).map((d) => d.text)).toEqual(["training.steps: 60 -> 400", "training.clipNorm: absent -> 1", "seeds: [0,1] -> [0,2]"]);
    expect(differences(a, a)).toEqual([]);
  });

  it("shows values that are not objects themselves, with an empty path", () => {
    expect(differences(3, "3")).toEqual([{ path: "", text: '3 -> "3"' }]);
    expect(differences({ x: 1 }, [1])).toEqual([{ path: "", text: '{"x":1} -> [1]' }]);
  });
});
