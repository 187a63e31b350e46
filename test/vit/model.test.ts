// Parity with PyTorch: the fixtures in test/fixtures/ were made by generate.py (plain torch, DINO/timm ViT).
// Tolerance: every element within 1e-4 of the reference tensor's largest magnitude ("relative to its scale").
import { describe, expect, it } from "vitest";
import { Tensor, tidy } from "../../engine/tensor.js";
import * as ops from "../../autograd/ops.js";
import { readSafetensors, type F32Tensor } from "../../vit/safetensors.js";
import { loadVit } from "../../vit/load.js";
import { applyLora } from "../../peft/lora.js";
import { expandBlocks } from "../../peft/block-expansion.js";
import { bicubicMatrix } from "../../vit/pos-embed.js";
import type { VisionTransformer } from "../../vit/model.js";
import { expectScaled, useEngine } from "../helpers.js";
import { backward, noGrad } from "../../autograd/tape.js";

useEngine();
const FIX = "test/fixtures/";
const REL = 1e-4; // of each reference tensor's largest magnitude

async function fixture(name: string): Promise<Map<string, F32Tensor>> {
  return (await readSafetensors(FIX + name)).tensors;
}

// loss = sum(features * w), backward, and the features.
async function lossAndGrads(model: VisionTransformer, x: F32Tensor, w: F32Tensor, inputGrad = false) {
  const input = Tensor.fromArray(x.data, x.shape);
  if (inputGrad) input.requireGrad();
  const feats = model.features(input);
  const loss = ops.sumAll(ops.mul(feats, Tensor.fromArray(w.data, w.shape)));
  backward(loss);
  return { feats: await feats.data(), loss: await loss.item(), input };
}

describe("ViT parity with PyTorch", () => {
  it("features, loss and every gradient (parameters and input) match", async () => {
    const io = await fixture("vit-tiny-io.safetensors");
    const { model } = await loadVit(FIX + "vit-tiny.safetensors", { heads: 2 });
    expect(model.config).toMatchObject({ width: 32, depth: 2, heads: 2, patchSize: 4, imageSize: 16, classes: 5 });
    for (const [, t] of model.parameters()) t.requireGrad();
    const { feats, loss, input } = await lossAndGrads(model, io.get("x")!, io.get("w")!, true);
    expectScaled("features", feats, io.get("features")!, REL);
    expectScaled("loss", [loss], io.get("loss")!, REL);
    expectScaled("grad.x", await input.grad!.data(), io.get("grad.x")!, REL);
    let checked = 0;
    for (const [name, t] of model.parameters()) {
      const want = io.get(`grad.${name}`);
      if (!want) continue;
      expectScaled(`grad.${name}`, await t.grad!.data(), want, REL);
      checked++;
    }
    expect(checked).toBe(model.parameters().length - 2); // all but the head
    // Without gradients the patches are read in place and the final norm runs in the last product (vit/model.ts).
    const logits = await noGrad(() => model.forward(Tensor.fromArray(io.get("x")!.data, [2, 3, 16, 16]))).data();
    expectScaled("logits", logits, io.get("logits")!, REL);
    const plain = await noGrad(() => model.features(Tensor.fromArray(io.get("x")!.data, [2, 3, 16, 16]))).data();
    expectScaled("features without gradients", plain, io.get("features")!, REL);
    // The last block runs for the CLS token alone unless its output is captured (every token).
    const capture = { blocks: new Set([1]), outputs: new Map<string, Tensor>() };
    const captured = await noGrad(() => model.features(Tensor.fromArray(io.get("x")!.data, [2, 3, 16, 16]), capture)).data();
    expect(capture.outputs.get("block.1")!.shape).toEqual([2, 17, 32]);
    expectScaled("features with the last block captured", captured, io.get("features")!, REL);
  });

  it("the four file formats load to identical models", async () => {
    const paths = ["vit-tiny.safetensors", "vit-tiny.pth", "vit-tiny-hf.safetensors"];
    const states = [];
    for (const p of paths) states.push(await loadVit(FIX + p, { heads: 2 }));
    states.push(await loadVit(FIX + "vit-tiny-full.pth", { key: "teacher", heads: 2 }));
    const reference = states[0].model.parameters().filter(([n]) => !n.startsWith("head"));
    for (const s of states.slice(1)) {
      const params = new Map(s.model.parameters());
      for (const [name, t] of reference) {
        expect(Array.from(await params.get(name)!.data()), `${name}`).toEqual(Array.from(await t.data()));
      }
    }
  });

  it("interpolates position embeddings for another resolution as DINO does", async () => {
    const ref = await fixture("vit-tiny-pos24.safetensors");
    const { model } = await loadVit(FIX + "vit-tiny.safetensors", { heads: 2 });
    const feats = await noGrad(() => model.features(Tensor.fromArray(ref.get("x")!.data, [1, 3, 24, 24]))).data();
    expectScaled("features at 24x24", feats, ref.get("features")!, REL);
  });

  it("bicubic weights of each output row sum to one", () => {
    const m = bicubicMatrix(4, 6, 6.1 / 4);
    for (let o = 0; o < 6; o++) expect(m.subarray(o * 4, o * 4 + 4).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });
});

describe("PEFT parity with PyTorch", () => {
  it("LoRA features and the gradients of A and B match", async () => {
    const ref = await fixture("vit-tiny-lora.safetensors");
    const { model } = await loadVit(FIX + "vit-tiny.safetensors", { heads: 2 });
    const adapters = applyLora(model, { rank: 2, alpha: 2, targets: ["q", "v"] });
    const params = new Map(model.parameters());
    for (const a of adapters) for (const [, t] of a.parameters()) t.requireGrad();
    for (const [name, t] of params) {
      if (name.includes("lora")) t.write(ref.get(name)!.data);
    }
    const { feats, loss } = await lossAndGrads(model, ref.get("x")!, ref.get("w")!);
    expectScaled("features", feats, ref.get("features")!, REL);
    expectScaled("loss", [loss], ref.get("loss")!, REL);
    let checked = 0;
    for (const [name, t] of params) {
      if (!name.includes("lora")) continue;
      expectScaled(`grad.${name}`, await t.grad!.data(), ref.get(`grad.${name}`)!, REL);
      checked++;
    }
    expect(checked).toBe(2 * 2 * 2); // 2 blocks x {q, v} x {A, B}
  });

  it("an expanded block starts as the identity, and its gradients match", async () => {
    const ref = await fixture("vit-tiny-expand.safetensors");
    const base = await loadVit(FIX + "vit-tiny.safetensors", { heads: 2 });
    expandBlocks(base.model, [1]);
    const x = ref.get("x")!;
    const identity = await tidy(() => noGrad(() => base.model.features(Tensor.fromArray(x.data, x.shape)))).data();
    expectScaled("features_identity", identity, ref.get("features_identity")!, REL);
    // The perturbed expanded model, as stored, with gradients for the inserted block.
    const { model } = await loadVit(FIX + "vit-tiny-expand.safetensors", { heads: 2 });
    expect(model.blocks.length).toBe(3);
    for (const [name, t] of model.parameters()) if (name.startsWith("blocks.1.")) t.requireGrad();
    const { feats } = await lossAndGrads(model, x, ref.get("w")!);
    expectScaled("features", feats, ref.get("features")!, REL);
    for (const [name, t] of model.parameters()) {
      if (name.startsWith("blocks.1.")) expectScaled(`grad.${name}`, await t.grad!.data(), ref.get(`grad.${name}`)!, REL);
      else expect(t.grad).toBeUndefined();
    }
  });
});
