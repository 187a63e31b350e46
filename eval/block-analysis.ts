// Where a fine-tuned backbone differs from its original, block by block, on a set of source-domain images streamed
// in loader batches (memory grows with the depth and width, not with the number of images, but for the k-NN
// features below):
//   - representation similarity: linear CKA (eval/cka.ts) between the two models' outputs of each original block,
//     of the CLS token and of all tokens mean-pooled (CLS included);
//   - layer-wise k-NN: DINO's weighted k-NN accuracy (eval/knn.ts) of each block's CLS token after the model's own
//     final LayerNorm, as DINO's get_intermediate_layers normalises intermediate outputs with the final norm; the
//     fine-tuned model's queries against a bank built the same way with the fine-tuned model, the original's against
//     the original's (and against each other draw of the bank where there are some). These features are kept on
//     the host: (images + bank) x width floats per block;
//   - attention drift (eval/attention-drift.ts): per block and head, the Jensen-Shannon divergence of the CLS
//     token's attention distributions;
//   - weight change (eval/weight-change.ts), LoRA merged first;
//   - output change (eval/output-change.ts): each part's own computation, the embeddings and each block run on the
//     original's input to it, against the original's there; on target-domain images too, where given;
//   - the patch projection's output change along the first principal direction of the patches it reads and along
//     the rest (eval/patch-directions.ts), where their moments are given; where it moved and training images are
//     given, gradient descent's next move on it split the same way (eval/patch-gradient.ts), and where given, the
//     optimiser's memory's (eval/optimizer-memory.ts);
//   - of the parts whose weights the cell trained directly, gradient descent's next move and the optimiser's memory
//     in weight space, each part's size and turn against its change so far (eval/part-moves.ts);
//   - for a figure, the CLS attention of the last original block over the patches (mean over heads) of the first
//     few images.
// Expanded blocks are mapped to the original block they follow (eval/block-map.ts).
import { Tensor, readTensors, tidyAsync } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { noGrad } from "../autograd/tape.js";
import type { Loader } from "../data/loader.js";
import { batchImages } from "../train/batch-images.js";
import { mergeLora } from "../peft/lora.js";
import type { Capture, VisionTransformer } from "../vit/model.js";
import { type BlockMap, identityMap } from "./block-map.js";
import { CkaAccumulator, ckaFromMoments } from "./cka.js";
import { AttentionDrift } from "./attention-drift.js";
import { knnClassify } from "./knn.js";
import { type WeightChange, partTensors, weightChange } from "./weight-change.js";
import { type OutputChange, OutputChangeAccumulator, type OutputSince, outputChangeOn } from "./output-change.js";
import { type PatchChange, type PatchDescent, type PatchMoments, type PatchSince, patchChange, patchDescent, patchMove, patchProjection } from "./patch-directions.js";
import { patchGradientOf } from "./patch-gradient.js";
import { type PartMoves, partMoves } from "./part-moves.js";
import { patchMemoryOf } from "./optimizer-memory.js";
import { type TrainingGradient, trainingGradient } from "./training-gradient.js";

// A measure on the analysed source-domain images, and on the target-domain ones where there are some.
export interface ImageSets<T> {
  source: T;
  target?: T;
}

export interface AnalysisData {
  queries: Loader; // the analysed source-domain images (with labels: the k-NN queries), in a fixed order
  bank: Loader; // the k-NN bank: source-domain training images
  otherBanks?: Loader[]; // other draws of the bank (knn.otherBanks): the layer-wise k-NN against each of them too
  k: number; // neighbours of the layer-wise k-NN (the study's reportK)
  temperature: number;
  classes: number;
  gridImages: number; // the first images whose attention maps are kept for the figure
  target?: Loader; // target-domain images (the study's transfer.test): each part's output change on them too
  // The second moments of the patches of the analysed images and of the target images (eval/patch-directions.ts):
  // the patch projection's output change along their first principal direction and the rest, on each.
  patches?: { source: PatchMoments; target?: PatchMoments };
  // The study's training images (transfer.train, as it trains on them, in batches of its training batch size, passes
  // of at most microBatch images): with the patches, the training loss's gradient on a patch projection that moved,
  // and its batches' spread, split along their first direction and the rest.
  train?: { loader: Loader; microBatch: number };
}

