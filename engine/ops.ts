// Differentiable operations: each calls its kernel's forward, and when an input requires grad (and grad mode
// is on) attaches a GradNode whose backward calls the kernel's backward. Ops never submit or read back.
// vit/, peft/ and eval/ use these, never kernels/ directly.
import { Tensor, type Shape, gradEnabled } from "./tensor.js";
import { type BinaryOp, type UnaryOp, binaryForward, unaryForward } from "../kernels/elementwise.js";
import { fill } from "../kernels/fill.js";
import { reduceForward } from "../kernels/reduce.js";

// Attaches a backward to `out` when any of `inputs` requires grad.
export function record(out: Tensor, op: string, inputs: Tensor[], backward: (dout: Tensor) => (Tensor | undefined)[]): Tensor {
  if (gradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

export function zeros(shape: Shape): Tensor {
  return fill(shape, 0);
}

export function ones(shape: Shape): Tensor {
  return fill(shape, 1);
}

export function full(shape: Shape, value: number): Tensor {
  return fill(shape, value);
}

// ---- elementwise ----

function unary(op: UnaryOp, a: Tensor, alpha: number, grad: (a: Tensor, y: Tensor, dy: Tensor) => Tensor): Tensor {
  const y = unaryForward(op, a, alpha);
  return record(y, op, [a], (dy) => [grad(a, y, dy)]);
}

export const neg = (a: Tensor) => unary("neg", a, 0, (_a, _y, dy) => unaryForward("neg", dy));
export const exp = (a: Tensor) => unary("exp", a, 0, (_a, y, dy) => binaryForward("mul", dy, y));
export const log = (a: Tensor) => unary("log", a, 0, (a, _y, dy) => binaryForward("div", dy, a));
export const sqrt = (a: Tensor) =>
  unary("sqrt", a, 0, (_a, y, dy) => unaryForward("scale", binaryForward("div", dy, y), 0.5));
export const square = (a: Tensor) =>
  unary("square", a, 0, (a, _y, dy) => unaryForward("scale", binaryForward("mul", dy, a), 2));
export const relu = (a: Tensor) => unary("relu", a, 0, (a, _y, dy) => binaryForward("reluGrad", a, dy));
export const gelu = (a: Tensor) => unary("gelu", a, 0, (a, _y, dy) => binaryForward("geluGrad", a, dy));
export const tanh = (a: Tensor) => unary("tanh", a, 0, (_a, y, dy) => binaryForward("tanhGrad", y, dy));
export const sigmoid = (a: Tensor) => unary("sigmoid", a, 0, (_a, y, dy) => binaryForward("sigmoidGrad", y, dy));
export const scale = (a: Tensor, s: number) => unary("scale", a, s, (_a, _y, dy) => unaryForward("scale", dy, s));
export const addScalar = (a: Tensor, s: number) => unary("addScalar", a, s, (_a, _y, dy) => dy);

function binary(op: BinaryOp, a: Tensor, b: Tensor, grads: (dy: Tensor) => [Tensor | undefined, Tensor | undefined]): Tensor {
  const y = binaryForward(op, a, b);
  return record(y, op, [a, b], (dy) => {
    const [da, db] = grads(dy);
    return [da && a.requiresGrad ? sumTo(da, a.shape) : undefined, db && b.requiresGrad ? sumTo(db, b.shape) : undefined];
  });
}

export const add = (a: Tensor, b: Tensor) => binary("add", a, b, (dy) => [dy, dy]);
export const sub = (a: Tensor, b: Tensor) => binary("sub", a, b, (dy) => [dy, b.requiresGrad ? unaryForward("neg", dy) : undefined]);
export const mul = (a: Tensor, b: Tensor) =>
  binary("mul", a, b, (dy) => [
    a.requiresGrad ? binaryForward("mul", dy, b) : undefined,
    b.requiresGrad ? binaryForward("mul", dy, a) : undefined,
  ]);
export const div = (a: Tensor, b: Tensor) =>
  binary("div", a, b, (dy) => [
    a.requiresGrad ? binaryForward("div", dy, b) : undefined,
    // d(a/b)/db = -a / b^2
    b.requiresGrad ? unaryForward("neg", binaryForward("div", binaryForward("mul", dy, a), unaryForward("square", b))) : undefined,
  ]);

// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.size === shapeSize(shape) && g.shape.length === shape.length) return g;
  if (g.size === shapeSize(shape)) return g.reshape(shape);
  return reduceToShape(g, shape);
}

function reduceToShape(g: Tensor, shape: Shape): Tensor {
  const rank = g.shape.length;
  const target = [...new Array(rank - shape.length).fill(1), ...shape];
  let out = g;
  for (let axis = 0; axis < rank; axis++) {
    if (target[axis] === 1 && out.shape[axis] !== 1) out = sum(out, axis, true);
    else if (target[axis] !== out.shape[axis]) throw new Error(`sumTo: cannot reduce ${g} to (${shape.join(", ")})`);
  }
  return out.reshape(shape);
}

// ---- reductions ----

function keepShape(x: Tensor, axis: number, keepdim: boolean): number[] {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  return keepdim ? x.shape.map((d, i) => (i === ax ? 1 : d)) : x.shape.filter((_, i) => i !== ax);
}

export function sum(x: Tensor, axis: number, keepdim = false): Tensor {
  const y = reduceForward("sum", x, axis).reshape(keepShape(x, axis, keepdim));
  // d sum / dx: the gradient broadcast back along the reduced axis.
  return record(y, "sum", [x], (dy) => [binaryForward("add", zeros(x.shape), dy.reshape(keepShape(x, axis, true)))]);
}

export function mean(x: Tensor, axis: number, keepdim = false): Tensor {
  const n = x.shape[axis < 0 ? axis + x.shape.length : axis];
  const y = reduceForward("mean", x, axis).reshape(keepShape(x, axis, keepdim));
  return record(y, "mean", [x], (dy) => [
    binaryForward("add", zeros(x.shape), unaryForward("scale", dy, 1 / n).reshape(keepShape(x, axis, true))),
  ]);
}

// Max along an axis. Ties share the gradient equally.
export function max(x: Tensor, axis: number, keepdim = false): Tensor {
  const y = reduceForward("max", x, axis).reshape(keepShape(x, axis, keepdim));
  return record(y, "max", [x], (dy) => {
    const kept = keepShape(x, axis, true);
    const mask = binaryForward("eq", x, y.reshape(kept));
    const count = reduceForward("sum", mask, axis).reshape(kept);
    return [binaryForward("mul", mask, binaryForward("div", dy.reshape(kept), count))];
  });
}

// Sum of every element, as a scalar tensor of shape ().
export function sumAll(x: Tensor): Tensor {
  return sum(x.reshape([x.size]), 0);
}

export function meanAll(x: Tensor): Tensor {
  return mean(x.reshape([x.size]), 0);
}

function shapeSize(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}
