// Linear CKA in float64 from the kernel (Gram) form of Kornblith et al. (2019), eq. 3 and 4, written independently
// of eval/cka.ts's feature-space form: K = X Xᵀ, L = Y Yᵀ (n, n), H = I - 11ᵀ/n the centring matrix,
// HSIC(K, L) = tr(K H L H) (the 1/(n-1)² factor cancels), CKA = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L)).
// x (n, p), y (n, q) row-major.
export function ckaReference(x: ArrayLike<number>, y: ArrayLike<number>, n: number): number {
  const gram = (a: ArrayLike<number>) => {
    const d = a.length / n;
    const k = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += a[i * d + c] * a[j * d + c];
        k[i * n + j] = s;
      }
    }
    return centre(k, n);
  };
  const k = gram(x);
  const l = gram(y);
  // tr(Kc Lc) for the symmetric centred Grams Kc = H K H: the sum of their elementwise products.
  const hsic = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);
  return hsic(k, l) / Math.sqrt(hsic(k, k) * hsic(l, l));
}

// H K H: each row's and each column's mean removed, the grand mean added back.
function centre(k: Float64Array, n: number): Float64Array {
  const row = new Float64Array(n);
  let all = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) row[i] += k[i * n + j] / n;
    all += row[i] / n;
  }
  // K is symmetric: column means equal row means.
  return k.map((v, idx) => v - row[Math.floor(idx / n)] - row[idx % n] + all);
}
