// What the study's figures share: one colour and one shape per strategy, in the table's order, so that a strategy
// looks the same in every figure; the subtitle's notes (on seeds, and lists wrapped to short lines); the source k-NN
// axis; the original backbone's k-NN accuracy as a dashed reference line with a legend entry of its own; each
// strategy x rate over its seeds, for the figures across rates. Each takes what it reads of a study's results (a
// Panel), so that a figure across several run folders (study/figures/panels.ts) draws from one run's values as from
// another's.
import { strategyName } from "../../peft/strategy.js";
import type { FigureLayer, FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG, REFERENCE_DASH } from "../../plot/style.js";
import { cellsOf } from "../cells.js";
import type { StudyResults } from "../results.js";
import type { StrategyAnalysis } from "../analysis-results.js";
import { meanStd } from "../../util/stats.js";
import { CONFIDENCE } from "../comparisons.js";

// What a figure of one study reads of its results.
export type Panel = Pick<StudyResults, "reportK" | "baseline" | "table">;

// Colour and shape of the data field "strategy" (a strategy's name), with one legend; `domain`: the strategies in
// legend order, by default the table's (a figure of several panels gives the union of theirs).
export function strategyChannels(r: Panel, domain = r.table.map((row) => strategyName(row.strategy))) {
  return {
    color: { field: "strategy", type: "nominal", scale: { domain }, title: "Strategy" },
    shape: { field: "strategy", type: "nominal", scale: { domain }, title: "Strategy" },
  } as const;
}

// A figure's title naming its study: one line where it is short (TITLE_CHARS), else the study's name on a line of
// its own. Vega sizes a title by an estimate of its text, and a long line widened the figure past its plot and
// legend (a study named "fashion-mnist-split-long-finetune-rates" by 430 px).
export const TITLE_CHARS = 50;

export function studyTitle(what: string, name: string, separator = ":"): string | string[] {
  const line = `${what}${separator} ${name}`;
  return line.length <= TITLE_CHARS ? line : [`${what}${separator}`, name];
}

// What a figure's marks are over seeds, as subtitle lines: "mean over 2 seeds; error bars: ± 1 std over seeds", or
// "one seed". A mark of one seed among marks of several has no error bar (a bar of 0 would claim a spread of
// none): a line of its own names those marks, so that a missing bar is not read as a spread too small to draw.
// `what` names the spread's marks ("error bars", "band"); `marks` each mark's label and seeds; `spread`, where the
// marks show another spread than the standard deviation, says which in lines of its own. Short lines: vega sizes
// text by an estimate (0.8 em a character), and a long line widens the figure.
export function seedsNote(marks: { label: string; seeds: number }[], what = "error bars", spread?: string[]): string[] {
  const several = [...new Set(marks.filter((m) => m.seeds > 1).map((m) => m.seeds))].sort((a, b) => a - b);
  if (several.length === 0) return ["one seed"];
  const single = [...new Set(marks.filter((m) => m.seeds <= 1).map((m) => m.label))];
  const mean = `mean over ${several.join(" or ")} seeds; ${what}:`;
  return [...(spread ? [mean, ...spread] : [`${mean} ± 1 std over seeds`]), ...(single.length > 0 ? listLines(`one seed, so no ${what}`, single) : [])];
}

// seedsNote's `spread` where the marks are the 95% interval of each value's change from the original backbone's,
// paired over seeds and `over` (the queries, the images; the banks and the queries).
export const changeIntervalNote = (...over: string[]): string[] => [`${CONFIDENCE * 100}% interval of the change from the`, `original, over ${andList(["seeds", ...over])}`];

// seedsNote for marks that each have a paired change's interval, a mark of one seed too: its interval is over `over`
// alone (the queries, the banks), and speaks of that seed's training, as table.md's. `spread` puts the interval into
// words ("error bars: " + it).
export function pairedSeedsNote(marks: { label: string; seeds: number }[], spread: (interval: string) => string, over: string[]): string[] {
  const several = [...new Set(marks.filter((m) => m.seeds > 1).map((m) => m.seeds))].sort((a, b) => a - b);
  const interval = (samples: string[]) => `the ${CONFIDENCE * 100}% interval over ${andList(samples)}`;
  if (several.length === 0) return wrapLines(`one seed, so of its training alone; ${spread(interval(over))}`);
  const single = [...new Set(marks.filter((m) => m.seeds <= 1).map((m) => m.label))];
  return [
    ...wrapLines(`mean over ${several.join(" or ")} seeds; ${spread(interval(["seeds", ...over]))}`),
    ...(single.length > 0 ? listLines(`one seed, over ${andList(over)} alone`, single) : []),
  ];
}

