// Mixed precision, as PyTorch's autocast: inside withPrecision("f16", fn) the matrix products of autograd/ops.ts
// (matmul, linear, mlp, forward and backward alike) read their inputs in f16 and accumulate in f32
// (kernels/matmul.ts, inputs "f16"), and so do attention's where its version is mma (kernels/attention-mma.ts: q, k,
// v, dO, P and dS in f16) or unfused (matmul's products); reg and tiled compute in f32. Everything else stays f32:
// parameters (the master weights), gradients, optimiser state, reductions, softmax, layernorm and the losses. An op
// takes the precision current when it runs forward, and its backward uses the same.
// Inside withPrecision("int8", fn) the same products may run on 8-bit tensor cores instead (kernels/matmul.ts,
// inputs "int8": f32 operands split into 3 int8 slices, each result within 2^-17 K max|a[m, :]| max|b[:, n]| of the
// exact product, kernels/int8-slices.ts), and inside withPrecision("int8x2", fn) as 2 slices, in half the int8
// products, within 2^-11 K max|a[m, :]| max|b[:, n]|, attention's too where its version is unfused; everything else
// computes in f32, with no loss scaling (the slices' scales take f32's range).
import type { Precision } from "../kernels/registry.js";

// precisionLacks: what the adapter lacks for a precision's products (kernels/registry.ts); int8SelfCheck: whether its
// int8 products compute what they should (kernels/tensor-core-check.ts); for the layers above.
export { type Precision, PRECISIONS, precisionLacks } from "../kernels/registry.js";
export { int8SelfCheck } from "../kernels/tensor-core-check.js";

let current: Precision = "f32";

export function matmulPrecision(): Precision {
  return current;
}

export function withPrecision<T>(precision: Precision, fn: () => T): T {
  const outer = current;
  current = precision;
  try {
    return fn();
  } finally {
    current = outer;
  }
}
