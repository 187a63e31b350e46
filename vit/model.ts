// The Vision Transformer as DINO uses it: patch embedding (a strided convolution computed as a matmul over
// patches), CLS token, learned position embeddings, pre-norm blocks (LayerNorm, attention with qkv bias, MLP
// with exact GELU), final LayerNorm; the feature is the CLS token after the final norm; optional linear head.
// The same functions, computed in fewer passes: each layernorm in the pass that makes its input, and the last block
// for the CLS token alone (features(); docs/MODELS.md).
//
// Parameters are named as in timm / the official DINO checkpoints (`blocks.3.attn.qkv.weight`, ...).
// Linear layers can carry an adapter (e.g. LoRA from peft/) whose output is added to the layer's output.
import { Tensor } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { Rng } from "../util/random.js";
import type { VitConfig } from "./config.js";
import { posEmbedInterpolation } from "./pos-embed.js";

// Something added to a linear layer's output: y = x·Wᵀ + b + adapter(x).
export interface LinearAdapter {
  apply(x: Tensor): Tensor; // x (..., in) -> (..., out)
  parameters(): [string, Tensor][]; // names relative to the layer, e.g. "lora_A.q"
}

export class Linear {
  adapter: LinearAdapter | undefined;
  constructor(
    public weight: Tensor, // (out, in)
    public bias: Tensor | undefined, // (out)
  ) {}

  get inFeatures(): number {
    return this.weight.shape[1];
  }

  get outFeatures(): number {
    return this.weight.shape[0];
  }

  forward(x: Tensor, opts: ops.LinearOptions = {}): Tensor {
    if (!this.adapter) return ops.linear(x, this.weight, this.bias, opts);
    // The adapter's delta joins the fused residual; with GELU the delta must go before the activation.
    if (opts.gelu) return ops.gelu(ops.add(ops.linear(x, this.weight, this.bias), this.adapter.apply(x)));
    return ops.linear(x, this.weight, this.bias, { residual: this.withDelta(x, opts.residual) });
  }

  // forward, then `norm` of its output: [y, norm(y)], the norm in the product's epilogue where it can be
  // (ops.linearThenNorm).
  forwardThenNorm(x: Tensor, opts: ops.LinearOptions, norm: LayerNorm): [Tensor, Tensor] {
    if (this.adapter && opts.gelu) {
      const y = this.forward(x, opts);
      return [y, norm.forward(y)];
    }
    const residual = this.adapter ? this.withDelta(x, opts.residual) : opts.residual;
    return ops.linearThenNorm(x, this.weight, this.bias, { ...opts, residual }, norm.params());
  }

  // The adapter's delta, plus the residual if any: what the product adds last.
  private withDelta(x: Tensor, residual: Tensor | undefined): Tensor {
    const delta = this.adapter!.apply(x);
    return residual ? ops.add(residual, delta) : delta;
  }
}

export class LayerNorm {
  constructor(
    public weight: Tensor, // (C)
    public bias: Tensor, // (C)
    readonly eps: number,
  ) {}

  forward(x: Tensor): Tensor {
    return ops.layernorm(x, this.weight, this.bias, this.eps);
  }

  params(): ops.NormParams {
    return { gamma: this.weight, beta: this.bias, eps: this.eps };
  }
}

// What a forward pass can record for research: the output of chosen blocks and the attention probabilities.
export interface Capture {
  blocks?: Set<number>; // indices into model.blocks
  attention?: Set<number>;
  outputs: Map<string, Tensor>; // "block.N" (B, T, C), "attention.N" (B, H, T, T)
}

// How a block runs within the model's forward (Block.forwardNormed).
export interface BlockRun {
  normed?: Tensor; // norm1(x), where the pass before computed it
  next?: LayerNorm; // the layernorm the caller applies to the output (the next block's norm1), made in the last product
  clsOnly?: boolean; // the caller reads only the CLS token's output (the last block's, for the feature)
  capture?: Capture;
  index?: number; // into model.blocks, for the capture
}

export class Block {
  constructor(
    public norm1: LayerNorm,
    public qkv: Linear, // (3C, C): rows [q | k | v], head-major inside each
    public proj: Linear, // (C, C)
    public norm2: LayerNorm,
    public fc1: Linear, // (hidden, C)
    public fc2: Linear, // (C, hidden)
    readonly heads: number,
  ) {}

  forward(x: Tensor, capture?: Capture, index = -1): Tensor {
    return this.forwardNormed(x, { capture, index })[0];
  }

