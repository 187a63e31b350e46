// CLS features of many images, in batches, without gradients: the input of k-NN evaluation and of the
// `features` command. Optionally captures block outputs and attention maps of chosen blocks for research.
//
// Full batches without captures are replayed (eval/replayed-forward.ts). A FeatureExtractor keeps its replay across
// calls (a k-NN reads its bank one loader batch at a time); PEFT_REPLAY=0 runs every batch.
import { runtime } from "../engine/runtime.js";
import { Tensor, tidy } from "../engine/tensor.js";
import { ReplayedForward } from "./replayed-forward.js";
import type { Capture, VisionTransformer } from "../vit/model.js";
import { noGrad } from "../autograd/tape.js";
import { joined } from "../util/typed-arrays.js";

// Images per forward pass where the caller names none (`features --batch`).
export const FEATURE_BATCH = 32;

export interface FeatureOptions {
  batch?: number; // images per forward pass (default FEATURE_BATCH)
  captureBlocks?: number[]; // indices of blocks whose outputs (B, T, C) to return
  captureAttention?: number[]; // indices of blocks whose attention probabilities (B, H, T, T) to return
  onProgress?: (done: number, total: number) => void;
}

export interface Features {
  features: Float32Array; // (N, C)
  captured: Map<string, { shape: number[]; data: Float32Array }>; // "block.N" (N, T, C), "attention.N" (N, H, T, T)
}

// The features of one model, batch after batch, over any number of calls; dispose() when done.
export class FeatureExtractor {
  private readonly replayed: ReplayedForward; // full batches

  constructor(
    private readonly model: VisionTransformer,
    private readonly batch = FEATURE_BATCH,
  ) {
    this.replayed = new ReplayedForward((x) => model.features(x), "features: batches are run, not replayed");
  }

  // images: (N, 3, H, W) float32, already normalised.
  async extract(images: Float32Array, shape: number[], opts: Omit<FeatureOptions, "batch"> = {}): Promise<Features> {
    const [N, ch, H, W] = shape;
    if (shape.length !== 4 || ch !== 3) throw new Error(`features: expected images (N, 3, H, W), got (${shape.join(", ")})`);
    const per = 3 * H * W;
    const B = this.batch;
    const C = this.model.width;
    const out = new Float32Array(N * C);
    const parts = new Map<string, { shape: number[]; chunks: Float32Array[] }>();
    const capturing = !!(opts.captureBlocks?.length || opts.captureAttention?.length);
    for (let start = 0; start < N; start += B) {
      const n = Math.min(B, N - start);
      const batch = images.subarray(start * per, (start + n) * per);
      if (n === B && !capturing && runtime().settings.replay) {
        out.set(await (await this.replayed.call(batch, [B, 3, H, W])).data(), start * C);
        opts.onProgress?.(start + n, N);
        continue;
      }
      const capture: Capture | undefined = capturing
        ? { blocks: new Set(opts.captureBlocks ?? []), attention: new Set(opts.captureAttention ?? []), outputs: new Map() }
        : undefined;
      const { feats, captured } = tidy(() =>
        noGrad(() => {
          const x = Tensor.fromArray(batch, [n, 3, H, W]);
          const feats = this.model.features(x, capture);
          return { feats, captured: [...(capture?.outputs ?? new Map<string, Tensor>())] };
        }),
      );
      out.set(await feats.data(), start * C);
      feats.dispose();
      for (const [name, t] of captured) {
        let part = parts.get(name);
        if (!part) parts.set(name, (part = { shape: [N, ...t.shape.slice(1)], chunks: [] }));
        part.chunks.push(await t.data());
        t.dispose();
      }
      opts.onProgress?.(start + n, N);
    }
    const captured = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, part] of parts) captured.set(name, { shape: part.shape, data: joined(part.chunks, Float32Array) });
    return { features: out, captured };
  }

  dispose(): void {
    this.replayed.dispose();
  }
}

// The features of `images` (N, 3, H, W), by a FeatureExtractor of their own.
export async function extractFeatures(model: VisionTransformer, images: Float32Array, shape: number[], opts: FeatureOptions = {}): Promise<Features> {
  const extractor = new FeatureExtractor(model, opts.batch);
  try {
    return await extractor.extract(images, shape, opts);
  } finally {
    extractor.dispose();
  }
}
