// One DINO training step (main_dino.py train_one_epoch) on the engine, encoded without a read-back:
//
//   teacher output  t = head_T(backbone_T(globals))                       (2B, K), no graph
//   student output  s = head_S(concat(backbone_S(globals), backbone_S(locals)))     (V*B, K); each resolution is one
//                   forward pass (DINO's MultiCropWrapper), position embeddings interpolated to the local grid
//   loss            train/dino-loss.ts; backward
//   clipping        per parameter, as DINO's utils.clip_gradients: g *= min(1, clip / (|g| + 1e-6))
//   frozen head     during the first freezeLastLayerSteps steps the last layer's gradient is dropped (DINO's
//                   cancel_gradients_last_layer), so AdamW leaves it and its state alone
//   mixed precision (main_dino.py's --use_fp16): `precision` "f16" runs the forward passes and the loss's backward
//                   with f16 inputs to the matrix products (autograd/precision.ts); `lossScale` seeds the backward
//                   with the loss scale, tests the scaled gradients for an overflow (autograd/loss-scale.ts) before
//                   the last layer's are dropped, clips on the unscaled norms, and has every optimiser skip an
//                   overflowed step on the device (GradScaler's unscale_, step, update); the teacher and the centre
//                   are updated on a skipped step too, as in main_dino.py
//   AdamW           DINO's two parameter groups: biases and 1-D tensors without weight decay, the rest with the
//                   scheduled one; the last layer keeps its own AdamW step count, as PyTorch's per-parameter state
//                   does, so its first update after the freeze gets the bias correction of a first step
//   teacher         t_param = m t_param + (1 - m) s_param for every parameter (kernels/ema.ts)
//   centre          center = c_m center + (1 - c_m) mean_rows(t)
//
// Parameters are named "backbone.<timm name>" and "head.<DINO head name>"; student and teacher have the same names.
import { Tensor } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { backward, noGrad } from "../autograd/tape.js";
import { emaInPlace } from "../autograd/dino-ops.js";
import { AdamW, clipGradEach } from "../autograd/optim.js";
import { type Precision, withPrecision } from "../autograd/precision.js";
import { LossScaler, type LossScaleSettings } from "../autograd/loss-scale.js";
import type { VisionTransformer } from "../vit/model.js";
import type { DinoHead } from "./dino-head.js";
import { dinoLoss } from "./dino-loss.js";

export interface DinoNet {
  backbone: VisionTransformer; // no classifier head
  head: DinoHead;
}

export function netParameters(net: DinoNet): [string, Tensor][] {
  return [...net.backbone.parameters().map(([n, t]): [string, Tensor] => [`backbone.${n}`, t]), ...net.head.parameters("head.")];
}

export interface DinoMethod {
  studentTemp: number; // 0.1
  centerMomentum: number; // 0.9
  clipGrad: number; // per-parameter gradient norm bound, 3.0 in DINO; 0: no clipping
  beta1?: number; // AdamW's, default 0.9
  beta2?: number; // default 0.999
  precision?: Precision; // "f16": the matrix products' inputs in f16 (autograd/precision.ts); absent: "f32"
  lossScale?: LossScaleSettings; // dynamic loss scaling (GradScaler's), which f16 gradients need; absent: none
}

// The scheduled values of one step (train/dino-schedules.ts).
export interface DinoStepValues {
  lr: number;
  weightDecay: number;
  momentum: number; // teacher EMA
  teacherTemp: number;
  freezeLastLayer: boolean;
}

// A step's crops, view-major: globals (2B, 3, S, S) views 0 and 1; locals (L*B, 3, s, s) or none.
export interface DinoCrops {
  globals: Tensor;
  locals?: Tensor;
}

export interface DinoStepOutput {
  loss: Tensor; // () detached
  entropy: Tensor; // () the teacher's mean output entropy, nats
  kl: Tensor; // () mean KL(teacher || student) over the loss's pairs
  marginalEntropy: Tensor; // () the entropy of the teacher's mean output over the batch, nats
  factor?: Tensor; // (1) with loss scaling: the optimisers' gradient factor, 0 where the step was skipped
}

// DINO's regularised group: everything but biases and 1-D tensors (norm scales).
function decayed(name: string, t: Tensor): boolean {
  return !(name.endsWith(".bias") || t.shape.length === 1);
}

export class Dino {
  readonly center: Tensor; // (1, K)
  private readonly studentParams: [string, Tensor][];
  private readonly teacherParams: [string, Tensor][];
  private readonly optimizers: { decayed: AdamW; plain: AdamW; lastLayer: AdamW };
  readonly lossScaler?: LossScaler; // with method.lossScale; its state is in stateTensors