// Normalised CLS features of every original block for a set of images.
interface BlockFeatures {
  features: Float32Array[]; // (depth) x (N, C)
  labels: Int32Array; // (N)
}

// The CLS attention over the patches of the last original block, mean over heads, of the first gridImages images.
export interface AttentionMaps {
  tokens: number; // patches per image (T - 1)
  maps: Float32Array; // (G, T - 1)
}

// A layer-wise k-NN against one bank: each block's top-1, the queries it got right and the class it gave each.
export interface LayerKnn {
  knn: number[]; // (depth): layer-wise k-NN top-1, percent
  knnCorrect: Uint8Array[]; // (depth) x (N): 1 where the layer-wise k-NN classified the query right
  knnGiven: Int32Array[]; // (depth) x (N): the class the layer-wise k-NN gave the query
}

export interface OriginalAnalysis extends LayerKnn {
  otherBanks?: LayerKnn[]; // against each of AnalysisData's otherBanks
  grid: AttentionMaps;
  images: Float32Array; // (G, 3, S, S): the grid's images as the model saw them (normalised)
  imageShape: number[]; // [G, 3, S, S]
}

// knn, knnCorrect, knnGiven: the fine-tuned model's, its queries paired with the original's at each block.
export interface BackboneComparison extends LayerKnn {
  cka: { cls: number[]; pooled: number[] }; // (depth) each
  otherBanks?: LayerKnn[]; // against each of AnalysisData's otherBanks
  attention: number[][]; // (depth) x (H): mean JS divergence in bits
  weights: WeightChange;
  outputChange: OutputChange;
  outputSince?: OutputSince; // with the cell's backbone at an earlier step: each part's change since it, and its turn
  targetOutputChange?: OutputChange; // with AnalysisData's target: the same on its images
  targetOutputSince?: OutputSince;
  patchChange?: ImageSets<PatchChange>; // with AnalysisData's patches
  patchSince?: ImageSets<PatchSince>; // and with the cell's backbone at an earlier step
  patchDescent?: ImageSets<PatchDescent>; // with AnalysisData's train, where the patch projection moved
  patchMemory?: ImageSets<PatchSince>; // with the optimiser's memory on it (eval/optimizer-memory.ts)
  weightDescent?: PartMoves; // with AnalysisData's train, where the cell trained some part's weights directly
  weightMemory?: PartMoves; // with the optimiser's memory of them
  grid: AttentionMaps;
}

// Per original block: what one batch's forward pass gives. tokens (B, T, C), cls, pooled, normed (B, C), attention
// (B, H, T); with `normedOnly` (a k-NN bank's pass) only normed, and no attention probabilities are materialised.
interface BlockOutputs {
  tokens: Tensor[];
  cls: Tensor[];
  pooled: Tensor[];
  normed: Tensor[];
  attention: Tensor[];
}

function blockOutputs(model: VisionTransformer, images: Tensor, map: BlockMap, normedOnly = false): BlockOutputs {
  return noGrad(() => {
    const capture: Capture = { blocks: new Set(map.output), attention: new Set(normedOnly ? [] : map.own), outputs: new Map() };
    model.features(images, capture);
    const out: BlockOutputs = { tokens: [], cls: [], pooled: [], normed: [], attention: [] };
    for (let i = 0; i < map.depth; i++) {
      const x = capture.outputs.get(`block.${map.output[i]}`)!; // (B, T, C)
      const [b, t, c] = x.shape;
      const cls = ops.reshape(ops.slice(x, 1, 0, 1), [b, c]);
      out.normed.push(model.norm.forward(cls));
      if (normedOnly) continue;
      const probs = capture.outputs.get(`attention.${map.own[i]}`)!; // (B, H, T, T)
      out.tokens.push(x);
      out.cls.push(cls);
      out.pooled.push(ops.mean(x, 1));
      out.attention.push(ops.reshape(ops.slice(probs, 2, 0, 1), [b, probs.shape[1], t]));
    }
    return out;
  });
}

