// A fine-tuned model's trainable tensors overwritten, one edit at a time, while a measure runs, and written back to
// their fine-tuned values after each (and after a failure), bit for bit. An edit's tensors take values made from
// their fine-tuned and their step-0 ones (`initial`: the base model with the same strategy applied, seed and all:
// peft/save.ts loadInitial): eval/block-reset.ts puts parts back at step 0, eval/weight-interpolation.ts moves every
// tensor part of the way back.
import type { Tensor } from "../engine/tensor.js";
import type { VisionTransformer } from "../vit/model.js";

// `value(edit, name, tuned, start)`: what tensor `name` holds during `edit`, from its fine-tuned and step-0 values.
export type EditValue<E> = (edit: E, name: string, tuned: Float32Array, start: Float32Array) => Float32Array;

// `measure(edit)` of `model` with each edit's tensors written in turn; `what` names the caller in errors.
export async function withEachEdit<E extends { tensors: string[] }, T>(
  what: string,
  model: VisionTransformer,
  initial: VisionTransformer,
  edits: E[],
  value: EditValue<E>,
  measure: (edit: E) => Promise<T>,
): Promise<T[]> {
  const params = new Map(model.parameters());
  const starts = new Map(initial.parameters());
  const tensorOf = (from: Map<string, Tensor>, name: string, which: string) => {
    const t = from.get(name);
    if (!t) throw new Error(`${what}: ${which} has no parameter ${name}`);
    return t;
  };
  const names = [...new Set(edits.flatMap((e) => e.tensors))];
  const tuned = new Map<string, Float32Array>();
  const atStart = new Map<string, Float32Array>();
  for (const name of names) {
    const [t, s] = [tensorOf(params, name, "the fine-tuned model"), tensorOf(starts, name, "the model at step 0")];
    if (t.shape.join() !== s.shape.join()) throw new Error(`${what}: ${name} is (${t.shape.join(", ")}) fine-tuned but (${s.shape.join(", ")}) at step 0`);
    tuned.set(name, await t.data());
    atStart.set(name, await s.data());
  }
  const out: T[] = [];
  for (const edit of edits) {
    for (const name of edit.tensors) params.get(name)!.write(value(edit, name, tuned.get(name)!, atStart.get(name)!));
    try {
      out.push(await measure(edit));
    } finally {
      for (const name of edit.tensors) params.get(name)!.write(tuned.get(name)!);
    }
  }
  return out;
}
