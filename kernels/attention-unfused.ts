// Attention's "unfused" version (kernels/registry.ts ATTENTION): scaled-dot-product attention over the packed qkv,
// composed of the matmul, softmax, permute, slice and elementwise kernels, for drivers where those outrun the
// fused kernels of kernels/attention.ts (llvmpipe: the register-blocked matmul does 15-30 GFLOP/s, the fused
// kernels 3-4; the CPU default past 64 tokens, where its scores fit one storage binding).
//
// Per batch entry and head, with q pre-scaled (qs = s·q), all (B·H, N, ·):
//   P = softmax(qs·kᵀ) (B·H, N, N), saved for backward      o = P·v
// Backward, from dO:
//   dv = Pᵀ·dO    dP = dO·vᵀ    dS = P ∘ (dP - rowsum(P ∘ dP))    dq = s·dS·k    dk = dSᵀ·qs
// It writes P and dP, (B·H, N, N) each, which the fused kernels never do; each is disposed as soon as it is dead.
// Its products are matmul's in the call's precision (inputs: f16 operands, or int8 slices), as autocast runs
// attention's; softmax and the rest compute in f32. kernels/attention.ts attentionForward and attentionBackward run
// it for the version "unfused".
import { Tensor } from "../engine/tensor.js";
import { unaryForward } from "./elementwise.js";
import { type Precision, matmulForward } from "./matmul.js";
import { permuteForward } from "./permute.js";
import { concatForward, sliceForward } from "./slice.js";
import { softmaxBackward, softmaxForward } from "./softmax.js";

// What the backward needs, head-major: P (B·H, N, N); qs = s·q, k, v (B·H, N, D).
export interface UnfusedSaved {
  P: Tensor;
  qs: Tensor;
  k: Tensor;
  v: Tensor;
}

// Batch, tokens, heads, head dim; the products' precision (default f32).
interface Sizes {
  B: number;
  N: number;
  H: number;
  D: number;
  inputs?: Precision;
}

// x viewed as `shape`, x itself disposed (the view keeps the storage).
function view(x: Tensor, shape: number[]): Tensor {
  const y = x.reshape(shape);
  x.dispose();
  return y;
}

// qkv: (B, N, 3*H*D), s the scale -> o: (B, N, H*D) and what the backward needs.
export function unfusedForward(qkv: Tensor, { B, N, H, D, inputs }: Sizes, s: number): { o: Tensor; saved: UnfusedSaved } {
  const BH = B * H;
  const x = qkv.reshape([B, N, 3, H, D]);
  const parts = permuteForward(x, [2, 0, 3, 1, 4]); // (3, B, H, N, D)
  x.dispose();
  const [q, k, v] = [0, 1, 2].map((i) => view(sliceForward(parts, 0, i, i + 1), [BH, N, D]));
  parts.dispose();
  const qs = unaryForward("scale", q, s);
  q.dispose();
  const scores = matmulForward(qs, k, { transB: true, inputs }); // (BH, N, N)
  const P = softmaxForward(scores);
  scores.dispose();
  const heads = view(matmulForward(P, v, { inputs }), [B, H, N, D]);
  const o = view(permuteForward(heads, [0, 2, 1, 3]), [B, N, H * D]);
  heads.dispose();
  return { o, saved: { P, qs, k, v } };
}

// saved from the forward, dout: (B, N, H*D), s the scale -> dqkv: (B, N, 3*H*D). Leaves saved to the caller.
export function unfusedBackward({ P, qs, k, v }: UnfusedSaved, dout: Tensor, { B, N, H, D, inputs }: Sizes, s: number): Tensor {
  const d = dout.reshape([B, N, H, D]);
  const dO = view(permuteForward(d, [0, 2, 1, 3]), [B * H, N, D]);
  d.dispose();
  const dv = matmulForward(P, dO, { transA: true, inputs });
  const dP = matmulForward(dO, v, { transB: true, inputs });
  dO.dispose();
  const dS = softmaxBackward(P, dP);
  dP.dispose();
  const dSk = matmulForward(dS, k, { inputs });
  const dq = unaryForward("scale", dSk, s);
  dSk.dispose();
  const dk = matmulForward(dS, qs, { transA: true, inputs });
  dS.dispose();
  const grads = [dq, dk, dv].map((t) => view(t, [1, B, H, N, D]));
  const dparts = concatForward(grads, 0); // (3, B, H, N, D)
  for (const g of grads) g.dispose();
  const dqkv = view(permuteForward(dparts, [1, 3, 0, 2, 4]), [B, N, 3 * H * D]);
  dparts.dispose();
  return dqkv;
}
