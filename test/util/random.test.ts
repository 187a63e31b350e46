import { describe, expect, it } from "vitest";
import { Rng } from "../../util/random.js";

// Sequences recorded from engine/random.ts and data/random.ts before they were merged here: the default study's
// results and the tests' expectations depend on both seedings staying exactly as they were.
const u32 = (rng: Rng, n = 4) => Array.from({ length: n }, () => rng.nextU32());

describe("Rng", () => {
  it("one seed: splitmix32 expansion (initialisation, test data, benchmarks)", () => {
    expect(u32(new Rng(0))).toEqual([4205396811, 3543653536, 1222415357, 3047368389]);
    expect(u32(new Rng(42))).toEqual([1028872839, 2516511472, 400437680, 853279530]);
    // Taken mod 2^32.
    expect(u32(new Rng(-1))).toEqual([1413747962, 91561161, 3282502067, 2190738929]);
    expect(u32(new Rng(2 ** 32 + 5))).toEqual([2829050452, 2860774583, 3790325044, 3576815003]);
  });

  it("seed words: each mixed in (the data pipeline's streams), unlike one seed", () => {
    expect(u32(new Rng([1]))).toEqual([765083914, 3522575831, 2659256880, 856916328]);
    expect(u32(new Rng([1]))).not.toEqual(u32(new Rng(1)));
    expect(u32(new Rng([2, 7, 0, 5]))).toEqual([1947095820, 3732536153, 1656117077, 3605391704]);
    // The high word counts, so 2^32 + 1 is not folded onto 1.
    expect(u32(new Rng([2 ** 32 + 1]))).toEqual([1987999397, 222167491, 3714520269, 446172083]);
    expect(Array.from(new Rng([1, 5, 0]).permutation(10))).toEqual([1, 7, 0, 6, 5, 9, 4, 8, 3, 2]);
    expect(() => new Rng([1, 0.5])).toThrow("rng: expected integer seeds, got 0.5");
  });

  it("normal pairs and truncated normal", () => {
    const rng = new Rng(3);
    expect([rng.normal(), rng.normal(), rng.truncNormal(0, 0.02, -0.04, 0.04)]).toEqual([-1.0756723675905, -0.7854546001878278, -0.01008599917082244]);
    expect(() => rng.truncNormal(0, 1, 1, 1)).toThrow("truncNormal: expected a < b, got [1, 1]");
  });
});

describe("Rng.forPurpose", () => {
  it("gives each purpose of a seed its own stream, the same every time", () => {
    expect(u32(Rng.forPurpose("lora", 0))).toEqual([3711982159, 1197418633, 2707262996, 294235630]); // LoRA's A at seed 0
    expect(u32(Rng.forPurpose("lora", 0))).toEqual(u32(Rng.forPurpose("lora", 0)));
    expect(u32(Rng.forPurpose("lora", 0))).not.toEqual(u32(new Rng(0)));
    expect(u32(Rng.forPurpose("lora", 0))).not.toEqual(u32(Rng.forPurpose("head", 0)));
    expect(u32(Rng.forPurpose("lora", 0))).not.toEqual(u32(Rng.forPurpose("lora", 1)));
  });
});
