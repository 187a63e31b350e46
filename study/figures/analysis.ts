// The per-block analysis's figures (study/analysis-results.ts), each strategy at its selected learning rate (named
// in the subtitle where the run tried some strategy at several), the values means over seeds: CKA between the original's and the fine-tuned block outputs as a heatmap (strategies x
// blocks, CLS token and mean-pooled tokens side by side), the layer-wise k-NN accuracy against the block (one line
// per strategy, error bars the 95% interval of its change from the original, the original as a dashed line), and the relative
// weight change as a heatmap with Block Expansion's new blocks marked "new", and the attention drift as a heatmap
// (strategies x blocks). A heatmap cell of several seeds writes the standard deviation in small print under the mean
// (a heatmap has no error bars, and a tooltip is not printed).
import type { FigureSpec } from "../../plot/render.js";
import { FIGURE_CONFIG, REFERENCE_DASH } from "../../plot/style.js";
import type { RunAnalysis } from "../analysis-results.js";
import type { StudyResults } from "../results.js";
import { changeIntervalNote, listLines, percentChannel, percentEnd, seedsNote, strategyChannels } from "./parts.js";

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

// The subtitle's lines on seeds; `what`: how the figure shows the spread.
function seedsLines(a: RunAnalysis, what: string): string[] {
  return seedsNote(a.strategies.map((s) => ({ label: s.strategy, seeds: s.seeds })), what);
}

// A heatmap's spread: small print under the mean.
const SMALL_PRINT = "small print";

// A heatmap cell's standard deviation as its small print: none for one seed (no spread was measured) or a value that
// is no number.
function spreadText(seeds: number, std: number): string | null {
  return seeds > 1 && Number.isFinite(std) ? `±${std.toFixed(3)}` : null;
}

// A heatmap row's height: room for the small print where a strategy has several seeds.
function rowHeight(a: RunAnalysis): number {
  return a.strategies.some((s) => s.seeds > 1) ? 38 : 28;
}

// The grid of the per-block heatmaps (CKA, attention drift): a column per block, every block on the axis (a blank
// cell's too), a row per strategy in the table's order, rows tall enough for the small print.
function blockGrid(a: RunAnalysis) {
  const domain = a.strategies.map((s) => s.strategy);
  return {
    width: Math.max(160, 44 * a.depth),
    height: rowHeight(a) * domain.length,
    encoding: {
      x: { field: "block", type: "ordinal", title: "Block (0 = first)", scale: { domain: Array.from({ length: a.depth }, (_, i) => i) }, axis: { labelAngle: 0 } },
      y: { field: "strategy", type: "nominal", title: "Strategy", sort: domain, scale: { domain } },
    },
  } as const;
}

// Which learning rate each row is, where the run tried some strategy at several: the figures show the table's rows
// alone, each strategy at its selected rate.
function ratesLines(a: RunAnalysis): string[] {
  const several = a.strategies.some((s) => new Set(a.cells.filter((c) => c.strategy === s.strategy).map((c) => c.lr)).size > 1);
  return several ? listLines("each strategy at the table's learning rate", a.strategies.map((s) => `${s.strategy} ${s.lr}`)) : [];
}

function imagesNote(a: RunAnalysis): string {
  return `${a.images.count} source-domain images (${a.images.name} ${a.images.split})`;
}

// A heatmap cell's number (the value of `field`), and under it, where the datum has one, its spread (the text of
// "spread"); white where `light` holds of the datum (a dark colour), else black; none where the value is null.
function valueText(field: string, format: string, light: string) {
  const color = { condition: { test: light, value: "white" }, value: "black" };
  return [
    {
      transform: [{ filter: `isValid(datum.${field})` }],
      mark: { type: "text", fontSize: 11, dy: { expr: "isValid(datum.spread) ? -6 : 0" } },
      encoding: { text: { field, type: "quantitative", format }, color },
    },
    {
      transform: [{ filter: `isValid(datum.${field}) && isValid(datum.spread)` }],
      mark: { type: "text", fontSize: 9, dy: 8 },
      encoding: { text: { field: "spread", type: "nominal" }, color },
    },
  ] as const;
}

// A heatmap cell's value, none (a blank cell) where it is no number.
const number = (x: number) => (Number.isNaN(x) ? null : x);

