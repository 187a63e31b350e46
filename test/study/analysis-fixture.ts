// A hand-made per-block analysis of the fixture study (./fixture.ts: full and linear, each at lr 0.1 in the table,
// seeds 0 and 1) on a 2-block model with 2 heads and 4 patches, for the analysis's results, CSV and figure tests.
import type { CellAnalysis, RunAnalysis } from "../../study/analysis-results.js";
import { summarizeAnalysis } from "../../study/analysis-results.js";
import { results } from "./fixture.js";
import { packBits } from "../../util/bits.js";

const identity = (count: number) => ({ name: "fashion-mnist", root: "/data", split: "test", count, hash: "0123456789abcdef" });

// The layer-wise k-NN's answers to the 10 images: the first `right` (after `shift`) right.
const answers = (right: number, shift = 0) => ({ count: 10, bits: packBits(Array.from({ length: 10 }, (_, q) => ((q + shift) % 10 < right ? 1 : 0))) });

// `seed` shifts full fine-tuning's values, so that the two seeds differ.
function cell(strategy: string, seed: number, added: number[] = []): CellAnalysis {
  const moved = strategy === "full" ? 1 : 0;
  const knn = [70 - moved * (10 + 2 * seed), 80 - moved * 20];
  return {
    id: `${strategy}_lr0.1_s${seed}`,
    strategy,
    lr: 0.1,
    seed,
    cka: { cls: [1 - moved * (0.4 + 0.1 * seed), 1 - moved * 0.5], pooled: [1 - moved * 0.1, 1 - moved * 0.2] },
    knn,
    knnCorrect: knn.map((k) => answers(Math.round(k / 10), moved * seed)),
    attention: [[moved * 0.1, moved * 0.3], [moved * 0.2, moved * 0.4]],
    weights: {
      blocks: [moved * 0.2, moved * (0.3 + 0.1 * seed)],
      layers: [0, 1].map(() => ({ norm1: 0, "attn.qkv": moved * 0.25, "attn.proj": 0, norm2: 0, "mlp.fc1": 0, "mlp.fc2": 0 })),
      embedding: moved * 0.9,
      norm: moved * 0.05,
      added,
    },
    grid: [0.1, 0.2, 0.3, 0.4 + moved * 0.2],
  };
}

export const ORIGINAL_ANSWERS = [answers(7), answers(8)];

// seeds: the cells' seeds (one seed: no standard deviations to draw).
export function analysis(seeds = [0, 1]): RunAnalysis {
  const cells = ["full", "linear"].flatMap((s) => seeds.map((seed) => cell(s, seed)));
  return {
    format: "peft-vit-webgpu/analysis@1",
    key: { images: 10, gridImages: 1, cells: cells.map((c) => c.id) },
    backbone: "/cache/backbone.safetensors",
    depth: 2,
    heads: 2,
    images: identity(10),
    bank: identity(50),
    k: 20,
    temperature: 0.07,
    gridTokens: 4,
    original: { knn: [70, 80], knnCorrect: ORIGINAL_ANSWERS, grid: [0.1, 0.2, 0.3, 0.4] },
    cells,
    strategies: summarizeAnalysis(results(), cells, { knnCorrect: ORIGINAL_ANSWERS }),
    seconds: 1,
  };
}
