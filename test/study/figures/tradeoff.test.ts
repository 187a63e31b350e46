// study/figures/tradeoff.ts: the trade-off across learning rates drawn from hand-made cell results (../fixture.ts:
// full and linear, each at 0.1 and 0.01, two seeds): which studies have it, a point per strategy x rate labelled
// with its rate, the rates joined per strategy, error bars with several seeds, diverged rates left out and named.
import { describe, expect, it } from "vitest";
import { OFF_AXES, hasTradeoff, tradeoffSpec } from "../../../study/figures/tradeoff.js";
import { LABEL_ANCHORS } from "../../../plot/labels.js";
import { NOTE_CHARS, ratePoints, studyTitle } from "../../../study/figures/parts.js";
import { renderSvg } from "../../../plot/render.js";
import { type StudyResults, summarize } from "../../../study/results.js";
import { baseline, cells, config, diverged, notes, results } from "../fixture.js";

const count = (svg: string, role: string) => (svg.match(new RegExp(`aria-roledescription="${role}"`, "g")) ?? []).length;

describe("the trade-off across learning rates", () => {
  it("has every strategy x rate as a point, mean and std over its seeds", () => {
    expect(ratePoints(results()).map((p) => [p.strategy, p.lr, p.seeds, p.transfer, p.knn])).toEqual([
      ["full", 0.1, 2, 91, 41],
      ["full", 0.01, 2, 86, 71],
      ["linear", 0.1, 2, 61, 80],
      ["linear", 0.01, 2, 51, 80],
    ]);
    expect(ratePoints(results())[0].transferStd).toBeCloseTo(Math.SQRT2, 12);
  });

  it("is drawn where a strategy has two rates or more, not where each has one", async () => {
    expect(hasTradeoff(results())).toBe(true);
    const oneRate = summarize({ ...config, learningRates: [0.1] }, baseline, cells.filter((c) => c.lr === 0.1), notes);
    expect(hasTradeoff(oneRate)).toBe(false);
    await expect(tradeoffSpec(oneRate)).rejects.toThrow("trade-off figure: expected a strategy at 2 or more learning rates in fashion-mnist-split, got full lr 0.1, linear lr 0.1");
  });

  it("has labelled axes, the legend, the reference line, a labelled point per strategy x rate joined per strategy, and error bars", async () => {
    const svg = await renderSvg(await tradeoffSpec(results()), "tradeoff");
    for (const text of [
      ">Forgetting vs. transfer across learning rates:<", // the study's name on a line of its own (studyTitle)
      ">fashion-mnist-split<",
      ">Transfer accuracy (%), linear head on the new domain<",
      ">Source k-NN top-1 (%), 20-NN<",
      ">Strategy<",
      ">original backbone (80.00%)<",
      ">joined in order of rate; labels: the rate,<",
      ">* where it is the table's (the selected rate)<",
      ">mean over 2 seeds; error bars: ± 1 std over seeds<",
    ]) {
      expect(svg).toContain(text);
    }
    expect(count(svg, "point")).toBe(4);
    expect(count(svg, "errorbar")).toBe(2 * 4); // both axes, every point
    // One line per strategy, in order of rate: full from 0.01 (86 / 71) to 0.1 (91 / 41), down and to the right.
    const lines = [...svg.matchAll(/aria-roledescription="line mark" d="M([\d.]+),([\d.]+)L([\d.]+),([\d.]+)"/g)].map((m) => m.slice(1).map(Number));
    expect(lines).toHaveLength(2);
    const [x0, y0, x1, y1] = lines[0];
    expect([x1 > x0, y1 > y0]).toEqual([true, true]);
    const labels = [...svg.matchAll(/aria-roledescription="text mark"[^>]*>([^<]*)</g)].map((m) => m[1]);
    expect(labels).toEqual(["0.1*", "0.01", "0.1*", "0.01"]); // the table's rows: each strategy at 0.1
    // Each label on its anchor (plot/labels.ts): here every point has room on the first, right of it and above.
    type Layer = { mark: { type: string; align?: string; baseline?: string }; data?: { values: unknown[] } };
    const text = ((await tradeoffSpec(results())) as unknown as { layer: Layer[] }).layer.filter((l) => l.mark.type === "text");
    expect(text.map((l) => [l.data!.values.length, l.mark.align, l.mark.baseline])).toEqual([[4, LABEL_ANCHORS[0].align, LABEL_ANCHORS[0].baseline]]);
  });

  it("places the labels of close points apart", async () => {
    // full at 0.1 and linear at 0.1 a tenth of a point apart: their labels must take different anchors.
    const close = cells.map((c) => (c.strategy === "linear" && c.lr === 0.1 ? { ...c, transferAccuracy: c.transferAccuracy + 30.1, knn: { ...c.knn, "20": { ...c.knn["20"], top1: c.knn["20"].top1 - 39 } } } : c));
    const r = summarize(config, baseline, close, notes);
    type Layer = { mark: { type: string; align?: string; baseline?: string }; data?: { values: { strategy: string; rate: string }[] } };
    const text = ((await tradeoffSpec(r)) as unknown as { layer: Layer[] }).layer.filter((l) => l.mark.type === "text");
    const anchorOf = (strategy: string, rate: string) => text.findIndex((l) => l.data!.values.some((v) => v.strategy === strategy && v.rate === rate));
    expect(anchorOf("full", "0.1*")).toBeGreaterThanOrEqual(0);
    expect(anchorOf("linear", "0.1*")).not.toBe(anchorOf("full", "0.1*"));
  });

  it("leaves out a rate with a diverged seed and names it", async () => {
    const r = summarize(config, baseline, [...cells.filter((c) => c.id !== "full_lr0.1_s1"), diverged("full", 0.1, 1, 12)], notes);
    expect(ratePoints(r).map((p) => `${p.strategy} ${p.lr}`)).toEqual(["full 0.01", "linear 0.1", "linear 0.01"]);
    const svg = await renderSvg(await tradeoffSpec(r), "tradeoff");
    expect(svg).toContain(">diverged, left out: full lr 0.1<");
    expect(count(svg, "point")).toBe(3);
  });

  it("names a rate without a finished cell yet, not one with some of its seeds", async () => {
    // A partial run: 0.3 not reached; full at 0.01 has one seed of two.
    const partial = cells.filter((c) => c.id !== "full_lr0.01_s1");
    const spec = await tradeoffSpec(summarize({ ...config, learningRates: [0.1, 0.01, 0.3] }, baseline, partial, notes));
    const text = (spec.title as { subtitle: string[] }).subtitle.join(" ");
    expect(text).toContain("no finished cell yet: full lr 0.3, linear lr 0.3");
    expect(text).not.toContain("lr 0.01,");
    expect(text).not.toContain("diverged");
    expect(((await tradeoffSpec(results())).title as { subtitle: string[] }).subtitle.join(" ")).not.toContain("no finished cell");
  });

  it("names a rate far below every selected one in transfer accuracy, with its accuracies, rather than drawing it", async () => {
    // The table's least row is linear at 0.1 (61 %); linear at 0.01 lowered to 41 % lies 20 points under it.
    const low = cells.map((c) => (c.strategy === "linear" && c.lr === 0.01 ? { ...c, transferAccuracy: c.transferAccuracy - 10 } : c));
    const r = summarize(config, baseline, low, notes);
    expect(61 - OFF_AXES).toBeGreaterThan(41);
    const svg = await renderSvg(await tradeoffSpec(r), "tradeoff");
    expect(svg).toContain(">off the axes, transfer / source k-NN:<");
    expect(svg).toContain(">linear lr 0.01 (41.0 / 80.0 %)<");
    expect(count(svg, "point")).toBe(3);
    expect(await renderSvg(await tradeoffSpec(results()), "tradeoff")).not.toContain("off the axes"); // 51 %: 10 points under, drawn
  });
  it("stars the rate the table shows, whichever rate was selected: by the mean, or on transfer.val", async () => {
    // The text layers: the labels, one per point.
    type Layer = { mark: { type: string }; data?: { values: { strategy: string; rate: string }[] } };
    const labels = async (r: StudyResults) => ((await tradeoffSpec(r)) as unknown as { layer: Layer[] }).layer.filter((l) => l.mark.type === "text").flatMap((l) => l.data!.values);
    const starred = async (r: StudyResults) => (await labels(r)).filter((v) => v.rate.endsWith("*")).map((v) => `${v.strategy} ${v.rate}`).sort();
    const byMean = summarize({ ...config, selectBy: "mean" }, baseline, cells, notes); // full at 0.01, linear at 0.1
    expect(byMean.table.map((row) => row.lr)).toEqual([0.01, 0.1]);
    expect(await starred(byMean)).toEqual(["full 0.01*", "linear 0.1*"]);
    // On val: full's val accuracy favours 0.01, though 0.1 has the better test accuracy.
    const val = cells.map((c) => ({ ...c, valAccuracy: c.lr === 0.01 ? 95 : 90, finalValAccuracy: 80 }));
    const onVal = summarize({ ...config, transfer: { ...config.transfer, val: { fraction: 0.1 } } }, baseline, val, notes);
    expect(onVal.table.map((row) => row.lr)).toEqual([0.01, 0.01]);
    expect(await starred(onVal)).toEqual(["full 0.01*", "linear 0.01*"]);
  });

  it("puts a long study name on a line of its own rather than widening the figure", async () => {
    const width = async (svg: Promise<string>) => Number(/^<svg [^>]*width="(\d+)"/.exec(await svg)![1]);
    const named = async (name: string) => renderSvg(await tradeoffSpec({ ...results(), name }), "tradeoff");
    expect(await width(named("fashion-mnist-split-long-finetune-rates"))).toBe(await width(named("fashion-mnist-split")));
    expect(studyTitle("Forgetting vs. transfer", "fashion-mnist-split")).toBe("Forgetting vs. transfer: fashion-mnist-split");
    expect(studyTitle("Block Expansion: new blocks x learning rate", "mini", ",")).toBe("Block Expansion: new blocks x learning rate, mini");
    expect(studyTitle("Forgetting vs. transfer", "fashion-mnist-split-long-finetune-rates")).toEqual(["Forgetting vs. transfer:", "fashion-mnist-split-long-finetune-rates"]);
  });

  it("wraps a long list of rates left out over short subtitle lines rather than widening the figure", async () => {
    // Linear at three more rates, each far below the table (20 %), and full diverged at three more.
    const rates = [0.1, 0.01, 0.001, 0.0001, 0.00001];
    const extra = (lr: number) => cells.filter((c) => c.lr === 0.01).map((c) => ({ ...c, id: c.id.replace("lr0.01", `lr${lr}`), lr, transferAccuracy: 20 }));
    const outcomes = [...cells, ...extra(0.001).filter((c) => c.strategy === "linear"), ...extra(0.0001), ...extra(0.00001)].filter((c) => c.strategy === "linear" || c.lr >= 0.01);
    const lost = [0.001, 0.0001, 0.00001].map((lr) => diverged("full", lr, 0, 4));
    const spec = await tradeoffSpec(summarize({ ...config, learningRates: rates }, baseline, [...outcomes, ...lost], notes));
    const subtitle = spec.title as { subtitle: string[] };
    expect(subtitle.subtitle.filter((line) => line.length > NOTE_CHARS)).toEqual([]);
    const width = async (svg: Promise<string>) => /^<svg [^>]*width="(\d+)"/.exec(await svg)![1];
    expect(await width(renderSvg(spec, "tradeoff"))).toBe(await width(renderSvg(await tradeoffSpec(results()), "tradeoff")));
    const text = subtitle.subtitle.join(" ");
    expect(text).toContain("diverged, left out: full lr 0.001, full lr 0.0001, full lr 0.00001");
    expect(text).toContain("off the axes, transfer / source k-NN: linear lr 0.001 (20.0 / 80.0 %), linear lr 0.0001 (20.0 / 80.0 %), linear lr 0.00001 (20.0 / 80.0 %)");
  });
});
