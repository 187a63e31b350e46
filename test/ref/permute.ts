// CPU reference for permute, from the definition y[c_0, ..., c_k] = x[c at positions perm^-1], i.e. output axis i
// walks input axis perm[i].
export function permuteRef(x: ArrayLike<number>, shape: number[], perm: number[]): { y: Float64Array; shape: number[] } {
  const outShape = perm.map((a) => shape[a]);
  const inStrides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const n = outShape.reduce((a, b) => a * b, 1);
  const y = new Float64Array(n);
  const coord = new Array(outShape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let d = 0; d < outShape.length; d++) src += coord[d] * inStrides[perm[d]];
    y[i] = x[src];
    // advance the output coordinate, last axis fastest
    for (let d = outShape.length - 1; d >= 0; d--) {
      if (++coord[d] < outShape[d]) break;
      coord[d] = 0;
    }
  }
  return { y, shape: outShape };
}
