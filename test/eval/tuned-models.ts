// The test fixture ViT (2 blocks) with a strategy applied twice: as at step 0, and with every trainable tensor moved
// to seeded normal values (`std`), as fine-tuning would: what the tests of parts put back (block-reset) and of the
// way back (weight-interpolation) edit and restore.
import { loadVit } from "../../vit/load.js";
import type { VisionTransformer } from "../../vit/model.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { randn } from "../helpers.js";

export async function tunedModels(strategy: string, std = 1): Promise<{ tuned: VisionTransformer; initial: VisionTransformer; trainable: string[] }> {
  const load = async () => {
    const m = (await loadVit("test/fixtures/vit-tiny.safetensors", { heads: 2 })).model;
    applyStrategy(m, parseStrategy(strategy), 3, 1);
    return m;
  };
  const [tuned, initial] = [await load(), await load()];
  const trainable = tuned.parameters().filter(([, t]) => t.requiresGrad);
  trainable.forEach(([, t], i) => t.write(randn(t.size, 100 + i, std)));
  return { tuned, initial, trainable: trainable.map(([n]) => n) };
}

// Every parameter's values, by name.
export const parameterValues = async (m: VisionTransformer): Promise<Map<string, Float32Array>> => new Map(await Promise.all(m.parameters().map(async ([n, t]) => [n, await t.data()] as const)));
