// LoRA: a linear layer W becomes W + (alpha / r) · B A on selected output slices, with A (r, in) Kaiming-uniform
// and B (slice, r) zero, so the model is unchanged at the start. For the fused qkv layer, the targets q, k and v
// are the three row slices of the (3C, C) weight; proj, fc1 and fc2 are whole layers.
//
// Forward: the adapter's delta joins the layer's fused residual epilogue. All slices of one layer share one
// product: h = x · A_catᵀ with A_cat (n*r, in), then delta = h · B_fullᵀ with B_full (out, n*r) holding each B_s
// in its slice's rows and its own r columns, zeros elsewhere.
import { Tensor } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { Rng } from "../util/random.js";
import type { Linear, LinearAdapter, VisionTransformer } from "../vit/model.js";
import { noGrad } from "../autograd/tape.js";

export type LoraTarget = "q" | "k" | "v" | "proj" | "fc1" | "fc2";
export const LORA_TARGETS: LoraTarget[] = ["q", "k", "v", "proj", "fc1", "fc2"];

export interface LoraOptions {
  rank: number;
  alpha?: number; // default: rank (scale 1)
  targets?: LoraTarget[]; // default: q and v, as the paper
  dropout?: number; // on the adapter's input, training only
  seed?: number; // the cell's seed: A matrices and dropout draw from its "lora" generator, not the head's
}

interface Slice {
  name: string; // "q", "k", "v" or "" for a whole layer
  offset: number; // first output row
  size: number;
  A: Tensor; // (r, in)
  B: Tensor; // (size, r)
}

// An adapter tensor's name within its layer, as in test/fixtures: `attn.qkv.lora_q.A`, `mlp.fc1.lora.B`.
function loraName(slice: string, factor: "A" | "B"): string {
  return `lora${slice ? "_" + slice : ""}.${factor}`;
}

// Whether a checkpoint key names a LoRA adapter's tensor (loraName, under any layer).
export function isLoraKey(key: string): boolean {
  return /(^|\.)lora(_[a-z]+)?\.[AB]$/.test(key);
}

export class LoraAdapter implements LinearAdapter {
  readonly scale: number;
  training = true;
  private rng: Rng;

  constructor(
    private layer: Linear,
    private slices: Slice[],
    readonly rank: number,
    alpha: number,
    private dropout: number,
    seed: number,
  ) {
    this.scale = alpha / rank;
    this.rng = new Rng(seed);
  }

  apply(x: Tensor): Tensor {
    const input = this.training && this.dropout > 0 ? ops.dropout(x, this.dropout, this.rng) : x;
    const h = ops.linear(input, this.aCat()); // (..., n*r)
    // Scale the rank-r h rather than the (..., out) delta: an elementwise pass over n*r columns, not out.
    return ops.linear(this.scale === 1 ? h : ops.scale(h, this.scale), this.bFull()); // (..., out)
  }

  private aCat(): Tensor {
    return this.slices.length === 1 ? this.slices[0].A : ops.concat(this.slices.map((s) => s.A), 0);
  }

  // (out, n*r): B_s placed at rows [offset, offset+size) and columns [s*r, (s+1)*r), zeros elsewhere.
  private bFull(): Tensor {
    const out = this.layer.outFeatures;
    const r = this.rank;
    const n = this.slices.length;
    if (n === 1 && this.slices[0].size === out) return this.slices[0].B;
    return ops.placeBlocks([out, n * r], this.slices.map((s, i) => ({ x: s.B, row: s.offset, col: i * r })));
  }

  parameters(): [string, Tensor][] {
    return this.slices.flatMap((s) => [
      [loraName(s.name, "A"), s.A],
      [loraName(s.name, "B"), s.B],
    ]);
  }

  // scale · B_full · A_cat, the weight update this adapter represents: (out, in).
  deltaWeight(): Tensor {
    return noGrad(() => ops.scale(ops.matmul(this.bFull(), this.aCat()), this.scale));
  }
}