// The grid's maps from the last block's CLS rows (B, H, T) of one batch whose first image is `start`.
function addMaps(grid: AttentionMaps & { filled: number }, rows: Float32Array, start: number, batch: number, heads: number, g: number): void {
  const t = grid.tokens + 1;
  for (let b = 0; b < batch && start + b < g; b++) {
    for (let h = 0; h < heads; h++) {
      for (let j = 1; j < t; j++) grid.maps[(start + b) * grid.tokens + j - 1] += rows[(b * heads + h) * t + j] / heads;
    }
    grid.filled = start + b + 1;
  }
}

// The normalised per-block CLS features of every image of `loader`.
async function normedFeatures(model: VisionTransformer, loader: Loader, map: BlockMap, size: number): Promise<BlockFeatures> {
  const n = loader.dataset.length;
  const c = model.width;
  const features = Array.from({ length: map.depth }, () => new Float32Array(n * c));
  const labels = new Int32Array(n);
  let rows = 0;
  for await (const batch of loader.epoch(0)) {
    const b = batch.labels.length;
    await tidyAsync(async () => {
      const x = batchImages(batch, size);
      const normed = await readTensors(blockOutputs(model, x, map, true).normed);
      for (let i = 0; i < map.depth; i++) features[i].set(normed[i], rows * c);
    });
    labels.set(batch.labels, rows);
    rows += b;
  }
  return { features: features.map((f) => f.subarray(0, rows * c)), labels: labels.subarray(0, rows) };
}

// Each block's k-NN top-1, the queries it got right and the class it gave each.
async function layerKnn(bank: BlockFeatures, queries: BlockFeatures, data: AnalysisData): Promise<LayerKnn> {
  const out: LayerKnn = { knn: [], knnCorrect: [], knnGiven: [] };
  for (let i = 0; i < bank.features.length; i++) {
    const [r] = await knnClassify({
      train: bank.features[i],
      trainLabels: bank.labels,
      test: queries.features[i],
      testLabels: queries.labels,
      ks: [data.k],
      temperature: data.temperature,
      classes: data.classes,
    });
    out.knn.push(r.top1);
    out.knnCorrect.push(r.correct);
    out.knnGiven.push(r.predictions);
  }
  return out;
}

function imageSize(loader: Loader): number {
  return loader.transform.spec.size;
}

// The original's own layer-wise k-NN and attention maps: computed once, shared by every comparison.
export async function analyzeOriginal(original: VisionTransformer, data: AnalysisData): Promise<OriginalAnalysis> {
  const map = identityMap(original.blocks.length);
  const size = imageSize(data.queries);
  const bank = await normedFeatures(original, data.bank, map, size);
  const g = Math.min(data.gridImages, data.queries.dataset.length);
  const queries = await normedFeatures(original, data.queries, map, size);
  // The grid's images and maps: one more pass over the first batch or two, not worth keeping every attention row.
  const t = tokensOf(original, size);
  const grid = { tokens: t - 1, maps: new Float32Array(g * (t - 1)), filled: 0 };
  const images = new Float32Array(g * 3 * size * size);
  for await (const batch of data.queries.epoch(0)) {
    if (grid.filled >= g) break;
    const b = batch.labels.length;
    const start = grid.filled;
    images.set(batch.images.subarray(0, Math.min(b, g - start) * 3 * size * size), start * 3 * size * size);
    await tidyAsync(async () => {
      const out = blockOutputs(original, batchImages(batch, size), map);
      addMaps(grid, await out.attention[map.depth - 1].data(), start, b, original.config.heads, g);
    });
  }
  return { ...(await layerKnn(bank, queries, data)), ...(await otherBanksKnn(original, queries, data, map, size)), grid: { tokens: grid.tokens, maps: grid.maps }, images, imageShape: [g, 3, size, size] };
}

