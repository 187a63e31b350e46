// The ViT's input sequence from its patch tokens, the CLS token and the position embeddings:
//   y[b, 0, :] = cls + pos[0, :],   y[b, 1 + g, :] = tokens[b, g, :] + pos[1 + g, :]
// timm's cat((cls_token.expand(B, -1, -1), x), dim=1) + pos_embed in one pass, where composing it took five
// dispatches (a fill and an add to broadcast the CLS token, two copies for the concat, the add of the positions).
// The sums are the composition's, so the values are the same to the bit. Backward (autograd/ops.ts
// tokenSequence): the tokens' gradient is a slice of dy, the CLS token's and the positions' are sums over the batch.
//   v1: one invocation per 4 channels (per channel where C % 4 != 0), workgroup 64, 1-D grid folded into (x, y).
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
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
