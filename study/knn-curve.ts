// A cell's forgetting curve as it is being measured: the source k-NN accuracy of its backbone at the steps of
// knn.atSteps, in cells/<id>/knn-curve.json, rewritten atomically after each point so that a killed cell keeps the
// points it had. A rerun resumes training from the last checkpoint, which can be earlier than a stored point: only
// the points up to the step it resumes from are kept, and training recomputes the rest, to the same values.
// With knn.otherBanks each point holds the queries' scores against every other bank too, from the same pass over the
// queries (`banks`, each with its spec and images as knn-banks.json's entries): a curve's step has no checkpoint to
// score them from later. result.json's points leave them out; study/result-files.ts reads them from here.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { writeJsonAtomic } from "../util/atomic.js";
import { describeJson, isObject } from "../util/json-file.js";
import type { Correct, CurvePoint } from "./results.js";
import type { KnnBankScores } from "./result-files.js";

// A point's scores against one other bank: its seconds are the point's.
export type CurveBankScores = Omit<KnnBankScores, "seconds">;

export interface TimedPoint extends CurvePoint {
  seconds: number; // the k-NN pass's wall time, every bank's
  banks?: CurveBankScores[]; // with knn.otherBanks, in the config's order
}

// The points of a parsed knn-curve.json. Malformed content is refused naming the file, as unreadable JSON is, rather
// than the curve dropped: its points were measured during training before the checkpoint the cell resumes from, so
// only training the cell again from step 0 measures them again.
function checkedPoints(json: unknown, path: string): TimedPoint[] {
  const refuse = (what: string) => new Error(`experiment: ${path}: ${what}; delete the cell's folder to recompute it`);
  if (!isObject(json)) throw refuse(`expected the cell's k-NN curve, an object with a "points" list, got ${describeJson(json)}`);
  if (!Array.isArray(json.points)) throw refuse(`expected the cell's k-NN curve, a "points" list, got ${json.points === undefined ? "none" : describeJson(json.points)}`);
  for (const [i, p] of json.points.entries()) {
    if (!isObject(p)) throw refuse(`points[${i}]: expected an object with a step, k-NN scores and seconds, got ${describeJson(p)}`);
    if (typeof p.step !== "number" || !Number.isInteger(p.step) || p.step < 0) throw refuse(`points[${i}].step: expected an integer >= 0, got ${describeJson(p.step)}`);
    if (!isObject(p.knn)) throw refuse(`points[${i}].knn: expected the k-NN scores by k, got ${describeJson(p.knn)}`);
    if (typeof p.seconds !== "number" || !(p.seconds >= 0)) throw refuse(`points[${i}].seconds: expected a number >= 0, got ${describeJson(p.seconds)}`);
  }
  return json.points as TimedPoint[];
}

export class KnnCurve {
  private constructor(
    readonly path: string,
    private points: TimedPoint[],
  ) {}

  // The stored points up to `resumedStep` (none for a cell that starts afresh, resumedStep 0, but a point at 0).
  static async resume(path: string, resumedStep: number): Promise<KnnCurve> {
    let json: unknown = { points: [] };
    if (existsSync(path)) {
      try {
        json = JSON.parse(await readFile(path, "utf8"));
      } catch (e) {
        throw new Error(`experiment: ${path}: expected the cell's k-NN curve, ${(e as Error).message}; delete the cell's folder to recompute it`);
      }
    }
    return new KnnCurve(path, checkedPoints(json, path).filter((p) => p.step <= resumedStep));
  }

  has(step: number): boolean {
    return this.points.some((p) => p.step === step);
  }

  async add(point: TimedPoint): Promise<void> {
    this.points = [...this.points.filter((p) => p.step !== point.step), point].sort((a, b) => a.step - b.step);
    await writeJsonAtomic(this.path, { points: this.points });
  }

  // The queries the point at `step` got right, where it is there with them (curves of builds before them have none).
  correctAt(step: number): Correct | undefined {
    return this.points.find((p) => p.step === step)?.correct;
  }

  // The scores against the other banks of the point at `step`, where it has them.
  banksAt(step: number): CurveBankScores[] | undefined {
    return this.points.find((p) => p.step === step)?.banks;
  }

  // The points of `steps`, which must all be there, with their answers where they have them (result.json's: without
  // the other banks' scores).
  complete(steps: number[]): { points: CurvePoint[]; seconds: number } {
    const missing = steps.filter((s) => !this.has(s));
    if (missing.length > 0) {
      throw new Error(`experiment: ${this.path}: expected k-NN points at steps ${steps.join(", ")}, missing ${missing.join(", ")}; delete the cell's folder to recompute it`);
    }
    const points = steps.map((s) => this.points.find((p) => p.step === s)!);
    return { points: points.map(({ step, knn, correct }) => ({ step, knn, ...(correct && { correct }) })), seconds: points.reduce((a, p) => a + p.seconds, 0) };
  }
}
