// The study's output files: results.json (everything, study/results.ts), results.csv (one row per cell, plus the
// original backbone), table.md (the paper's Table 1 layout: strategy, #trainable params, transfer accuracy, source
// k-NN accuracy and their mean, at each strategy's best learning rate; diverged cells named; with two seeds or more,
// the differences between the rows, and of each strategy's other rates against its row's, paired by seed,
// study/comparisons.ts) and the figures
// (study/figures/), each as its Vega-Lite spec (NAME.vl.json, data inline), SVG and PNG (plot/render.ts): Figure 2
// (figure2.*), with knn.atSteps the forgetting curve (forgetting.*), and with Block Expansion at several numbers of
// blocks and rates Figure 3 (figure3.*), with a strategy at several rates the trade-off across rates (tradeoff.*), and
// where the results have each row's forgetting by class (study/knn-classes.ts) knn-classes.csv and, for at most
// MAX_CLASSES source classes, its figures (forgetting-classes.*, with knn.atSteps forgetting-classes-curve.*), and
// where they have each row's confusion (study/knn-confusion.ts) knn-confusion.csv and forgetting-confusion.*. All
// written atomically.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { DatasetIdentity } from "../data/dataset.js";
import { strategyName } from "../peft/strategy.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { type KnnScores, type StudyResults, type TableRow, otherBanksKnn, resultsJson } from "./results.js";
import { type StudyConfig, ratesFor } from "./config.js";
import { type FigureSpec, figureFileNames, figureFiles } from "../plot/render.js";
import { figure2Spec } from "./figures/figure2.js";
import { forgettingCurveSpec } from "./figures/forgetting-curve.js";
import { figure3Spec, hasFigure3 } from "./figures/figure3.js";
import { hasTradeoff, tradeoffSpec } from "./figures/tradeoff.js";
import { forgettingClassesCurveSpec, forgettingClassesSpec, hasClassCurveFigure, hasClassFigure } from "./figures/forgetting-classes.js";
import { MAX_CLASSES, classesBetweenCsv, intervalEnd, knnClassesCsv } from "./knn-classes.js";
import { answersBetweenCsv, confusionMoves, knnConfusionCsv } from "./knn-confusion.js";
import { forgettingConfusionCurveSpec, forgettingConfusionSpec, hasConfusionCurveFigure, hasConfusionFigure } from "./figures/forgetting-confusion.js";
import { forgettingBetweenSpec, hasBetweenFigure } from "./figures/forgetting-between.js";
import { andList } from "./figures/parts.js";
import { CONFIDENCE, type Difference } from "./comparisons.js";
import type { MeanInterval } from "../util/stats.js";

// How a difference was paired: what the sentences about its interval need (a forgetting curve's point has a source
// k-NN difference and no transfer one).
type Pairing = Pick<Difference, "seeds" | "images" | "banks">;

// ---- CSV ----

export function resultsCsv(r: StudyResults): string {
  const ks = Object.keys(r.baseline.knn);
  // With transfer.val, the val accuracy that chose each cell's checkpoint follows its step; with knn.val, its
  // source k-NN top-1 (at reportK) on those images follows the queries', and with knn.otherBanks the queries'
  // against the other banks, their mean (each empty where not scored yet).
  const val = r.selectedOn === "transfer.val";
  const knnVal = r.config.knn.val !== undefined;
  const banks = r.config.knn.otherBanks !== undefined;
  const header = ["id", "strategy", "lr", "seed", "trainable_params", "paper_params", "transfer_acc", "final_transfer_acc", "best_step", ...(val ? ["val_acc"] : [])];
  header.push(...ks.flatMap((k) => [`knn${k}_top1`, `knn${k}_top5`]), ...(knnVal ? [`val_knn${r.reportK}_top1`] : []), ...(banks ? [`other_banks_knn${r.reportK}_top1`] : []), "mean", "train_seconds", "images_per_second");
  const knnCols = (s: KnnScores) => ks.flatMap((k) => [s[k].top1.toFixed(2), s[k].top5.toFixed(2)]);
  const lines = [header.join(",")];
  lines.push(["original", "original", "", "", "0", "0", "", "", "", ...(val ? [""] : []), ...knnCols(r.baseline.knn), ...(knnVal ? [""] : []), ...(banks ? [""] : []), "", "", ""].join(","));
  for (const c of r.cells) {
    const mean = (c.transferAccuracy + c.knn[String(r.reportK)].top1) / 2;
    const chosen = val ? [c.valAccuracy!.toFixed(2)] : [];
    const onVal = knnVal ? [c.valKnn ? c.valKnn[String(r.reportK)].top1.toFixed(2) : ""] : [];
    const onBanks = banks ? [c.otherBanks ? otherBanksKnn(String(r.reportK))(c).toFixed(2) : ""] : [];
    lines.push(
      [c.id, c.strategy, c.lr, c.seed, c.trainableParams, c.paperParams, c.transferAccuracy.toFixed(2), c.finalTransferAccuracy.toFixed(2), c.bestStep, ...chosen, ...knnCols(c.knn), ...onVal, ...onBanks, mean.toFixed(2), c.trainSeconds.toFixed(1), c.imagesPerSecond.toFixed(1)].join(","),
    );
  }
  return lines.join("\n") + "\n";
}

