// Position-embedding interpolation for inputs of another resolution, exactly as DINO's
// `interpolate_pos_encoding`: the (G0, G0) grid of patch embeddings resized bicubically (PyTorch's
// F.interpolate, mode="bicubic", align_corners=False, A = -0.75) with scale_factor = (G + 0.1) / G0 per axis.
//
// Interpolation is linear in the embeddings, so it is expressed as a matrix M (Gh*Gw, G0*G0) = Mh ⊗ Mw
// applied on the GPU with matmul: gradients flow back to the native pos_embed for free.

// The (out, inp) 1-D bicubic interpolation matrix PyTorch uses for a given scale factor.
export function bicubicMatrix(inp: number, out: number, scale: number): Float64Array {
  const A = -0.75;
  const cubic1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| <= 1
  const cubic2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2
  const m = new Float64Array(out * inp);
  for (let o = 0; o < out; o++) {
    // PyTorch's area_pixel_compute_source_index with a user scale: src = (dst + 0.5) / scale - 0.5.
    const src = (o + 0.5) / scale - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    const w = [cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)];
    for (let k = 0; k < 4; k++) {
      const idx = Math.min(Math.max(i0 - 1 + k, 0), inp - 1); // borders are clamped
      m[o * inp + idx] += w[k];
    }
  }
  return m;
}

// M (gh*gw, g0*g0) mapping the native grid to a (gh, gw) grid, row-major over (y, x), as DINO computes it.
export function posEmbedInterpolation(g0: number, gh: number, gw: number): Float32Array {
  // DINO adds 0.1 to the target size to avoid floating point error in the scale factor.
  const my = bicubicMatrix(g0, gh, (gh + 0.1) / g0);
  const mx = bicubicMatrix(g0, gw, (gw + 0.1) / g0);
  const out = new Float32Array(gh * gw * g0 * g0);
  for (let y = 0; y < gh; y++)
    for (let x = 0; x < gw; x++)
      for (let sy = 0; sy < g0; sy++) {
        const wy = my[y * g0 + sy];
        if (wy === 0) continue;
        for (let sx = 0; sx < g0; sx++) out[(y * gw + x) * g0 * g0 + sy * g0 + sx] = wy * mx[x * g0 + sx];
      }
  return out;
}
