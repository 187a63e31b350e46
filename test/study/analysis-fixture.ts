// A hand-made per-block analysis of the fixture study (./fixture.ts: full and linear, each at lr 0.1 in the table,
// seeds 0 and 1) on a 2-block model with 2 heads and 4 patches, for the analysis's results, CSV and figure tests.
import type { CellAnalysis, RunAnalysis, StepAnalysis } from "../../study/analysis-results.js";
import type { CellResets } from "../../study/analysis-resets.js";
import type { PatchChange } from "../../eval/patch-directions.js";
import { summarizeAnalysis } from "../../study/analysis-results.js";
import { results } from "./fixture.js";
import { packBits, packBytes } from "../../util/bits.js";
import { type Correct, unpackCorrect } from "../../study/results.js";

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
    outputChange: { embedding: moved * 1.5, blocks: [moved * (0.4 + 0.1 * seed), moved * 0.6] },
    targetOutputChange: { embedding: moved * 1.2, blocks: [moved * 0.3, moved * (0.5 + 0.1 * seed)] },
    patchChange: { source: { along: moved * 1.0, rest: moved * (0.5 + 0.1 * seed) }, target: { along: moved * 0.9, rest: moved * 0.4 } },
    grid: [0.1, 0.2, 0.3, 0.4 + moved * 0.2],
  };
}

export const ORIGINAL_ANSWERS = [answers(7), answers(8)];

// The backbone a cell kept at `step` of `last`: the cell's drift in proportion to the step (its CKA's distance from
// 1, its k-NN's loss, its weight change and attention divergence), the answers of the nearest k-NN; after the kept
// step `previous`, each part's output change since then and its turn: the blocks' +1, the embeddings' -0.5 on the
// source-domain images and +0.8 on the target-domain ones (no turn where a part never moved); the patch projection's
// along its patches' first direction -0.7, along the rest +0.3, on either; where it moved, gradient descent's next
// move on it, 2 along (turn -0.4, its batches' spread 3) and 1 along the rest (turn +0.6, spread 0.5), on either.
function atStep(c: CellAnalysis, step: number, last: number, previous?: number): StepAnalysis {
  const f = step / last;
  const since = (change: CellAnalysis["outputChange"], embeddingTurn: number) => {
    const part = (x: number, turn: number) => ({ change: ((step - previous!) / last) * x, turn: x > 0 ? turn : NaN });
    return { from: previous!, embedding: part(change.embedding, embeddingTurn), blocks: change.blocks.map((x) => part(x, 1)) };
  };
  const knn = c.knn.map((k, i) => 70 + 10 * i - f * (70 + 10 * i - k));
  return {
    step,
    cka: { cls: c.cka.cls.map((x) => 1 - f * (1 - x)), pooled: c.cka.pooled.map((x) => 1 - f * (1 - x)) },
    knn,
    knnCorrect: knn.map((k) => answers(Math.round(k / 10), c.strategy === "full" ? c.seed : 0)),
    attention: c.attention.map((h) => h.map((x) => f * x)),
    weights: { ...c.weights, blocks: c.weights.blocks.map((x) => f * x) },
    outputChange: { embedding: f * c.outputChange.embedding, blocks: c.outputChange.blocks.map((x) => f * x) },
    targetOutputChange: { embedding: f * c.targetOutputChange!.embedding, blocks: c.targetOutputChange!.blocks.map((x) => f * x) },
    patchChange: { source: patchAt(c.patchChange!.source, f), target: patchAt(c.patchChange!.target!, f) },
    ...(previous !== undefined && { outputSince: since(c.outputChange, -0.5), targetOutputSince: since(c.targetOutputChange!, 0.8) }),
    ...(c.patchChange!.source.along + c.patchChange!.source.rest > 0 && { patchDescent: { source: DESCENT, target: DESCENT } }),
    ...(previous !== undefined && { patchSince: { from: previous, source: patchSince(c.patchChange!.source, (step - previous) / last), target: patchSince(c.patchChange!.target!, (step - previous) / last) } }),
  };
}

