// A run folder's result files read back and checked: a cell's result.json (with its knn-val.json and
// knn-banks.json), baseline.json, and backbone.json; and one answer set written back into a cell's result.json. What
// the summary, the report and the analysis read of them is checked when they are read, so that a damaged or
// hand-edited file is named with the way out, rather than failing later inside the summary with a message that
// names no file.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { describeJson, isObject, readJsonFile } from "../util/json-file.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { unpackBits, unpackBytes } from "../util/bits.js";
import type { StudyConfig } from "./config.js";
import type { BaselineResult, CellOutcome, CellResult, Correct, KnnScores } from "./results.js";
import { KNN_BANKS_FILE, cellFolder, cellKnnBanksPath, cellKnnCurvePath, cellKnnValPath, cellResultPath, cellsOf } from "./cells.js";
import { strategyName } from "../peft/strategy.js";
import type { DatasetIdentity } from "../data/dataset.js";
import type { DataSpec } from "../data/spec.js";

type Json = Record<string, unknown>;

const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

// Numbers every finished cell's result.json holds (results.csv has a column for each).
const CELL_NUMBERS = ["lr", "seed", "trainableParams", "paperParams", "totalParams", "transferAccuracy", "finalTransferAccuracy", "bestStep", "finalLoss", "trainSeconds", "imagesPerSecond", "knnSeconds"];

// The k-NN scores at k: top-1 and top-5 accuracies.
function scoresProblem(v: unknown, what: string, k: number): string | undefined {
  const at = isObject(v) ? v[String(k)] : undefined;
  return isObject(at) && isNumber(at.top1) && isNumber(at.top5) ? undefined : `its ${what} without the top-1 and top-5 accuracies at k = ${k} (knn.reportK)`;
}

// The images a score got right (`"correct"`'s "transfer" or "knn"): a count and its bits, as many right as `percent`
// says, and where it holds them the classes given, a byte per image.
function correctProblem(v: unknown, what: string, percent: number): string | undefined {
  const bits = isObject(v) && typeof v.bits === "string" && typeof v.count === "number" && v.count > 0 ? unpackBits(v.bits, v.count) : undefined;
  if (!bits) return `its "correct" without the ${what} images' bits (a "count" and its "bits", packed)`;
  const right = (100 * bits.reduce((a, b) => a + b, 0)) / bits.length;
  if (Math.abs(right - percent) >= 1e-9) return `its "correct" ${what} bits right on ${right}% of the images, where its accuracy is ${percent}%`;
  const given = (v as Json).predicted;
  return given === undefined || (typeof given === "string" && unpackBytes(given, bits.length)) ? undefined : `its "correct" ${what} "predicted" not the classes given to ${bits.length} images (a byte each, in base64)`;
}

// How a key's value is shown: `no "lr"`, `"lr": "fast"`.
const field = (v: Json, key: string) => (v[key] === undefined ? `no "${key}"` : `"${key}": ${describeJson(v[key])}`);

function cellProblem(v: unknown, id: string, config: StudyConfig): string | undefined {
  if (!isObject(v)) return describeJson(v);
  if (v.id !== id) return `${field(v, "id")} in the folder of cell ${id}`;
  if (typeof v.strategy !== "string") return `${field(v, "strategy")} (a name)`;
  if ("diverged" in v) {
    const d = v.diverged;
    return isObject(d) && isNumber(d.step) && typeof d.message === "string" ? undefined : `${field(v, "diverged")} (a step and a message)`;
  }
  const bad = CELL_NUMBERS.find((key) => !isNumber(v[key]));
  if (bad) return `${field(v, bad)} (a number)`;
  const k = config.knn.reportK;
  const scores = scoresProblem(v.knn, `"knn"`, k);
  if (scores) return scores;
  if (config.transfer.val && !isNumber(v.valAccuracy)) return `${field(v, "valAccuracy")} (transfer.val chose its checkpoint)`;
  if (v.correct !== undefined) {
    const correct = isObject(v.correct) ? v.correct : {};
    const problem =
      correctProblem(correct.transfer, "transfer test", v.transferAccuracy as number) ??
      correctProblem(correct.knn, "k-NN query", (v.knn as Record<string, { top1: number }>)[String(k)].top1) ??
      (config.transfer.val && correct.val !== undefined ? correctProblem(correct.val, "transfer.val", v.valAccuracy as number) : undefined);
    if (problem) return problem;
  }
  for (const step of config.knn.atSteps ?? []) {
    const point = Array.isArray(v.knnCurve) ? v.knnCurve.find((p) => isObject(p) && p.step === step) : undefined;
    if (!isObject(point)) return `no point at step ${step} in its "knnCurve" (knn.atSteps)`;
    const problem =
      scoresProblem(point.knn, `"knnCurve" point at step ${step}`, k) ??
      (point.correct !== undefined ? correctProblem(point.correct, `"knnCurve" point at step ${step}'s k-NN query`, (point.knn as KnnScores)[String(k)].top1) : undefined);
    if (problem) return problem;
  }
  return undefined;
}

