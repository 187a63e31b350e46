// Two run folders' cells against each other: what a change of the config did, where the change is one a run folder
// holds a single value of (linearProbe.headNorm, training.steps, the backbone, ...), so that the two sides of it are
// two studies. Each strategy at each rate both runs finished, B's cells less A's, paired by seed and, where both
// recorded their answers, image by image (study/comparisons.ts), as a study pairs its own rows: the two runs must
// have scored the same transfer test images and k-NN queries, at the same k. With `tableRates`, each strategy's table
// row in B against its row in A, whose rates may differ; with `rates`, its cells at one rate in A against those at
// another in B (a change that moves the best rate, compared where each run's curve is). With `curve`, each pair's
// forgetting curve too: B's source k-NN less A's after each step of knn.atSteps that both runs scored, paired as
// the cells are.
import { strategyName } from "../peft/strategy.js";
import { differences } from "../util/differences.js";
import { meanStd } from "../util/stats.js";
import { type Difference, type PairedCell, type PairedKnn, seedPairedDifference, seedPairedKnnDifference } from "./comparisons.js";
import { type StudyConfig, studyIdentity } from "./config.js";
import { chanceText, hasInterval, intervalText, pairingText } from "./report.js";
import { type CellResult, type StudyResults, pairedCell, unpackCorrect } from "./results.js";
import type { RunFolder } from "./run-folder.js";

export interface RunPair extends Difference {
  strategy: string; // by name
  lrA: number;
  lrB: number;
  a: { transfer: number; knn: number }; // A's means over the seeds both runs finished, percent
  b: { transfer: number; knn: number };
  curve?: CurvePair[]; // with `curve`: one per step of RunComparison's curveSteps
}

// A pair's backbones after `step` fine-tuning steps (knn.atSteps): B's source k-NN less A's.
export interface CurvePair extends Omit<Difference, "transfer"> {
  step: number;
  a: number; // A's source k-NN, its mean over the seeds both runs finished, percent
  b: number;
}

export interface RunComparison {
  a: { dir: string; name: string };
  b: { dir: string; name: string };
  changes: string[]; // what B's config holds that A's does not, e.g. 'linearProbe: {"lr":1} -> {"lr":1,"headNorm":1.3}'
  tableRates: boolean;
  rates?: [number, number];
  curveSteps?: number[]; // with `curve`: the steps of knn.atSteps both runs scored
  pairs: RunPair[]; // in A's order of strategies and rates
  // A strategy and rate that one run finished and the other did not, e.g. "full-lpft lr 0.0001: A only", and the
  // seeds a row lost to a divergence, e.g. "full-lpft lr 0.03: seed 3 diverged in B"; with `curve`, the steps of
  // knn.atSteps one run alone scored, e.g. "knn.atSteps 1000, 1500: B only".
  unpaired: string[];
}

export interface RunComparisonOptions {
  strategies?: string[]; // only these (names as the configs write them); default: every strategy of both
  tableRates?: boolean; // each strategy's table row against its row in the other run
  rates?: [number, number]; // each strategy's cells at rates[0] in A against those at rates[1] in B
  curve?: boolean; // each pair's forgetting curve too (knn.atSteps)
}

// The images both runs must have scored, by results' data key (their files' identity, where a finished run recorded
// it) and config path (their spec, where it did not).
const PAIRED_DATA = [
  { key: "transferTest", path: "transfer.test", spec: (c: StudyConfig) => c.transfer.test },
  { key: "queries", path: "knn.queries", spec: (c: StudyConfig) => c.knn.queries },
] as const;