const DESCENT = { along: { change: 2, turn: -0.4, spread: 3 }, rest: { change: 1, turn: 0.6, spread: 0.5 } };
const patchAt = (c: PatchChange, f: number): PatchChange => ({ along: f * c.along, rest: f * c.rest });
const patchSince = (c: PatchChange, f: number) => ({ along: { change: f * c.along, turn: c.along > 0 ? -0.7 : NaN }, rest: { change: f * c.rest, turn: c.rest > 0 ? 0.3 : NaN } });

// A cell's resets: full fine-tuning's blocks (by layers: block 0's attn.qkv and mlp.fc1, block 1's attn.qkv) and all
// of them, each winning back source k-NN (block 1 more) and losing transfer; linear probing's none. The fine-tuned
// answers shift with the seed, the resets' do not.
function resets(c: CellAnalysis, grain: true | "layers"): CellResets {
  const scores = (knn: number, transfer: number, shift: number) => ({ knn: 10 * knn, knnCorrect: answers(knn, shift), transfer: 10 * transfer, transferCorrect: answers(transfer, shift) });
  const tuned = scores(5, 9, c.seed);
  if (c.strategy !== "full") return { tuned, units: [] };
  const all = { unit: "all", ...scores(8, 6, 0) };
  if (grain === "layers") {
    const layer = (block: number, name: string, knn: number) => ({ unit: `block ${block} ${name}`, block, layer: name, ...scores(knn, 9, 0) });
    return { tuned, units: [layer(0, "attn.qkv", 6), layer(0, "mlp.fc1", 5), layer(1, "attn.qkv", 7), all] };
  }
  return { tuned, units: [{ unit: "block 0", block: 0, ...scores(6, 9, 0) }, { unit: "block 1", block: 1, ...scores(7, 8, 0) }, all] };
}

// seeds: the cells' seeds (one seed: no standard deviations to draw); atSteps: the steps the cells kept (the last
// one the cell's own measures), none by default; withResets: analysis.resets (the kept steps' resets the cell's),
// "layers" by layers.
export function analysis(seeds = [0, 1], atSteps?: number[], withResets: boolean | "layers" = false): RunAnalysis {
  const cells = ["full", "linear"].flatMap((s) => seeds.map((seed) => cell(s, seed)));
  if (atSteps) for (const c of cells) c.atSteps = atSteps.map((step, j) => atStep(c, step, atSteps[atSteps.length - 1], atSteps[j - 1]));
  if (withResets) for (const c of cells) for (const m of [c, ...(c.atSteps ?? [])]) m.resets = resets(c, withResets);
  return {
    format: "peft-vit-webgpu/analysis@1",
    key: { images: 10, gridImages: 1, ...(atSteps && { atSteps }), ...(withResets && { resets: withResets }), cells: cells.map((c) => c.id) },
    backbone: "/cache/backbone.safetensors",
    depth: 2,
    heads: 2,
    images: identity(10),
    targetImages: { ...identity(10), hash: "fedcba9876543210" },
    patchDirections: { source: { share: 0.6, flatness: 0.99 }, target: { share: 0.7, flatness: 1 } },
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

// Classes of the 10 images, for the analysis by class.
export const CLASS_LABELS = { classes: ["a", "b", "c"], labels: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0] };

// `a` with the classes of its images (CLASS_LABELS) and the class each block gave each image (the image's own where
// right, else the next class), its summary made anew.
export function withClassesGiven(a: RunAnalysis): RunAnalysis {
  const { labels } = CLASS_LABELS;
  const given = (c: Correct): Correct => ({ ...c, predicted: packBytes(Array.from(unpackCorrect(c), (right, q) => (right ? labels[q] : (labels[q] + 1) % 3))) });
  const measured = <T extends { knnCorrect: Correct[] }>(m: T): T => ({ ...m, knnCorrect: m.knnCorrect.map(given) });
  const cells = a.cells.map((c) => ({ ...measured(c), ...(c.atSteps && { atSteps: c.atSteps.map(measured) }) }));
  const original = measured(a.original);
  return { ...a, labels: CLASS_LABELS, cells, original, strategies: summarizeAnalysis(results(), cells, original, CLASS_LABELS) };
}
