// The forgetting curve: the source k-NN accuracy of the backbone against the fine-tuning step (knn.atSteps), one
// line per strategy at its selected learning rate, a band where a strategy has several seeds, and the original
// backbone's k-NN accuracy as a dashed reference line. The band is the 95% interval of each point's change from the
// original over seeds and queries (results.ts: each curve point's change, paired query by query), placed about the
// original's accuracy, where every such point has it; else (cells of builds that kept no answers) one standard
// deviation over seeds. The step axis is symmetric-log,
// log(1 + step): the first steps, where the paper sees most of the loss ("after just 10 iterations"), get as much
// room as the hundreds after them, and step 0, the backbone before fine-tuning, sits at the axis's origin, where a
// log axis has none. Its ticks are the measured steps, each labelled where its label has room (labelledSteps).
import { strategyName } from "../../peft/strategy.js";
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG } from "../../plot/style.js";
import type { StudyResults } from "../results.js";
import { changeIntervalNote, knnChannel, originalBackboneLayer, percentEnd, seedsNote, strategyChannels, studyTitle } from "./parts.js";

const WIDTH = 440;
const LABEL_PX = 12 * 0.7; // an axis label's digit: 12 px type (plot/style.ts), a digit at most 0.7 em wide
const LABEL_GAP = 4;

// The measured steps whose tick gets its number: the first (the original backbone) and the last (where the curves
// end) always, then leftwards each whose label clears the labelled ones beside it. Vega's own overlap removal keeps
// the first of two and drops the second, which hid the last step (1500 beside 1000). Every label is centred on its
// tick: one flush with the axis's end reads as its neighbour's.
export function labelledSteps(steps: number[], width = WIDTH): number[] {
  const at = (step: number) => (width * Math.log1p(step)) / Math.log1p(steps[steps.length - 1]);
  const extent = (step: number): [number, number] => {
    const w = String(step).length * LABEL_PX;
    return [at(step) - w / 2, at(step) + w / 2];
  };
  const kept = [steps.length - 1];
  const start = extent(steps[0])[1] + LABEL_GAP;
  for (let i = steps.length - 2; i >= 1; i--) {
    const [left, right] = extent(steps[i]);
    if (left >= start && right + LABEL_GAP <= extent(steps[kept[0]])[0]) kept.unshift(i);
  }
  if (steps.length > 1) kept.unshift(0);
  return kept.map((i) => steps[i]);
}

// The x channel of a figure against the fine-tuning step: symmetric-log from step 0 to the last of `steps`, a tick
// at each, labelled where its label has room in `width` pixels.
export function stepAxis(steps: number[], title: string, width = WIDTH) {
  const domain = [0, steps[steps.length - 1]];
  return {
    field: "step",
    type: "quantitative",
    title,
    scale: { type: "symlog", constant: 1, domain, nice: false },
    axis: { values: steps, labelExpr: `indexof(${JSON.stringify(labelledSteps(steps, width))}, datum.value) >= 0 ? format(datum.value, 'd') : ''`, labelOverlap: false, labelFlush: false },
  } as const;
}

export function forgettingCurveSpec(r: StudyResults): FigureSpec {
  const steps = r.config.knn.atSteps;
  if (!steps) throw new Error("forgetting curve: expected knn.atSteps in the study's config, got none");
  const intervals = r.table.every((row) => row.seeds < 2 || row.knnCurve!.every((p) => p.change && Number.isFinite(p.change.lo)));
  const points = r.table.flatMap((row) =>
    row.knnCurve!.map((p) => ({
      strategy: strategyName(row.strategy),
      lr: row.lr,
      seeds: row.seeds,
      step: p.step,
      knn: p.knn,
      // About the line: against one bank the change's mean is the line less the original's; with knn.otherBanks it is
      // the mean over every bank, and the line is knn.bank's.
      knnLo: percentEnd(intervals && p.change ? p.knn + p.change.lo - p.change.mean : p.knn - p.knnStd),
      knnHi: percentEnd(intervals && p.change ? p.knn + p.change.hi - p.change.mean : p.knn + p.knnStd),
    })),
  );
  const several = points.filter((p) => p.seeds > 1);
  const banks = intervals && r.table.some((row) => row.knnCurve!.some((p) => p.change && p.change.banks > 1));
  const spread = intervals ? (banks ? changeIntervalNote("banks", "queries") : changeIntervalNote("queries")) : undefined;
  const x = stepAxis(steps, "Fine-tuning step (symmetric log scale)");
  const { color, shape } = strategyChannels(r);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: studyTitle("Forgetting during fine-tuning", r.name),
      // Lines of their own: vega sizes text by an estimate (0.8 em a character), and a long line widens the figure.
      subtitle: ["the backbone's source k-NN accuracy after each step", "each strategy at its selected learning rate", ...seedsNote(r.table.map((row) => ({ label: strategyName(row.strategy), seeds: row.seeds })), "band", spread)],
    },
    width: WIDTH,
    height: 320,
    config: FIGURE_CONFIG,
    layer: [
      ...(several.length > 0
        ? [{ data: { values: several }, mark: { type: "area", opacity: 0.18 }, encoding: { x, y: knnChannel(r, "knnLo"), y2: { field: "knnHi" }, color } } as const]
        : []),
      {
        data: { values: points },
        mark: { type: "line", strokeWidth: 2, point: { filled: true, size: 60, stroke: "#222", strokeWidth: 0.6 } },
        encoding: {
          x,
          y: knnChannel(r, "knn"),
          color,
          shape,
          tooltip: [{ field: "strategy" }, { field: "lr" }, { field: "seeds" }, { field: "step" }, { field: "knn", format: ".2f" }],
        },
      },
      // Over the lines: a strategy that forgets nothing (linear probing) would hide it.
      originalBackboneLayer(r),
    ],
  };
}
