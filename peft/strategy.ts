// The fine-tuning strategies and which parameters each trains. Applying a strategy gives the model a new
// linear head of C classes (seeded, initialised as HeadInit says), adds adapters or blocks where the strategy
// needs them, and marks exactly the trainable tensors with requiresGrad; everything else is frozen.
import { Tensor } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import { Linear, type VisionTransformer } from "../vit/model.js";
import { applyLora, type LoraOptions } from "./lora.js";
import { defaultPositions, expandBlocks } from "./block-expansion.js";

// Which tensors train; `layerDecay` (a name's `-lrdD` suffix) trains them at rates decaying layer by layer from the
// head's (peft/layer-decay.ts), which changes how they train, not which; `probeFirst` (`-lpft`) trains the head
// alone first, the backbone frozen, and fine-tunes from there (LP-FT: Kumar et al., "Fine-Tuning can Distort
// Pretrained Features and Underperform Out-of-Distribution", 2022; the study's linearProbe key says how long and at
// what rate), which changes where the head starts, not which tensors train.
export type Strategy = (
  | { kind: "full"; keepFlat?: true } // keepFlat (-keepflat): the patch projection's response to a flat patch held (train/flat-response.ts)
  | { kind: "top-k"; k: number; frozenNorm?: boolean } // the last k blocks, the final norm (unless frozen) and the head
  | { kind: "linear" }
  | ({ kind: "lora" } & LoraOptions)
  | { kind: "block"; p: number; positions?: number[] }
) & { layerDecay?: number; probeFirst?: true };

export const STRATEGY_FORMS = "full, full-keepflat, linear, top-K, top-K-frozen-norm, lora-rR, block-pP or block@POS[,POS], each but linear with -lpft (a linear probe first) and -lrdD (layer-wise rate decay D), in that order";
const LAYER_DECAY = /-lrd(\d*\.?\d+(?:e-\d+)?)$/; // the exponent as String() writes a decay below 1e-6
const PROBE_FIRST = /-lpft$/;

// A flag's comma-separated list of strategies, split at every comma (util/args.ts), with block@1,3's positions
// joined again: a bare number belongs to the block@ before it.
export function strategyTexts(items: string[]): string[] {
  const out: string[] = [];
  for (const item of items) {
    if (/^\d+(-lpft)?(-lrd[\d.e-]+)?$/.test(item) && out.length > 0 && out[out.length - 1].startsWith("block@")) out[out.length - 1] += `,${item}`;
    else out.push(item);
  }
  return out;
}

// "full", "full-keepflat", "linear", "top-3", "top-3-frozen-norm", "lora-r8", "block-p2", "block@11" (explicit positions,
// comma-separated), any of them with a linear probe first, a layer-wise rate decay or both: "full-lpft",
// "full-lrd0.75", "full-lpft-lrd0.75".
export function parseStrategy(text: string): Strategy {
  let s = text.trim().toLowerCase();
  const decay = LAYER_DECAY.exec(s);
  if (decay) s = s.slice(0, decay.index);
  const probe = PROBE_FIRST.exec(s);
  if (probe) s = s.slice(0, probe.index);
  return { ...parseKind(s, text), ...(probe && { probeFirst: true as const }), ...(decay && { layerDecay: Number(decay[1]) }) };
}

// A strategy name without its decay, lower case and trimmed; `text` as given, for the error.
function parseKind(s: string, text: string): Strategy {
  if (s === "full" || s === "all") return { kind: "full" };
  if (s === "full-keepflat") return { kind: "full", keepFlat: true };
  if (s === "linear") return { kind: "linear" };
  let m = /^top-?(\d+)(-frozen-norm)?$/.exec(s);
  if (m) return m[2] ? { kind: "top-k", k: Number(m[1]), frozenNorm: true } : { kind: "top-k", k: Number(m[1]) };
  m = /^lora-?r?(\d+)$/.exec(s);
  if (m) return { kind: "lora", rank: Number(m[1]) };
  m = /^block-?p?(\d+)$/.exec(s);
  if (m) return { kind: "block", p: Number(m[1]) };
  m = /^block@([\d,]+)$/.exec(s);
  if (m) {
    const positions = m[1].split(",").map(Number);
    return { kind: "block", p: positions.length, positions };
  }
  throw new Error(`strategy: unknown "${text}"; expected ${STRATEGY_FORMS}`);
}

