// The differentiable ops DINO's head and loss need beyond autograd/ops.ts, and its in-place moving averages:
//
//   l2Normalize(x)             y = x / sqrt(sum_k x_k^2 + eps^2) over the last axis (F.normalize's x / max(|x|, eps),
//                              the same in f32 for any |x| far above eps; smooth at 0)
//                              dx = (dy - y * sum_k(dy_k y_k)) / sqrt(sum_k x_k^2 + eps^2)
//   softCrossEntropy(z, q)     per row -sum_k q_k log_softmax(z)_k = lse(z) * sum_k q_k - sum_k q_k z_k  (R,)
//                              dz = (softmax(z) * sum_k q_k - q) * dy;  the targets q get no gradient
//   emaInPlace([[t, s]...], m) t = m t + (1 - m) s for every pair, outside autograd (teacher and centre updates)
//
// Both differentiable ops are composed of existing kernels (reduce, elementwise, softmax): a few dispatches on
// (rows, K) tensors, small next to the backbone's. lse is computed as max + log(sum(exp(z - max))), so no
// probability is formed and the loss stays finite for sharp targets (the teacher's temperature 0.04).
import type { Tensor } from "../engine/tensor.js";
import { binaryForward, unaryForward } from "../kernels/elementwise.js";
import { reduceForward } from "../kernels/reduce.js";
import { softmaxForward } from "../kernels/softmax.js";
import { emaUpdates } from "../kernels/ema.js";
import { noBackward, record } from "./tape.js";

const NORM_EPS = 1e-12; // F.normalize's default

// (..., K) viewed as rows (R, K).
function rows(op: string, x: Tensor): [number, number] {
  if (x.shape.length < 1 || x.size === 0) throw new Error(`${op}: expected a non-empty tensor (..., K), got ${x}`);
  const k = x.shape[x.shape.length - 1];
  return [x.size / k, k];
}

// x (..., K) -> (..., K), each row scaled to unit L2 norm.
export function l2Normalize(x: Tensor): Tensor {
  const [r, k] = rows("l2_normalize", x);
  const x2 = x.reshape([r, k]);
  const sumSq = reduceForward("sum", unaryForward("square", x2), 1).reshape([r, 1]);
  const norm = unaryForward("sqrt", unaryForward("addScalar", sumSq, NORM_EPS * NORM_EPS)); // (R, 1)
  const y2 = binaryForward("div", x2, norm);
  const y = y2.reshape(x.shape);
  return record(y, "l2_normalize", [x], (dy) => {
    const dy2 = dy.reshape([r, k]);
    const along = reduceForward("sum", binaryForward("mul", dy2, y2), 1).reshape([r, 1]); // (R, 1)
    return [binaryForward("div", binaryForward("sub", dy2, binaryForward("mul", y2, along)), norm).reshape(x.shape)];
  });
}

// logits (..., K), targets (..., K) with no gradient (any non-negative weights; DINO's are probabilities)
// -> (...): the cross-entropy of each row of targets against the softmax of the logits.
export function softCrossEntropy(logits: Tensor, targets: Tensor): Tensor {
  const [r, k] = rows("soft_cross_entropy", logits);
  if (targets.size !== logits.size || targets.shape[targets.shape.length - 1] !== k) {
    throw new Error(`soft_cross_entropy: expected targets shaped like logits ${logits}, got ${targets}`);
  }
  noBackward("soft_cross_entropy (targets)", [targets]);
  const z = logits.reshape([r, k]);
  const q = targets.reshape([r, k]);
  const max = reduceForward("max", z, 1).reshape([r, 1]);
  const sumExp = reduceForward("sum", unaryForward("exp", binaryForward("sub", z, max)), 1).reshape([r, 1]);
  const lse = binaryForward("add", unaryForward("log", sumExp), max); // (R, 1)
  const mass = reduceForward("sum", q, 1).reshape([r, 1]); // sum_k q_k, 1 for probabilities
  const qz = reduceForward("sum", binaryForward("mul", q, z), 1).reshape([r, 1]);
  const loss = binaryForward("sub", binaryForward("mul", lse, mass), qz).reshape(logits.shape.slice(0, -1));
  return record(loss, "soft_cross_entropy", [logits], (dloss) => {
    const p = softmaxForward(z);
    const dz = binaryForward("mul", binaryForward("sub", binaryForward("mul", p, mass), q), dloss.reshape([r, 1]));
    return [dz.reshape(logits.shape)];
  });
}

// target <- m * target + (1 - m) * source in place for every [target, source] pair, recording no graph (the
// teacher's weights, the centre): a source may be a parameter that requires grad, a target never gets a gradient
// through this. Several pairs per dispatch (kernels/ema.ts).
export function emaInPlace(pairs: [Tensor, Tensor][], momentum: number): void {
  emaUpdates(pairs, momentum);
}
