// study/runner.ts: a fine-tuned backbone whose features are not all finite (its loss and weights finite: activations
// that overflowed at a rate far too high) is a diverged cell, not a finished one scored at chance. The k-NN is made
// to find such features from the second scoring on (the first is the original backbone's baseline).
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import { isDiverged } from "../../study/results.js";
import { useEngine } from "../helpers.js";
import { writeMiniStudy } from "./program.js";

vi.mock("../../eval/dataset-knn.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../eval/dataset-knn.js")>();
  let calls = 0;
  return {
    ...real,
    banksKnn: async (...args: Parameters<typeof real.banksKnn>) => {
      if (calls++ === 0) return real.banksKnn(...args);
      throw new real.NonFiniteFeaturesError("the backbone's feature 3 of bank (npy) image 7 is NaN: the k-NN cannot score it");
    },
  };
});

useEngine();

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "runner-features-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("a cell whose backbone's features are not finite", () => {
  it("is recorded as diverged at the step scored, and the study goes on", async () => {
    const study = await writeMiniStudy(root);
    const config = parseStudyConfig({ ...study, strategies: ["linear"], knn: { ...study.knn, atSteps: [0, 2, 4] } });
    const r = await runExperiment({ config, out: join(root, "run") });
    expect(r.complete).toBe(true);
    expect(r.diverged).toEqual(["linear_lr0.3_s0"]);
    const cell = r.results.diverged[0];
    expect(isDiverged(cell)).toBe(true);
    expect(cell.diverged.step).toBe(0);
    expect(cell.diverged.message).toBe("the source k-NN of step 0: the backbone's feature 3 of bank (npy) image 7 is NaN: the k-NN cannot score it (lr 3.00e-1)");
  });
});
