// Collapse of a DINO run, from its per-step metrics (Caron et al. 2021, section 5.3: the two forms of collapse the
// centring and sharpening balance):
//
//   uniform   the teacher outputs the same flat distribution for every image: its mean entropy stays at or above
//             `uniform` x log K
//   constant  the teacher puts every image on the same prototypes: the entropy of its mean output over the batch
//             stays at or below `constant` x log K (a healthy teacher is sharp per image, so its per-image entropy
//             is low too, but its mean output spreads over many prototypes)
//
// for `window` consecutive steps. Either way the student copies the teacher (the KL falls towards 0) and the
// features stop carrying information about the image: the run is stopped with a CollapseError naming the form,
// the steps and the values, rather than left to look like a slow start. window 0 turns the check off.

export interface CollapseSettings {
  window: number; // consecutive steps; 0: no check
  uniform: number; // fraction of log K
  constant: number; // fraction of log K
}

export const COLLAPSE_DEFAULTS: CollapseSettings = { window: 50, uniform: 0.99, constant: 0.05 };

export interface CollapseRow {
  step: number;
  entropy: number; // nats
  marginalEntropy: number; // nats
  kl: number;
}

export class CollapseError extends Error {
  constructor(
    message: string,
    readonly kind: "uniform" | "constant",
    readonly fromStep: number,
    readonly toStep: number,
  ) {
    super(message);
  }
}

// The collapse the last `window` rows show, or undefined. rows: consecutive steps, oldest first.
export function detectCollapse(rows: CollapseRow[], prototypes: number, s: CollapseSettings): CollapseError | undefined {
  if (s.window === 0 || rows.length < s.window) return undefined;
  const recent = rows.slice(-s.window);
  const logK = Math.log(prototypes);
  const from = recent[0].step;
  const to = recent[recent.length - 1].step;
  const last = recent[recent.length - 1];
  const pct = (v: number) => `${((100 * v) / logK).toFixed(1)}% of log K = ${logK.toFixed(3)}`;
  if (recent.every((r) => r.entropy >= s.uniform * logK)) {
    return new CollapseError(
      `dino: the teacher collapsed to uniform outputs: its mean entropy stayed at or above ${100 * s.uniform}% of log K from step ${from} to ${to} ` +
        `(now ${last.entropy.toFixed(4)} nats, ${pct(last.entropy)}; KL teacher-student ${last.kl.toExponential(2)}). ` +
        "Centring outweighs sharpening: a lower teacher temperature (teacherTemp, warmupTeacherTemp) or fewer prototypes sharpen it",
      "uniform",
      from,
      to,
    );
  }
  if (recent.every((r) => r.marginalEntropy <= s.constant * logK)) {
    return new CollapseError(
      `dino: the teacher collapsed to one output for every image: the entropy of its mean output stayed at or below ${100 * s.constant}% of log K from step ${from} to ${to} ` +
        `(now ${last.marginalEntropy.toFixed(4)} nats, ${pct(last.marginalEntropy)}; KL teacher-student ${last.kl.toExponential(2)}). ` +
        "Sharpening outweighs centring: a centre momentum further from 1 (centerMomentum), a higher teacher temperature or a lower learning rate",
      "constant",
      from,
      to,
    );
  }
  return undefined;
}

export function checkCollapseSettings(s: CollapseSettings, where: string): void {
  if (!(Number.isInteger(s.window) && s.window >= 0)) throw new Error(`${where}.window: expected an integer >= 0, got ${s.window}`);
  if (!(s.uniform > 0 && s.uniform <= 1)) throw new Error(`${where}.uniform: expected a fraction in (0, 1], got ${s.uniform}`);
  if (!(s.constant >= 0 && s.constant < s.uniform)) throw new Error(`${where}.constant: expected a fraction in [0, uniform), got ${s.constant}`);
}