// The strategy, rate and seed a result.json states, against those its cell id stands for: the summary groups the
// cells by what the file says, so an edited one would move into another row without a word.
function identityProblem(v: Json, id: string, config: StudyConfig): string | undefined {
  const cell = cellsOf(config).find((c) => c.id === id);
  if (!cell) return undefined;
  const expected: [string, unknown][] = [["strategy", strategyName(cell.strategy)], ["lr", cell.lr], ["seed", cell.seed]];
  const [key, value] = expected.find(([key, value]) => v[key] !== value) ?? [];
  return key === undefined ? undefined : `expected "${key}": ${describeJson(value)} as the cell id ${id} says, got ${v[key] === undefined ? `no "${key}"` : describeJson(v[key])}`;
}

// cells/<id>/result.json: a finished or a diverged cell; a finished one with its scores on knn.val where the config
// has it and knn-val.json holds them for its spec (valKnn; absent: not scored yet, which the summary names), on
// every other bank of knn.otherBanks where knn-banks.json holds them all (otherBanks), and from knn-curve.json its
// curve's answers where result.json of an earlier build has none, and each point's scores against the other banks.
export async function readCellOutcome(out: string, id: string, config: StudyConfig, who: string): Promise<CellOutcome> {
  const path = cellResultPath(out, id);
  const v = await readJsonFile(path, who);
  // What the result lacks may be what the run's config.json asks of it (knn.reportK, knn.atSteps, transfer.val): a
  // config.json edited by hand since the cell ran asks for more than a sound result holds.
  const again = `delete the cell's folder ${cellFolder(out, id)} to train it again (or, where the run's config.json was edited after the cell ran, restore it)`;
  const problem = cellProblem(v, id, config);
  if (problem) throw new Error(`${who}: ${path}: expected a cell's result, found ${problem}; ${again}`);
  const contradiction = identityProblem(v as Json, id, config);
  if (contradiction) throw new Error(`${who}: ${path}: ${contradiction}; ${again}`);
  const outcome = v as unknown as CellOutcome;
  if ("diverged" in outcome) return outcome;
  if (config.knn.val) {
    const val = await readKnnVal(cellKnnValPath(out, id), config);
    if (val) outcome.valKnn = val.knn;
  }
  const banks = config.knn.otherBanks ? await readKnnBanks(cellKnnBanksPath(out, id), config, outcome.correct?.knn.count) : [];
  if (config.knn.otherBanks && banks.every((b) => b)) outcome.otherBanks = banks.map((b) => ({ knn: b!.knn, correct: b!.correct }));
  if (outcome.knnCurve) await addCurveFromFile(outcome, cellKnnCurvePath(out, id), config, banks);
  return outcome;
}

// What result.json's curve leaves to knn-curve.json (study/knn-curve.ts), which keeps it beside each point's scores:
// the answers of points of builds before result.json held them, and with knn.otherBanks each point's scores against
// the other banks. The file's point at a step must have the scores result.json has and answer as many queries as the
// best checkpoint; its other banks count where it holds every bank of the config, each of the images the best
// checkpoint was scored against (`banks`, knn-banks.json's, which the runner keeps current). A file that is missing
// or damaged gives nothing: the curve's changes from the original then go without intervals, or against knn.bank
// alone (results.ts).
async function addCurveFromFile(outcome: CellResult, path: string, config: StudyConfig, banks: (KnnBankScores | undefined)[]): Promise<void> {
  const others = config.knn.otherBanks && banks.every((b) => b) ? (banks as KnnBankScores[]) : undefined;
  if (outcome.knnCurve!.every((p) => p.correct) && !others) return;
  const v = existsSync(path) ? await readJsonFile(path, "knn.atSteps").catch(() => undefined) : undefined;
  const held = isObject(v) && Array.isArray(v.points) ? v.points.filter(isObject) : [];
  const queries = outcome.correct?.knn.count;
  const k = config.knn.reportK;
  const answers = (x: unknown, percent: number) => !correctProblem(x, "k-NN query", percent) && (x as Correct).count === queries;
  for (const point of outcome.knnCurve!) {
    const same = held.find((p) => p.step === point.step && JSON.stringify(p.knn) === JSON.stringify(point.knn));
    if (!same) continue;
    if (!point.correct && answers(same.correct, point.knn[String(k)].top1)) point.correct = same.correct as Correct;
    const kept = Array.isArray(same.banks) ? same.banks.filter(isObject) : [];
    const found = others?.map((b) =>
      kept.find((e) => JSON.stringify(e.spec) === JSON.stringify(b.spec) && JSON.stringify(e.data) === JSON.stringify(b.data) && !scoresProblem(e.knn, `"knn"`, k) && answers(e.correct, (e.knn as KnnScores)[String(k)].top1)),
    );
    if (found?.every((e) => e)) point.otherBanks = found.map((e) => ({ knn: e!.knn as KnnScores, correct: e!.correct as Correct }));
  }
}

// cells/<id>/knn-val.json (study/knn-val.ts).
export interface KnnValScores {
  spec: DataSpec; // knn.val as the config had it
  data: Omit<DatasetIdentity, "root">; // the images it drew (their folder left out: a run folder may move)
  knn: KnnScores; // of the cell's best checkpoint's backbone, against knn.bank
  seconds: number;
}

