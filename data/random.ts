// Seeded random numbers for the input pipeline (sfc32, seeded through splitmix32). data/ imports nothing from the
// rest of the project, so this is its own small generator rather than engine/random.ts.
//
// Augmentation draws come from a generator per sample, seeded by (seed, epoch, index): a sample's crop and flip
// then depend only on which sample it is and in which epoch, never on batch size, prefetch depth or the order in
// which asynchronous decodes finish.
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(...seeds: number[]) {
    // splitmix32 over the seed words gives sfc32 a well-mixed state even for seeds like (0, 0, 1).
    let s = 0x6a09e667;
    const next = (word: number) => {
      s = (s + 0x9e3779b9 + (word >>> 0)) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      s = (z ^ (z >>> 16)) >>> 0;
      return s;
    };
    for (const w of seeds) {
      if (!Number.isSafeInteger(w)) throw new Error(`rng: expected integer seeds, got ${w}`);
      next(w);
      next(Math.floor(w / 4294967296)); // the high word, so seeds above 2^32 are not folded onto small ones
    }
    this.a = next(1);
    this.b = next(2);
    this.c = next(3);
    this.d = next(4);
    for (let i = 0; i < 12; i++) this.nextU32();
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

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  // Integer in [0, n).
  int(n: number): number {
    return Math.floor(this.next() * n);
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
