// Forgetting class by class (study/knn-classes.ts): for each class of knn.queries (along x, labelled with the original
// backbone's accuracy on it), one bar per strategy at its selected learning rate, its source k-NN on that class's
// queries less the original's, in points; error bars the 95% interval of the change, paired query by query over the
// seeds, the class's queries and the banks; a dashed line at 0. Which source classes each strategy forgets.
// forgettingClassesCurveSpec: the same along the forgetting curve (knn.atSteps), a panel per strategy, a line per
// class: how soon. Drawn where the queries have at most MAX_CLASSES classes (knn-classes.csv holds every class of a
// larger domain).
import { strategyName } from "../../peft/strategy.js";
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG, REFERENCE_DASH } from "../../plot/style.js";
import type { StudyResults } from "../results.js";
import { changeIntervalNote, intervalEnds, listLines, nothingToDrawSpec, pairedSeedsNote, seedsNote, studyTitle } from "./parts.js";
import { stepPanelsSpec } from "./analysis-steps.js";
import { stepAxis } from "./forgetting-curve.js";
import { MAX_CLASSES, originalAnswers } from "../knn-classes.js";

const BAR_PX = 12; // each strategy's bar: a class takes one per row, and a gap

// Whether the study's table has rows with their forgetting by class, of at most MAX_CLASSES classes.
export const hasClassFigure = (r: Pick<StudyResults, "table">): boolean => r.table.some((row) => row.knnByClass && row.knnByClass.length <= MAX_CLASSES);

// Whether some row's curve has its points by class, of at most MAX_CLASSES classes.
export const hasClassCurveFigure = (r: Pick<StudyResults, "table">): boolean => r.table.some((row) => row.knnCurve?.some((p) => p.byClass && p.byClass.length <= MAX_CLASSES));

const UNCHANGED = "the original's answers on every query";

export function forgettingClassesSpec(r: StudyResults): FigureSpec {
  const rows = r.table.filter((row) => row.knnByClass && row.knnByClass.length <= MAX_CLASSES);
  const names = rows.map((row) => strategyName(row.strategy));
  // Each class once, in the queries' order, labelled with the original's accuracy on it (the same in every row).
  const classes = rows[0].knnByClass!.map((c) => `${c.name} (${c.original.toFixed(1)}%)`);
  const points = rows.flatMap((row, i) =>
    row.knnByClass!.map((c) => ({ strategy: names[i], lr: row.lr, seeds: row.seeds, class: `${c.name} (${c.original.toFixed(1)}%)`, queries: c.queries, original: c.original, knn: c.knn, value: c.change.mean, ...intervalEnds(c.change) })),
  );
  const banks = Math.max(...rows.flatMap((row) => row.knnByClass!.map((c) => c.change.banks)));
  // A row with the original's answers everywhere (linear probing) draws bars of height 0: named, not read as missing.
  const unchanged = names.filter((_, i) => originalAnswers(rows[i].knnByClass!));
  const x = { field: "class", type: "nominal", title: "Source class (the original backbone's k-NN top-1 on it)", sort: classes, axis: { labelAngle: -30, labelLimit: 0 } } as const;
  const xOffset = { field: "strategy", sort: names } as const;
  // Two lines: vega centres an axis title on the plot by an estimate of its length, and one line longer than the plot
  // is tall pushed the plot down from its subtitle.
  const y = { field: "value", type: "quantitative", title: [`Source ${r.reportK}-NN top-1 less the`, "original backbone's (points)"], scale: { nice: false, padding: 8 } } as const;
  const color = { field: "strategy", type: "nominal", title: "Strategy", scale: { domain: names } } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: studyTitle("Forgetting by source class", r.name),
      subtitle: [
        "each strategy at its selected learning rate: its",
        "source k-NN on each class's queries less the",
        "original backbone's, paired query by query",
        ...pairedSeedsNote(
          rows.map((row, i) => ({ label: names[i], seeds: row.seeds })),
          (interval) => `error bars: ${interval}`,
          banks > 1 ? ["queries", "banks"] : ["queries"],
        ),
        ...(unchanged.length > 0 ? listLines(`${UNCHANGED}, bars of 0`, unchanged) : []),
      ],
    },
    width: Math.max(300, classes.length * (rows.length + 1) * BAR_PX),
    height: 300,
    config: FIGURE_CONFIG,
    layer: [
      {
        data: { values: points },
        mark: { type: "bar" },
        encoding: {
          x,
          xOffset,
          y,
          color,
          tooltip: [{ field: "strategy" }, { field: "lr" }, { field: "class" }, { field: "queries" }, { field: "knn", format: ".2f" }, { field: "value", format: ".2f" }, { field: "lo", format: ".2f" }, { field: "hi", format: ".2f" }],
        },
      },
      // A bar without an interval (one seed without answers per query) draws none: its lo and hi are null.
      { data: { values: points }, mark: { type: "rule", color: "#222", strokeWidth: 1.2 }, encoding: { x, xOffset, y: { ...y, field: "lo" }, y2: { field: "hi" } } },
      { data: { values: [{}] }, mark: { type: "rule", color: "#333", strokeDash: REFERENCE_DASH }, encoding: { y: { datum: 0 } } },
    ],
  } as FigureSpec;
}