export function strategyName(s: Strategy): string {
  return `${kindName(s)}${s.probeFirst ? "-lpft" : ""}${s.layerDecay === undefined ? "" : `-lrd${s.layerDecay}`}`;
}

function kindName(s: Strategy): string {
  switch (s.kind) {
    case "full":
      return s.keepFlat ? "full-keepflat" : "full";
    case "linear":
      return "linear";
    case "top-k":
      return `top-${s.k}${s.frozenNorm ? "-frozen-norm" : ""}`;
    case "lora":
      return `lora-r${s.rank}`;
    case "block":
      return s.positions ? `block@${s.positions.join(",")}` : `block-p${s.p}`;
  }
}

// The backbone dimensions a strategy must fit.
export interface BackboneShape {
  depth: number; // blocks
  width: number; // C
}

const isCount = (n: number, min: number) => Number.isInteger(n) && n >= min;

// Why `s` cannot be applied, as "what it expects" (for "expected ..., got <name>"), or undefined when it can: to
// a backbone of `shape`, or, without one, to any backbone (a checkpoint's shape is known once its header is read).
// top-K: K <= depth. lora-rR: 1 <= R <= width (beyond the width B·A gains no rank). block-pP: P dividing the
// depth (equal groups of blocks). block@POS: distinct blocks of the backbone. -lrdD: 0 < D <= 1, on a strategy that
// trains a block (linear probing and top-0 train only the head and the final norm, whose rate is the base rate).
// -lpft: on a strategy that trains more than the head (linear probing is the probe itself).
export function strategyProblem(s: Strategy, shape?: BackboneShape): string | undefined {
  if (s.probeFirst && s.kind === "linear") return "-lpft on a strategy that trains more than the head (not linear)";
  if (s.layerDecay !== undefined) {
    if (s.kind === "linear" || (s.kind === "top-k" && s.k === 0)) return "-lrdD on a strategy that trains a block (not linear or top-0)";
    if (!(s.layerDecay > 0 && s.layerDecay <= 1)) return "-lrdD with 0 < D <= 1";
  }
  return kindProblem(s, shape);
}

function kindProblem(s: Strategy, shape?: BackboneShape): string | undefined {
  switch (s.kind) {
    case "full":
    case "linear":
      return undefined;
    case "top-k":
      if (!shape) return isCount(s.k, 0) ? undefined : "top-K with K >= 0";
      return isCount(s.k, 0) && s.k <= shape.depth ? undefined : `top-K with 0 <= K <= depth ${shape.depth}`;
    case "lora":
      if (!shape) return isCount(s.rank, 1) ? undefined : "lora-rR with R >= 1";
      return isCount(s.rank, 1) && s.rank <= shape.width ? undefined : `lora-rR with 1 <= R <= width ${shape.width}`;
    case "block": {
      if (!s.positions) {
        if (!shape) return isCount(s.p, 1) ? undefined : "block-pP with P >= 1";
        return isCount(s.p, 1) && shape.depth % s.p === 0 ? undefined : `block-pP with P >= 1 dividing depth ${shape.depth}`;
      }
      const distinct = new Set(s.positions).size === s.positions.length;
      const inRange = s.positions.every((p) => isCount(p, 1) && (!shape || p <= shape.depth));
      return distinct && inRange ? undefined : `block@POS with distinct positions ${shape ? `in 1..depth ${shape.depth}` : ">= 1"}`;
    }
  }
}

// parseStrategy for a backbone of `shape`: throws when the strategy does not fit it.
export function parseStrategyFor(text: string, shape: BackboneShape): Strategy {
  const s = parseStrategy(text);
  const problem = strategyProblem(s, shape);
  if (problem) throw new Error(`strategy: expected ${problem}, got "${text}"`);
  return s;
}

