// study/knn-curve.ts: a cell's curve points on disk across a kill: kept up to the step training resumes from,
// replaced when a step is measured again, complete or named as missing; a malformed file refused naming it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KnnCurve } from "../../study/knn-curve.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "knn-curve-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const point = (step: number, top1: number) => ({ step, knn: { "20": { top1, top5: 99 } }, seconds: 0.5 });

describe("KnnCurve", () => {
  it("stores each point as it comes, in step order, and gives the complete curve without timings", async () => {
    const path = join(dir, "fresh.json");
    const curve = await KnnCurve.resume(path, 0);
    await curve.add(point(10, 70));
    await curve.add(point(0, 80));
    expect(JSON.parse(await readFile(path, "utf8")).points.map((p: { step: number }) => p.step)).toEqual([0, 10]);
    expect(curve.complete([0, 10])).toEqual({ points: [{ step: 0, knn: point(0, 80).knn }, { step: 10, knn: point(10, 70).knn }], seconds: 1 });
  });

  it("keeps the points up to the step training resumes from; a step measured again replaces its point", async () => {
    const path = join(dir, "killed.json");
    const before = await KnnCurve.resume(path, 0);
    for (const [step, top1] of [[0, 80], [10, 70], [30, 60]]) await before.add(point(step, top1));
    const resumed = await KnnCurve.resume(path, 20); // the last checkpoint was at step 20: 30 is measured again
    expect([0, 10, 30].map((s) => resumed.has(s))).toEqual([true, true, false]);
    await resumed.add(point(10, 71));
    expect(resumed.complete([0, 10]).points[1].knn["20"].top1).toBe(71);
  });

  it("names the file and the missing steps, and an unreadable file", async () => {
    const path = join(dir, "partial.json");
    const curve = await KnnCurve.resume(path, 0);
    await curve.add(point(0, 80));
    expect(() => curve.complete([0, 10, 30])).toThrow(`experiment: ${path}: expected k-NN points at steps 0, 10, 30, missing 10, 30; delete the cell's folder to recompute it`);
    const bad = join(dir, "bad.json");
    await writeFile(bad, "{ not json");
    await expect(KnnCurve.resume(bad, 0)).rejects.toThrow(`experiment: ${bad}: expected the cell's k-NN curve`);
  });

  it("refuses a file of the wrong shape naming it and the bad point, rather than resuming from it", async () => {
    const cases: [string, string][] = [
      ["{}", `expected the cell's k-NN curve, a "points" list, got none`],
      ["null", `expected the cell's k-NN curve, an object with a "points" list, got null`],
      ['{"points":{}}', `expected the cell's k-NN curve, a "points" list, got an object`],
      ['{"points":[null]}', "points[0]: expected an object with a step, k-NN scores and seconds, got null"],
      [JSON.stringify({ points: [point(0, 80), { ...point(10, 70), step: -10 }] }), "points[1].step: expected an integer >= 0, got -10"],
      [JSON.stringify({ points: [{ step: 0, seconds: 1 }] }), "points[0].knn: expected the k-NN scores by k, got nothing"],
      [JSON.stringify({ points: [{ ...point(0, 80), seconds: "1" }] }), 'points[0].seconds: expected a number >= 0, got "1"'],
    ];
    for (const [i, [text, message]] of cases.entries()) {
      const path = join(dir, `shape-${i}.json`);
      await writeFile(path, text);
      await expect(KnnCurve.resume(path, 100), text).rejects.toThrow(`experiment: ${path}: ${message}; delete the cell's folder to recompute it`);
    }
  });
});
