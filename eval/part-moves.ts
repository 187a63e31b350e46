// A move of a fine-tuned backbone's weights part by part, in weight space: minus the training loss's gradient
// (gradient descent's next move, eval/training-gradient.ts) or the optimiser's memory (eval/optimizer-memory.ts). The
// parts are the weight change's (eval/weight-change.ts): the embeddings (patch projection, CLS token, position
// embeddings), each original block and the final norm. Of each, the move's size relative to the original part's
// weights, ||M|| / ||W0|| (as its change is ||W - W0|| / ||W0||), and its turn, the cosine with the part's change so
// far W - W0 (+1: further the way it came, -1: back; not a number where the part had not moved). SGD steps in this
// space: a step of rate eta along M changes the part's squared relative change d^2 by 2 eta m c d + (eta m)^2.
// Where the move is the mean of the batches' (gradient descent's), the batches' spread about it too, relative the
// same way: sqrt(sum over the part's tensors of E||g_B - E g_B||^2) / ||W0|| (eval/training-gradient.ts's spread),
// the noise a minibatch step adds to it. Where gradient descent's move is given beside another (the optimiser's
// memory), the cosine between the two on each part: whether the step the memory makes goes the loss's way now.
// Tensors without a move (frozen, or not kept) count in the change and not in
// the move. LoRA's merged weights move through their adapters, not here: the caller gives moves of tensors trained
// directly.
import { type Tensor, readTensors } from "../engine/tensor.js";
import type { VisionTransformer } from "../vit/model.js";
import type { BlockMap } from "./block-map.js";
import { type TensorPair, partTensors } from "./weight-change.js";
import type { PartSince } from "./output-change.js";

// A move of each tensor of the fine-tuned model; where it is a mean over batches, each tensor's spread of theirs; and
// where given, gradient descent's next move, to take this one's cosine with (the optimiser's memory's).
export interface TensorMoves {
  move: Map<Tensor, ArrayLike<number>>;
  spread?: Map<Tensor, number>;
  descent?: Map<Tensor, ArrayLike<number>>;
}

// A part's move: its size and turn, its batches' spread where the move has one, and its cosine with gradient
// descent's next move on the part where that was given (not a number where either is 0 there).
export type PartMove = PartSince & { spread?: number; descentTurn?: number };

export interface PartMoves {
  embedding: PartMove;
  blocks: PartMove[]; // (depth): each original block's
  norm: PartMove;
}

// Each of `moves` part by part, the weights read once.
export async function partMoves(original: VisionTransformer, tuned: VisionTransformer, map: BlockMap, moves: TensorMoves[]): Promise<PartMoves[]> {
  const parts = partTensors(original, tuned, map);
  const of = async (pairs: TensorPair[]): Promise<PartMove[]> => {
    const values = await readTensors(pairs.flatMap(([, a, b]) => [a, b]));
    let [base, change] = [0, 0];
    const [move, along, spread] = [moves.map(() => 0), moves.map(() => 0), moves.map(() => 0)];
    const [descent, withDescent] = [moves.map(() => 0), moves.map(() => 0)];
    pairs.forEach(([, , t], j) => {
      const [w0, w] = [values[2 * j], values[2 * j + 1]];
      for (let i = 0; i < w0.length; i++) {
        const d = w[i] - w0[i];
        base += w0[i] * w0[i];
        change += d * d;
      }
      moves.forEach((ms, k) => {
        spread[k] += ms.spread?.get(t) ?? 0;
        const m = ms.move.get(t);
        const g = ms.descent?.get(t);
        for (let i = 0; g && i < w0.length; i++) {
          descent[k] += g[i] * g[i];
          if (m) withDescent[k] += m[i] * g[i];
        }
        if (!m) return;
        for (let i = 0; i < w0.length; i++) {
          move[k] += m[i] * m[i];
          along[k] += m[i] * (w[i] - w0[i]);
        }
      });
    });
    return moves.map((ms, k) => ({
      change: Math.sqrt(move[k] / base),
      turn: along[k] / Math.sqrt(move[k] * change),
      ...(ms.spread && { spread: Math.sqrt(spread[k] / base) }),
      ...(ms.descent && { descentTurn: withDescent[k] / Math.sqrt(move[k] * descent[k]) }),
    }));
  };
  const [embedding, norm] = [await of(parts.embedding), await of(parts.norm)];
  const blocks: PartMove[][] = [];
  for (const b of parts.blocks) blocks.push(await of(b));
  return moves.map((_, k) => ({ embedding: embedding[k], blocks: blocks.map((b) => b[k]), norm: norm[k] }));
}
