// Learning-rate schedule: linear warm-up from 0 to the base rate, then half a cosine down to 0 at the last step
// (timm's / DINO's warm-up + cosine, evaluated per step rather than per epoch), or with `after: "constant"` the base
// rate to the end (not the paper's: what separates the rate's decay from the steps taken).
//
//   step < warmup:  lr = base * (step + 1) / warmup          (the first step already moves, as in timm)
//   otherwise:      lr = base * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup)))    (constant: base)
// Steps count from 0; the last step, total - 1, gets a small positive rate, and step `total` would get 0.
export interface Schedule {
  base: number; // peak learning rate
  warmup: number; // warm-up steps, 0 <= warmup < total
  total: number; // steps in the run
  after?: "constant"; // after the warm-up; absent: the cosine decay
}

export function checkSchedule(s: Schedule): void {
  if (!(s.base > 0 && Number.isFinite(s.base))) throw new Error(`schedule: expected a positive learning rate, got ${s.base}`);
  if (!(Number.isInteger(s.total) && s.total >= 1)) throw new Error(`schedule: expected total steps >= 1, got ${s.total}`);
  if (!(Number.isInteger(s.warmup) && s.warmup >= 0 && s.warmup < s.total)) {
    throw new Error(`schedule: expected 0 <= warm-up steps < total steps (${s.total}), got ${s.warmup}`);
  }
}

export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmup) return (s.base * (step + 1)) / s.warmup;
  if (s.after === "constant") return s.base;
  const t = (step - s.warmup) / (s.total - s.warmup);
  return s.base * 0.5 * (1 + Math.cos(Math.PI * Math.min(t, 1)));
}