// cells/<id>/knn-val.json: the scores on knn.val's images, where the file holds them for the config's knn.val;
// undefined where it is absent, damaged or of another spec (the scores are made anew: study/knn-val.ts).
export async function readKnnVal(path: string, config: StudyConfig): Promise<KnnValScores | undefined> {
  if (!existsSync(path)) return undefined;
  const v = await readJsonFile(path, "knn.val").catch(() => undefined);
  if (!isObject(v) || JSON.stringify(v.spec) !== JSON.stringify(config.knn.val) || !isObject(v.data)) return undefined;
  return scoresProblem(v.knn, `"knn"`, config.knn.reportK) ? undefined : (v as unknown as KnnValScores);
}

// One entry of cells/<id>/knn-banks.json (study/knn-banks.ts): the queries against one of knn.otherBanks.
export interface KnnBankScores {
  spec: DataSpec; // the bank's spec as the config had it
  data: Omit<DatasetIdentity, "root">; // the images it drew
  knn: KnnScores; // of the cell's best checkpoint's backbone, the queries against this bank
  correct: Correct; // the queries it got right at reportK
  seconds: number;
}

// cells/<id>/knn-banks.json: for each of the config's knn.otherBanks (in its order), the file's scores against it, or
// undefined where the file has none for its spec (absent, damaged, made for other banks, or, where `queries` is
// given, for another number of queries).
export async function readKnnBanks(path: string, config: StudyConfig, queries?: number): Promise<(KnnBankScores | undefined)[]> {
  const specs = config.knn.otherBanks ?? [];
  const v = existsSync(path) ? await readJsonFile(path, "knn.otherBanks").catch(() => undefined) : undefined;
  const held = isObject(v) && Array.isArray(v.banks) ? v.banks.filter(isObject) : [];
  const k = config.knn.reportK;
  const sound = (b: Json) =>
    isObject(b.data) && !scoresProblem(b.knn, `"knn"`, k) && !correctProblem(b.correct, "k-NN query", (b.knn as KnnScores)[String(k)].top1) && (queries === undefined || (b.correct as Correct).count === queries);
  return specs.map((spec) => held.find((b) => JSON.stringify(b.spec) === JSON.stringify(spec) && sound(b)) as KnnBankScores | undefined);
}

// baseline.json: the original backbone's k-NN accuracy, and from builds that keep them its queries' answers; with
// knn.otherBanks, its scores against every other bank where the knn-banks.json beside it holds them all (otherBanks).
export async function readBaseline(path: string, config: StudyConfig, who: string): Promise<BaselineResult> {
  const v = await readJsonFile(path, who);
  const k = config.knn.reportK;
  const problem = !isObject(v)
    ? describeJson(v)
    : (scoresProblem(v.knn, `"knn"`, k) ?? (v.correct !== undefined ? correctProblem(v.correct, "k-NN query", (v.knn as KnnScores)[String(k)].top1) : undefined));
  if (problem) throw new Error(`${who}: ${path}: expected the original backbone's k-NN accuracy, found ${problem}; delete it to measure it again`);
  const baseline = v as unknown as BaselineResult;
  if (config.knn.otherBanks && baseline.correct) {
    const banks = await readKnnBanks(join(dirname(path), KNN_BANKS_FILE), config, baseline.correct.count);
    if (banks.every((b) => b)) baseline.otherBanks = banks.map((b) => ({ knn: b!.knn, correct: b!.correct }));
  }
  return baseline;
}

// backbone.json, the runner's record of the study's backbone: its file's absolute path, and from builds that record
// it the file's SHA-256. Undefined where the folder has none (a run not yet prepared).
export interface BackboneRecord {
  path: string;
  sha256?: string;
}

export async function readBackboneRecord(dir: string, who: string): Promise<BackboneRecord | undefined> {
  const path = join(dir, "backbone.json");
  if (!existsSync(path)) return undefined;
  const v = await readJsonFile(path, who);
  if (!isObject(v) || typeof v.path !== "string" || (v.sha256 !== undefined && typeof v.sha256 !== "string")) {
    throw new Error(`${who}: ${path}: expected the record of the study's backbone (its "path", and its "sha256" from builds that record it), found ${isObject(v) ? `${field(v, "path")}, ${field(v, "sha256")}` : describeJson(v)}`);
  }
  return v as unknown as BackboneRecord;
}

// Writes `correct` as the answer set `key` of a finished cell's result.json ("knn", "val"), nothing else in it
// changed: what the upgrades of cells of earlier builds add. False where the file holds no answers to add to.
export async function writeCellCorrect(out: string, id: string, key: string, correct: Correct): Promise<boolean> {
  const path = cellResultPath(out, id);
  const json = await readJsonFile(path, "experiment");
  if (!isObject(json) || !isObject(json.correct)) return false;
  await writeJsonAtomic(path, { ...json, correct: { ...json.correct, [key]: correct } });
  return true;
}
