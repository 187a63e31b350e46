// study/noise-walks.ts on cells of two kept steps: each part's walk is eval/noise-walk.ts's of that part's spreads at
// the study's schedule, the cell's rate and SGD's momentum (to the bit); with -lrdD each part's rate its layer-wise
// factor of the cell's; none for AdamW or where a kept step lacks the spread, and a walk made before is then dropped;
// a kept step past the config's steps refused, naming the cell.
import { describe, expect, it } from "vitest";
import { noiseWalk } from "../../eval/noise-walk.js";
import type { PartMoves } from "../../eval/part-moves.js";
import type { CellAnalysis, StepAnalysis } from "../../study/analysis-results.js";
import type { StudyTraining } from "../../study/config.js";
import { withNoiseWalks } from "../../study/noise-walks.js";
import { TRAIN_DEFAULTS } from "../../train/settings.js";

const TRAINING: StudyTraining = { ...TRAIN_DEFAULTS, steps: 20, batchSize: 8, evalEvery: 10, warmupSteps: 4, optimizer: "sgd", momentum: 0.8 };

// A move whose parts' batches' spread is `spread(part)` (0: the embeddings, 1 and 2: the blocks, 3: the norm).
const descent = (spread: (part: number) => number | undefined): PartMoves => {
  const part = (k: number) => ({ change: 1, turn: 0, ...(spread(k) !== undefined && { spread: spread(k) }) });
  return { embedding: part(0), blocks: [part(1), part(2)], norm: part(3) };
};
const step = (s: number, spread: (part: number) => number | undefined): StepAnalysis =>
  ({ step: s, weights: { blocks: [0.02 * s, 0.03 * s], layers: [], embedding: 0.05 * s, norm: 0.01 * s, added: [] }, weightDescent: descent(spread) }) as unknown as StepAnalysis;
const cell = (strategy: string, atSteps: StepAnalysis[]): CellAnalysis => ({ id: `${strategy}_s0`, strategy, lr: 0.1, seed: 0, atSteps }) as unknown as CellAnalysis;

describe("withNoiseWalks", () => {
  const kept = [step(5, (k) => 1 + k), step(12, (k) => 0.5 + k)];

  it("walks each part with its spreads at the study's schedule, the cell's rate and the momentum", () => {
    const [c] = withNoiseWalks([cell("full", kept)], TRAINING, 2);
    const schedule = { base: 0.1, warmup: 4, total: 20 };
    const want = (k: number) => noiseWalk(schedule, 0.8, [[5, 1 + k], [12, 0.5 + k]], [5, 12]);
    c.atSteps!.forEach((m, j) => {
      expect(m.noiseWalk).toEqual({ embedding: want(0)[j], blocks: [want(1)[j], want(2)[j]], norm: want(3)[j] });
    });
    // With a layer-wise decay each part at its factor of the rate: the embeddings decay^3, block i decay^(2 - i).
    const [decayed] = withNoiseWalks([cell("full-lrd0.5", kept)], TRAINING, 2);
    const factors = [0.125, 0.25, 0.5, 1];
    factors.forEach((f, k) => {
      const w = noiseWalk({ ...schedule, base: 0.1 * f }, 0.8, [[5, 1 + k], [12, 0.5 + k]], [12])[0];
      const got = decayed.atSteps![1].noiseWalk!;
      expect([got.embedding, ...got.blocks, got.norm][k], `part ${k}`).toEqual(w);
    });
  });

  it("walks none for AdamW, nor where a kept step lacks the spread, and drops a walk made before", () => {
    const [walked] = withNoiseWalks([cell("full", kept)], TRAINING, 2);
    expect(walked.atSteps!.every((m) => m.noiseWalk)).toBe(true);
    const [adamw] = withNoiseWalks([walked], { ...TRAINING, optimizer: "adamw" }, 2);
    expect(adamw.atSteps!.map((m) => m.noiseWalk)).toEqual([undefined, undefined]);
    const [lacking] = withNoiseWalks([cell("full", [kept[0], step(12, (k) => (k === 2 ? undefined : 1))])], TRAINING, 2);
    expect(lacking.atSteps!.map((m) => m.noiseWalk)).toEqual([undefined, undefined]);
    expect(withNoiseWalks([cell("full", [])], TRAINING, 2)[0].atSteps).toEqual([]);
    // A kept step past the config's steps (the config edited after training) is named with its cell.
    expect(() => withNoiseWalks([cell("full", [kept[0], step(25, () => 1)])], TRAINING, 2)).toThrow("noise walk: cell full_s0 kept step 25, beyond the config's training.steps (20)");
  });
});
