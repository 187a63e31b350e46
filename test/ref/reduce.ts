// CPU reference for reductions along one axis, from the definition.
export function reduceAxis(x: ArrayLike<number>, shape: number[], axis: number, op: "sum" | "mean" | "max"): Float64Array {
  const n = shape[axis];
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const y = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let acc = op === "max" ? -Infinity : 0;
      for (let j = 0; j < n; j++) {
        const v = x[(o * n + j) * inner + i];
        acc = op === "max" ? Math.max(acc, v) : acc + v;
      }
      y[o * inner + i] = op === "mean" ? acc / n : acc;
    }
  return y;
}