// Attaches LoRA adapters to every block of `model`; returns them (trainable tensors are their A and B).
export function applyLora(model: VisionTransformer, opts: LoraOptions): LoraAdapter[] {
  const r = opts.rank;
  if (!Number.isInteger(r) || r <= 0) throw new Error(`lora: rank must be a positive integer, got ${r}`);
  const targets = opts.targets ?? ["q", "v"];
  for (const t of targets) if (!LORA_TARGETS.includes(t)) throw new Error(`lora: unknown target "${t}"; known: ${LORA_TARGETS.join(", ")}`);
  if (opts.dropout !== undefined && !(opts.dropout >= 0 && opts.dropout < 1)) throw new Error(`lora: dropout must be in [0, 1), got ${opts.dropout}`);
  const rng = Rng.forPurpose("lora", opts.seed ?? 0);
  const C = model.width;
  const adapters: LoraAdapter[] = [];
  model.blocks.forEach((block, bi) => {
    const layers: [Linear, { name: string; offset: number; size: number }[]][] = [];
    const qkvSlices = (["q", "k", "v"] as const)
      .map((name, i) => ({ name, offset: i * C, size: C }))
      .filter((s) => targets.includes(s.name));
    if (qkvSlices.length > 0) layers.push([block.qkv, qkvSlices]);
    if (targets.includes("proj")) layers.push([block.proj, [{ name: "", offset: 0, size: C }]]);
    if (targets.includes("fc1")) layers.push([block.fc1, [{ name: "", offset: 0, size: block.fc1.outFeatures }]]);
    if (targets.includes("fc2")) layers.push([block.fc2, [{ name: "", offset: 0, size: C }]]);
    for (const [layer, slices] of layers) {
      if (layer.adapter) throw new Error(`lora: block ${bi} already has an adapter on this layer`);
      const fanIn = layer.inFeatures;
      // Kaiming-uniform with a = sqrt(5), as nn.Linear and the peft library: bound = 1 / sqrt(fan_in).
      const bound = 1 / Math.sqrt(fanIn);
      const full = slices.map((s) => ({
        ...s,
        A: Tensor.fromArray(rng.fill(r * fanIn, () => rng.uniform(-bound, bound)), [r, fanIn]).requireGrad().keep(),
        B: ops.zeros([s.size, r]).requireGrad().keep(),
      }));
      const adapter = new LoraAdapter(layer, full, r, opts.alpha ?? r, opts.dropout ?? 0, rng.nextU32());
      layer.adapter = adapter;
      adapters.push(adapter);
    }
  });
  model.nameParameters();
  return adapters;
}

// Folds every adapter into its layer's weight (W += scale·B·A) and detaches it: inference without overhead.
export function mergeLora(model: VisionTransformer): void {
  forEachAdapter(model, (layer, adapter) => {
    const delta = adapter.deltaWeight();
    ops.addInPlace(layer.weight, delta, 1);
    delta.dispose();
    layer.adapter = undefined;
    mergedAdapters.set(layer, adapter);
  });
}

// Undoes mergeLora: subtracts the update again and re-attaches the adapters.
export function unmergeLora(model: VisionTransformer): void {
  for (const block of model.blocks) {
    for (const layer of [block.qkv, block.proj, block.fc1, block.fc2]) {
      const adapter = mergedAdapters.get(layer);
      if (!adapter) continue;
      const delta = adapter.deltaWeight();
      ops.addInPlace(layer.weight, delta, -1);
      delta.dispose();
      layer.adapter = adapter;
      mergedAdapters.delete(layer);
    }
  }
}

const mergedAdapters = new WeakMap<Linear, LoraAdapter>();

function forEachAdapter(model: VisionTransformer, fn: (layer: Linear, adapter: LoraAdapter) => void): void {
  for (const block of model.blocks) {
    for (const layer of [block.qkv, block.proj, block.fc1, block.fc2]) {
      if (layer.adapter instanceof LoraAdapter) fn(layer, layer.adapter);
    }
  }
}