// The layer-wise k-NN of the queries (their features `queries`) against each other bank, its features made with the
// same model; one bank's features on the host at a time.
async function otherBanksKnn(model: VisionTransformer, queries: BlockFeatures, data: AnalysisData, map: BlockMap, size: number): Promise<{ otherBanks?: LayerKnn[] }> {
  if (!data.otherBanks) return {};
  const otherBanks: LayerKnn[] = [];
  for (const loader of data.otherBanks) otherBanks.push(await layerKnn(await normedFeatures(model, loader, map, size), queries, data));
  return { otherBanks };
}

// The patch projection's change on each image set's patches, since `before` where given, and where it moved,
// gradient descent's next move on it (where `gradient` was taken with it) and the optimiser's memory's (where given).
async function patchChanges(moments: ImageSets<PatchMoments>, original: VisionTransformer, tuned: VisionTransformer, before?: VisionTransformer, gradient?: TrainingGradient, memory?: Float64Array): Promise<Pick<BackboneComparison, "patchChange" | "patchSince" | "patchDescent" | "patchMemory">> {
  const [w0, w, earlier] = [await patchProjection(original), await patchProjection(tuned), before && (await patchProjection(before))];
  const source = patchChange(w0, w, moments.source, earlier);
  const target = moments.target && patchChange(w0, w, moments.target, earlier);
  const g = gradient?.gradient.has(tuned.patchEmbed.weight) && w.some((x, i) => x !== w0[i]) ? patchGradientOf(tuned, gradient) : undefined;
  const descent = (m: PatchMoments) => patchDescent(w0, w, g!, m);
  const remembered = (m: PatchMoments) => patchMove(w0, w, memory!, m);
  return {
    patchChange: { source: source.change, ...(target && { target: target.change }) },
    ...(earlier && { patchSince: { source: source.since!, ...(target && { target: target.since! }) } }),
    ...(g && { patchDescent: { source: descent(moments.source), ...(moments.target && { target: descent(moments.target) }) } }),
    ...(memory && { patchMemory: { source: remembered(moments.source), ...(moments.target && { target: remembered(moments.target) }) } }),
  };
}

// Gradient descent's next move and the optimiser's memory part by part (eval/part-moves.ts), of the tensors the cell
// trained directly: where `train` is given, the training loss's gradient on them and its batches' spread (each batch's
// of the patch projection's too), and where `memory` holds some of them, the memory's (with both, its cosine with
// gradient descent's move).
async function weightMoves(original: VisionTransformer, tuned: VisionTransformer, map: BlockMap, train?: AnalysisData["train"], memory?: Map<Tensor, Float64Array>): Promise<{ gradient?: TrainingGradient; moves: Pick<BackboneComparison, "weightDescent" | "weightMemory"> }> {
  const parts = partTensors(original, tuned, map);
  const trained = [...parts.embedding, ...parts.blocks.flat(), ...parts.norm].map(([, , t]) => t).filter((t) => t.requiresGrad);
  const { weight, bias } = tuned.patchEmbed;
  const apart = [weight, ...(bias ? [bias] : [])].filter((t) => trained.includes(t));
  const gradient = train && tuned.head && trained.length > 0 ? await trainingGradient(tuned, train.loader, trained, apart, train.microBatch) : undefined;
  const descent = gradient && { move: new Map([...gradient.gradient].map(([t, g]) => [t, g.map((x) => -x)])), spread: gradient.spread };
  const remembered = memory && new Map([...memory].filter(([t]) => trained.includes(t)));
  const asked = { weightDescent: descent, weightMemory: remembered && remembered.size > 0 ? { move: remembered, ...(descent && { descent: descent.move }) } : undefined };
  const keys = (Object.keys(asked) as (keyof typeof asked)[]).filter((k) => asked[k]);
  const split = await partMoves(original, tuned, map, keys.map((k) => asked[k]!));
  return { gradient, moves: Object.fromEntries(keys.map((k, i) => [k, split[i]])) };
}

function tokensOf(model: VisionTransformer, size: number): number {
  return 1 + (size / model.config.patchSize) ** 2;
}

