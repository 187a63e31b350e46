// The paper's figures and a combined Table 1 across run folders (study/run-folder.ts), finished or not. Which
// figures there are follows from what the runs hold:
//   Figure 2  the runs of the main backbone (ViT-B/16 where there is one, else the backbone of most runs) cover two
//             or more transfer datasets: one panel per dataset (the paper's order), the strategies every panel has
//             (all of them where no strategy is in every panel)
//   Figure 3  a run holds Block Expansion at two or more numbers of blocks and rates (study/figures/figure3.ts), one
//             figure per such run
//   Figure 4  runs of another backbone (ViT-S/16): a panel per backbone for each dataset such a run covers, the main
//             backbone's beside it where a run of it covers that dataset
// Where several runs cover one backbone and dataset, a strategy's point comes from the first run that has it. A
// backbone is a file (distinctBackbones), not a shape.
// Each figure as NAME.vl.json, NAME.svg and NAME.png; the table as table1.md and table1.csv; all written atomically.
import { join } from "node:path";
import { strategyName } from "../peft/strategy.js";
import { type FigureSpec, figureFiles } from "../plot/render.js";
import { writeFileAtomic } from "../util/atomic.js";
import { figure2Layers } from "./figures/figure2.js";
import { figure3Spec, hasFigure3 } from "./figures/figure3.js";
import { type Panel, seedsNote } from "./figures/parts.js";
import { type FigurePanel, panelsSpec } from "./figures/panels.js";
import { formatCount, intervalText } from "./report.js";
import type { StudyResults, TableRow } from "./results.js";
import type { RunFolder } from "./run-folder.js";
import { selectionOf } from "./validation.js";

// The transfer datasets as the paper names them, in its Figure 2's order; others follow by name.
const DATASET_LABELS: Record<string, string> = { cifar100: "CIFAR-100", cifar10: "CIFAR-10", dtd: "DTD", food101: "Food-101", flowers102: "Flowers102" };
const MAIN_MODEL = "ViT-B/16";

interface Finished extends RunFolder {
  results: StudyResults;
}

export interface PlannedFigure {
  name: string; // file name without extension
  spec: FigureSpec;
  about: string; // what it shows, from which runs
}

export interface ReportPlan {
  figures: PlannedFigure[];
  notDrawn: string[]; // each figure left out, and why
}

function runName(run: RunFolder): string {
  return run.config.name;
}

export function datasetOf(run: RunFolder): string {
  const name = run.config.transfer.train.dataset;
  return DATASET_LABELS[name] ?? name;
}

function datasetOrder(label: string): number {
  const i = Object.values(DATASET_LABELS).indexOf(label);
  return i < 0 ? Object.keys(DATASET_LABELS).length : i;
}

// One panel's results from the runs of one backbone and dataset: each strategy's row from the first run that has it.
function mergedPanel(runs: Finished[]): Panel & { sources: Map<string, string> } {
  const table: TableRow[] = [];
  const sources = new Map<string, string>();
  for (const run of runs) {
    for (const row of run.results.table) {
      const name = strategyName(row.strategy);
      if (sources.has(name)) continue;
      sources.set(name, runName(run));
      table.push(row);
    }
  }
  return { reportK: runs[0].results.reportK, baseline: runs[0].results.baseline, table, sources };
}

// Runs of different backbones of one architecture (a DINO and a supervised ViT of the same shape) told apart: their
// label gains the backbone's SHA-256 prefix, so that no figure panel or table row merges the two.
export function distinctBackbones(runs: RunFolder[]): RunFolder[] {
  const ids = new Map<string, Set<string>>();
  for (const r of runs) ids.set(r.model, (ids.get(r.model) ?? new Set()).add(r.backbone));
  return runs.map((r) => (ids.get(r.model)!.size > 1 ? { ...r, model: `${r.model}, backbone ${r.backbone.slice(0, 8)}` } : r));
}

// Groups runs by a key, in order of first appearance.
function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