// How a new head's weight and bias are drawn. uniform: PyTorch's nn.Linear, both uniform in ±1/sqrt(in).
// trunc-normal: Hugging Face's ViT (_init_weights), weight nn.init.trunc_normal_(mean 0, std 0.02) with PyTorch's
// default bounds a = -2, b = 2 in absolute units (100 std: in effect untruncated), bias zero.
export type HeadInit = "uniform" | "trunc-normal";
export const HEAD_INITS: readonly HeadInit[] = ["uniform", "trunc-normal"];
const HF_INITIALIZER_RANGE = 0.02; // ViTConfig.initializer_range, as facebook/dino-vitb16's config

// The head draws from new Rng(seed) itself, as it always has (recorded results and cached backbones depend on
// it); every other use of the seed takes a generator of its own (Rng.forPurpose).
export function newHead(width: number, classes: number, seed: number, init: HeadInit = "uniform"): Linear {
  const rng = new Rng(seed);
  const bound = 1 / Math.sqrt(width);
  const weight = init === "uniform" ? () => rng.uniform(-bound, bound) : () => rng.truncNormal(0, HF_INITIALIZER_RANGE, -2, 2);
  const w = Tensor.fromArray(rng.fill(classes * width, weight), [classes, width]).keep();
  const b = Tensor.fromArray(init === "uniform" ? rng.fill(classes, () => rng.uniform(-bound, bound)) : new Float32Array(classes), [classes]).keep();
  return new Linear(w, b);
}

// Applies the strategy to `model` in place and returns the trainable parameters, named.
export function applyStrategy(model: VisionTransformer, strategy: Strategy, classes: number, seed = 0, headInit: HeadInit = "uniform"): [string, Tensor][] {
  if (!Number.isInteger(classes) || classes <= 0) throw new Error(`strategy: classes must be a positive integer, got ${classes}`);
  const problem = strategyProblem(strategy, { depth: model.blocks.length, width: model.width });
  if (problem) throw new Error(`strategy: expected ${problem}, got ${strategyName(strategy)}`);
  if (!HEAD_INITS.includes(headInit)) throw new Error(`strategy: expected a head initialisation ${HEAD_INITS.join(" or ")}, got "${headInit}"`);
  model.head = newHead(model.width, classes, seed, headInit);
  model.config = { ...model.config, classes };
  let trainable: Set<Tensor>;
  const headParams = () => [model.head!.weight, model.head!.bias!];
  switch (strategy.kind) {
    case "full":
      trainable = new Set(model.parameters().map(([, t]) => t));
      break;
    case "linear":
      trainable = new Set(headParams());
      break;
    case "top-k": {
      const blocks = model.blocks.slice(model.blocks.length - strategy.k);
      trainable = new Set([
        ...blocks.flatMap((b) => b.parameters("").map(([, t]) => t)),
        ...(strategy.frozenNorm ? [] : [model.norm.weight, model.norm.bias]),
        ...headParams(),
      ]);
      break;
    }
    case "lora": {
      const adapters = applyLora(model, { ...strategy, seed: strategy.seed ?? seed });
      trainable = new Set([...adapters.flatMap((a) => a.parameters().map(([, t]) => t)), ...headParams()]);
      break;
    }
    case "block": {
      const positions = strategy.positions ?? defaultPositions(model.blocks.length, strategy.p);
      const added = expandBlocks(model, positions);
      trainable = new Set([...added.flatMap((b) => b.parameters("").map(([, t]) => t)), ...headParams()]);
      break;
    }
  }
  model.nameParameters();
  const named = model.parameters();
  for (const [, t] of named) t.requiresGrad = trainable.has(t);
  return named.filter(([, t]) => trainable.has(t));
}

export function countParameters(params: [string, Tensor][]): number {
  return params.reduce((n, [, t]) => n + t.size, 0);
}
