// What attention's fused kernels share (kernels/attention.ts, kernels/attention-mma.ts): a call's uniform, and the
// WGSL that finds a workgroup's (batch, head) and the first indices of that head's vectors.
import { packUniform } from "./wgsl.js";

// rs: qkv row stride in vec4s (3C/4); c4: o/dO row stride (C/4); blocks: workgroups per (b, h).
// nq: the queries, the first nq tokens of each sequence (n without `queries`).
export const ATTENTION_FIELDS = { n: "u32", nq: "u32", heads: "u32", bh: "u32", blocks: "u32", rs: "u32", c4: "u32", scale: "f32" } as const;

// A call: batch, tokens, queries per sequence, heads, H*D.
export interface AttentionCall {
  B: number;
  N: number;
  NQ: number;
  H: number;
  C: number;
}

export function attentionUniform(call: AttentionCall, blocks: number, scale: number): ArrayBuffer {
  const { B, N, NQ, H, C } = call;
  return packUniform(ATTENTION_FIELDS, { n: N, nq: NQ, heads: H, bh: B * H, blocks, rs: (3 * C) / 4, c4: C / 4, scale });
}

// After mainEntry (FLAT_GROUP in the module): workgroup g works on (b, h) = g / p.blocks, and on the head's vectors
// from these vec4 indices of token 0: q, k, v in qkv; o and dO rows (nq per sequence); lse and delta (head dim 4·d4).
export function headFrame(d4: number): string {
  return `  let g = flatGroup(wid, nwg);
  let bh = g / p.blocks;
  if (bh >= p.bh) { return; } // padding of a folded grid: uniform across the workgroup
  let b = bh / p.heads;
  let h = bh % p.heads;
  let qBase = b * p.n * p.rs + h * ${d4}u;
  let kBase = qBase + p.c4;
  let vBase = kBase + p.c4;
  let oBase = b * p.nq * p.c4 + h * ${d4}u;
  let sBase = bh * p.nq;`;
}