// The panels of Figure 2 or 4, with the strategies every panel has (or, where none is in all, every strategy).
function panelsFigure(name: string, title: string, panels: { title: string; runs: Finished[] }[]): PlannedFigure {
  const merged = panels.map((p) => ({ ...p, panel: mergedPanel(p.runs) }));
  const names = merged.map((m) => m.panel.table.map((row) => strategyName(row.strategy)));
  const everywhere = names[0].filter((n) => names.every((list) => list.includes(n)));
  const domain = everywhere.length > 0 ? everywhere : [...new Set(names.flat())];
  const marks = merged.flatMap((m) => m.panel.table.filter((row) => domain.includes(strategyName(row.strategy))).map((row) => ({ label: `${strategyName(row.strategy)} (${m.title})`, seeds: row.seeds })));
  const figurePanels: FigurePanel[] = merged.map((m) => ({
    title: m.title,
    layers: figure2Layers({ ...m.panel, table: m.panel.table.filter((row) => domain.includes(strategyName(row.strategy))) }, { domain, xTitle: "Transfer accuracy (%)" }),
  }));
  const spec = panelsSpec(
    { text: title, subtitle: ["each strategy at its selected learning rate", ...seedsNote(marks)] },
    figurePanels,
    "y",
  );
  const left = [...new Set(names.flat())].filter((n) => !domain.includes(n));
  const from = merged.map((m) => `${m.title} (${[...new Set(m.panel.sources.values())].join(", ")})`).join("; ");
  return { name, spec, about: `${merged.length} panel(s): ${from}; strategies ${domain.join(", ")}${left.length > 0 ? `; left out, not in every panel: ${left.join(", ")}` : ""}` };
}

export function planReport(runs: RunFolder[]): ReportPlan {
  const finished = runs.filter((r): r is Finished => r.results !== undefined && r.results.table.length > 0);
  const figures: PlannedFigure[] = [];
  const notDrawn: string[] = [];
  const models = groupBy(finished, (r) => r.model);
  const main = models.has(MAIN_MODEL) ? MAIN_MODEL : [...models.entries()].sort((a, b) => b[1].length - a[1].length)[0]?.[0];
  const byDataset = (rs: Finished[]) => [...groupBy(rs, datasetOf).entries()].sort((a, b) => datasetOrder(a[0]) - datasetOrder(b[0]));

  const mainDatasets = byDataset(models.get(main) ?? []);
  if (mainDatasets.length >= 2) {
    const title = `Forgetting vs. transfer across datasets (${main})`;
    figures.push(panelsFigure("figure2", title, mainDatasets.map(([dataset, rs]) => ({ title: dataset, runs: rs }))));
  } else {
    notDrawn.push(`figure2: expected runs of one backbone on 2 or more transfer datasets, got ${mainDatasets.length === 0 ? "none" : `only ${mainDatasets[0][0]}`} (each run folder has its own figure2.*)`);
  }

  const blocks = finished.filter((r) => hasFigure3(r.results));
  for (const run of blocks) {
    const name = blocks.length > 1 ? `figure3-${runName(run)}` : "figure3";
    figures.push({ name, spec: figure3Spec(run.results), about: `Block Expansion in ${runName(run)} (${run.model}, ${datasetOf(run)})` });
  }
  if (blocks.length === 0) notDrawn.push("figure3: expected a run with Block Expansion at 2 or more numbers of blocks and 2 or more learning rates, got none");

  const others = finished.filter((r) => r.model !== main);
  if (others.length > 0) {
    const panels = byDataset(others).flatMap(([dataset]) =>
      [...models.entries()]
        .sort(([a], [b]) => (a === main ? 1 : 0) - (b === main ? 1 : 0))
        .flatMap(([model, rs]) => {
          const here = rs.filter((r) => datasetOf(r) === dataset);
          return here.length > 0 ? [{ title: `${model}, ${dataset}`, runs: here }] : [];
        }),
    );
    figures.push(panelsFigure("figure4", "Forgetting vs. transfer across backbones", panels));
  } else {
    notDrawn.push(`figure4: expected runs of a second backbone beside ${main ?? "the main one"} (e.g. ViT-S/16), got ${models.size === 0 ? "no finished run" : "one backbone"}`);
  }
  return { figures, notDrawn };
}

// ---- the combined Table 1 ----

function pct(m: number, s: number, seeds: number): string {
  return seeds > 1 ? `${m.toFixed(2)} ± ${s.toFixed(2)}` : m.toFixed(2);
}


// The images that chose a run's rows: its checkpoints' and transfer side's (test or val), and knn.val's where its
// rule weighs source k-NN on them.
function chosenOn(r: StudyResults): string {
  const transfer = r.selectedOn === "transfer.val" ? "val" : "test";
  return r.selectBy !== "transfer" && r.config.knn.val ? `${transfer}, knn.val` : transfer;
}

