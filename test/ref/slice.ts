// CPU references for slicing along one axis: the tensor as (outer, n, inner) around the axis.
function around(shape: number[], axis: number): [number, number, number] {
  const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
  return [prod(shape.slice(0, axis)), shape[axis], prod(shape.slice(axis + 1))];
}

// x[..., start:end, ...]
export function sliceRef(x: ArrayLike<number>, shape: number[], axis: number, start: number, end: number): Float64Array {
  const [outer, n, inner] = around(shape, axis);
  const m = end - start;
  const y = new Float64Array(outer * m * inner);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < m; j++)
      for (let i = 0; i < inner; i++) y[(o * m + j) * inner + i] = x[(o * n + start + j) * inner + i];
  return y;
}

// A copy of y (shape yShape) with x written into y[..., start:start+m, ...].
export function sliceAssignRef(y: ArrayLike<number>, yShape: number[], x: ArrayLike<number>, axis: number, start: number): Float64Array {
  const [outer, n, inner] = around(yShape, axis);
  const m = x.length / (outer * inner);
  const out = Float64Array.from(y);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < m; j++)
      for (let i = 0; i < inner; i++) out[(o * n + start + j) * inner + i] = x[(o * m + j) * inner + i];
  return out;
}

// Concatenation along `axis` of tensors whose shapes differ only there.
export function concatRef(xs: { data: ArrayLike<number>; shape: number[] }[], axis: number): Float64Array {
  const total = xs.reduce((s, x) => s + x.shape[axis], 0);
  const outShape = xs[0].shape.map((d, i) => (i === axis ? total : d));
  let y: Float64Array = new Float64Array(outShape.reduce((a, b) => a * b, 1));
  let start = 0;
  for (const x of xs) {
    y = sliceAssignRef(y, outShape, x.data, axis, start);
    start += x.shape[axis];
  }
  return y;
}