  constructor(
    readonly student: DinoNet,
    readonly teacher: DinoNet,
    readonly method: DinoMethod,
  ) {
    this.studentParams = netParameters(student);
    this.teacherParams = netParameters(teacher);
    const shapes = (ps: [string, Tensor][]) => ps.map(([n, t]) => `${n}:${t.shape.join("x")}`).join(",");
    if (shapes(this.studentParams) !== shapes(this.teacherParams)) throw new Error("dino: expected a teacher with the student's parameters and shapes");
    for (const [name, t] of this.studentParams) {
      t.name = `student.${name}`;
      t.requireGrad();
    }
    for (const [name, t] of this.teacherParams) {
      t.name = `teacher.${name}`;
      t.requireGrad(false);
    }
    this.center = Tensor.fromArray(new Float32Array(student.head.prototypes), [1, student.head.prototypes]).keep();
    this.center.name = "center";
    const last = student.head.lastLayer;
    if (method.lossScale) this.lossScaler = new LossScaler(method.lossScale);
    const skipZero = this.lossScaler !== undefined;
    const adamw = (ps: [string, Tensor][], weightDecay: number) =>
      new AdamW(ps.map(([, t]) => t), { lr: 0, beta1: method.beta1, beta2: method.beta2, weightDecay, skipZero });
    this.optimizers = {
      decayed: adamw(this.studentParams.filter(([n, t]) => t !== last && decayed(n, t)), 0),
      plain: adamw(this.studentParams.filter(([n, t]) => t !== last && !decayed(n, t)), 0),
      lastLayer: adamw([["head.last_layer.weight_v", last]], 0),
    };
  }

  // Student and teacher outputs of a step's crops, with the student's graph: (V*B, K) and (2B, K).
  outputs(crops: DinoCrops): { student: Tensor; teacher: Tensor } {
    const teacher = noGrad(() => this.teacher.head.forward(this.teacher.backbone.features(crops.globals)));
    const features = [this.student.backbone.features(crops.globals)];
    if (crops.locals) features.push(this.student.backbone.features(crops.locals));
    const student = this.student.head.forward(features.length === 1 ? features[0] : ops.concat(features, 0));
    return { student, teacher };
  }

  // Encodes one step: loss, backward, clipping, the optimiser, the teacher and the centre. No read-back.
  step(crops: DinoCrops, at: DinoStepValues): DinoStepOutput {
    const scaler = this.lossScaler;
    const { teacher, loss, entropy, kl, marginalEntropy } = withPrecision(this.method.precision ?? "f32", () => {
      const { student, teacher } = this.outputs(crops);
      return { teacher, ...dinoLoss(student, teacher, this.center, at.teacherTemp, this.method.studentTemp) };
    });
    for (const [, t] of this.studentParams) {
      t.grad?.dispose();
      t.grad = undefined;
    }
    backward(loss, scaler?.scale.reshape(loss.shape));
    const factor = scaler?.unscale(this.studentParams.map(([, t]) => t));
    if (this.method.clipGrad > 0) this.clipPerParameter(this.method.clipGrad);
    const opts = [this.optimizers.decayed, this.optimizers.plain, this.optimizers.lastLayer];
    if (at.freezeLastLayer) {
      const last = this.student.head.lastLayer;
      last.grad?.dispose();
      last.grad = undefined;
      opts.pop();
    }
    for (const opt of opts) {
      opt.lr = at.lr;
      opt.weightDecay = opt === this.optimizers.plain ? 0 : at.weightDecay;
      opt.step(factor);
    }
    this.updateTeacher(at.momentum);
    noGrad(() => emaInPlace([[this.center, ops.mean(teacher, 0, true)]], this.method.centerMomentum));
    return { loss: loss.detach(), entropy, kl, marginalEntropy, ...(factor ? { factor } : {}) };
  }

  updateTeacher(momentum: number): void {
    emaInPlace(this.teacherParams.map(([, t], i) => [t, this.studentParams[i][1]]), momentum);
  }

  // With loss scaling, on the unscaled norms (the gradients stay scaled: the optimisers' factor unscales them).
  private clipPerParameter(clip: number): void {
    noGrad(() => clipGradEach(this.studentParams.map(([, p]) => p), clip, this.lossScaler?.scale));
  }

  // Every tensor a checkpoint needs for an exact resume, named: student.*, teacher.*, center, optimizer.<group>.*
  // (AdamW's moments; with loss scaling its step count on the device, optimizer.<group>.step), lossScale.* (with
  // loss scaling), and the optimisers' step counts (kept in metadata).
  stateTensors(): [string, Tensor][] {
    const out: [string, Tensor][] = [
      ...this.studentParams.map(([n, t]): [string, Tensor] => [`student.${n}`, t]),
      ...this.teacherParams.map(([n, t]): [string, Tensor] => [`teacher.${n}`, t]),
      ["center", this.center],
    ];
    for (const [group, opt] of Object.entries(this.optimizers)) {
      for (const [n, t] of opt.state()) out.push([`optimizer.${group}.${n}`, t]);
    }
    if (this.lossScaler) out.push(...this.lossScaler.state());
    return out;
  }

  get stepCounts(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.optimizers).map(([g, o]) => [g, o.stepCount]));
  }

  set stepCounts(counts: Record<string, number>) {
    for (const [g, o] of Object.entries(this.optimizers)) o.stepCount = counts[g] ?? 0;
  }

  dispose(): void {
    for (const o of Object.values(this.optimizers)) for (const [, t] of o.state()) t.dispose();
    this.lossScaler?.dispose();
    this.center.dispose();
  }
}
