// Parts of a fine-tuned backbone put back where fine-tuning started, one at a time: which part's change costs the
// source domain, and which buys the transfer (the measures are the caller's). A unit is the trainable tensors of one
// block of the fine-tuned model (an original block, or a new one of Block Expansion), of one of the embeddings (the
// patch projection, the CLS token, the position embeddings: the analysis's weight change counts them as one) or of
// the final norm; the head is never reset. Resetting writes each of its tensors' values at step 0, read from
// `initial` (the base model with the same strategy applied, seed and all: peft/save.ts loadInitial): an original
// block's weights are the original's again, LoRA's B is zero, a new block computes the identity. Where there are
// several units, "all" resets them together (the original backbone under the fine-tuned head), and where there are
// more than two, "all but X" resets every unit but X: X's change alone, as reset X is the others' without it. The
// two tell apart a loss that any one part's change brings by itself (each "all but X" keeps it, each reset X alone
// wins little back) from one that needs them together (each "all but X" wins most of it back). By "layers", each
// block's layers are parts of their own (its two norms, the attention's qkv and proj, the MLP's fc1 and fc2, a
// layer's LoRA adapters with it): which layer of a block forgets. With the first principal direction u of the patches
// the patch projection reads (eval/patch-directions.ts), its change [dW | db] splits into the part along u and the
// rest, and two more units put back one of them, the other kept: which of the two costs the source domain.
import type { VisionTransformer } from "../vit/model.js";
import type { BlockMap } from "./block-map.js";
import { BLOCK_LAYERS } from "./weight-change.js";
import { withEachEdit } from "./weight-edit.js";
import { apartFromBias, patchProjection } from "./patch-directions.js";

export interface ResetUnit {
  name: string; // "patch_embed", "cls_token", "pos_embed", "block 2", "new block after 3", "block 2 mlp.fc1", "norm", "all" or "all but block 2"
  block?: number; // the original block, or the one a new block follows (a part's; not "all but")
  added?: true; // a new block of Block Expansion
  layer?: string; // by "layers": the block's layer (BLOCK_LAYERS)
  direction?: "along" | "rest"; // the patch projection's change along the patches' first direction, or the rest of it
  tensors: string[]; // the parameters it puts back, by name
}

const PATCH_WEIGHT = "patch_embed.proj.weight";
const PATCH_BIAS = "patch_embed.proj.bias";

// The patch projection's two parts of its change, where `units` has it: put back along the first direction (the
// rest kept), and the rest (the part along it kept). Apart from "all" and "all but", which reset it whole.
export function patchDirectionUnits(units: ResetUnit[]): ResetUnit[] {
  const patch = units.find((u) => u.name === "patch_embed");
  if (!patch) return [];
  return [
    { name: "patch_embed along the first direction", direction: "along", tensors: patch.tensors },
    { name: "patch_embed along the others", direction: "rest", tensors: patch.tensors },
  ];
}

// Whole blocks, or each block's layers apart.
export type ResetGrain = "blocks" | "layers";

// The embeddings' units, in the order the model applies them.
const EMBEDDINGS = ["patch_embed", "cls_token", "pos_embed"];

// The units of a fine-tuned model whose trainable parameters are `trainable` (by name, as model.parameters() names
// them): its parts in the model's order (the embeddings, its blocks or their layers, norm), then "all", then "all
// but" each part.
export function resetUnits(trainable: string[], map: BlockMap, grain: ResetGrain = "blocks"): ResetUnit[] {
  const embeddings = new Map<string, string[]>(EMBEDDINGS.map((e) => [e, []]));
  const norm: string[] = [];
  const blocks = new Map<number, string[]>();
  for (const name of trainable) {
    const block = /^blocks\.(\d+)\./.exec(name);
    if (block) {
      const j = Number(block[1]);
      if (!blocks.has(j)) blocks.set(j, []);
      blocks.get(j)!.push(name);
    } else if (embeddings.has(name.split(".")[0])) embeddings.get(name.split(".")[0])!.push(name);
    else if (name.startsWith("norm.")) norm.push(name);
    else if (!name.startsWith("head.")) throw new Error(`block reset: ${name} is neither the embeddings', a block's, the final norm's nor the head's`);
  }
  const units: ResetUnit[] = [];
  for (const [name, tensors] of embeddings) if (tensors.length > 0) units.push({ name, tensors });
  for (const [j, tensors] of [...blocks].sort(([a], [b]) => a - b)) {
    const own = map.own.indexOf(j);
    const added = map.added.find((a) => a.index === j);
    const block = own >= 0 ? { name: `block ${own}`, block: own } : added ? { name: `new block after ${added.after}`, block: added.after, added: true as const } : undefined;
    if (!block) throw new Error(`block reset: the fine-tuned model's block ${j} is neither an original block nor a new one of its map`);
    if (grain === "blocks") units.push({ ...block, tensors });
    else units.push(...layerUnits(block, j, tensors));
  }
  if (norm.length > 0) units.push({ name: "norm", tensors: norm });
  if (units.length < 2) return units;
  // With two parts, "all but" one is the other's reset.
  const allBut = units.length > 2 ? units.map((kept) => ({ name: `all but ${kept.name}`, tensors: units.filter((u) => u !== kept).flatMap((u) => u.tensors) })) : [];
  return [...units, { name: "all", tensors: units.flatMap((u) => u.tensors) }, ...allBut];
}

