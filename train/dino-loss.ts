// DINO's loss (main_dino.py DINOLoss.forward), with the teacher's entropy and the teacher-student KL that show a
// collapse:
//
//   q_i = softmax((t_i - center) / teacherTemp)             teacher output of global view i (B, K), no gradient
//   p_v = log_softmax(s_v / studentTemp)                    student output of view v (B, K), v < V (2 global first)
//   loss = mean over pairs (i, v), v != i, of mean_b -sum_k q_i[b, k] p_v[b, k]          2 (V - 1) pairs
//   entropy = mean over the 2B teacher rows of H(q_i[b])                                 in nats
//   kl = loss - entropy = the mean KL(q_i || softmax(s_v / studentTemp)) over the same pairs
//   marginalEntropy = H(mean over the 2B rows of q)                                     in nats
// A teacher collapsed to uniform outputs has entropy near log K; one collapsed to the same output for every image
// has marginalEntropy near 0 (healthy sharp outputs have a low entropy too, but spread over many prototypes).
//
// The cross-entropy is linear in its targets, so each student view is compared once, with the sum of the teacher
// views it is paired with (q_1 for view 0, q_0 for view 1, q_0 + q_1 for every local view): one soft cross-entropy
// over (V*B, K) rather than 2 (V - 1) of them over (B, K). Rows are view-major: view v is rows [vB, (v+1)B).
import type { Tensor } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { noGrad } from "../autograd/tape.js";
import { softCrossEntropy } from "../autograd/dino-ops.js";

export interface DinoLossOutput {
  loss: Tensor; // () with the student's graph
  entropy: Tensor; // () detached
  kl: Tensor; // () detached
  marginalEntropy: Tensor; // () detached
}

// student (V*B, K), teacher (2B, K) and center (1, K): the raw head outputs and the current centre.
export function dinoLoss(student: Tensor, teacher: Tensor, center: Tensor, teacherTemp: number, studentTemp: number): DinoLossOutput {
  const [rows, K] = teacher.shape;
  if (teacher.shape.length !== 2 || rows % 2 !== 0 || rows === 0) throw new Error(`dino loss: expected teacher outputs (2B, K), got ${teacher}`);
  const B = rows / 2;
  const V = student.shape[0] / B;
  if (student.shape.length !== 2 || student.shape[1] !== K || !Number.isInteger(V) || V < 2) {
    throw new Error(`dino loss: expected student outputs (V*${B}, ${K}) with V >= 2 views, got ${student}`);
  }
  if (center.size !== K) throw new Error(`dino loss: expected a centre of ${K} values, got ${center}`);
  if (!(teacherTemp > 0 && studentTemp > 0)) throw new Error(`dino loss: expected positive temperatures, got teacher ${teacherTemp}, student ${studentTemp}`);
  const { targets, entropy, marginalEntropy } = noGrad(() => {
    const z = ops.scale(ops.sub(teacher, center.reshape([1, K])), 1 / teacherTemp);
    const q = ops.softmax(z);
    const q0 = ops.slice(q, 0, 0, B);
    const q1 = ops.slice(q, 0, B, 2 * B);
    const both = ops.add(q0, q1);
    const targets = ops.concat([q1, q0, ...new Array<Tensor>(V - 2).fill(both)], 0);
    // H(p) as the cross-entropy of p against logits log p; 1e-12 keeps log finite where a mean underflowed to 0.
    const mean = ops.mean(q, 0, true);
    const marginalEntropy = ops.reshape(softCrossEntropy(ops.log(ops.addScalar(mean, 1e-12)), mean), []);
    return { targets, entropy: ops.mean(softCrossEntropy(z, q), 0), marginalEntropy };
  });
  const pairs = 2 * (V - 1);
  const loss = ops.scale(ops.sumAll(softCrossEntropy(ops.scale(student, 1 / studentTemp), targets)), 1 / (B * pairs));
  const kl = noGrad(() => ops.sub(loss.detach(), entropy));
  return { loss, entropy, kl, marginalEntropy };
}
