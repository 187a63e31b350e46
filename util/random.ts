// Seeded random numbers on the CPU (sfc32), so that initialisation, data order and augmentation are reproducible
// on any device. Normal variates by Box-Muller; truncated normal by rejection, as timm's trunc_normal_ (bounds in
// absolute units: [a, b] = [-2, 2] by default).
//
// Two ways to seed, both kept because recorded results depend on each (the default study's table, the tests'
// expectations): a number is one seed expanded by splitmix32 (parameter initialisation, test data, benchmarks);
// an array of integer words, e.g. (stream, seed, epoch, index), is mixed in word by word (the data pipeline's
// generators). A sample's crop and flip then depend only on which sample it is and in which epoch, never on batch
// size, prefetch depth or the order in which asynchronous decodes finish. new Rng(1) and new Rng([1]) differ.
// Rng.forPurpose(name, seed) derives one generator per use of a seed (LoRA's adapters, say), so that two uses of
// one cell seed never draw the same numbers.
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | undefined;

  constructor(seed: number | readonly number[]) {
    const state = typeof seed === "number" ? expandSeed(seed) : mixWords(seed);
    [this.a, this.b, this.c, this.d] = state;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  // The generator of `seed` for one named purpose: the same for the same (purpose, seed), independent of
  // new Rng(seed) and of every other purpose's. The name's FNV-1a hash is the first seed word.
  static forPurpose(purpose: string, seed: number): Rng {
    let h = 0x811c9dc5;
    for (let i = 0; i < purpose.length; i++) h = Math.imul(h ^ purpose.charCodeAt(i), 0x01000193) >>> 0;
    return new Rng([h, seed]);
  }

  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) >>> 0;
    return t;
  }

  // Uniform in [0, 1).
  next(): number {
    return this.nextU32() / 4294967296;
  }

  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  // Integer in [0, n).
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  normal(mean = 0, std = 1): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  truncNormal(mean = 0, std = 1, a = -2, b = 2): number {
    if (!(a < b)) throw new Error(`truncNormal: expected a < b, got [${a}, ${b}]`);
    for (let tries = 0; tries < 1000; tries++) {
      const x = this.normal(mean, std);
      if (x >= a && x <= b) return x;
    }
    return Math.min(Math.max(mean, a), b);
  }

  fill(n: number, sample: () => number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = sample();
    return out;
  }

  // Fisher-Yates permutation of 0..n-1.
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

// splitmix32's output function.
function mix32(s: number): number {
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

// splitmix32 from one seed (taken mod 2^32).
function expandSeed(seed: number): number[] {
  let s = seed >>> 0;
  const next = () => mix32((s = (s + 0x9e3779b9) >>> 0));
  return [next(), next(), next(), next()];
}

// splitmix32 with each word added into the running state, so the state is well mixed even for words like (0, 0, 1).
function mixWords(words: readonly number[]): number[] {
  let s = 0x6a09e667;
  const next = (word: number) => (s = mix32((s + 0x9e3779b9 + (word >>> 0)) >>> 0));
  for (const w of words) {
    if (!Number.isSafeInteger(w)) throw new Error(`rng: expected integer seeds, got ${w}`);
    next(w);
    next(Math.floor(w / 4294967296)); // the high word, so seeds above 2^32 are not folded onto small ones
  }
  return [next(1), next(2), next(3), next(4)];
}