export function combinedTableMarkdown(runs: RunFolder[]): string {
  const lines = [
    "# Table 1 across runs: transfer accuracy and forgetting",
    "",
    "| Backbone | Transfer data | Strategy | #Trainable params | Transfer acc. (%) | Source k-NN acc. (%) | Forgetting (points) | Mean (%) | lr | chosen on | run |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|",
  ];
  for (const run of runs) {
    const r = run.results;
    if (!r) continue;
    const where = `| ${run.model} | ${datasetOf(run)} |`;
    const on = chosenOn(r);
    lines.push(`${where} original backbone | 0 | – | ${r.baseline.knn[String(r.reportK)].top1.toFixed(2)} | – | – | – | – | ${runName(run)} |`);
    for (const row of r.table) {
      lines.push(`${where} ${strategyName(row.strategy)} | ${formatCount(row.trainableParams)} | ${pct(row.transfer, row.transferStd, row.seeds)} | ${pct(row.knn, row.knnStd, row.seeds)} | ${row.knnChange ? intervalText(row.knnChange) : "–"} | ${row.mean.toFixed(2)} | ${row.lr} | ${on} | ${runName(run)} |`);
    }
  }
  lines.push("", "Runs:");
  for (const run of runs) {
    const total = run.missing.length + (run.results ? run.results.cells.length + run.results.diverged.length : 0);
    const state = !run.results ? "nothing finished yet (no baseline.json)" : run.missing.length === 0 ? `all ${total} cells finished` : `${total - run.missing.length} of ${total} cells finished; missing: ${run.missing.join(", ")}`;
    const diverged = run.results && run.results.diverged.length > 0 ? `; diverged (left out): ${run.results.diverged.map((c) => c.id).join(", ")}` : "";
    const rule = run.results ? `; rates by ${run.results.selectBy}` : "";
    lines.push(`- ${runName(run)} (${run.dir}): ${run.model}, ${datasetOf(run)}${rule}, ${state}${diverged}.`);
  }
  lines.push(
    "",
    "Each row: a strategy at the learning rate its run's selectBy chose (Runs, above: transfer, the best transfer or val accuracy; mean, the best mean of it and source k-NN; knee, the most source k-NN among the rates whose transfer or val accuracy is not told from the best one's), mean ± std over seeds; source k-NN: DINO's weighted k-NN top-1 of that checkpoint's backbone, as in each run's table.md; forgetting: that less the original's, paired query by query, with its 95% interval (over the seeds and the queries, and the banks of knn.otherBanks; with one seed over the queries alone, which speaks of that seed's training), where the run kept its answers. \"chosen on\": the images that chose the checkpoint and the rate (test, as in the paper, or transfer.val's), and where the rule weighs source k-NN, knn.val's where the run has them (else the queries chose).",
    "",
  );
  return lines.join("\n");
}

export function combinedTableCsv(runs: RunFolder[]): string {
  const header = ["backbone", "transfer_data", "run", "strategy", "trainable_params", "transfer_mean", "transfer_std", "knn_mean", "knn_std", "mean", "lr", "seeds", "selected_on", "val_mean", "val_std", "select_by", "knn_selected_on", "knn_change", "knn_change_lo", "knn_change_hi"];
  const lines = [header.join(",")];
  const f = (n: number | undefined) => (n === undefined ? "" : n.toFixed(2));
  // Backbone names ("ViT (patch 16, width 48, depth 12)") and strategies (block@4,8) may hold commas.
  const text = (t: string) => (t.includes(",") ? `"${t}"` : t);
  for (const run of runs) {
    const r = run.results;
    if (!r) continue;
    const where = [run.model, datasetOf(run), runName(run)].map(text);
    lines.push([...where, "original", "0", "", "", f(r.baseline.knn[String(r.reportK)].top1), "", "", "", "", "", "", "", "", "", "", "", ""].join(","));
    const knnOn = r.selectBy === "transfer" ? "" : r.config.knn.val ? "knn.val" : "knn.queries";
    for (const row of r.table) {
      const d = row.knnChange;
      const finite = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : undefined);
      lines.push([...where, text(strategyName(row.strategy)), row.trainableParams, f(row.transfer), f(row.transferStd), f(row.knn), f(row.knnStd), f(row.mean), row.lr, row.seeds, selectionOf(r.config), f(row.val), f(row.valStd), r.selectBy, knnOn, f(d?.mean), f(finite(d?.lo)), f(finite(d?.hi))].join(","));
    }
  }
  return lines.join("\n") + "\n";
}

// Writes the table and every planned figure into `out`; returns the files and the plan.
export async function writePaperReport(out: string, runs: RunFolder[]): Promise<{ files: string[]; plan: ReportPlan }> {
  const plan = planReport(runs);
  const files: [string, string | Uint8Array][] = [
    ["table1.md", combinedTableMarkdown(runs)],
    ["table1.csv", combinedTableCsv(runs)],
  ];
  files.push(...(await figureFiles(plan.figures.map((f) => [f.name, f.spec] as const))));
  for (const [name, data] of files) await writeFileAtomic(join(out, name), data);
  return { files: files.map(([name]) => join(out, name)), plan };
}