// A block's trainable tensors (model block `j`'s) as a unit per layer, in BLOCK_LAYERS' order.
function layerUnits(block: Omit<ResetUnit, "tensors">, j: number, tensors: string[]): ResetUnit[] {
  const layerOf = (name: string) => {
    const within = name.slice(`blocks.${j}.`.length);
    const layer = BLOCK_LAYERS.find((l) => within.startsWith(`${l}.`));
    if (!layer) throw new Error(`block reset: ${name} is in none of a block's layers (${BLOCK_LAYERS.join(", ")})`);
    return layer;
  };
  const byLayer = new Map<string, string[]>(BLOCK_LAYERS.map((layer) => [layer, []]));
  for (const t of tensors) byLayer.get(layerOf(t))!.push(t);
  return [...byLayer].filter(([, ts]) => ts.length > 0).map(([layer, ts]) => ({ ...block, name: `${block.name} ${layer}`, layer, tensors: ts }));
}

// `measure(unit)` of `model` with each unit reset in turn to `initial`'s values, the fine-tuned values written back
// after each (and after a failure), bit for bit.
// The patch projection's direction units need `direction`, u over [W | b] (eval/patch-directions.ts PatchMoments).
export async function withEachReset<T>(model: VisionTransformer, initial: VisionTransformer, units: ResetUnit[], measure: (unit: ResetUnit) => Promise<T>, direction?: Float64Array): Promise<T[]> {
  const split = units.some((u) => u.direction) ? await patchSplit(model, initial, direction) : undefined;
  return withEachEdit("block reset", model, initial, units, (unit, name, _tuned, start) => (unit.direction ? split![unit.direction].get(name)! : start), measure);
}

// The patch projection with the part of its change along u put back (`along`: W0 + D - (D u) u^T) or the rest
// (`rest`: W0 + (D u) u^T), D = [W - W0 | b - b0] row by row, in float64 (eval/patch-directions.ts patchProjection).
async function patchSplit(model: VisionTransformer, initial: VisionTransformer, u: Float64Array | undefined): Promise<Record<"along" | "rest", Map<string, Float32Array>>> {
  const [now, start] = [await patchProjection(model), await patchProjection(initial)];
  const dims = now.length / model.width;
  if (!u || u.length !== dims) throw new Error(`block reset: the patch projection's parts need its patches' first direction of ${dims} values, got ${u ? u.length : "none"}`);
  const [along, rest] = [new Float64Array(now.length), new Float64Array(now.length)];
  for (let r = 0; r < model.width; r++) {
    // The bias's term first, then the weights' in order: a fixed order, as the split's bits depend on it.
    const k = dims - 1;
    let a = (now[r * dims + k] - start[r * dims + k]) * u[k];
    for (let j = 0; j < k; j++) a += (now[r * dims + j] - start[r * dims + j]) * u[j];
    for (let j = 0; j < dims; j++) {
      along[r * dims + j] = now[r * dims + j] - a * u[j];
      rest[r * dims + j] = start[r * dims + j] + a * u[j];
    }
  }
  // [W | b] back as the two tensors.
  const tensors = (x: Float64Array) => {
    const { weight, bias } = apartFromBias(x, model.width);
    return new Map([[PATCH_WEIGHT, weight], [PATCH_BIAS, bias]]);
  };
  return { along: tensors(along), rest: tensors(rest) };
}
