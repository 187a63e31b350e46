// study/figures/analysis-steps-turn.ts, drawn from the hand-made analysis (../analysis-fixture.ts, kept at steps 3, 10
// and 30; the embeddings turn by -0.5 on the source-domain images and +0.8 on the target-domain ones, the blocks by
// +1): a panel per strategy whose parts moved, a line per part and domain across the spans, each point its mean turn
// over the seeds, the target's dashed; linear probing named, not drawn; nothing to draw without two kept steps.
import { describe, expect, it } from "vitest";
import { stepTurnSpec } from "../../../study/figures/analysis-steps-turn.js";
import { renderSvg } from "../../../plot/render.js";
import { analysis } from "../analysis-fixture.js";

type Point = { strategy: string; part: string; images: string; span: string; x: number; seeds: number; value: number | null; lo: number; hi: number };

describe("stepTurnSpec", () => {
  const a = analysis([0, 1], [3, 10, 30]);

  it("draws a panel per strategy whose parts moved, a point per span, part and domain: the turn's mean over the seeds", async () => {
    const values = (stepTurnSpec(a) as unknown as { data: { values: Point[] } }).data.values;
    const [full] = a.strategies;
    expect(new Set(values.map((v) => v.strategy))).toEqual(new Set(["full"]));
    // 2 spans x 2 domains x 3 parts (the embeddings, blocks 0 and 1).
    expect(values).toHaveLength(2 * 2 * 3);
    for (const v of values) {
      const t = full.atSteps!.find((s) => v.span.endsWith(`→ ${s.step}`))!;
      const since = v.images === "source" ? t.outputSince! : t.targetOutputSince!;
      const part = v.part === "embeddings" ? since.embedding : since.blocks[Number(v.part.slice("block ".length))];
      expect(v.value, `${v.span} ${v.images} ${v.part}`).toBe(part.turn.mean);
      expect([v.lo, v.hi]).toEqual([part.turn.mean - part.turn.std, part.turn.mean + part.turn.std]);
    }
    expect(values.filter((v) => v.part === "embeddings").map((v) => [v.span, v.images, v.value])).toEqual([
      ["3 → 10", "source", -0.5],
      ["3 → 10", "target", 0.8],
      ["10 → 30", "source", -0.5],
      ["10 → 30", "target", 0.8],
    ]);
    // Each span's two domains side by side about its place on the axis.
    expect([...new Set(values.map((v) => v.x))].sort()).toEqual([-0.08, 0.08, 0.92, 1.08]);
    const svg = await renderSvg(stepTurnSpec(a), "analysis-steps-turn");
    for (const text of [">Which parts turn back in what they compute<", ">Fine-tuning steps (from → to)<", ">3 → 10<", ">10 → 30<", ">Turn (cosine with the change up to then)<", ">embeddings<", ">block 1<", ">Images<", ">target<", ">dashed: 10 target-domain images<", ">(fashion-mnist test)<", ">not drawn, no part moved before a span: linear<", ">mean over 2 seeds; error bars: ± 1 std over seeds<"]) {
      expect(svg).toContain(text);
    }
  });

  it("has nothing to draw without two kept steps, or where no part moved", async () => {
    const one = await renderSvg(stepTurnSpec(analysis([0, 1], [30])), "analysis-steps-turn");
    expect(one).toContain(">nothing to draw<");
    expect(one).toContain(">no row kept two steps with every seed (analysis.atSteps)<");
    const still = { ...a, strategies: a.strategies.filter((s) => s.strategy === "linear") };
    expect(await renderSvg(stepTurnSpec(still), "analysis-steps-turn")).toContain(">no part moved before a span: linear<");
  });
});
