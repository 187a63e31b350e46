// The per-block analysis step against step (analysis-results.ts knnSincePrevious): a heatmap per strategy at its
// selected learning rate, a column per block and a line per span of two kept steps of analysis.atSteps, each cell the
// block's layer-wise k-NN at the later step less at the earlier, in points, each seed's answers paired with its own,
// with a star where its 95% interval (over seeds, images and banks) excludes 0. Which blocks go on forgetting from
// one kept step to the next, and which win back.
import type { FigureSpec } from "../../plot/render.js";
import type { RunAnalysis } from "../analysis-results.js";
import { noChange } from "../knn-classes.js";
import { changeHeatmapSpec } from "./change-heatmap.js";
import { listLines, nothingToDrawSpec, pairedSeedsNote } from "./parts.js";

const TEXT = "Which blocks go on forgetting between kept steps";

export function stepsBetweenSpec(a: RunAnalysis): FigureSpec {
  const spansOf = (s: RunAnalysis["strategies"][number]) =>
    (s.atSteps ?? []).flatMap((t, j) => (t.knnSincePrevious ? [{ span: `${s.atSteps![j - 1].step} → ${t.step}`, step: t.step, seeds: t.seeds, changes: t.knnSincePrevious }] : []));
  const measured = a.strategies.filter((s) => spansOf(s).length > 0);
  // A row whose every block's answers stayed the same (linear probing) is named, not drawn.
  const same = (s: (typeof measured)[number]) => spansOf(s).every((t) => t.changes.every(noChange));
  const rows = measured.filter((s) => !same(s));
  const unchanged = measured.filter(same).map((s) => s.strategy);
  if (rows.length === 0) return nothingToDrawSpec(TEXT, unchanged.length > 0 ? listLines("the same answers at every kept step", unchanged) : ["no row kept two steps with every seed (analysis.atSteps)"]);
  const spans = [...new Map(rows.flatMap(spansOf).sort((x, y) => x.step - y.step).map((t) => [t.span, t])).keys()];
  const cells = rows.flatMap((s) => spansOf(s).flatMap((t) => t.changes.map((change, block) => ({ strategy: s.strategy, x: block, y: t.span, change }))));
  const banks = Math.max(...rows.flatMap((s) => spansOf(s).flatMap((t) => t.changes.map((c) => c.banks))));
  return changeHeatmapSpec({
    title: TEXT,
    subtitle: [
      "each block's layer-wise k-NN at a kept step less",
      "at the kept step before, in points, each seed's",
      "answers paired with its own there",
      `${a.images.count} source-domain images (${a.images.name} ${a.images.split})`,
      "each strategy at the table's learning rate",
      ...pairedSeedsNote(
        rows.map((s) => ({ label: s.strategy, seeds: Math.min(...spansOf(s).map((t) => t.seeds)) })),
        (interval) => `a star where ${interval} excludes 0`,
        banks > 1 ? ["banks", "images"] : ["images"],
      ),
      ...(unchanged.length > 0 ? listLines("not drawn, the same answers throughout", unchanged) : []),
    ],
    strategies: rows.map((s) => s.strategy),
    x: { field: "block", title: "Block (0 = first)", domain: Array.from({ length: a.depth }, (_, i) => i), px: 44 },
    y: { field: "span", title: "Fine-tuning steps (from → to)", domain: spans, px: 24 },
    cells,
  });
}
