// study/figures/run-comparison-curve.ts: two runs' forgetting curves against each other, drawn from a comparison
// written by hand: axes, legend, the dashed line at 0, an error bar per point with an interval, a pair without
// intervals and a pair the same in both runs named in the subtitle.
import { describe, expect, it } from "vitest";
import { renderSvg } from "../../../plot/render.js";
import { runComparisonCurveSpec } from "../../../study/figures/run-comparison-curve.js";
import type { CurvePair, RunComparison, RunPair } from "../../../study/run-comparison.js";

const steps = [0, 10, 30, 100];
const interval = (mean: number, half: number) => ({ mean, lo: mean - half, hi: mean + half, n: 2 });
const point = (step: number, knn: { mean: number; lo: number; hi: number; n: number }, seeds = [0, 1]): CurvePair => ({ step, a: 80, b: 80 + knn.mean, seeds, images: seeds.length > 1, banks: 1, knn });
const pair = (strategy: string, lrA: number, lrB: number, curve: CurvePair[]): RunPair => ({
  strategy,
  lrA,
  lrB,
  a: { transfer: 90, knn: 80 },
  b: { transfer: 90, knn: 80 },
  seeds: curve[0].seeds,
  images: true,
  banks: 1,
  transfer: interval(0, 1),
  knn: curve.at(-1)!.knn,
  curve,
});
const comparison: RunComparison = {
  a: { dir: "runs/a", name: "study-a" },
  b: { dir: "runs/b", name: "study-b" },
  changes: ["training.steps: 100 -> 300"],
  tableRates: true,
  curveSteps: steps,
  pairs: [
    pair("full", 0.01, 0.003, steps.map((step) => point(step, step === 0 ? interval(0, 0) : interval(-step / 10, 1)))),
    pair("linear", 1, 1, steps.map((step) => point(step, interval(0, 0)))),
    pair("lora-r4", 0.1, 0.1, steps.map((step) => point(step, { mean: step / 100, lo: NaN, hi: NaN, n: 1 }, [0]))),
  ],
  unpaired: [],
};
const bars = (svg: string) => (svg.match(/aria-roledescription="rule mark"/g) ?? []).length;

describe("compare's forgetting curves", () => {
  it("has labelled axes, a legend of the pairs drawn, a line each, an error bar per interval and the line at 0", async () => {
    const svg = await renderSvg(runComparisonCurveSpec(comparison), "curve");
    for (const text of [
      ">Along fine-tuning, B less A: study-b<",
      ">A: study-a<",
      ">each strategy at its table rate in each run<",
      ">error bars: 95% interval of the difference,<",
      ">Fine-tuning step (symmetric log scale)<",
      ">B - A source k-NN top-1 (points)<",
      ">full (lr 0.01 -&gt; 0.003)<",
      ">lora-r4 (lr 0.1)<",
      ">no difference<",
      ">no interval (one seed without answers):<",
      ">lora-r4 (lr 0.1)<",
      ">the same in both runs, not drawn: linear (lr 1)<",
    ]) {
      expect(svg).toContain(text);
    }
    expect(svg).not.toContain(">linear (lr 1)<");
    expect((svg.match(/aria-roledescription="line mark"/g) ?? []).length).toBe(2);
    expect((svg.match(/aria-roledescription="point"/g) ?? []).length).toBe(2 * steps.length);
    // Full's four intervals, and the dashed line at 0; none for LoRA's points of one seed.
    expect(bars(svg)).toBe(4 + 1);
    expect(svg).toMatch(/aria-label="[^"]*: 0; line: no difference"[^>]*stroke-dasharray="6,4"/);
    expect(svg).toMatch(/B - A source k-NN top-1 \(points\): −4; hi: −2; Strategy: full/); // full's bar at step 30
  });

  it("sets the pairs a few pixels apart at each step, so that their error bars do not hide each other", async () => {
    const svg = await renderSvg(runComparisonCurveSpec(comparison), "curve");
    // Each point's x in pixels by its pair and step (the tooltip's step: the data keep the steps themselves).
    const x = new Map([...svg.matchAll(/aria-label="[^"]*pair: ([^;]+) \(lr [^"]*step: (\d+);[^"]*" role="graphics-symbol" aria-roledescription="point" transform="translate\(([-\d.e]+),/g)].map((m) => [`${m[1]} ${m[2]}`, Number(m[3])]));
    for (const step of steps) expect(x.get(`lora-r4 ${step}`)! - x.get(`full ${step}`)!, `step ${step}`).toBeCloseTo(5, 6);
  });

  it("draws nothing but says why where every pair is the same in both runs, and refuses a comparison without curves", async () => {
    const same = { ...comparison, pairs: [comparison.pairs[1]] };
    const svg = await renderSvg(runComparisonCurveSpec(same), "curve");
    expect(svg).toContain(">every strategy's points the same in both runs<");
    expect(svg).toContain(">nothing to draw<");
    expect(() => runComparisonCurveSpec({ ...comparison, curveSteps: undefined })).toThrow("compare: expected a comparison with the runs' curves (curve), got one without");
  });
});
