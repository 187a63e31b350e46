// Forgetting against transfer across learning rates: the paper's Figure 2 with every rate a strategy was tried at,
// not only its selected one. Each strategy's rates are joined in order of rate and labelled with it (in the
// strategy's colour, each label placed clear of the points and of the other labels, and where it can of the lines
// and error bars: plot/labels.ts), the rate the table shows (its selected one) starred, error bars of one standard
// deviation over seeds where there are several, the original backbone's k-NN accuracy as the dashed reference line.
// Where Figure 2 shows one point per strategy, this shows what the choice of rate trades: how much of the source
// domain each step up in transfer accuracy costs, strategy by strategy. A study has the figure where some strategy's finished cells hold two or more rates; a rate
// with a diverged seed is left out, as in the table's choice, and the subtitle names it, as it names a rate without
// a finished cell yet. So is a rate far below every selected one in transfer accuracy (OFF_AXES), with its
// accuracies: an unstable rate (LoRA at 0.2 on the default study, 55 %) would squeeze every other point into a
// corner of the axes.
import { strategyName } from "../../peft/strategy.js";
import { type FigureSpec, plotScales } from "../../plot/render.js";
import { LABEL_ANCHORS, placeLabels, strokeBoxes } from "../../plot/labels.js";
import { FIGURE_CONFIG } from "../../plot/style.js";
import type { StudyResults } from "../results.js";
import { absentRateLines, knnChannel, listLines, originalBackboneLayer, percentChannel, percentEnd, ratePoints, seedsNote, strategyChannels, studyTitle } from "./parts.js";
import { accuracyMarks } from "./figure2.js";

// Points whose transfer accuracy lies more than this many points below the least of the table's rows (each strategy
// at its selected rate) are named in the subtitle rather than drawn.
export const OFF_AXES = 10;

export function hasTradeoff(r: StudyResults): boolean {
  const points = ratePoints(r);
  return points.some((p) => points.filter((q) => q.strategy === p.strategy).length >= 2);
}

export async function tradeoffSpec(r: StudyResults): Promise<FigureSpec> {
  const all = ratePoints(r);
  if (!hasTradeoff(r)) throw new Error(`trade-off figure: expected a strategy at 2 or more learning rates in ${r.name}, got ${all.map((p) => `${p.strategy} lr ${p.lr}`).join(", ") || "none"}`);
  const floor = Math.min(...r.table.map((row) => row.transfer)) - OFF_AXES;
  const points = all.filter((p) => p.transfer >= floor);
  const off = all.filter((p) => p.transfer < floor).map((p) => `${p.strategy} lr ${p.lr} (${p.transfer.toFixed(1)} / ${p.knn.toFixed(1)} %)`);
  const x = percentChannel("transfer", "Transfer accuracy (%), linear head on the new domain");
  const y = knnChannel(r, "knn");
  // Every strategy of the study in the legend, in the table's order, as in its other figures.
  const channels = strategyChannels(r, [...new Set([...r.table.map((row) => strategyName(row.strategy)), ...points.map((p) => p.strategy)])]);
  const plot = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: studyTitle("Forgetting vs. transfer across learning rates", r.name),
      subtitle: [
        "each strategy at every learning rate tried,",
        "joined in order of rate; labels: the rate,",
        "* where it is the table's (the selected rate)",
        ...seedsNote(points.map((p) => ({ label: `${p.strategy} lr ${p.lr}`, seeds: p.seeds }))),
        ...absentRateLines(r),
        ...(off.length > 0 ? listLines("off the axes, transfer / source k-NN", off) : []),
      ],
    },
    width: 480,
    height: 360,
    config: FIGURE_CONFIG,
    layer: [
      originalBackboneLayer(r),
      { data: { values: points }, mark: { type: "line", strokeWidth: 1.5, opacity: 0.8 }, encoding: { x, y, color: channels.color, detail: { field: "strategy" }, order: { field: "lr", type: "quantitative" } } },
      ...accuracyMarks(r, points, channels),
    ],
  } satisfies FigureSpec;
  // With selectBy "mean" or "knee", or transfer.val, the selected rate need not be the rightmost: the star ties the point
  // to the table.
  const selected = (p: { strategy: string; lr: number }) => r.table.some((row) => strategyName(row.strategy) === p.strategy && row.lr === p.lr);
  const labels = points.map((p) => ({ ...p, rate: `${p.lr}${selected(p) ? "*" : ""}` }));
  // Each label where it overwrites no point and no other label, as the scales place the points; the table's rates first.
  const scale = await plotScales(plot);
  const at = (transfer: number, knn: number) => [scale.x(transfer), scale.y(knn)] as const;
  const original = scale.y(r.baseline.knn[String(r.reportK)].top1); // the reference line's height
  // The strokes a label should not cover: the lines joining each strategy's rates, the error bars, the reference line.
  const strokes = [
    ...[...new Set(points.map((p) => p.strategy))].flatMap((strategy) => {
      const line = points.filter((p) => p.strategy === strategy).sort((a, b) => a.lr - b.lr);
      return line.slice(1).flatMap((p, i) => strokeBoxes(...at(line[i].transfer, line[i].knn), ...at(p.transfer, p.knn)));
    }),
    ...points.filter((p) => p.seeds > 1).flatMap((p) => [
      ...strokeBoxes(...at(percentEnd(p.transfer - p.transferStd), p.knn), ...at(percentEnd(p.transfer + p.transferStd), p.knn)),
      ...strokeBoxes(...at(p.transfer, percentEnd(p.knn - p.knnStd)), ...at(p.transfer, percentEnd(p.knn + p.knnStd))),
    ]),
    ...strokeBoxes(0, original, plot.width, original),
  ];
  const order = [...labels.keys()].sort((i, j) => Number(selected(labels[j])) - Number(selected(labels[i])));
  const anchors = new Array<number>(labels.length);
  const placed = placeLabels(order.map((i) => ({ x: scale.x(labels[i].transfer), y: scale.y(labels[i].knn), text: labels[i].rate })), LABEL_FONT_SIZE, POINT_RADIUS, strokes);
  placed.forEach((a, k) => (anchors[order[k]] = a));
  const textLayers = LABEL_ANCHORS.flatMap((anchor, a) => {
    const values = labels.filter((_, i) => anchors[i] === a);
    return values.length > 0 ? [{ data: { values }, mark: { type: "text" as const, fontSize: LABEL_FONT_SIZE, ...anchor }, encoding: { x, y, text: { field: "rate" }, color: channels.color } }] : [];
  });
  return { ...plot, layer: [...plot.layer, ...textLayers] };
}

const LABEL_FONT_SIZE = 11;
const POINT_RADIUS = 6; // accuracyMarks' points: 110 px² of area