const PANEL_WIDTH = 200;

export function forgettingClassesCurveSpec(r: StudyResults): FigureSpec {
  const curved = r.table.filter((row) => row.knnCurve?.some((p) => p.byClass && p.byClass.length <= MAX_CLASSES));
  // A row with the original's answers at every point (linear probing) is named, not given a panel of lines at 0.
  const unchanged = curved.filter((row) => row.knnCurve!.every((p) => !p.byClass || originalAnswers(p.byClass)));
  const rows = curved.filter((row) => !unchanged.includes(row));
  const text = "How soon each source class is forgotten";
  if (rows.length === 0) return nothingToDrawSpec(text, listLines(`${UNCHANGED} at every step`, unchanged.map((row) => strategyName(row.strategy))));
  const classes = curved[0].knnCurve!.find((p) => p.byClass)!.byClass!.map((c) => c.name);
  const points = rows.flatMap((row) =>
    row.knnCurve!.flatMap((p) =>
      (p.byClass ?? []).map((c) => ({ strategy: strategyName(row.strategy), lr: row.lr, seeds: row.seeds, step: p.step, class: c.name, knn: c.knn, value: c.change.mean, ...intervalEnds(c.change) })),
    ),
  );
  const banks = Math.max(...rows.flatMap((row) => row.knnCurve!.flatMap((p) => (p.byClass ?? []).map((c) => c.change.banks))));
  const y = { field: "value", type: "quantitative", title: [`Source ${r.reportK}-NN top-1 less the`, "original backbone's (points)"], scale: { nice: false, padding: 8 } } as const;
  const color = { field: "class", type: "nominal", title: "Source class", sort: classes, scale: { domain: classes } } as const;
  return changeCurveSpec({
    text,
    lead: ["each strategy at its selected learning rate: its", "source k-NN on each class's queries less the", "original backbone's, after each fine-tuning step", "steps on a symmetric log scale"],
    rows,
    unchanged: unchanged.length > 0 ? listLines("not drawn, the original's answers throughout", unchanged.map((row) => strategyName(row.strategy))) : [],
    points,
    banks,
    channels: { y, color },
    tooltip: [{ field: "strategy" }, { field: "class" }, { field: "step" }, { field: "knn", format: ".2f" }, { field: "value", format: ".2f" }],
  });
}

// A panel per row (`rows`, the table's order) of paired changes from the original against the fine-tuning step, a line
// per `channels.color` (a class, a move): `points` (strategy, seeds, step, value, lo, hi), error bars where a row has
// several seeds, a dashed line at 0; the subtitle `lead`, then the seeds' note (over the queries, and the banks where
// `banks` > 1), then `unchanged` (the rows not drawn, said so). What the curves of classes and of moves share.
export function changeCurveSpec(o: {
  text: string;
  lead: string[];
  rows: { strategy: StudyResults["table"][number]["strategy"]; seeds: number }[];
  unchanged: string[];
  points: { strategy: string; seeds: number; step: number; lo: number | null }[];
  banks: number;
  channels: { y: object & { field: string }; color: object };
  tooltip: object[];
}): FigureSpec {
  const steps = [...new Set(o.points.map((p) => p.step))].sort((a, b) => a - b);
  const x = stepAxis(steps, "Fine-tuning step", PANEL_WIDTH); // the scale named once, in the subtitle
  return stepPanelsSpec({
    title: {
      text: o.text,
      subtitle: [
        ...o.lead,
        ...seedsNote(
          o.rows.map((row) => ({ label: strategyName(row.strategy), seeds: row.seeds })),
          "error bars",
          o.banks > 1 ? changeIntervalNote("banks", "queries") : changeIntervalNote("queries"),
        ),
        ...o.unchanged,
      ],
    },
    points: o.points,
    strategies: o.rows.map((row) => strategyName(row.strategy)),
    channels: { x, ...o.channels },
    width: PANEL_WIDTH,
    rule: 0,
    errors: o.points.some((p) => p.seeds > 1 && p.lo !== null) ? "datum.seeds > 1 && isValid(datum.lo)" : undefined,
    tooltip: o.tooltip,
  });
}