// The legend of a line's stroke dash beside a point per value: each dash drawn as a line (the lines' points would make
// it a dot).
export const DASH_LEGEND = { symbolType: "stroke", symbolSize: 500, encode: { symbols: { update: { stroke: { value: "#444" }, strokeWidth: { value: 2 } } } } };

// The analysis's two image sets (eval/block-analysis.ts ImageSets) as a line's stroke: the analysed source-domain
// images solid, the target-domain ones dashed; `drawn`, those with points.
export const IMAGE_SETS = ["source", "target"] as const;
export const imageSetDash = (drawn: (typeof IMAGE_SETS)[number][]) => ({
  field: "images",
  type: "nominal",
  title: "Images",
  sort: drawn,
  scale: { domain: drawn, range: drawn.map((d) => (d === "source" ? [1, 0] : REFERENCE_DASH)) },
  legend: DASH_LEGEND,
});
// Its subtitle line's start for an image set.
export const imageSetLine = (images: (typeof IMAGE_SETS)[number]): string => `${images === "source" ? "solid" : "dashed"}:`;

// A subtitle's lines naming the steps whose backbones the cells kept (`steps`, without step 0), wrapped: a dense
// analysis.atSteps would widen the figure.
export const keptStepsLines = (steps: number[]): string[] => wrapLines(`the backbones kept at steps ${steps.join(", ")} (analysis.atSteps)`);

// A row's seeds at its kept steps, for seedsNote: the most that kept one.
export const keptStepsSeeds = (rows: StrategyAnalysis[]): { label: string; seeds: number }[] => rows.map((s) => ({ label: s.strategy, seeds: Math.max(...(s.atSteps ?? []).map((t) => t.seeds)) }));

// "a, b and c".
export const andList = (items: string[]): string => (items.length > 1 ? `${items.slice(0, -1).join(", ")} and ${items.at(-1)}` : items[0]);

// Words as subtitle lines of at most NOTE_CHARS characters (a longer word alone on its line).
export function wrapLines(text: string): string[] {
  const lines: string[] = [];
  for (const word of text.split(" ")) {
    if (lines.length > 0 && lines.at(-1)!.length + 1 + word.length <= NOTE_CHARS) lines[lines.length - 1] += ` ${word}`;
    else lines.push(word);
  }
  return lines;
}

// An interval's ends as a figure's data holds them: null where there is none (one seed without answers per image),
// as JSON has no NaN and vega draws no rule from null.
export const intervalEnds = (d: { lo: number; hi: number }): { lo: number | null; hi: number | null } => ({ lo: Number.isFinite(d.lo) ? d.lo : null, hi: Number.isFinite(d.hi) ? d.hi : null });

// A figure with nothing to draw, its title and a line that says why, where the run folder's files must still hold
// it (an analysis's files are what makes it up to date): a spec of no data draws with warnings, which fail.
export function nothingToDrawSpec(text: string, why: string[]): FigureSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text, subtitle: why },
    config: FIGURE_CONFIG,
    width: 300,
    height: 40,
    data: { values: [{}] },
    mark: { type: "text", text: "nothing to draw", fontSize: 13, color: "#444", align: "left", x: 0, y: 20 },
  } as FigureSpec;
}

// The longest subtitle line listLines makes, in characters: the fixed lines' length.
export const NOTE_CHARS = 50;

// "head: a, b, c" as subtitle lines of at most NOTE_CHARS characters (an item longer than that alone on its line), so
// that a long list (every rate of a partial run, say) wraps rather than widening the figure.
export function listLines(head: string, items: string[]): string[] {
  const lines = [`${head}:`];
  items.forEach((item, i) => {
    const word = i < items.length - 1 ? `${item},` : item;
    if (lines.at(-1)!.length + 1 + word.length <= NOTE_CHARS) lines[lines.length - 1] += ` ${word}`;
    else lines.push(word);
  });
  return lines;
}

// An accuracy axis in percent: padded around the data (not from 0), about six ticks (vega's default, one per 40 px,
// crowds a narrow range), plain numbers (".4~g": 80, not 80.000000 where every value is the same). Not rounded out
// to ticks ("nice"): a band reaching 98 %, padded, ran the axis to a tick at 110 %; unrounded, it ends a few pixels
// past the data, and no tick lies beyond 0-100. Every layer of a figure names the same title and scale, which
// Vega-Lite then merges into one axis.
export function percentChannel(field: string, title: string) {
  return { field, type: "quantitative", title, scale: { zero: false, nice: false, padding: 12 }, axis: { format: ".4~g", tickCount: 6 } } as const;
}

