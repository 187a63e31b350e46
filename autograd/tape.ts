// Reverse-mode automatic differentiation: the grad mode, the recording of nodes (autograd/ops.ts calls record
// after each kernel), and backward over the recorded graph.
//
// backward(root): visits the tensors that require grad in reverse topological order, calls each node's
// backward with the summed gradient of its output, and accumulates into `.grad` of the leaves (tensors that
// require grad and were not produced by an op: parameters, inputs). Leaf gradients are kept across tidy()
// scopes and add up across calls until zeroGrad; intermediate gradients live in the caller's scope.
// Backward itself records no graph (no higher-order gradients).
import { Tensor } from "../engine/tensor.js";
import { runtime } from "../engine/runtime.js";
import { axpyInPlace, binaryForward } from "../kernels/elementwise.js";
import { fill } from "../kernels/fill.js";

// ---- gradient mode ----

let gradDepth = 0;

export function gradEnabled(): boolean {
  return gradDepth === 0;
}

// Runs fn without recording any graph: ops inside do no gradient bookkeeping at all.
export function noGrad<T>(fn: () => T): T {
  gradDepth++;
  try {
    return fn();
  } finally {
    gradDepth--;
  }
}

// Attaches a backward to `out` when any of `inputs` requires grad (and grad mode is on).
export function record(out: Tensor, op: string, inputs: Tensor[], backward: (dout: Tensor) => (Tensor | undefined)[]): Tensor {
  if (gradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

// record for an op whose backward adds the inputs' earlier gradients itself (GradNode.sums): `backward` gets,
// per input, the gradient gathered so far from its other uses (or undefined), and must return each input's
// gradient with it added.
export function recordSumming(
  out: Tensor,
  op: string,
  inputs: Tensor[],
  backward: (dout: Tensor, earlier: (Tensor | undefined)[]) => (Tensor | undefined)[],
): Tensor {
  if (gradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward: (dout, earlier) => backward(dout, earlier ?? inputs.map(() => undefined)), sums: true };
  }
  return out;
}

// Ops without a backward refuse inputs that would need one, at forward time.
export function noBackward(op: string, inputs: Tensor[]): void {
  const t = inputs.find((x) => x.requiresGrad);
  if (gradEnabled() && t) throw new Error(`${op}: has no backward, but ${t} requires grad (run it under noGrad)`);
}

// ---- backward ----

export function backward(root: Tensor, dout?: Tensor): void {
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require grad (no parameter reached it)`);
  if (dout === undefined && root.size !== 1) {
    throw new Error(`backward: ${root} is not a scalar; pass the output gradient explicitly`);
  }
  if (dout !== undefined && dout.size !== root.size) {
    throw new Error(`backward: gradient ${dout} does not match ${root}`);
  }
  noGrad(() => {
    const order = topologicalOrder(root);
    const grads = new Map<Tensor, Tensor>();
    const holders = new Map<Tensor, number>(); // how many entries of grads hold each gradient
    const setGrad = (t: Tensor, g: Tensor) => {
      const old = grads.get(t);
      if (old) holders.set(old, holders.get(old)! - 1);
      grads.set(t, g);
      holders.set(g, (holders.get(g) ?? 0) + 1);
    };
    setGrad(root, dout ?? fill(root.shape, 1));
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      if (!g) continue;
      if (!t.node) {
        // A gradient that nothing else holds (no view, no other tensor's gradient, not the caller's) becomes the
        // leaf's own, without a copy.
        accumulateLeaf(t, g, g !== dout && holders.get(g) === 1 && !g.sharesStorage && !g.isKept);
        continue;
      }
      const { inputs } = t.node;
      // An input listed twice would get its earlier gradient added twice: such a node sums nothing.
      const earlier = t.node.sums && new Set(inputs).size === inputs.length ? inputs.map((input) => grads.get(input)) : undefined;
      const inputGrads = t.node.backward(g, earlier);
      inputs.forEach((input, k) => {
        const gi = inputGrads[k];
        if (!input.requiresGrad || gi === undefined) return;
        if (gi.size !== input.size) {
          throw new Error(`backward of ${t.node!.op}: gradient ${gi} does not match input ${input}`);
        }
        const prev = grads.get(input);
        if (!prev || earlier?.[k]) setGrad(input, gi); // summed by the node
        else {
          // Gradients are immutable values (an op may return its dout for two inputs): sum into a new one, in
          // one dispatch (the residual stream sums two gradients at every block).
          setGrad(input, binaryForward("add", prev.reshape(input.shape), gi.reshape(input.shape)));
        }
      });
    }
  });
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: ViT graphs are deep enough to make recursion uncomfortable.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, next] = top;
    const inputs = t.node?.inputs ?? [];
    if (next < inputs.length) {
      top[1]++;
      const input = inputs[next];
      if (input.requiresGrad && !seen.has(input)) {
        if (input.isDisposed) throw new Error(`backward: ${input} was disposed before backward (a tidy() closed too early?)`);
        seen.add(input);
        stack.push([input, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

// `owned`: g is held by nothing else, so the leaf may keep its storage (a view that outlives g's scope); else it is
// copied, since g may be another gradient too. A copy per trained tensor was 56 of the 239 commands of the default
// study's model's full fine-tuning step on GPUs (docs/PERFORMANCE.md).
function accumulateLeaf(t: Tensor, g: Tensor, owned: boolean): void {
  if (!t.grad) {
    t.grad = owned ? g.reshape(t.shape).keep() : Tensor.empty(t.shape).keep();
    t.grad.name = t.name ? `${t.name}.grad` : undefined;
    if (!owned) runtime().batch.copy(g.buffer, 0, t.grad.buffer, 0, t.size * 4);
  } else axpyInPlace(t.grad, g, 1);
}

export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = undefined;
  }
}
