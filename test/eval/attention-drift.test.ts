// The Jensen-Shannon divergence of attention distributions, in bits: 0 for equal ones, 1 for disjoint ones,
// symmetric, a hand-computed value in between; and its mean per head over images.
import { describe, expect, it } from "vitest";
import { AttentionDrift, jensenShannon } from "../../eval/attention-drift.js";

describe("jensenShannon", () => {
  it("is 0 for equal distributions, 1 bit for disjoint ones, symmetric", () => {
    expect(jensenShannon([0.2, 0.3, 0.5], [0.2, 0.3, 0.5])).toBe(0);
    expect(jensenShannon([0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5])).toBeCloseTo(1, 12);
    expect(jensenShannon([0.1, 0.9], [0.6, 0.4])).toBeCloseTo(jensenShannon([0.6, 0.4], [0.1, 0.9]), 14);
  });

  it("matches a hand computation: P = (1, 0), Q = (½, ½)", () => {
    // M = (¾, ¼): KL(P‖M) = log2(4/3), KL(Q‖M) = ½ log2(2/3) + ½ log2(2).
    const want = 0.5 * Math.log2(4 / 3) + 0.5 * (0.5 * Math.log2(2 / 3) + 0.5);
    expect(jensenShannon([1, 0], [0.5, 0.5])).toBeCloseTo(want, 14);
  });

  it("names distributions of different lengths", () => {
    expect(() => jensenShannon([1], [0.5, 0.5])).toThrow("attention drift: expected distributions of the same length, got 1 and 2");
  });
});

describe("AttentionDrift", () => {
  it("averages each head over the images of every batch", () => {
    const d = new AttentionDrift(2);
    // (B = 1, H = 2, T = 2): head 0 equal, head 1 disjoint.
    d.add(Float32Array.of(0.5, 0.5, 1, 0), Float32Array.of(0.5, 0.5, 0, 1), 1);
    // (B = 1): head 0 disjoint, head 1 equal.
    d.add(Float32Array.of(1, 0, 0.3, 0.7), Float32Array.of(0, 1, 0.3, 0.7), 1);
    const [h0, h1] = d.value();
    expect(h0).toBeCloseTo(0.5, 6);
    expect(h1).toBeCloseTo(0.5, 6);
    expect(() => new AttentionDrift(2).value()).toThrow("attention drift: expected at least one image, got none");
    expect(() => d.add(new Float32Array(6), new Float32Array(6), 2)).toThrow("attention drift: expected two (2, 2, T) arrays");
  });
});