  // forward, with the layernorms at its ends computed in the products before them (ops.linearThenNorm) and, where
  // the caller reads only the CLS token's output, only that (see BlockRun). Returns [output, next(output)], the
  // second undefined without `next`; the output is (B, 1, C) with clsOnly.
  forwardNormed(x: Tensor, run: BlockRun): [Tensor, Tensor | undefined] {
    const { capture, index = -1, next } = run;
    // x: (B, T, C)
    const qkv = this.qkv.forward(run.normed ?? this.norm1.forward(x)); // (B, T, 3C)
    if (capture?.attention?.has(index)) capture.outputs.set(`attention.${index}`, ops.attentionProbs(qkv.detach(), this.heads));
    // clsOnly: the CLS token's output needs every token's key and value, but only its own query, projection and MLP.
    const attended = ops.attention(qkv, this.heads, run.clsOnly ? { queries: 1 } : {}); // (B, T or 1, C)
    const residual = run.clsOnly ? ops.slice(x, 1, 0, 1) : x;
    const [h, normed] = this.proj.forwardThenNorm(attended, { residual }, this.norm2);
    const { fc1, fc2 } = this;
    // Without adapters, the two linears as one op (GELU's backward fused into a product, autograd/ops.ts mlp).
    if (!fc1.adapter && !fc2.adapter) {
      const weights = { w1: fc1.weight, b1: fc1.bias, w2: fc2.weight, b2: fc2.bias };
      return next ? ops.mlpThenNorm(normed, weights, h, next.params()) : [ops.mlp(normed, weights, h), undefined];
    }
    const hidden = fc1.forward(normed, { gelu: true }); // (B, T, hidden)
    return next ? fc2.forwardThenNorm(hidden, { residual: h }, next) : [fc2.forward(hidden, { residual: h }), undefined];
  }

  parameters(prefix: string): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const layers: [string, Linear | LayerNorm][] = [
      ["norm1", this.norm1],
      ["attn.qkv", this.qkv],
      ["attn.proj", this.proj],
      ["norm2", this.norm2],
      ["mlp.fc1", this.fc1],
      ["mlp.fc2", this.fc2],
    ];
    for (const [name, layer] of layers) {
      out.push([`${prefix}${name}.weight`, layer.weight]);
      if (layer.bias) out.push([`${prefix}${name}.bias`, layer.bias]);
      if (layer instanceof Linear && layer.adapter) {
        for (const [n, t] of layer.adapter.parameters()) out.push([`${prefix}${name}.${n}`, t]);
      }
    }
    return out;
  }
}

export class VisionTransformer {
  head: Linear | undefined;
  private posCache = new Map<string, Tensor>(); // interpolation matrices per input grid

  constructor(
    public config: VitConfig,
    public patchEmbed: Linear, // (C, 3*P*P): the conv weight (C, 3, P, P) viewed as a matrix
    public clsToken: Tensor, // (1, 1, C)
    public posEmbed: Tensor, // (1, 1 + G*G, C)
    public blocks: Block[],
    public norm: LayerNorm,
    head?: Linear,
  ) {
    this.head = head;
  }

  get width(): number {
    return this.config.width;
  }

  // images (B, 3, H, W), already normalised -> tokens (B, 1 + Gh*Gw, C) before the blocks.
  embed(images: Tensor): Tensor {
    return this.embedNormed(images, undefined)[0];
  }

  // embed, and `norm` of its tokens (the first block's norm1) made in the same pass where the kernels can
  // (ops.tokenSequenceThenNorm): [tokens, norm(tokens)], the second undefined without `norm`.
  private embedNormed(images: Tensor, norm: LayerNorm | undefined): [Tensor, Tensor | undefined] {
    const [, ch, H, W] = images.shape;
    const P = this.config.patchSize;
    if (images.shape.length !== 4 || ch !== 3 || H % P !== 0 || W % P !== 0) {
      throw new Error(`vit: expected images (B, 3, H, W) with H and W multiples of ${P}, got (${images.shape.join(", ")})`);
    }
    const gh = H / P;
    const gw = W / P;
    const { adapter, weight, bias } = this.patchEmbed;
    const tokens = adapter ? this.patchEmbed.forward(ops.im2col(images, P)) : ops.patchEmbed(images, weight, bias, P); // (B, G, C)
    const pos = this.positions(gh, gw);
    // [cls; tokens] + pos
    return norm ? ops.tokenSequenceThenNorm(tokens, this.clsToken, pos, norm.params()) : [ops.tokenSequence(tokens, this.clsToken, pos), undefined];
  }

  // The position embeddings for a (gh, gw) grid: the parameter itself at the native size, else interpolated.
  private positions(gh: number, gw: number): Tensor {
    const g0 = this.config.imageSize / this.config.patchSize;
    if (gh === g0 && gw === g0) return this.posEmbed;
    const key = `${gh}x${gw}`;
    let m = this.posCache.get(key);
    if (!m) {
      m = Tensor.fromArray(posEmbedInterpolation(g0, gh, gw), [gh * gw, g0 * g0]).keep();
      this.posCache.set(key, m);
    }
    const C = this.width;
    const clsPos = ops.slice(this.posEmbed, 1, 0, 1); // (1, 1, C)
    const grid = ops.reshape(ops.slice(this.posEmbed, 1, 1, 1 + g0 * g0), [g0 * g0, C]);
    const resized = ops.reshape(ops.matmul(m, grid), [1, gh * gw, C]);
    return ops.concat([clsPos, resized], 1);
  }