// A CKA that is no number (a block whose outputs do not vary over the images, as in a collapsed model: 0 / 0) is a
// blank cell, said so in the subtitle.
export function ckaHeatmapSpec(a: RunAnalysis): FigureSpec {
  const values = a.strategies.flatMap((s) =>
    s.ckaCls.flatMap((c, block) => [
      { strategy: s.strategy, block, tokens: "CLS token", cka: number(c.mean), std: number(c.std), spread: spreadText(s.seeds, c.std) },
      { strategy: s.strategy, block, tokens: "all tokens, mean-pooled", cka: number(s.ckaPooled[block].mean), std: number(s.ckaPooled[block].std), spread: spreadText(s.seeds, s.ckaPooled[block].std) },
    ]),
  );
  const blanks = values.some((v) => v.cka === null);
  const lowest = Math.min(1, ...values.flatMap((v) => (v.cka === null ? [] : [v.cka])));
  const floor = Math.min(0.9, Math.floor(lowest * 10) / 10);
  return {
    $schema: SCHEMA,
    title: {
      text: "Representation similarity to the original backbone",
      subtitle: [
        "linear CKA of each block's output with the original's",
        imagesNote(a),
        ...ratesLines(a),
        ...seedsLines(a, SMALL_PRINT),
        `1: the same up to rotation and scale${blanks ? "; blank: not a number (outputs that do not vary over the images)" : ""}`,
      ],
    },
    config: FIGURE_CONFIG,
    data: { values },
    facet: { column: { field: "tokens", type: "nominal", title: null, sort: ["CLS token", "all tokens, mean-pooled"], header: { labelFontSize: 13 } } },
    spec: {
      ...blockGrid(a),
      layer: [
        {
          mark: { type: "rect" },
          encoding: {
            color: { field: "cka", type: "quantitative", title: "CKA", scale: { scheme: "viridis", domain: [floor, 1] } },
            tooltip: [{ field: "strategy" }, { field: "block" }, { field: "cka", format: ".4f" }, { field: "std", format: ".4f" }],
          },
        },
        ...valueText("cka", ".3f", `datum.cka < ${floor + (1 - floor) * 0.45}`),
      ],
    },
  } as FigureSpec;
}

// Each strategy's layer-wise k-NN per block, its error bars the 95% interval of its change from the original's over
// seeds and images (and the banks of knn.otherBanks; analysis-results.ts knnChange), placed about the point, which is
// knn.bank's: whether a block lost more than chance explains.
export function layerKnnSpec(a: RunAnalysis, r: StudyResults): FigureSpec {
  const points = a.strategies.flatMap((s) =>
    s.knn.map((k, block) => ({ strategy: s.strategy, seeds: s.seeds, block, knn: k.mean, knnLo: percentEnd(k.mean + s.knnChange[block].lo - s.knnChange[block].mean), knnHi: percentEnd(k.mean + s.knnChange[block].hi - s.knnChange[block].mean) })),
  );
  const several = points.filter((p) => p.seeds > 1);
  const original = a.original.knn.map((knn, block) => ({ block, knn, line: "original backbone" }));
  const domain = [-0.25, a.depth - 0.75];
  const blocks = a.original.knn.map((_, i) => i);
  const x = { field: "block", type: "quantitative", title: "Block (0 = first)", scale: { domain, nice: false }, axis: { values: blocks, format: "d" } } as const;
  const y = (field: string) => percentChannel(field, `Source k-NN top-1 (%), ${a.k}-NN`);
  const { color, shape } = strategyChannels(r);
  return {
    $schema: SCHEMA,
    title: {
      text: "Where along the depth source knowledge is lost",
      subtitle: [
        "k-NN of each block's CLS token after the model's own final norm",
        imagesNote(a),
        ...ratesLines(a),
        ...seedsNote(a.strategies.map((s) => ({ label: s.strategy, seeds: s.seeds })), "error bars", a.strategies.some((s) => s.knnChange.some((c) => c.banks > 1)) ? changeIntervalNote("banks", "images") : changeIntervalNote("images")),
      ],
    },
    width: 440,
    height: 320,
    config: FIGURE_CONFIG,
    layer: [
      ...(several.length > 0 ? [{ data: { values: several }, mark: { type: "errorbar", ticks: true, thickness: 1.5 }, encoding: { x, y: y("knnLo"), y2: { field: "knnHi" }, color } } as const] : []),
      {
        data: { values: points },
        mark: { type: "line", strokeWidth: 2, point: { filled: true, size: 60, stroke: "#222", strokeWidth: 0.6 } },
        encoding: { x, y: y("knn"), color, shape, tooltip: [{ field: "strategy" }, { field: "block" }, { field: "knn", format: ".2f" }] },
      },
      {
        data: { values: original },
        mark: { type: "line", color: "#333", strokeWidth: 1.5 },
        encoding: {
          x,
          y: y("knn"),
          strokeDash: { field: "line", type: "nominal", scale: { range: [REFERENCE_DASH] }, legend: { title: null, orient: "top", symbolSize: 500, symbolStrokeColor: "#333", symbolStrokeWidth: 1.5 } },
        },
      },
    ],
  } as FigureSpec;
}

