// Two DINO steps on the engine against PyTorch (test/fixtures/dino-step.safetensors, made by
// test/fixtures/generate-dino.py from facebookresearch/dino's main_dino.py and DINOHead): the teacher and student
// outputs, the loss, the teacher's entropy and KL, every student gradient, and after each step every student and
// teacher parameter and the centre. The first step has the last layer frozen, the second not (its AdamW step count
// starts then); gradients are clipped per parameter, some above the bound and some below. The same with loss scaling.
// Tolerances: outputs, loss and gradients within 2e-4 of each tensor's largest magnitude (f32 through a ViT and the
// head); parameters after a step within 1e-5 + 1e-4 relative, except where PyTorch's gradient is 0 in exact
// arithmetic (|g| < 1e-9 in float64: the key bias, to which softmax is blind), where the engine's f32 gradient is
// rounding noise of either sign and AdamW, which moves by about lr * g / (|g| + eps), may move up to lr either way.
import { describe, expect, it } from "vitest";
import { Tensor, tidyAsync } from "../../engine/tensor.js";
import { readSafetensors, type F32Tensor } from "../../vit/safetensors.js";
import { buildVit } from "../../vit/model.js";
import { validateConfig } from "../../vit/config.js";
import { buildDinoHead } from "../../train/dino-head.js";
import { Dino, type DinoNet, netParameters } from "../../train/dino.js";
import { expectScaled, useEngine } from "../helpers.js";

useEngine();
const REL = 2e-4; // outputs, loss and gradients: of each tensor's largest magnitude

// Within 1e-5 + 1e-4 |want|, or within `lrs` (the learning rates so far, summed) where every gradient so far was 0.
function expectParam(name: string, got: Float32Array, want: F32Tensor, nullGrad: (i: number) => boolean, lrs: number): void {
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want.data[i]);
    if (d <= 1e-5 + 1e-4 * Math.abs(want.data[i]) || (nullGrad(i) && d <= 1.01 * lrs)) continue;
    throw new Error(`${name}[${i}]: expected ${want.data[i]}, got ${got[i]}${nullGrad(i) ? " (a null gradient)" : ""}`);
  }
}

describe("DINO step", async () => {
  const { tensors: fx, metadata: meta } = await readSafetensors("test/fixtures/dino-step.safetensors");
  const num = (k: string) => Number(meta[k]);
  const get = (name: string) => {
    const t = fx.get(name);
    if (!t) throw new Error(`fixture: no tensor ${name}`);
    return t;
  };
  const net = (who: string): DinoNet => {
    const config = validateConfig({
      imageSize: num("image"),
      patchSize: num("patch"),
      width: num("width"),
      depth: num("depth"),
      heads: num("heads"),
      mlpHidden: 4 * num("width"),
      classes: 0,
      eps: 1e-6,
    });
    const backbone = buildVit(config, (name) => get(`${who}.backbone.${name}`).data);
    const head = buildDinoHead(num("width"), { hidden: num("hidden"), bottleneck: num("bottleneck"), prototypes: num("prototypes") }, (name) => get(`${who}.${name}`).data);
    return { backbone, head };
  };
  const input = (name: string) => Tensor.fromArray(get(name).data, get(name).shape);
  const at = (s: number) => ({
    lr: num(`step${s}.lr`),
    weightDecay: num(`step${s}.wd`),
    momentum: num(`step${s}.momentum`),
    teacherTemp: num(`step${s}.teacher_temp`),
    freezeLastLayer: meta[`step${s}.freeze_last_layer`] === "true",
  });

  // With loss scaling (GradScaler's unscale_, step, update, here without f16 products): the backward seeded with
  // 2^10, the clipping on the unscaled per-parameter norms, the updates unscaled; powers of two scale exactly, so the
  // same tolerances hold. Clipping on the scaled norms would clip 1024-fold harder, which shows across the two steps.
  const lossScale = { init: 1024, backoff: 0.5, growth: 2, interval: 2000 };
  for (const scaled of [false, true]) {
    it(`matches PyTorch's outputs, loss, gradients and updates over two steps${scaled ? ", with loss scaling" : ""}`, async () => {
      const method = { studentTemp: num("student_temp"), centerMomentum: num("center_momentum"), clipGrad: num("clip"), ...(scaled && { lossScale }) };
      const dino = new Dino(net("student"), net("teacher"), method);
      dino.center.write(get("center").data);
      const crops = (s: number) => ({ globals: input(`step${s}.globals`), locals: input(`step${s}.locals`) });

      await tidyAsync(async () => {
        const { student, teacher } = dino.outputs(crops(0));
        expectScaled("teacher output", await teacher.data(), get("step0.teacher_output"), REL);
        expectScaled("student output", await student.data(), get("step0.student_output"), REL);
      });
      for (const s of [0, 1]) {
        await tidyAsync(async () => {
          const out = dino.step(crops(s), at(s));
          expectScaled(`step ${s} loss`, await out.loss.data(), get(`step${s}.loss`), REL);
          expectScaled(`step ${s} entropy`, await out.entropy.data(), get(`step${s}.entropy`), REL);
          expectScaled(`step ${s} kl`, await out.kl.data(), get(`step${s}.kl`), 1e-3);
          expectScaled(`step ${s} marginal entropy`, await out.marginalEntropy.data(), get(`step${s}.marginal_entropy`), REL);
          if (scaled) expect(await out.factor!.data()).toEqual(new Float32Array([1 / 1024]));
        });
        const lrs = at(0).lr + (s === 1 ? at(1).lr : 0);
        for (const [who, n] of [["student", dino.student], ["teacher", dino.teacher]] as const) {
          for (const [name, t] of netParameters(n)) {
            const grads = [0, 1].slice(0, s + 1).map((k) => fx.get(`step${k}.grad.student.${name}`));
            const nullGrad = (i: number) => grads.every((g) => g === undefined || Math.abs(g.data[i]) < 1e-9);
            expectParam(`step ${s} ${who}.${name}`, await t.data(), get(`step${s}.after.${who}.${name}`), nullGrad, lrs);
          }
        }
        expectScaled(`step ${s} centre`, await dino.center.data(), get(`step${s}.after.center`), REL);
      }
      dino.dispose();
    });
  }

  it("computes PyTorch's gradients before clipping", async () => {
    const dino = new Dino(net("student"), net("teacher"), { studentTemp: num("student_temp"), centerMomentum: num("center_momentum"), clipGrad: 0 });
    dino.center.write(get("center").data);
    await tidyAsync(async () => {
      // lr 0 and momentum 1 leave every parameter as it is: only the gradients are looked at.
      dino.step({ globals: input("step0.globals"), locals: input("step0.locals") }, { ...at(0), lr: 0, weightDecay: 0, momentum: 1, freezeLastLayer: false });
      for (const [name, t] of netParameters(dino.student)) expectScaled(`grad ${name}`, await t.grad!.data(), get(`step0.grad.student.${name}`), REL);
    });
    dino.dispose();
  });
});
