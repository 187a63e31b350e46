// CLS features of many images, in batches, without gradients: the input of k-NN evaluation and of the
// `features` command. Optionally captures block outputs and attention maps of chosen blocks for research.
import { Tensor, tidy } from "../engine/tensor.js";
import type { Capture, VisionTransformer } from "../vit/model.js";
import { noGrad } from "../autograd/tape.js";

export interface FeatureOptions {
  batch?: number; // images per forward pass (default 32)
  captureBlocks?: number[]; // indices of blocks whose outputs (B, T, C) to return
  captureAttention?: number[]; // indices of blocks whose attention probabilities (B, H, T, T) to return
  onProgress?: (done: number, total: number) => void;
}

export interface Features {
  features: Float32Array; // (N, C)
  captured: Map<string, { shape: number[]; data: Float32Array }>; // "block.N" (N, T, C), "attention.N" (N, H, T, T)
}

// images: (N, 3, H, W) float32, already normalised.
export async function extractFeatures(model: VisionTransformer, images: Float32Array, shape: number[], opts: FeatureOptions = {}): Promise<Features> {
  const [N, ch, H, W] = shape;
  if (shape.length !== 4 || ch !== 3) throw new Error(`features: expected images (N, 3, H, W), got (${shape.join(", ")})`);
  const per = 3 * H * W;
  const B = opts.batch ?? 32;
  const C = model.width;
  const out = new Float32Array(N * C);
  const parts = new Map<string, { shape: number[]; chunks: Float32Array[] }>();
  for (let start = 0; start < N; start += B) {
    const n = Math.min(B, N - start);
    const capture: Capture | undefined =
      opts.captureBlocks?.length || opts.captureAttention?.length
        ? { blocks: new Set(opts.captureBlocks ?? []), attention: new Set(opts.captureAttention ?? []), outputs: new Map() }
        : undefined;
    const { feats, captured } = tidy(() =>
      noGrad(() => {
        const x = Tensor.fromArray(images.subarray(start * per, (start + n) * per), [n, 3, H, W]);
        const feats = model.features(x, capture);
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
  for (const [name, part] of parts) {
    const data = new Float32Array(part.shape.reduce((a, b) => a * b, 1));
    let at = 0;
    for (const c of part.chunks) {
      data.set(c, at);
      at += c.length;
    }
    captured.set(name, { shape: part.shape, data });
  }
  return { features: out, captured };
}