// knn-spans.csv: each table row's change from every step of its curve to every later one (results.ts knnSpans), a
// line per pair, with the row's source k-NN at both (knn.bank's, mean over seeds).
export function spansCsv(r: StudyResults): string {
  const lines = ["strategy,lr,seeds,from,to,knn_top1_from,knn_top1_to,change,change_lo,change_hi,banks"];
  for (const row of r.table) {
    const knnAt = (step: number) => row.knnCurve!.find((p) => p.step === step)!.knn.toFixed(2);
    for (const { from, to, change } of row.knnSpans ?? []) {
      lines.push([strategyName(row.strategy), row.lr, row.seeds, from, to, knnAt(from), knnAt(to), change.mean.toFixed(2), intervalEnd(change.lo), intervalEnd(change.hi), change.banks].join(","));
    }
  }
  return lines.join("\n") + "\n";
}

// ---- Table 1 ----

function pct(m: number, s: number, seeds: number): string {
  return seeds > 1 ? `${m.toFixed(2)} ± ${s.toFixed(2)}` : m.toFixed(2);
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function describeData(d: DatasetIdentity | undefined): string {
  if (!d) return "?";
  return `${d.name} ${d.split}${d.subset ? ` (${d.subset})` : ""}, ${d.count} images`;
}

function learningRatesText(r: StudyResults): string {
  const rates = r.config.learningRates;
  if (Array.isArray(rates)) return rates.join(", ");
  return r.config.strategies.map((s) => `${strategyName(s)} ${ratesFor(r.config, s).join(", ")}`).join("; ");
}

export function tableMarkdown(r: StudyResults): string {
  const base = r.baseline.knn[String(r.reportK)].top1;
  const lines = [
    `# ${r.name}: transfer accuracy and forgetting (Table 1 layout)`,
    "",
    "| Strategy | #Trainable params | Transfer acc. (%) | Source k-NN acc. (%) | Mean (%) | lr |",
    "|---|---:|---:|---:|---:|---:|",
    `| original backbone (not fine-tuned) | 0 | – | ${base.toFixed(2)} | – | – |`,
  ];
  // Config order; a strategy whose rates all diverged gets a row saying so, one with some diverged rates names them.
  for (const strategy of r.config.strategies) {
    const name = strategyName(strategy);
    const row = r.table.find((t) => strategyName(t.strategy) === name);
    const lost = [...new Set(r.diverged.filter((c) => c.strategy === name).map((c) => c.lr))];
    if (row) {
      lines.push(
        `| ${name} | ${formatCount(row.trainableParams)} | ${pct(row.transfer, row.transferStd, row.seeds)} | ${pct(row.knn, row.knnStd, row.seeds)} | ${row.mean.toFixed(2)} | ${row.lr}${lost.length > 0 ? ` (${lost.join(", ")} diverged)` : ""} |`,
      );
    } else if (ratesFor(r.config, strategy).every((lr) => lost.includes(lr))) {
      lines.push(`| ${name} | – | every rate diverged | – | – | ${lost.join(", ")} |`);
    }
  }
  lines.push(...forgettingMarkdown(r), ...classesMarkdown(r), ...confusionMarkdown(r), ...comparisonsMarkdown(r));
  const d = r.notes.data;
  const seeds = r.config.seeds.length;
  const val = r.selectedOn === "transfer.val";
  lines.push(
    "",
    "What was measured:",
    `- Backbone: ${r.notes.backbone}. Images at ${r.notes.imageSize} px.`,
    val
      ? `- Transfer accuracy: top-1 of the linear head on ${describeData(d.transferTest)}, at the checkpoint chosen on transfer.val (${describeData(d.transferVal)}): the best of its evaluations every ${r.config.training.evalEvery} steps of ${r.config.training.steps} (fine-tuned on ${describeData(d.transferTrain)}, ${trainingText(r.config.training)}). No test image chose a checkpoint or a learning rate.`
      : `- Transfer accuracy: top-1 of the linear head on ${describeData(d.transferTest)}, the best of the evaluations every ${r.config.training.evalEvery} steps of ${r.config.training.steps} (fine-tuned on ${describeData(d.transferTrain)}, ${trainingText(r.config.training)}); the test images chose the checkpoint, as in the paper.`,
    `- Source k-NN accuracy: DINO's weighted ${r.reportK}-NN top-1 (T = ${r.temperature}) of that best checkpoint's backbone, bank ${describeData(d.bank)}, queries ${describeData(d.queries)}.${knnValText(r)}${otherBanksText(r)}`,
    `- Learning rates tried: ${learningRatesText(r)}; each row shows ${ruleText(r)}${seeds > 1 ? `, mean ± std over ${seeds} seeds` : ` (seed ${r.config.seeds[0]})`}.${bankChoicesText(r)}`,
    "- #Trainable params: the tensors actually updated, the new linear head included (results.json also has the paper's counting).",
  );
  const steps = r.config.knn.atSteps;
  if (steps) lines.push(`- Forgetting curve (forgetting.png, results.json): the same k-NN accuracy of each row's backbone after ${steps.join(", ")} fine-tuning steps${r.config.knn.otherBanks ? ", its queries against every other bank too (the figure draws knn.bank's)" : ""}.`);
  if (r.diverged.length > 0) {
    const cells = r.diverged.map((c) => `${c.strategy} lr ${c.lr} seed ${c.seed} at step ${c.diverged.step} (loss ${Number(c.diverged.loss).toPrecision(4)})`);
    lines.push(`- Diverged, so left out of the choice of learning rate (a non-finite loss or parameter; a rerun with --retry-diverged trains them again): ${cells.join("; ")}.`);
  }
  if (r.missing.length > 0) lines.push(`- Not finished when this report was written, so left out: ${r.missing.join(", ")}.`);
  lines.push("");
  return lines.join("\n");
}

// Which of a strategy's rates its row shows (study/results.ts summarize).
function ruleText(r: StudyResults): string {
  const accuracy = r.selectedOn === "transfer.val" ? "val accuracy" : "transfer accuracy";
  const source = r.config.knn.val ? "source k-NN on knn.val" : "source k-NN";
  if (r.selectBy === "transfer") return `the one with the best ${accuracy}`;
  if (r.selectBy === "mean") return `the one with the best mean of ${source} and ${accuracy}`;
  return `its knee: of the rates whose ${accuracy} the paired ${CONFIDENCE * 100}% interval does not tell from the best one's, the one with the most ${source} (with one seed, the best ${accuracy})`;
}

// With knn.otherBanks and a rule that weighs source k-NN: whether the rule, given the queries' k-NN against each bank
// in turn, chooses the table's rates (study/results.ts bankChoices).
function bankChoicesText(r: StudyResults): string {
  if (!r.bankChoices) return "";
  const shown = new Map(r.table.map((row) => [strategyName(row.strategy), row.lr]));
  const stead = r.config.knn.val ? ", in place of knn.val's," : "";
  const differ = r.bankChoices.flatMap(({ bank, rates }) => {
    const other = rates.filter((c) => c.lr !== shown.get(c.strategy));
    return other.length > 0 ? [`${bank}: ${other.map((c) => `${c.strategy} ${c.lr} (the table's ${shown.get(c.strategy)})`).join(", ")}`] : [];
  });
  const how = ` Given the queries' source k-NN against each bank in turn (knn.bank and its ${r.bankChoices.length - 1} other draw(s))${stead} the rule`;
  return differ.length === 0 ? `${how} chooses the table's rates with every bank.` : `${how} chooses other rates with ${differ.length} of the ${r.bankChoices.length}: ${differ.join("; ")}.`;
}

// With knn.val: its images, and whether they chose the rates (with selectBy "transfer" they are only reported).
function knnValText(r: StudyResults): string {
  if (!r.config.knn.val) return "";
  const images = describeData(r.notes.data.knnVal);
  if (r.selectBy === "transfer") return ` knn.val (${images}) is scored too (results.csv), and chose nothing.`;
  return ` The rates were chosen on knn.val (${images}) in the queries' stead: no query chose a learning rate.`;
}

// With knn.otherBanks: the other draws of the bank, and each row's source k-NN against them.
function otherBanksText(r: StudyResults): string {
  const specs = r.config.knn.otherBanks;
  if (!specs) return "";
  const images = specs.map((_, i) => describeData(r.notes.data[`knn.otherBanks[${i}]`])).join("; ");
  const rows = r.table.filter((row) => row.otherBanksKnn !== undefined).map((row) => `${strategyName(row.strategy)} ${pct(row.otherBanksKnn!, row.otherBanksKnnStd!, row.seeds)}`);
  return ` The queries were classified against ${specs.length} other draw(s) of the bank too (knn.otherBanks: ${images})${rows.length > 0 ? `: each row's source k-NN there, the mean over them, ${rows.join(", ")}` : ""}.`;
}

// A difference that rounds to 0 has no sign: "-0.00" would claim a direction.
const signed = (x: number) => (Math.abs(x) < 0.005 ? "0.00" : `${x > 0 ? "+" : ""}${x.toFixed(2)}`);
// A mean and its interval; the mean alone where it has none (one seed without answers per image).
export const intervalText = (d: MeanInterval) => (Number.isFinite(d.lo) ? `${signed(d.mean)} [${signed(d.lo)}, ${signed(d.hi)}]` : d.n >= 1 ? signed(d.mean) : "–");

// Whether a difference has an interval: two seeds or more, or one seed with answers per image (over its images).
export const hasInterval = (c: Pairing) => c.seeds.length >= 2 || (c.seeds.length === 1 && c.images);

// What each row lost of the original backbone's source k-NN, query by query (results.ts knnChange): at its best
// checkpoint and, with knn.atSteps, after each step of fine-tuning; then the first step at which each row's loss
// exceeds what chance explains. Only rows whose cells and baseline kept their answers; with one seed the intervals
// are over the queries alone.
function forgettingMarkdown(r: StudyResults): string[] {
  const rows = r.table.filter((row) => row.knnChange || row.knnCurve?.some((p) => p.change));
  if (rows.length === 0) return [];
  const oneSeed = rows.every((row) => row.seeds === 1);
  const steps = (r.config.knn.atSteps ?? []).filter((step) => step > 0 && rows.some((row) => row.knnCurve!.find((p) => p.step === step)!.change));
  const base = r.baseline.knn[String(r.reportK)].top1.toFixed(2);
  // With knn.otherBanks, each change is over the banks too where the original and every cell (or its point) were
  // scored against them all: curves of builds before the points kept those scores are against knn.bank alone.
  const shown = rows.flatMap((row) => [row.knnChange, ...steps.map((step) => row.knnCurve!.find((p) => p.step === step)!.change)]).filter((c) => c !== undefined);
  const banks = Math.max(1, ...shown.map((c) => c.banks));
  const mixed = banks > 1 && shown.some((c) => c.banks < banks);
  const cellText = (c: (typeof shown)[number] | undefined) => (c ? `${intervalText(c)}${mixed && c.banks < banks ? " †" : ""}` : "–");
  const overBanks =
    banks > 1
      ? ` Over the bank and its ${banks - 1} other draw(s) (knn.otherBanks) as well (three-way crossed), the mean over every bank${mixed ? "; † against knn.bank alone, where the original or a cell (a curve of a build before its points kept those scores) was not classified against every bank" : ""}.`
      : r.config.knn.otherBanks
        ? " Against knn.bank alone: the original backbone or the cells were not classified against every bank of knn.otherBanks."
        : "";
  const out = [
    "",
    oneSeed
      ? `Forgetting: each row's source k-NN accuracy less the original backbone's (${base}%), in points, paired query by query with the original's answers: mean [${CONFIDENCE * 100}% confidence interval] over the k-NN queries alone (one seed: the interval counts the draw of the queries, not training's randomness, and speaks of this seed's training). An interval wholly below 0 is a loss larger than the draw of the queries explains.${overBanks}`
      : `Forgetting: each row's source k-NN accuracy less the original backbone's (${base}%), in points, paired query by query with the original's answers: mean [${CONFIDENCE * 100}% confidence interval] over the seeds and the k-NN queries, both taken as samples (a crossed design, Satterthwaite's degrees of freedom; the original's answers are the same in every seed; a row of one seed over its queries alone). An interval wholly below 0 is a loss larger than training's randomness and the draw of the queries together explain.${overBanks}`,
    "",
    `| Strategy | Seeds | Best checkpoint |${steps.map((step) => ` Step ${step} |`).join("")}`,
    `|---|---:|---:|${steps.map(() => "---:|").join("")}`,
    ...rows.map((row) => `| ${strategyName(row.strategy)} | ${row.seeds} | ${cellText(row.knnChange)} |${steps.map((step) => ` ${cellText(row.knnCurve!.find((p) => p.step === step)!.change)} |`).join("")}`),
  ];
  const curves = rows.filter((row) => row.knnCurve?.some((p) => p.step > 0 && p.change));
  if (curves.length > 0) {
    const first = curves.map((row) => {
      const at = row.knnCurve!.find((p) => p.step > 0 && p.change !== undefined && p.change.hi < 0);
      return `${strategyName(row.strategy)} ${at ? `step ${at.step}` : "none"}`;
    });
    out.push("", `The first step whose interval lies wholly below 0 (each interval is ${CONFIDENCE * 100}% on its own; a step before it may have lost less than these queries can tell): ${first.join(", ")}.`);
  }
  return [...out, ...betweenStepsMarkdown(rows)];
}

// What a paired change's interval is over, in words: the seeds (unless every row has one), `queries`, and the banks
// where the answers were against more than one (`banks`, the most).
const intervalOver = (rows: { seeds: number }[], queries: string, banks: number): string[] => [...(rows.every((row) => row.seeds === 1) ? [] : ["the seeds"]), queries, ...(banks > 1 ? ["the banks"] : [])];

// Each row's change from one step of its curve to the next (results.ts sincePrevious): whether it went on forgetting
// after a step, or won some back.
function betweenStepsMarkdown(rows: StudyResults["table"]): string[] {
  const curves = rows.filter((row) => row.knnCurve?.some((p) => p.sincePrevious));
  if (curves.length === 0) return [];
  const steps = curves[0].knnCurve!.map((p) => p.step);
  const spans = steps.slice(1).map((step, i) => ({ step, from: steps[i] }));
  const shown = curves.flatMap((row) => row.knnCurve!.flatMap((p) => (p.sincePrevious ? [p.sincePrevious] : [])));
  const banks = Math.max(...shown.map((c) => c.banks));
  const mixed = shown.some((c) => c.banks < banks);
  const over = intervalOver(curves, "the k-NN queries", banks);
  const text = (c: (typeof shown)[number] | undefined) => (c ? `${intervalText(c)}${mixed && c.banks < banks ? " †" : ""}` : "–");
  return [
    "",
    `Between steps (forgetting-between-steps.*): each row's source k-NN accuracy at a step less at the step before, in points, each seed's answers paired query by query with its own there: mean [${CONFIDENCE * 100}% confidence interval] over ${andList(over)}${mixed ? " († against knn.bank alone, where a point of a build before its points kept the other banks' answers was not classified against every bank)" : ""}. An interval wholly below 0 is forgetting that went on between the two steps; wholly above, accuracy won back.`,
    "",
    `| Strategy | Seeds |${spans.map((s) => ` ${s.from} → ${s.step} |`).join("")}`,
    `|---|---:|${spans.map(() => "---:|").join("")}`,
    ...curves.map((row) => `| ${strategyName(row.strategy)} | ${row.seeds} |${spans.map((s) => ` ${text(row.knnCurve!.find((p) => p.step === s.step)?.sincePrevious)} |`).join("")}`),
    ...toLastStep(curves, over, text),
    ...betweenStepsByClass(curves),
    ...betweenStepsAnswers(rows),
  ];
}

// Each row's change from every earlier step to its curve's last (results.ts knnSpans): where it ended against where
// it was, a span with an interval of its own (knn-spans.csv holds every pair of steps).
// `text`: a change as the between-steps table writes it (marked where against knn.bank alone).
function toLastStep(rows: StudyResults["table"], over: string[], text: (c: (MeanInterval & { banks: number }) | undefined) => string): string[] {
  const last = rows[0].knnCurve!.at(-1)!.step;
  const froms = rows[0].knnCurve!.slice(0, -1).map((p) => p.step);
  const at = (row: TableRow, from: number) => row.knnSpans?.find((s) => s.from === from && s.to === last)?.change;
  if (!rows.some((row) => froms.some((from) => at(row, from)))) return [];
  return [
    "",
    `To the last step (${SPANS_CSV} holds every pair of steps): each row's source k-NN accuracy at step ${last} less at each earlier step, paired the same way: mean [${CONFIDENCE * 100}% confidence interval] over ${andList(over)}. Above 0 from a step, the row ended above where it was then: it won back some of what it had lost by that step.`,
    "",
    `| Strategy | Seeds |${froms.map((from) => ` ${from} → ${last} |`).join("")}`,
    `|---|---:|${froms.map(() => "---:|").join("")}`,
    ...rows.map((row) => `| ${strategyName(row.strategy)} | ${row.seeds} |${froms.map((from) => ` ${text(at(row, from))} |`).join("")}`),
  ];
}

// How often each class is the answer, from each step to the next (results.ts answersSincePrevious): a line per row
// and span, a column per class given (the answers hold the classes given for at most MAX_CLASSES classes).
function betweenStepsAnswers(rows: StudyResults["table"]): string[] {
  const spans = spansWith(rows, (p) => p.answersSincePrevious);
  if (spans.length === 0) return [];
  const banks = Math.max(...spans.map(({ since }) => since.banks));
  const over = intervalOver(rows, "every query", banks);
  return [
    "",
    `As the answer (${ANSWERS_BETWEEN_CSV}): the share of every query given each class at a step less at the step before, in points, each seed's classes given paired query by query with its own there: mean [${CONFIDENCE * 100}% confidence interval] over ${andList(over)}.`,
    "",
    ...spanTable(spans[0].since.given, spans, (since) => since.every.change),
  ];
}

type RowPoint = NonNullable<TableRow["knnCurve"]>[number];
type Span<T> = { row: TableRow; from: number; step: number; since: T };

// Each row's points that hold `since` (a change since the point before), with the step before.
function spansWith<T>(rows: TableRow[], since: (p: RowPoint) => T | undefined): Span<T>[] {
  return rows.flatMap((row) =>
    (row.knnCurve ?? []).flatMap((p, i) => {
      const s = since(p);
      return s === undefined ? [] : [{ row, from: row.knnCurve![i - 1].step, step: p.step, since: s }];
    }),
  );
}

// A table of changes between steps: a line per row and span, a column per name (`changes` in the names' order).
function spanTable<T>(names: string[], spans: Span<T>[], changes: (since: T) => MeanInterval[]): string[] {
  return [
    `| Strategy | Steps |${names.map((name) => ` ${name} |`).join("")}`,
    `|---|---|${names.map(() => "---:|").join("")}`,
    ...spans.map(({ row, from, step, since }) => `| ${strategyName(row.strategy)} | ${from} → ${step} |${changes(since).map((c) => ` ${intervalText(c)} |`).join("")}`),
  ];
}

// The same class by class (results.ts byClassSincePrevious), a line per row and span, a column per class, for at
// most MAX_CLASSES classes; knn-classes-between.csv holds every class.
function betweenStepsByClass(rows: StudyResults["table"]): string[] {
  const spans = spansWith(rows, (p) => p.byClassSincePrevious);
  if (spans.length === 0) return [];
  const classes = spans[0].since;
  const over = intervalOver(rows, "the class's queries", Math.max(...classes.map((c) => c.change.banks)));
  const intro = `By class (${BETWEEN_CSV}): the same on each class's queries, paired the same way, the interval over ${andList(over)}.`;
  if (classes.length > MAX_CLASSES) return ["", `${intro} Every one of the ${classes.length} classes of knn.queries is in the file.`];
  return ["", intro, "", ...spanTable(classes.map((c) => c.name), spans, (since) => since.map((c) => c.change))];
}

// Each row's forgetting class by class of knn.queries (results.ts knnByClass): a column per class, headed by the
// original's accuracy on it, for at most MAX_CLASSES classes; for more (ImageNet's thousand), each row's three
// classes that lost most, and knn-classes.csv for the rest.
function classesMarkdown(r: StudyResults): string[] {
  const rows = r.table.filter((row) => row.knnByClass);
  if (rows.length === 0) return [];
  const classes = rows[0].knnByClass!;
  const banks = Math.max(...rows.flatMap((row) => row.knnByClass!.map((c) => c.change.banks)));
  const how = classChangeHow(rows, banks);
  if (classes.length > MAX_CLASSES) {
    const worst = rows.map((row) => {
      const lost = [...row.knnByClass!].sort((a, b) => a.change.mean - b.change.mean).slice(0, 3);
      return `- ${strategyName(row.strategy)}: ${lost.map((c) => `${c.name} ${intervalText(c.change)}`).join("; ")}`;
    });
    return ["", `Forgetting by class (${CLASSES_CSV}: every one of the ${classes.length} classes of knn.queries): each row's source k-NN accuracy on a class's queries less the original backbone's, ${how}. The three classes each row lost most:`, "", ...worst];
  }
  // Intervals that can exclude 0 by chance: not those of linear probing, whose answers are the original's.
  const intervals = rows.reduce((n, row) => n + row.knnByClass!.filter((c) => c.change.lo < c.change.hi).length, 0);
  return [
    "",
    `Forgetting by class (${CLASSES_CSV}, forgetting-classes.png): each row's source k-NN accuracy on each class of knn.queries less the original backbone's (beside each class's name: the original's accuracy on its queries, and how many), ${how}. Each interval is ${CONFIDENCE * 100}% on its own: of these ${intervals}, about ${(intervals * (1 - CONFIDENCE)).toFixed(1)} would exclude 0 by chance where no class was forgotten.`,
    "",
    `| Strategy | Seeds |${classes.map((c) => ` ${c.name} (${c.original.toFixed(1)}%, ${c.queries} queries) |`).join("")}`,
    `|---|---:|${classes.map(() => "---:|").join("")}`,
    ...rows.map((row) => `| ${strategyName(row.strategy)} | ${row.seeds} |${row.knnByClass!.map((c) => ` ${intervalText(c.change)} |`).join("")}`),
  ];
}

// How a change of a class's queries was paired and over what its interval is, for `rows` whose answers were against
// `banks` banks at most.
function classChangeHow(rows: { seeds: number }[], banks: number): string {
  const over = intervalOver(rows, "the class's queries", banks);
  return `in points, paired query by query with the original's answers as above: mean [${CONFIDENCE * 100}% confidence interval] over ${andList(over)}`;
}

// Where each row's lost queries went (results.ts knnConfusion): its three moves away from a query's class that grew
// most, and knn-confusion.csv for every class given.
function confusionMarkdown(r: StudyResults): string[] {
  const rows = r.table.filter((row) => row.knnConfusion);
  if (rows.length === 0) return [];
  const how = classChangeHow(rows, Math.max(...rows.map((row) => row.knnConfusion!.banks)));
  const moves = rows.map((row) => {
    const c = row.knnConfusion!;
    const grew = confusionMoves(c).slice(0, 3);
    const answers = c.every.change.map((change, j) => ({ name: c.given[j], change })).sort((a, b) => a.change.mean - b.change.mean);
    const [fewest, most] = [answers[0], answers[answers.length - 1]];
    const ends = fewest.change.mean < 0 && most.change.mean > 0 ? `; as the answer, ${most.name} ${intervalText(most.change)}, ${fewest.name} ${intervalText(fewest.change)}` : "";
    return `- ${strategyName(row.strategy)}: ${grew.length > 0 ? grew.map((m) => `${m.from} → ${m.to} ${intervalText(m.change)}`).join("; ") : "none grew"}${ends}`;
  });
  return [
    "",
    `Where the forgotten queries went (${CONFUSION_CSV}, forgetting-confusion.png): the share of a class's queries the source k-NN gave another class, less the original backbone's share, ${how}. The three moves (a class's queries → the class they were given) that grew most in each row, and the classes given most more and most less often, in points of every query:`,
    "",
    ...moves,
  ];
}

// The paired differences between the rows, and of each row's strategy at its other rates against the row, where
// some such pair has an interval: two seeds or more, or one seed whose cells kept their answers per image.
function comparisonsMarkdown(r: StudyResults): string[] {
  const rows = r.comparisons.some(hasInterval) ? r.comparisons : [];
  const rates = r.rates.some(hasInterval) ? r.rates : [];
  const shown = [...rows, ...rates].filter(hasInterval);
  if (shown.length === 0) return [];
  const { how, mark } = pairingText(shown);
  const out: string[] = [];
  if (rows.length > 0) {
    out.push(
      "",
      `Differences between the rows, A - B in points, ${how}${chanceText(rows, "two strategies")}`,
      "",
      "| A - B | Seeds | Transfer acc. | Source k-NN acc. |",
      "|---|---:|---:|---:|",
      ...rows.map((c) => `| ${c.a} - ${c.b} | ${c.seeds.length}${mark(c)} | ${intervalText(c.transfer)} | ${intervalText(c.knn)} |`),
    );
  }
  if (rates.length > 0) {
    const rule = { transfer: "its best transfer accuracy", mean: "its best mean of transfer accuracy and source k-NN", knee: "its knee" }[r.selectBy];
    out.push(
      "",
      `Each strategy at its other learning rates against its row's rate (${rule}${chosenOn(r)}), the other rate's cells - the row's in points, ${rows.length > 0 ? "paired as above." : how}${chanceText(rates, "two rates")}`,
      "",
      "| Strategy | lr - row's lr | Seeds | Transfer acc. | Source k-NN acc. |",
      "|---|---|---:|---:|---:|",
      ...rates.map((c) => `| ${c.strategy} | ${c.lr} - ${c.rowLr} | ${c.seeds.length}${mark(c)} | ${intervalText(c.transfer)} | ${intervalText(c.knn)} |`),
    );
  }
  return out;
}

// Each interval holds at its level on its own; read together (ten pairs of five strategies, `scores` accuracies
// each), some exclude 0 by chance alone.
export function chanceText(of: Pairing[], where: string, scores = 2): string {
  const intervals = scores * of.filter(hasInterval).length;
  return ` Each interval is ${CONFIDENCE * 100}% on its own: of these ${intervals}, about ${(intervals * (1 - CONFIDENCE)).toFixed(1)} would exclude 0 by chance where no ${where} differed.`;
}

// How the intervals of `shown` (differences that have one) were paired, for the sentence before their table, and the
// mark of a row whose interval is of another kind than the rest.
export function pairingText(shown: Pairing[]): { how: string; mark: (c: Pairing) => string } {
  // Cells of builds that did not record which images they got right have intervals over the seeds alone; where a
  // table has both kinds, those rows are marked.
  const bySeeds = shown.filter((c) => !c.images).length;
  const mixed = bySeeds > 0 && bySeeds < shown.length;
  // Pairs of one seed have intervals over the images alone; beside pairs of several, they are marked.
  const single = shown.filter((c) => c.seeds.length === 1).length;
  const mark = (c: Pairing) => (mixed && c.seeds.length >= 2 && !c.images ? " †" : single > 0 && single < shown.length && c.seeds.length === 1 ? " ‡" : "");
  // With knn.otherBanks, the k-NN intervals count the bank's draw too, where every pair was scored on the banks.
  const banks = Math.max(...shown.map((c) => c.banks));
  const allBanks = shown.every((c) => !c.images || c.banks === banks);
  const overBanks =
    banks > 1
      ? ` The source k-NN intervals are over the bank and its ${banks - 1} other draw(s) (knn.otherBanks) as well, a third sample (three-way crossed), and count the draw of the bank too${allBanks ? "" : ", where both cells were classified against every bank (the others count the seeds and queries only)"}.`
      : "";
  const crossed = `paired by seed and by image: mean [${CONFIDENCE * 100}% confidence interval] over the seeds both finished and the transfer test images (k-NN queries), both taken as samples (a crossed design: the variance of the seeds' part and of the images', Satterthwaite's degrees of freedom). An interval without 0 is a difference larger than training's randomness and the draw of the test images together explain.${overBanks}`;
  const seedsOnly = `paired by seed: mean [${CONFIDENCE * 100}% confidence interval, Student's t] over the seeds both finished. An interval without 0 is a difference larger than training's randomness explains; every cell is scored on the same images, so it speaks of these images.`;
  const oneSeed = `paired image by image: mean [${CONFIDENCE * 100}% confidence interval] over the transfer test images (k-NN queries) alone${banks > 1 ? ", and the source k-NN's over the banks of knn.otherBanks too (two-way crossed)" : ""}. One seed: the interval counts the draw of the images, not training's randomness, and speaks of this seed's training; an interval without 0 is a difference larger than the draw of the images explains.`;
  const how =
    single === shown.length ? oneSeed
    : bySeeds === 0 ? `${crossed}${single > 0 ? " Rows marked ‡ have one seed: their intervals are over the images alone and speak of that seed's training." : ""}`
    : !mixed ? `${seedsOnly} (Its cells, from a build before per-image results, do not record which images they got right; cells trained anew do, and their intervals count the draw of the images too.)`
    : `${crossed} Rows marked † have cells that do not record which images they got right: their intervals are over the seeds alone (Student's t) and speak of these images.`;
  return { how, mark };
}

// The images that chose the rows' rates, where not the test images and the queries: transfer.val's for the accuracy,
// knn.val's for the source k-NN (which selectBy "transfer" does not read).
function chosenOn(r: StudyResults): string {
  const on = [...(r.selectedOn === "transfer.val" ? ["transfer.val"] : []), ...(r.config.knn.val && r.selectBy !== "transfer" ? ["knn.val"] : [])];
  return on.length > 0 ? ` on ${on.join(" and ")}` : "";
}

// How the cells were fine-tuned, beside the data: batch, optimiser and, where not f32, the products' precision.
function trainingText(t: StudyConfig["training"]): string {
  const precision = { f16: "mixed precision (f16 products)", int8: "precision int8 (products as 3 int8 slices)", int8x2: "precision int8x2 (products as 2 int8 slices)" };
  return [`batch ${t.batchSize}`, t.optimizer, ...(t.precision && t.precision !== "f32" ? [precision[t.precision]] : [])].join(", ");
}

// ---- figures ----

// By file name; a figure that does not apply to the study (the forgetting curve without knn.atSteps) has no spec.
// None is drawn without a table row (writeReport): every strategy diverged, and there is no point to place.
const FIGURES: Record<string, (r: StudyResults) => FigureSpec | undefined | Promise<FigureSpec>> = {
  figure2: figure2Spec,
  forgetting: (r) => (r.config.knn.atSteps ? forgettingCurveSpec(r) : undefined),
  figure3: (r) => (hasFigure3(r) ? figure3Spec(r) : undefined),
  tradeoff: (r) => (hasTradeoff(r) ? tradeoffSpec(r) : undefined),
  "forgetting-classes": (r) => (hasClassFigure(r) ? forgettingClassesSpec(r) : undefined),
  "forgetting-classes-curve": (r) => (hasClassCurveFigure(r) ? forgettingClassesCurveSpec(r) : undefined),
  "forgetting-confusion": (r) => (hasConfusionFigure(r) ? forgettingConfusionSpec(r) : undefined),
  "forgetting-confusion-curve": (r) => (hasConfusionCurveFigure(r) ? forgettingConfusionCurveSpec(r) : undefined),
  "forgetting-between-steps": (r) => (hasBetweenFigure(r) ? forgettingBetweenSpec(r) : undefined),
};

const CLASSES_CSV = "knn-classes.csv";
const BETWEEN_CSV = "knn-classes-between.csv";
const CONFUSION_CSV = "knn-confusion.csv";
const ANSWERS_BETWEEN_CSV = "knn-answers-between.csv";
const SPANS_CSV = "knn-spans.csv";

// The CSV files beside results.csv, each where the results have what it holds (else an earlier report's is removed).
const onCurve = (r: StudyResults, has: (p: RowPoint) => unknown) => r.table.some((row) => row.knnCurve?.some(has));
const CSVS: [string, (r: StudyResults) => boolean, (r: StudyResults) => string][] = [
  [CLASSES_CSV, (r) => r.table.some((row) => row.knnByClass), (r) => knnClassesCsv(r.table)],
  [BETWEEN_CSV, (r) => onCurve(r, (p) => p.byClassSincePrevious), (r) => classesBetweenCsv(r.table)],
  [CONFUSION_CSV, (r) => r.table.some((row) => row.knnConfusion), (r) => knnConfusionCsv(r.table)],
  [ANSWERS_BETWEEN_CSV, (r) => onCurve(r, (p) => p.answersSincePrevious), (r) => answersBetweenCsv(r.table)],
  [SPANS_CSV, (r) => r.table.some((row) => row.knnSpans), spansCsv],
];

// Every file writeReport can write (what --force removes).
export const REPORT_FILES = ["results.json", "results.csv", "table.md", ...CSVS.map(([name]) => name), ...Object.keys(FIGURES).flatMap(figureFileNames)];

// Writes every report file into `out`, and removes a figure's files that an earlier report there wrote but these
// results no longer have (a rate dropped from the config, a seed that diverged since): left, they would show cells
// the table no longer does. Returns the paths written.
export async function writeReport(out: string, r: StudyResults): Promise<string[]> {
  const files: [string, string | Uint8Array][] = [
    ["results.csv", resultsCsv(r)],
    ["table.md", tableMarkdown(r)],
  ];
  const stale: string[] = [];
  for (const [name, has, csv] of CSVS) {
    if (has(r)) files.push([name, csv(r)]);
    else stale.push(name);
  }
  const figures: [string, FigureSpec][] = [];
  for (const [name, specOf] of Object.entries(FIGURES)) {
    // A table without rows (every strategy diverged) leaves nothing to draw.
    const spec = r.table.length > 0 ? await specOf(r) : undefined;
    if (spec) figures.push([name, spec]);
    else stale.push(...figureFileNames(name));
  }
  files.push(...(await figureFiles(figures)));
  const paths: string[] = [join(out, "results.json")];
  await writeJsonAtomic(paths[0], resultsJson(r));
  for (const [name, data] of files) {
    await writeFileAtomic(join(out, name), data);
    paths.push(join(out, name));
  }
  for (const name of stale) await rm(join(out, name), { force: true });
  return paths;
}
