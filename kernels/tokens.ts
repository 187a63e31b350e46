// The ViT's input sequence from its patch tokens, the CLS token and the position embeddings:
//   y[b, 0, :] = cls + pos[0, :],   y[b, 1 + g, :] = tokens[b, g, :] + pos[1 + g, :]
//   tokens (B, G, C), cls of C elements, pos of (1 + G) * C (any shapes)  ->  y (B, 1 + G, C)
// timm's cat((cls_token.expand(B, -1, -1), x), dim=1) + pos_embed in one pass, where composing it took five
// dispatches (a fill and an add to broadcast the CLS token, two copies for the concat, the add of the positions).
// The sums are the composition's, so the values are the same to the bit. Backward (tokenSequenceBackward): the
// tokens' gradient is dy past each image's first row, the positions' the sum of dy over the batch, the CLS token's
// that sum's first row; one pass, where the composition took four dispatches (two copies, two reductions).
//   v1: one invocation per 4 channels (per channel where C % 4 != 0), workgroup 64, 1-D grid folded into (x, y);
//   backward: one per 4 channels of a token position, looping over the batch in order (the reductions' sums).
import { runtime, getKernel } from "../engine/runtime.js";
import { type Shape, Tensor, numel } from "../engine/tensor.js";
import { type NormAfter, layernormForwardInto, tokensNormedInto } from "./layernorm.js";
import { FLAT_GROUP, flatIndex, grid1d, mainEntry, packUniform, storageBindings, uniformStruct } from "./wgsl.js";

const WG = 64;
const FIELDS = { n: "u32", T: "u32", C: "u32" } as const; // n: invocations; C: channels in the bound element type

function wgsl(spec: { vec4: boolean }): string {
  const type = spec.vec4 ? "array<vec4<f32>>" : "array<f32>";
  return /* wgsl */ `
${uniformStruct(FIELDS)}
${storageBindings([["y", type, "read_write"], ["tokens", type, "read"], ["cls", type, "read"], ["pos", type, "read"]])}
${FLAT_GROUP}
${mainEntry(WG)}
  let i = ${flatIndex(WG)};
  if (i >= p.n) { return; }
  let c = i % p.C;
  let t = (i / p.C) % p.T;
  let b = i / (p.C * p.T);
  let x = select(tokens[min((b * (p.T - 1u) + t - 1u) * p.C + c, arrayLength(&tokens) - 1u)], cls[c], t == 0u);
  y[i] = x + pos[t * p.C + c];
}`;
}

// tokens (B, G, C), cls (C elements: (1, 1, C)), pos ((1 + G) * C elements: (1, 1 + G, C)) -> (B, 1 + G, C).
// norm: also its layernorm (the first block's norm1), in the same pass where kernels/layernorm.ts can (its lane
// kernel with rows in registers), else by a layernorm dispatch after.
export function tokenSequenceForward(tokens: Tensor, cls: Tensor, pos: Tensor, norm?: NormAfter): Tensor {
  const [B, G, C] = tokens.shape;
  const all = [tokens, cls, pos];
  if (tokens.shape.length !== 3 || cls.size !== C || pos.size !== (1 + G) * C || all.some((t) => t.dtype !== "f32")) {
    throw new Error(`tokens: expected f32 tokens (B, G, C), cls of C and pos of (1 + G) * C elements, got tokens ${tokens}, cls ${cls}, pos ${pos}`);
  }
  const y = Tensor.empty([B, 1 + G, C]);
  if (norm && tokensNormedInto(y, tokens, cls, pos, norm)) return y;
  if (y.size > 0) {
    const vec4 = C % 4 === 0;
    const width = vec4 ? C / 4 : C;
    const n = B * (1 + G) * width;
    const uniform = packUniform(FIELDS, { n, T: 1 + G, C: width });
    runtime().batch.dispatch(getKernel("tokens", { vec4 }, wgsl), [y.buffer, tokens.buffer, cls.buffer, pos.buffer], uniform, grid1d(Math.ceil(n / WG)), 3 * y.size * 4);
  }
  if (norm) layernormForwardInto(y, norm.gamma, norm.beta, norm.eps, norm);
  return y;
}

