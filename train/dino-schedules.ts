// DINO's per-step schedules (utils.py cosine_scheduler, main_dino.py DINOLoss's teacher temperature), evaluated at
// a step rather than tabulated:
//
//   cosine(base, final, total, warmup, start) at step i:
//     i < warmup:  linspace(start, base, warmup)[i] = start + (base - start) * i / (warmup - 1)
//     otherwise:   final + 0.5 * (base - final) * (1 + cos(pi * (i - warmup) / (total - warmup)))
//   learning rate   cosine(lr, minLr, total, warmup, 0)
//   weight decay    cosine(wd, wdEnd, total, 0)          0.04 -> 0.4 in DINO
//   teacher EMA     cosine(m, 1, total, 0)               0.996 -> 1
//   teacher temperature: linspace(warmupTemp, temp, warmupSteps)[i] during the warm-up, then temp
// DINO tabulates these per iteration for the learning rate, weight decay and momentum, and per epoch for the
// teacher temperature; here the temperature warms up per step too (warmupSteps = warm-up epochs x steps per epoch
// gives DINO's values at each epoch's first step).

// numpy.linspace(a, b, n)[i]
function linspace(a: number, b: number, n: number, i: number): number {
  return n === 1 ? a : a + ((b - a) * i) / (n - 1);
}

export function cosineAt(base: number, final: number, total: number, step: number, warmup = 0, start = 0): number {
  if (!(Number.isInteger(total) && total >= 1 && Number.isInteger(warmup) && warmup >= 0 && warmup < total)) {
    throw new Error(`schedule: expected 0 <= warm-up steps < total steps, got ${warmup} and ${total}`);
  }
  if (step < warmup) return linspace(start, base, warmup, step);
  const i = Math.min(step, total - 1) - warmup;
  return final + 0.5 * (base - final) * (1 + Math.cos((Math.PI * i) / (total - warmup)));
}

export function teacherTemperatureAt(warmupTemp: number, temp: number, warmupSteps: number, step: number): number {
  return step < warmupSteps ? linspace(warmupTemp, temp, warmupSteps, step) : temp;
}