export function compareRuns(a: RunFolder, b: RunFolder, opts: RunComparisonOptions = {}): RunComparison {
  const [ra, rb] = [finished(a), finished(b)];
  for (const d of PAIRED_DATA) {
    const [ia, ib] = [ra.notes.data[d.key], rb.notes.data[d.key]];
    const [x, y] = ia && ib ? [ia, ib] : [d.spec(a.config), d.spec(b.config)];
    if (JSON.stringify(x) !== JSON.stringify(y)) {
      throw new Error(`compare: ${a.dir} and ${b.dir} scored other ${d.path} images (${JSON.stringify(x)} against ${JSON.stringify(y)}): their cells cannot be paired image by image`);
    }
  }
  if (ra.reportK !== rb.reportK) throw new Error(`compare: ${a.dir} reports the ${ra.reportK}-NN and ${b.dir} the ${rb.reportK}-NN (knn.reportK): expected the same k`);
  const k = String(ra.reportK);
  // Answers against other draws of the bank pair only where both runs drew the same ones.
  const sameBanks = JSON.stringify(a.config.knn.otherBanks) === JSON.stringify(b.config.knn.otherBanks);
  const cellsOf = (r: StudyResults): PairedCell[] =>
    r.cells.map((c) => {
      const p = pairedCell(c, k);
      return sameBanks || !p.correct ? p : { ...p, correct: { ...p.correct, otherBanks: undefined } };
    });
  // A cell's backbone after `step` steps, as the comparisons pair it.
  const pointOf = (c: CellResult, step: number): PairedKnn => {
    const p = c.knnCurve!.find((point) => point.step === step)!;
    const otherBanks = sameBanks && p.otherBanks ? p.otherBanks.map((bank) => unpackCorrect(bank.correct)) : undefined;
    return { seed: c.seed, knn: p.knn[k].top1, correct: p.correct && { knn: unpackCorrect(p.correct), ...(otherBanks && { otherBanks }) } };
  };
  const curvePair = (step: number, ga: CellResult[], gb: CellResult[]): CurvePair => {
    const [pa, pb] = [ga, gb].map((cells) => cells.map((c) => pointOf(c, step)));
    const mean = (points: PairedKnn[]) => meanStd(points.map((p) => p.knn))[0];
    return { step, a: mean(pa), b: mean(pb), ...seedPairedKnnDifference(pb, pa) };
  };
  const [stepsA, stepsB] = [a, b].map((run) => run.config.knn.atSteps ?? []);
  const curveSteps = stepsA.filter((step) => stepsB.includes(step));
  if (opts.curve && curveSteps.length === 0) {
    const scored = (run: RunFolder, steps: number[]) => `${run.dir} ${steps.length > 0 ? `at steps ${steps.join(", ")}` : "at none"}`;
    throw new Error(`compare: --curve: expected runs that scored their backbones after some same step of fine-tuning (knn.atSteps), got ${scored(a, stepsA)} and ${scored(b, stepsB)}`);
  }
  const [ca, cb] = [cellsOf(ra), cellsOf(rb)];
  const [namesA, namesB] = [a.config, b.config].map((c) => c.strategies.map(strategyName));
  const common = namesA.filter((n) => namesB.includes(n));
  for (const name of opts.strategies ?? []) {
    if (!common.includes(name)) throw new Error(`compare: --strategies: expected strategies of both runs (${common.join(", ") || "none"}), got ${name}`);
  }
  // Each strategy's (rate in A, rate in B): its table rows', or every rate either run finished.
  const [rowsA, rowsB] = [ra, rb].map((r) => new Map(r.table.map((row) => [strategyName(row.strategy), row.lr])));
  const finishedRates = (cells: PairedCell[], name: string) => [...new Set(cells.filter((c) => c.strategy === name).map((c) => c.lr))];
  const pairs: RunPair[] = [];
  const unpaired: string[] = [];
  for (const name of common.filter((n) => !opts.strategies || opts.strategies.includes(n))) {
    const group = <C extends { strategy: string; lr: number; seed: number }>(cells: C[], lr: number, seeds?: number[]) =>
      cells.filter((c) => c.strategy === name && c.lr === lr && (!seeds || seeds.includes(c.seed)));
    const [inA, inB] = [finishedRates(ca, name), finishedRates(cb, name)];
    const rates: [number | undefined, number | undefined][] = opts.tableRates
      ? [[rowsA.get(name), rowsB.get(name)]]
      : opts.rates
        ? [[inA.includes(opts.rates[0]) ? opts.rates[0] : undefined, inB.includes(opts.rates[1]) ? opts.rates[1] : undefined]]
        : [...new Set([...inA, ...inB])].map((lr) => [inA.includes(lr) ? lr : undefined, inB.includes(lr) ? lr : undefined]);
    for (const [lrA, lrB] of rates) {
      if (lrA === undefined || lrB === undefined) {
        if (lrA !== undefined || lrB !== undefined) unpaired.push(`${name} lr ${lrA ?? lrB}: ${lrA === undefined ? "B" : "A"} only`);
        continue;
      }
      const [ga, gb] = [group(ca, lrA), group(cb, lrB)];
      const d = seedPairedDifference(gb, ga);
      if (d.seeds.length === 0) {
        unpaired.push(`${name} lr ${lrA === lrB ? lrA : `${lrA} / ${lrB}`}: no seed finished in both`);
        continue;
      }
      const mean = (cells: PairedCell[]) => {
        const on = cells.filter((c) => d.seeds.includes(c.seed));
        return { transfer: meanStd(on.map((c) => c.transfer))[0], knn: meanStd(on.map((c) => c.knn))[0] };
      };
      const curve = opts.curve ? curveSteps.map((step) => curvePair(step, group(ra.cells, lrA, d.seeds), group(rb.cells, lrB, d.seeds))) : undefined;
      pairs.push({ strategy: name, lrA, lrB, a: mean(ga), b: mean(gb), ...d, ...(curve && { curve }) });
      // A seed that diverged in either run has no cell there to pair: the row leaves it out, and says so.
      for (const [run, r, lr] of [["A", ra, lrA], ["B", rb, lrB]] as const) {
        const lost = r.diverged.filter((c) => c.strategy === name && c.lr === lr).map((c) => c.seed);
        if (lost.length > 0) unpaired.push(`${name} lr ${lr}: seed${lost.length > 1 ? "s" : ""} ${lost.join(", ")} diverged in ${run}`);
      }
    }
  }
  if (opts.curve) {
    for (const [run, steps, other] of [["A", stepsA, stepsB], ["B", stepsB, stepsA]] as const) {
      const alone = steps.filter((step) => !other.includes(step));
      if (alone.length > 0) unpaired.push(`knn.atSteps ${alone.join(", ")}: ${run} only`);
    }
  }
  if (pairs.length === 0) throw new Error(`compare: no strategy and rate that both ${a.dir} and ${b.dir} finished with a common seed${unpaired.length > 0 ? ` (${unpaired.join("; ")})` : ""}`);
  pairs.sort((x, y) => namesA.indexOf(x.strategy) - namesA.indexOf(y.strategy) || x.lrA - y.lrA);
  return {
    a: { dir: a.dir, name: a.config.name },
    b: { dir: b.dir, name: b.config.name },
    changes: differences(JSON.parse(studyIdentity(a.config)), JSON.parse(studyIdentity(b.config))).map((d) => d.text),
    tableRates: opts.tableRates ?? false,
    ...(opts.rates && { rates: opts.rates }),
    ...(opts.curve && { curveSteps }),
    pairs,
    unpaired,
  };
}

