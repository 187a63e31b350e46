// The fine-tuning strategies and which parameters each trains. Applying a strategy gives the model a new
// linear head of C classes (PyTorch nn.Linear initialisation, seeded), adds adapters or blocks where the
// strategy needs them, and marks exactly the trainable tensors with requiresGrad; everything else is frozen.
import { Tensor } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import { Linear, type VisionTransformer } from "../vit/model.js";
import { applyLora, type LoraOptions } from "./lora.js";
import { defaultPositions, expandBlocks } from "./block-expansion.js";

export type Strategy =
  | { kind: "full" }
  | { kind: "top-k"; k: number }
  | { kind: "linear" }
  | ({ kind: "lora" } & LoraOptions)
  | { kind: "block"; p: number; positions?: number[] };

// "full", "linear", "top-3", "lora-r8", "block-p2", "block@11" (explicit positions, comma-separated).
export function parseStrategy(text: string): Strategy {
  const s = text.trim().toLowerCase();
  if (s === "full" || s === "all") return { kind: "full" };
  if (s === "linear") return { kind: "linear" };
  let m = /^top-?(\d+)$/.exec(s);
  if (m) return { kind: "top-k", k: Number(m[1]) };
  m = /^lora-?r?(\d+)$/.exec(s);
  if (m) return { kind: "lora", rank: Number(m[1]) };
  m = /^block-?p?(\d+)$/.exec(s);
  if (m) return { kind: "block", p: Number(m[1]) };
  m = /^block@([\d,]+)$/.exec(s);
  if (m) {
    const positions = m[1].split(",").map(Number);
    return { kind: "block", p: positions.length, positions };
  }
  throw new Error(`strategy: unknown "${text}"; expected full, linear, top-K, lora-rR, block-pP or block@POS[,POS]`);
}

export function strategyName(s: Strategy): string {
  switch (s.kind) {
    case "full":
      return "full";
    case "linear":
      return "linear";
    case "top-k":
      return `top-${s.k}`;
    case "lora":
      return `lora-r${s.rank}`;
    case "block":
      return s.positions ? `block@${s.positions.join(",")}` : `block-p${s.p}`;
  }
}

// Why `s` cannot be applied to a backbone of `depth` blocks, as "what it expects", or undefined when it can: top-k
// needs k <= depth; block-pP with the default placement needs p dividing the depth (equal groups of blocks);
// explicit positions must be blocks of the backbone.
export function depthProblem(s: Strategy, depth: number): string | undefined {
  if (s.kind === "top-k" && s.k > depth) return `top-k with k <= depth ${depth}`;
  if (s.kind === "block" && !s.positions && depth % s.p !== 0) return `block-pP with P dividing depth ${depth}`;
  if (s.kind === "block" && s.positions?.some((p) => p < 1 || p > depth)) return `block@POS with positions in 1..${depth}`;
  return undefined;
}

// PyTorch's nn.Linear initialisation: weight and bias uniform in ±1/sqrt(in).
export function newHead(width: number, classes: number, seed: number): Linear {
  const rng = new Rng(seed);
  const bound = 1 / Math.sqrt(width);
  const w = Tensor.fromArray(rng.fill(classes * width, () => rng.uniform(-bound, bound)), [classes, width]).keep();
  const b = Tensor.fromArray(rng.fill(classes, () => rng.uniform(-bound, bound)), [classes]).keep();
  return new Linear(w, b);
}

// Applies the strategy to `model` in place and returns the trainable parameters, named.
export function applyStrategy(model: VisionTransformer, strategy: Strategy, classes: number, seed = 0): [string, Tensor][] {
  if (!Number.isInteger(classes) || classes <= 0) throw new Error(`strategy: classes must be a positive integer, got ${classes}`);
  model.head = newHead(model.width, classes, seed);
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
      const { k } = strategy;
      if (!Number.isInteger(k) || k < 0 || k > model.blocks.length) {
        throw new Error(`strategy top-k: k must be in 0..${model.blocks.length}, got ${k}`);
      }
      const blocks = model.blocks.slice(model.blocks.length - k);
      trainable = new Set([
        ...blocks.flatMap((b) => b.parameters("").map(([, t]) => t)),
        model.norm.weight,
        model.norm.bias,
        ...headParams(),
      ]);
      break;
    }
    case "lora": {
      const adapters = applyLora(model, strategy);
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
