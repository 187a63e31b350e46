// The patch matrix of images as an outer index for matmul's gatherA (kernels/matmul.ts): images (B, ch, H, W),
// patches P x P in row-major order of the (H/P, W/P) grid, each flattened as (ch, P, P), the layout of a
// convolution weight (out, ch, P, P) viewed as (out, ch*P*P):
//   patch[m, k] = images[rows[m] + cols[k]],  m = (b, py, px),  k = (c, ky, kx)
//   rows[m] = b*ch*H*W + py*P*W + px*P,       cols[k] = c*H*W + ky*W + kx
// A ViT's patch embedding so reads its patches from the images in place, where the im2col copy (a permute of
// (B, ch, H/P, P, W/P, P)) was a pass over the images and a dispatch of its own (~0.2 ms of the default model's
// ~9 ms forward at batch 32 on lavapipe). The tables are built on the host once per shape and kept.
import { runtime } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import type { OuterIndex } from "./matmul.js";

const tables = new Map<string, OuterIndex>();

export function im2colIndex(B: number, ch: number, H: number, W: number, P: number): OuterIndex {
  if (![B, ch, H, W, P].every((d) => Number.isInteger(d) && d >= 0) || P === 0 || H % P !== 0 || W % P !== 0) {
    throw new Error(`im2col: expected images (B, ch, H, W) with H and W multiples of the patch size, got (${B}, ${ch}, ${H}, ${W}) and ${P}`);
  }
  if (B * ch * H * W > 2 ** 31) throw new Error(`im2col: expected images of at most 2^31 elements, got (${B}, ${ch}, ${H}, ${W})`);
  // A dry run (engine/trace.ts) computes nothing: its tables are not cached, and go with its scope (as kept packs).
  if (runtime().batch.isDry) return build(B, ch, H, W, P);
  const key = `${B}x${ch}x${H}x${W}/${P}`;
  let index = tables.get(key);
  if (!index) {
    index = build(B, ch, H, W, P);
    index.rows.keep();
    index.cols.keep();
    tables.set(key, index);
  }
  return index;
}

function build(B: number, ch: number, H: number, W: number, P: number): OuterIndex {
  const [gh, gw] = [H / P, W / P];
  const rows = new Int32Array(B * gh * gw);
  for (let b = 0, m = 0; b < B; b++) for (let py = 0; py < gh; py++) for (let px = 0; px < gw; px++) rows[m++] = b * ch * H * W + py * P * W + px * P;
  const cols = new Int32Array(ch * P * P);
  for (let c = 0, k = 0; c < ch; c++) for (let ky = 0; ky < P; ky++) for (let kx = 0; kx < P; kx++) cols[k++] = c * H * W + ky * W + kx;
  return { rows: Tensor.fromArray(rows, [rows.length], "i32"), cols: Tensor.fromArray(cols, [cols.length], "i32") };
}