function finished(run: RunFolder): StudyResults {
  if (!run.results || run.results.cells.length === 0) throw new Error(`compare: ${run.dir} has no finished cells (a cells/<id>/result.json of a cell that did not diverge, beside baseline.json)`);
  return run.results;
}

// The comparison as markdown: what differs, then a row per strategy and rate, the intervals explained as a study's
// table explains its own (study/report.ts).
export function runComparisonMarkdown(c: RunComparison): string {
  const shown = c.pairs.filter(hasInterval);
  const { how, mark } = shown.length > 0 ? pairingText(shown) : { how: "paired by seed: one seed without answers per image, so no interval.", mark: () => "" };
  const which = c.tableRates ? "Each strategy at its table rate in each run (lr: A's -> B's)" : c.rates ? `Each strategy at ${c.rates[0]} in A and ${c.rates[1]} in B` : "Each strategy at each rate both runs finished";
  const means = (x: { transfer: number; knn: number }) => `${x.transfer.toFixed(2)} / ${x.knn.toFixed(2)}`;
  const lr = (p: RunPair) => (p.lrA === p.lrB ? String(p.lrA) : `${p.lrA} -> ${p.lrB}`);
  const lines = [
    `# ${c.b.name} against ${c.a.name}`,
    "",
    `A: ${c.a.dir}; B: ${c.b.dir}.`,
    "",
    c.changes.length > 0 ? `What differs in B's config from A's: ${c.changes.join("; ")}.` : "Their configs hold the same study: the differences are the runs' own (another build, or another machine).",
    "",
    `${which}, B's cells - A's in points, ${how}${shown.length > 0 ? chanceText(shown, "two runs") : ""}`,
    "",
    "| Strategy | lr | Seeds | A: transfer / source k-NN (%) | B: transfer / source k-NN (%) | B - A transfer | B - A source k-NN |",
    "|---|---|---:|---:|---:|---:|---:|",
    ...c.pairs.map((p) => `| ${p.strategy} | ${lr(p)} | ${p.seeds.length}${mark(p)} | ${means(p.a)} | ${means(p.b)} | ${intervalText(p.transfer)} | ${intervalText(p.knn)} |`),
  ];
  if (c.curveSteps) lines.push("", ...curveMarkdown(c, lr));
  if (c.unpaired.length > 0) lines.push("", `Not compared: ${c.unpaired.join("; ")}.`);
  return lines.join("\n") + "\n";
}

// Each pair's forgetting curve: a row per step both runs scored (knn.atSteps), its intervals explained as the cells'.
function curveMarkdown(c: RunComparison, lr: (p: RunPair) => string): string[] {
  const points = c.pairs.flatMap((p) => p.curve!);
  const shown = points.filter(hasInterval);
  const { how, mark } = shown.length > 0 ? pairingText(shown) : { how: "paired by seed: one seed without answers per query, so no interval.", mark: () => "" };
  return [
    `Along fine-tuning (knn.atSteps): each pair's cells' backbones after ${c.curveSteps!.join(", ")} steps, B's source k-NN - A's in points, ${how}${shown.length > 0 ? chanceText(shown, "two runs", 1) : ""}`,
    "",
    "| Strategy | lr | Step | Seeds | A: source k-NN (%) | B: source k-NN (%) | B - A source k-NN |",
    "|---|---|---:|---:|---:|---:|---:|",
    ...c.pairs.flatMap((p) => p.curve!.map((q) => `| ${p.strategy} | ${lr(p)} | ${q.step} | ${q.seeds.length}${mark(q)} | ${q.a.toFixed(2)} | ${q.b.toFixed(2)} | ${intervalText(q.knn)} |`)),
  ];
}