// An error bar's or band's end on an accuracy axis: an accuracy's interval ends within 0-100 % (one std about 99 %,
// or two seeds' 95% interval, with its one degree of freedom, can run past either end).
export const percentEnd = (x: number): number => Math.min(100, Math.max(0, x));

// A point's error bars of one standard deviation on both accuracy axes (Figure 2's, Figure 3's).
export const stdBars = <T extends { transfer: number; transferStd: number; knn: number; knnStd: number }>(p: T) => ({
  ...p,
  transferLo: percentEnd(p.transfer - p.transferStd),
  transferHi: percentEnd(p.transfer + p.transferStd),
  knnLo: percentEnd(p.knn - p.knnStd),
  knnHi: percentEnd(p.knn + p.knnStd),
});

// The source k-NN accuracy axis.
export function knnChannel(r: Pick<Panel, "reportK">, field: string) {
  return percentChannel(field, `Source k-NN top-1 (%), ${r.reportK}-NN`);
}

// The dashed line at the original backbone's accuracy: what a backbone that forgot nothing keeps. In a figure of
// several panels each has its own (the panel's title names its backbone). Its legend goes above the plot, or below
// where one panel of several has the line (Figure 3's): above, it would lift that panel's title above its neighbour's.
export function originalBackboneLayer(r: Panel, legendAt: "top" | "bottom" = "top"): FigureLayer {
  const knn = r.baseline.knn[String(r.reportK)].top1;
  return {
    data: { values: [{ line: `original backbone (${knn.toFixed(2)}%)`, knn }] },
    mark: { type: "rule", color: "#333", strokeWidth: 1.5 },
    encoding: {
      y: knnChannel(r, "knn"),
      strokeDash: {
        field: "line",
        type: "nominal",
        scale: { range: [REFERENCE_DASH] },
        // Not on the right: a legend of its own there would come before the strategies'.
        legend: { title: null, orient: legendAt, symbolSize: 500, symbolStrokeColor: "#333", symbolStrokeWidth: 1.5 },
      },
    },
  };
}

// One strategy at one learning rate over its seeds: what the figures across rates draw (Figure 3, the trade-off).
export interface RatePoint {
  strategy: string; // by name
  lr: number;
  seeds: number;
  transfer: number; // mean over seeds, percent
  transferStd: number;
  knn: number; // source k-NN top-1 at reportK, mean over seeds
  knnStd: number;
}

// Every strategy x rate with finished cells, in the cells' order. A rate that diverged with any seed is left out,
// as in the table's choice: the mean of the seeds that survived it would flatter it.
export function ratePoints(r: Pick<StudyResults, "reportK" | "cells" | "diverged">): RatePoint[] {
  const k = String(r.reportK);
  const points: RatePoint[] = [];
  for (const cell of r.cells) {
    if (points.some((p) => p.strategy === cell.strategy && p.lr === cell.lr)) continue;
    if (r.diverged.some((d) => d.strategy === cell.strategy && d.lr === cell.lr)) continue;
    const group = r.cells.filter((c) => c.strategy === cell.strategy && c.lr === cell.lr);
    const [transfer, transferStd] = meanStd(group.map((c) => c.transferAccuracy));
    const [knn, knnStd] = meanStd(group.map((c) => c.knn[k].top1));
    points.push({ strategy: cell.strategy, lr: cell.lr, seeds: group.length, transfer, transferStd, knn, knnStd });
  }
  return points;
}

// The config's strategy x rate pairs a figure across rates cannot draw, as subtitle lines: a rate with a diverged
// seed (left out, as ratePoints leaves it), and one without a finished cell yet (a report of a partial run), so
// that an absent point is read neither as a rate never tried nor as one that failed. `shown`: the strategies the
// figure is about.
export function absentRateLines(r: Pick<StudyResults, "config" | "cells" | "diverged">, shown: (strategy: string) => boolean = () => true): string[] {
  const diverged: string[] = [];
  const notRun: string[] = [];
  for (const cell of cellsOf(r.config)) {
    const strategy = strategyName(cell.strategy);
    const label = `${strategy} lr ${cell.lr}`;
    if (!shown(strategy) || diverged.includes(label) || notRun.includes(label)) continue;
    const same = (c: { strategy: string; lr: number }) => c.strategy === strategy && c.lr === cell.lr;
    if (r.diverged.some(same)) diverged.push(label);
    else if (!r.cells.some(same)) notRun.push(label);
  }
  return [...(diverged.length > 0 ? listLines("diverged, left out", diverged) : []), ...(notRun.length > 0 ? listLines("no finished cell yet", notRun) : [])];
}