// Which gradients tokenSequenceBackward writes, in this binding order after dy.
interface BackwardSpec {
  [k: string]: boolean;
  vec4: boolean;
  tokens: boolean;
  cls: boolean;
  pos: boolean;
}
const BACKWARD_FIELDS = { n: "u32", B: "u32", T: "u32", C: "u32" } as const; // n: invocations, T * C

function backwardWgsl(spec: BackwardSpec): string {
  const type = spec.vec4 ? "array<vec4<f32>>" : "array<f32>";
  const outputs = (["tokens", "cls", "pos"] as const).filter((k) => spec[k]).map((k): [string, string, "read_write"] => [`d${k}`, type, "read_write"]);
  return /* wgsl */ `
${uniformStruct(BACKWARD_FIELDS)}
${storageBindings([["dy", type, "read"], ...outputs])}
${FLAT_GROUP}
${mainEntry(WG)}
  let i = ${flatIndex(WG)};
  if (i >= p.n) { return; }
  let c = i % p.C;
  let t = i / p.C;
  var s = ${spec.vec4 ? "vec4<f32>(0.0)" : "0.0"};
  for (var b = 0u; b < p.B; b++) {
    let v = dy[(b * p.T + t) * p.C + c];
    s += v;
    ${spec.tokens ? "if (t > 0u) { dtokens[(b * (p.T - 1u) + t - 1u) * p.C + c] = v; }" : ""}
  }
  ${spec.pos ? "dpos[i] = s;" : ""}
  ${spec.cls ? "if (t == 0u) { dcls[c] = s; }" : ""}
}`;
}

// dy (B, 1 + G, C) -> the gradients of tokens (B, G, C), cls (C) and pos ((1 + G) * C), each where `need` asks for it
// (cls and pos in the caller's shapes, given).
export function tokenSequenceBackward(dy: Tensor, need: { tokens: boolean; cls?: Shape; pos?: Shape }): { dtokens?: Tensor; dcls?: Tensor; dpos?: Tensor } {
  const [B, T, C] = dy.shape;
  if (dy.shape.length !== 3 || T < 1 || dy.dtype !== "f32") throw new Error(`tokens: expected an f32 dy (B, 1 + G, C), got ${dy}`);
  if (need.cls && numel(need.cls) !== C) throw new Error(`tokens: expected cls of ${C} elements, got (${need.cls.join(", ")})`);
  if (need.pos && numel(need.pos) !== T * C) throw new Error(`tokens: expected pos of ${T} * ${C} elements, got (${need.pos.join(", ")})`);
  const out = {
    dtokens: need.tokens ? Tensor.empty([B, T - 1, C]) : undefined,
    dcls: need.cls ? Tensor.empty(need.cls) : undefined,
    dpos: need.pos ? Tensor.empty(need.pos) : undefined,
  };
  const outputs = [out.dtokens, out.dcls, out.dpos].filter((t): t is Tensor => t !== undefined);
  if (outputs.length === 0 || T * C === 0) return out;
  const vec4 = C % 4 === 0;
  const width = vec4 ? C / 4 : C;
  const spec: BackwardSpec = { vec4, tokens: need.tokens, cls: !!need.cls, pos: !!need.pos };
  const uniform = packUniform(BACKWARD_FIELDS, { n: T * width, B, T, C: width });
  const buffers = [dy.buffer, ...outputs.map((t) => t.buffer)];
  runtime().batch.dispatch(getKernel("tokens-backward", spec, backwardWgsl), buffers, uniform, grid1d(Math.ceil((T * width) / WG)), 2 * dy.size * 4);
  return out;
}