export function weightChangeSpec(a: RunAnalysis): FigureSpec {
  const newLabel = (after: number) => `new (after ${after})`;
  const order: string[] = ["embedding"];
  const added = new Set(a.strategies.flatMap((s) => s.added));
  for (let i = 0; i < a.depth; i++) {
    order.push(String(i));
    if (added.has(i)) order.push(newLabel(i));
  }
  order.push("final norm");
  const values = a.strategies.flatMap((s) => [
    { strategy: s.strategy, part: "embedding", change: s.embedding.mean, std: s.embedding.std, spread: spreadText(s.seeds, s.embedding.std) },
    ...s.weights.map((w, i) => ({ strategy: s.strategy, part: String(i), change: w.mean, std: w.std, spread: spreadText(s.seeds, w.std) })),
    { strategy: s.strategy, part: "final norm", change: s.norm.mean, std: s.norm.std, spread: spreadText(s.seeds, s.norm.std) },
  ]);
  const fresh = a.strategies.flatMap((s) => s.added.map((after) => ({ strategy: s.strategy, part: newLabel(after), label: "new" })));
  const top = Math.max(...values.map((v) => v.change));
  const domain = a.strategies.map((s) => s.strategy);
  return {
    $schema: SCHEMA,
    title: { text: "How far fine-tuning moved the weights", subtitle: ["relative change ||W' − W|| / ||W|| per block (LoRA merged)", "new: a block Block Expansion added, with no original", ...ratesLines(a), ...seedsLines(a, SMALL_PRINT)] },
    width: 44 * order.length,
    height: rowHeight(a) * domain.length,
    config: FIGURE_CONFIG,
    encoding: {
      x: { field: "part", type: "ordinal", title: "Part of the backbone (block 0 = first)", sort: order, scale: { domain: order }, axis: { labelAngle: -30 } },
      y: { field: "strategy", type: "nominal", title: "Strategy", sort: domain, scale: { domain } },
    },
    layer: [
      {
        data: { values },
        mark: { type: "rect" },
        encoding: {
          color: { field: "change", type: "quantitative", title: "Relative change", scale: { scheme: "blues", domain: [0, top > 0 ? top : 1] } },
          tooltip: [{ field: "strategy" }, { field: "part" }, { field: "change", format: ".4f" }, { field: "std", format: ".4f" }],
        },
      },
      ...valueText("change", ".3f", `datum.change > ${0.6 * top}`).map((layer) => ({ data: { values }, ...layer })),
      ...(fresh.length > 0
        ? [
            { data: { values: fresh }, mark: { type: "rect", color: "#d9d9d9" } } as const,
            { data: { values: fresh }, mark: { type: "text", fontSize: 11, fontStyle: "italic" }, encoding: { text: { field: "label" } } } as const,
          ]
        : []),
    ],
  } as FigureSpec;
}

// Attention drift as a heatmap (strategies x blocks): the Jensen-Shannon divergence of the CLS token's attention,
// the original's against the fine-tuned, mean over heads and images. The colour scale runs from 0 to the largest
// mean, at least 0.1 bits: a model whose attention barely moved is not painted as one that moved most.
export function attentionDriftSpec(a: RunAnalysis): FigureSpec {
  const values = a.strategies.flatMap((s) =>
    s.attention.map((d, block) => ({ strategy: s.strategy, block, drift: number(d.mean), std: d.std, spread: spreadText(s.seeds, d.std) })),
  );
  const top = Math.max(0.1, ...values.flatMap((v) => (v.drift === null ? [] : [v.drift])));
  return {
    $schema: SCHEMA,
    title: {
      text: "Where the attention moved",
      subtitle: [
        "Jensen-Shannon divergence of the CLS token's attention",
        "original vs fine-tuned, per block, mean over heads",
        "in bits: 0 the same, 1 on disjoint tokens",
        imagesNote(a),
        ...ratesLines(a),
        ...seedsLines(a, SMALL_PRINT),
      ],
    },
    ...blockGrid(a),
    config: FIGURE_CONFIG,
    data: { values },
    layer: [
      {
        mark: { type: "rect" },
        encoding: {
          color: { field: "drift", type: "quantitative", title: "JS (bits)", scale: { scheme: "oranges", domain: [0, top] } },
          tooltip: [{ field: "strategy" }, { field: "block" }, { field: "drift", format: ".4f" }, { field: "std", format: ".4f" }],
        },
      },
      ...valueText("drift", ".3f", `datum.drift > ${0.6 * top}`),
    ],
  } as FigureSpec;
}
