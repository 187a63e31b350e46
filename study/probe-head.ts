// The head an -lpft cell's fine-tuning starts from: its linear probe's, as trained, or with linearProbe.headNorm
// scaled by one factor (weight and bias alike, so every answer stays the probe's) to that Frobenius norm of
// head.weight, or to the norm of the head the cell drew. A probe trained to convergence has a head far larger than a
// drawn one, and the gradient the head sends into the backbone, Wᵀ(p - y) for its weights W, is proportional to them
// at a given p: the norm separates the probe's direction from its scale.
import type { Tensor } from "../engine/tensor.js";

// heads: "head.weight" (classes, C) and "head.bias" (classes), as read or written; `drawn`: those the cell drew, for
// headNorm "drawn"; `where` names them in errors.
export function startingHead(heads: Map<string, Float32Array>, headNorm: number | "drawn" | undefined, drawn: Map<string, Float32Array>, where: string): Map<string, Float32Array> {
  if (headNorm === undefined) return heads;
  const norm = normOf(heads, where);
  const target = headNorm === "drawn" ? normOf(drawn, `the head ${where}'s cell drew`) : headNorm;
  if (!(norm > 0) || !Number.isFinite(norm)) throw new Error(`linearProbe.headNorm: ${where}'s head.weight has norm ${norm}, which no factor scales to ${target}`);
  const factor = target / norm;
  return new Map([...heads].map(([name, data]) => [name, data.map((x) => x * factor)]));
}

// The Frobenius norm of head.weight.
function normOf(heads: Map<string, Float32Array>, where: string): number {
  const weight = heads.get("head.weight");
  if (!weight) throw new Error(`linearProbe.headNorm: expected head.weight in ${where}, found none`);
  let squares = 0;
  for (const w of weight) squares += w * w;
  return Math.sqrt(squares);
}

// The head's tensors among a model's named tensors (its trainable ones, or all its parameters); read back; written
// (those `head` holds), for the fine-tuning, or an interpolation's line, to start from the head startingHead gives.
export const headTensors = (named: [string, Tensor][]) => named.filter(([name]) => name.startsWith("head."));
export const headOf = async (named: [string, Tensor][]) => new Map(await Promise.all(headTensors(named).map(async ([name, t]) => [name, await t.data()] as const)));
export function writeHead(named: [string, Tensor][], head: Map<string, Float32Array>): void {
  for (const [name, t] of headTensors(named)) {
    const data = head.get(name);
    if (data) t.write(data);
  }
}
