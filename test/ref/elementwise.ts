// CPU references for elementwise ops, written from the math.
export function erf(x: number): number {
  // High-precision series/continued fraction is overkill here: use the identity with the complementary
  // error function from a Chebyshev fit (Numerical Recipes erfc, |rel err| < 1.2e-7).
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
        t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

// d gelu / dx = Φ(x) + x φ(x).
export function geluGrad(x: number): number {
  return 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
}

export function broadcastIndex(i: number, out: number[], shape: number[]): number {
  let idx = 0;
  let stride = 1;
  let rem = i;
  const coords = new Array(out.length);
  for (let d = out.length - 1; d >= 0; d--) {
    coords[d] = rem % out[d];
    rem = Math.floor(rem / out[d]);
  }
  for (let d = shape.length - 1; d >= 0; d--) {
    const axis = out.length - shape.length + d;
    if (shape[d] !== 1) idx += coords[axis] * stride;
    stride *= shape[d];
  }
  return idx;
}
