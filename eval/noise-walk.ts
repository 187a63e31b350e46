// What minibatch SGD's noise alone would make of a part's weights: the walk its steps take where each batch's gradient
// is the mean's plus independent noise and the mean is left out. With momentum mu (the buffer b <- mu b + g, the step
// -lr_s b, as autograd/optim.ts's SGD) and noise e_s of E||e_s||^2 = sigma_s^2 at step s (0-based), the change D and
// the buffer after each step have
//   E||b'||^2 = mu^2 E||b||^2 + sigma_s^2
//   E[D . b'] = mu E[D . b]                          (e_s is independent of what came before)
//   E||D'||^2 = E||D||^2 - 2 lr_s E[D . b'] + lr_s^2 E||b'||^2,   E[D' . b'] = E[D . b'] - lr_s E||b'||^2
// from which the walk's change sqrt(E||D||^2), its memory's size mu sqrt(E||b||^2) (the step the state alone would
// make next, eval/optimizer-memory.ts) and the memory's cosine with the change, -E[D . b] / sqrt(E||b||^2 E||D||^2),
// a random walk's: in high dimensions each of these concentrates about its expectation. sigma_s is the spread of the
// training loss's gradient measured at kept steps (eval/training-gradient.ts, relative to the part's original weights
// as eval/part-moves.ts gives it, so the change is relative the same way), linear in the step between two kept steps
// and the nearest one's outside them: step s follows the gradient at the weights after s steps, so a kept step t's
// spread is step t's noise (0-based). Left out: the mean gradient, weight decay and gradient clipping.
import { type Schedule, learningRate } from "../train/schedule.js";

export interface NoiseWalk {
  change: number; // the walk's change, relative to the part's original weights
  memory: number; // its memory's size, relative the same way (0 without momentum)
  turn: number; // the memory's cosine with the change (not a number without momentum or before a step)
}

// A backbone's walks part by part (the weight change's parts, eval/weight-change.ts).
export interface PartWalks {
  embedding: NoiseWalk;
  blocks: NoiseWalk[]; // (depth): each original block's
  norm: NoiseWalk;
}

// `spreads`: [step, spread] at the kept steps, ascending; `at`: the steps (0 to schedule.total) to give the walk at.
export function noiseWalk(schedule: Schedule, momentum: number, spreads: [number, number][], at: number[]): NoiseWalk[] {
  if (spreads.length === 0) throw new Error("noise walk: expected the spread at one kept step at least, got none");
  const last = Math.max(0, ...at);
  if (last > schedule.total) throw new Error(`noise walk: expected steps up to the schedule's ${schedule.total}, got ${last}`);
  const spreadAt = (s: number): number => {
    const j = spreads.findIndex(([t]) => t >= s);
    if (j === 0) return spreads[0][1];
    if (j < 0) return spreads[spreads.length - 1][1];
    const [[t0, a], [t1, b]] = [spreads[j - 1], spreads[j]];
    return a + ((b - a) * (s - t0)) / (t1 - t0);
  };
  const mu = momentum;
  const walk = (buffer: number, change: number, dot: number): NoiseWalk => ({ change: Math.sqrt(change), memory: mu * Math.sqrt(buffer), turn: mu > 0 && buffer > 0 ? -dot / Math.sqrt(buffer * change) : NaN });
  const out = new Map<number, NoiseWalk>([[0, walk(0, 0, 0)]]);
  let [buffer, change, dot] = [0, 0, 0]; // E||b||^2, E||D||^2, E[D . b]
  for (let s = 0; s < last; s++) {
    const lr = learningRate(schedule, s);
    buffer = mu * mu * buffer + spreadAt(s) ** 2;
    const before = mu * dot;
    change += -2 * lr * before + lr * lr * buffer;
    dot = before - lr * buffer;
    out.set(s + 1, walk(buffer, change, dot));
  }
  return at.map((t) => out.get(t)!);
}
