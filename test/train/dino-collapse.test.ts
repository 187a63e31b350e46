// detectCollapse: both forms after a sustained window and not before, healthy sharp-but-spread outputs left alone,
// the check off at window 0, and checked settings.
import { describe, expect, it } from "vitest";
import { COLLAPSE_DEFAULTS, type CollapseRow, checkCollapseSettings, detectCollapse } from "../../train/dino-collapse.js";

const K = 100;
const LOG_K = Math.log(K);
const rows = (n: number, entropy: number, marginalEntropy: number, from = 1): CollapseRow[] =>
  Array.from({ length: n }, (_, i) => ({ step: from + i, entropy, marginalEntropy, kl: 1e-4 }));
const S = { ...COLLAPSE_DEFAULTS, window: 5 };

describe("detectCollapse", () => {
  it("names a uniform collapse once it lasts the window", () => {
    expect(detectCollapse(rows(4, 0.995 * LOG_K, LOG_K), K, S)).toBeUndefined();
    const e = detectCollapse(rows(5, 0.995 * LOG_K, LOG_K, 11), K, S)!;
    expect(e.kind).toBe("uniform");
    expect([e.fromStep, e.toStep]).toEqual([11, 15]);
    expect(e.message).toContain("from step 11 to 15 (now 4.5821 nats, 99.5% of log K = 4.605");
  });

  it("names a constant collapse from the entropy of the mean output", () => {
    const e = detectCollapse([...rows(3, 2, 3), ...rows(5, 0.01, 0.02, 4)], K, S)!;
    expect(e.kind).toBe("constant");
    expect(e.message).toMatch(/^dino: the teacher collapsed to one output for every image: .* from step 4 to 8/);
  });

  it("leaves healthy runs and interrupted windows alone", () => {
    expect(detectCollapse(rows(20, 0.2, 0.9 * LOG_K), K, S)).toBeUndefined(); // sharp per image, spread over prototypes
    expect(detectCollapse([...rows(4, LOG_K, LOG_K), ...rows(1, 2, 3, 5), ...rows(4, LOG_K, LOG_K, 6)], K, S)).toBeUndefined();
    expect(detectCollapse(rows(100, LOG_K, LOG_K), K, { ...S, window: 0 })).toBeUndefined();
  });

  it("checks its settings", () => {
    expect(() => checkCollapseSettings({ ...S, window: -1 }, "collapse")).toThrow("collapse.window: expected an integer >= 0, got -1");
    expect(() => checkCollapseSettings({ ...S, uniform: 1.5 }, "collapse")).toThrow("collapse.uniform: expected a fraction in (0, 1], got 1.5");
    expect(() => checkCollapseSettings({ ...S, constant: 0.999 }, "collapse")).toThrow("collapse.constant: expected a fraction in [0, uniform), got 0.999");
  });
});