  // The CLS feature after the final norm: (B, C).
  features(images: Tensor, capture?: Capture): Tensor {
    // The last block's output is read at the CLS token alone (the feature), unless it is captured: that block runs
    // for the CLS token alone (Block.forwardNormed) and the final norm in its last product; LayerNorm being per
    // token, the feature is the same.
    const last = this.blocks.length - 1;
    const clsOnly = last >= 0 && !capture?.blocks?.has(last);
    // normed: the next block's norm1(x), from the pass before; after the last block, the final norm's.
    let [x, normed] = this.embedNormed(images, this.blocks[0]?.norm1);
    this.blocks.forEach((block, i) => {
      const next = i < last ? this.blocks[i + 1].norm1 : clsOnly ? this.norm : undefined;
      [x, normed] = block.forwardNormed(x, { normed, next, clsOnly: clsOnly && i === last, capture, index: i });
      if (capture?.blocks?.has(i)) capture.outputs.set(`block.${i}`, x.detach());
    });
    const [B, T, C] = x.shape;
    const cls = (t: Tensor) => ops.reshape(T === 1 ? t : ops.slice(t, 1, 0, 1), [B, C]);
    return normed ? cls(normed) : this.norm.forward(cls(x));
  }

  // Logits (B, classes) through the head.
  forward(images: Tensor, capture?: Capture): Tensor {
    if (!this.head) throw new Error("vit: the model has no head (classes = 0); use features()");
    return this.head.forward(this.features(images, capture));
  }

  // Every parameter with its timm / DINO name, in a stable order.
  parameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [
      ["cls_token", this.clsToken],
      ["pos_embed", this.posEmbed],
      ["patch_embed.proj.weight", this.patchEmbed.weight],
    ];
    if (this.patchEmbed.bias) out.push(["patch_embed.proj.bias", this.patchEmbed.bias]);
    this.blocks.forEach((b, i) => out.push(...b.parameters(`blocks.${i}.`)));
    out.push(["norm.weight", this.norm.weight], ["norm.bias", this.norm.bias]);
    if (this.head) {
      out.push(["head.weight", this.head.weight]);
      if (this.head.bias) out.push(["head.bias", this.head.bias]);
    }
    return out;
  }

  // Names every parameter tensor after its key (for errors and optimiser state).
  nameParameters(): void {
    for (const [name, t] of this.parameters()) t.name = name;
  }

  // Frees every parameter's storage and the position interpolations kept: the model is done with.
  dispose(): void {
    for (const [, t] of this.parameters()) t.dispose();
    for (const m of this.posCache.values()) m.dispose();
    this.posCache.clear();
  }
}

// ---- construction ----

export type TensorSource = (name: string, shape: number[]) => Float32Array;

// Builds a model whose tensors come from `source` (a checkpoint, or an initialiser); all kept for the model's life.
export function buildVit(config: VitConfig, source: TensorSource): VisionTransformer {
  const C = config.width;
  const P = config.patchSize;
  const G = (config.imageSize / P) ** 2;
  const param = (name: string, shape: number[]) => {
    const t = Tensor.fromArray(source(name, shape), shape).keep();
    t.name = name;
    return t;
  };
  const linear = (name: string, out: number, inp: number, shape = [out, inp]) => {
    let weight = param(`${name}.weight`, shape);
    if (shape.length !== 2) {
      // The conv weight (C, 3, P, P) is used as a (C, 3*P*P) matrix: keep only the view.
      const view = weight.reshape([out, inp]).keep();
      weight.dispose();
      weight = view;
    }
    return new Linear(weight, param(`${name}.bias`, [out]));
  };
  const norm = (name: string) => new LayerNorm(param(`${name}.weight`, [C]), param(`${name}.bias`, [C]), config.eps);
  const patchEmbed = linear("patch_embed.proj", C, 3 * P * P, [C, 3, P, P]);
  const cls = param("cls_token", [1, 1, C]);
  const pos = param("pos_embed", [1, 1 + G, C]);
  const blocks: Block[] = [];
  for (let i = 0; i < config.depth; i++) {
    const p = `blocks.${i}.`;
    blocks.push(
      new Block(
        norm(`${p}norm1`),
        linear(`${p}attn.qkv`, 3 * C, C),
        linear(`${p}attn.proj`, C, C),
        norm(`${p}norm2`),
        linear(`${p}mlp.fc1`, config.mlpHidden, C),
        linear(`${p}mlp.fc2`, C, config.mlpHidden),
        config.heads,
      ),
    );
  }
  const head = config.classes > 0 ? linear("head", config.classes, C) : undefined;
  const model = new VisionTransformer(config, patchEmbed, cls, pos, blocks, norm("norm"), head);
  model.nameParameters();
  return model;
}

// timm's initialisation: trunc_normal(std 0.02) for linear weights, position embeddings and the CLS token, zero
// biases, unit LayerNorm scales; seeded.
export function initialiser(seed: number): TensorSource {
  const rng = new Rng(seed);
  return (name, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (/norm\d?\.weight$/.test(name)) return new Float32Array(n).fill(1);
    if (name.endsWith(".bias")) return new Float32Array(n);
    return rng.fill(n, () => rng.truncNormal(0, 0.02)); // timm: bounds ±2 absolute
  };
}