// Compares a fine-tuned backbone with its original (and, each part's output, with `before`, the same cell's backbone
// at an earlier step, where given; `memory`: the optimiser's of its tensors, eval/optimizer-memory.ts). LoRA
// adapters of `tuned` are merged into its weights first (the model computes the same function, faster, and its
// weight change is that of the merged weights).
export async function compareBackbones(original: VisionTransformer, tuned: VisionTransformer, map: BlockMap, data: AnalysisData, before?: VisionTransformer, memory?: Map<Tensor, Float64Array>): Promise<BackboneComparison> {
  if (original.blocks.length !== map.depth || tuned.blocks.length !== map.depth + map.added.length) {
    throw new Error(`block analysis: expected an original of ${map.depth} blocks and a fine-tuned model of ${map.depth + map.added.length}, got ${original.blocks.length} and ${tuned.blocks.length}`);
  }
  mergeLora(tuned);
  const size = imageSize(data.queries);
  const c = original.width;
  const heads = original.config.heads;
  const n = data.queries.dataset.length;
  const g = Math.min(data.gridImages, n);
  const ckaCls = Array.from({ length: map.depth }, () => new CkaAccumulator(c, c));
  const ckaPooled = Array.from({ length: map.depth }, () => new CkaAccumulator(c, c));
  const drift = Array.from({ length: map.depth }, () => new AttentionDrift(heads));
  const outputs = new OutputChangeAccumulator(map.depth, before);
  const queries: BlockFeatures = { features: Array.from({ length: map.depth }, () => new Float32Array(n * c)), labels: new Int32Array(n) };
  const grid = { tokens: tokensOf(original, size) - 1, maps: new Float32Array(g * (tokensOf(original, size) - 1)), filled: 0 };
  const same = identityMap(map.depth);
  try {
    let rows = 0;
    for await (const batch of data.queries.epoch(0)) {
      const b = batch.labels.length;
      await tidyAsync(async () => {
        const x = batchImages(batch, size);
        const was = blockOutputs(original, x, same);
        const is = blockOutputs(tuned, x, map);
        for (let i = 0; i < map.depth; i++) {
          ckaCls[i].add(was.cls[i], is.cls[i]);
          ckaPooled[i].add(was.pooled[i], is.pooled[i]);
        }
        const d = map.depth;
        const read = await readTensors([...was.attention, ...is.attention, ...is.normed, ...outputs.batchTerms(original, tuned, map, x, was.tokens)]);
        for (let i = 0; i < d; i++) {
          drift[i].add(read[i], read[d + i], b);
          queries.features[i].set(read[2 * d + i], rows * c);
        }
        outputs.add(read.slice(3 * d));
        addMaps(grid, read[2 * d - 1], rows, b, heads, g);
      });
      queries.labels.set(batch.labels, rows);
      rows += b;
    }
    const bank = await normedFeatures(tuned, data.bank, map, size);
    // Every accumulator's moments in one read-back.
    const accumulators = [...ckaCls, ...ckaPooled];
    const moments = await readTensors(accumulators.flatMap((a) => a.state()));
    const values = accumulators.map((a, j) => ckaFromMoments(moments[2 * j], moments[2 * j + 1], a.n, c, c));
    const cka = { cls: values.slice(0, map.depth), pooled: values.slice(map.depth) };
    const target = data.target && (await outputChangeOn(data.target, original, tuned, map, before));
    const { gradient, moves } = await weightMoves(original, tuned, map, data.train, memory);
    const patches = data.patches && (await patchChanges(data.patches, original, tuned, before, gradient, memory && patchMemoryOf(tuned, memory)));
    return {
      cka,
      ...(await layerKnn(bank, queries, data)),
      ...(await otherBanksKnn(tuned, queries, data, map, size)),
      attention: drift.map((d) => d.value()),
      weights: await weightChange(original, tuned, map),
      outputChange: outputs.value(),
      ...(before && { outputSince: outputs.since() }),
      ...(target && { targetOutputChange: target.outputChange, ...(target.outputSince && { targetOutputSince: target.outputSince }) }),
      ...patches,
      ...moves,
      grid: { tokens: grid.tokens, maps: grid.maps },
    };
  } finally {
    for (const a of [...ckaCls, ...ckaPooled]) a.dispose();
  }
}
