// DINO's projection head (vision_transformer.py DINOHead, use_bn=False, nlayers=3, norm_last_layer=True):
//
//   h = Linear(C, hidden) -> GELU -> Linear(hidden, hidden) -> GELU -> Linear(hidden, bottleneck)
//   y = normalize(h) · normalize_rows(V)ᵀ        V (K, bottleneck): the weight-normalised last layer, no bias
//
// The last layer is torch's weight_norm with g fixed to 1 (norm_last_layer: weight_g does not train), so its weight
// is V with each of the K prototype rows scaled to unit norm; only V (`last_layer.weight_v`) is a parameter.
// Initialisation as DINO's: trunc_normal(std 0.02, bounds ±2 absolute) for the MLP's weights, zero biases; V as
// nn.Linear's default (uniform in ±1/sqrt(bottleneck)), which weight_norm then takes as V.
import { Tensor } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { l2Normalize } from "../autograd/dino-ops.js";
import { Linear, type TensorSource } from "../vit/model.js";
import { Rng } from "../util/random.js";

export interface DinoHeadSpec {
  hidden: number; // the MLP's hidden width, 2048 in DINO
  bottleneck: number; // 256 in DINO
  prototypes: number; // K, the output dimension: 65536 in DINO
}

export const DINO_HEAD_DEFAULTS: DinoHeadSpec = { hidden: 2048, bottleneck: 256, prototypes: 65536 };

export class DinoHead {
  constructor(
    readonly layers: Linear[], // 3: (hidden, C), (hidden, hidden), (bottleneck, hidden)
    readonly lastLayer: Tensor, // V (K, bottleneck)
  ) {}

  get prototypes(): number {
    return this.lastLayer.shape[0];
  }

  // x (B, C) -> (B, K)
  forward(x: Tensor): Tensor {
    let h = x;
    this.layers.forEach((layer, i) => {
      h = layer.forward(h, { gelu: i < this.layers.length - 1 });
    });
    return ops.linear(l2Normalize(h), l2Normalize(this.lastLayer));
  }

  // DINO's names (the MLP is an nn.Sequential: modules 0, 2, 4 are the linear layers).
  parameters(prefix = "head."): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    this.layers.forEach((layer, i) => {
      out.push([`${prefix}mlp.${2 * i}.weight`, layer.weight]);
      if (layer.bias) out.push([`${prefix}mlp.${2 * i}.bias`, layer.bias]);
    });
    out.push([`${prefix}last_layer.weight_v`, this.lastLayer]);
    return out;
  }
}

export function checkHeadSpec(s: DinoHeadSpec, where: string): void {
  for (const k of ["hidden", "bottleneck", "prototypes"] as const) {
    if (!(Number.isInteger(s[k]) && s[k] >= 1)) throw new Error(`${where}.${k}: expected an integer >= 1, got ${s[k]}`);
  }
}

// A head on features of width `inDim`, tensors named as parameters() names them, taken from `source`.
export function buildDinoHead(inDim: number, spec: DinoHeadSpec, source: TensorSource, prefix = "head."): DinoHead {
  checkHeadSpec(spec, "dino head");
  const param = (name: string, shape: number[]) => {
    const t = Tensor.fromArray(source(`${prefix}${name}`, shape), shape).keep();
    t.name = `${prefix}${name}`;
    return t;
  };
  const dims = [inDim, spec.hidden, spec.hidden, spec.bottleneck];
  const layers = [0, 1, 2].map((i) => new Linear(param(`mlp.${2 * i}.weight`, [dims[i + 1], dims[i]]), param(`mlp.${2 * i}.bias`, [dims[i + 1]])));
  return new DinoHead(layers, param("last_layer.weight_v", [spec.prototypes, spec.bottleneck]));
}

// DINO's initialisation of the head, seeded.
export function dinoHeadInitialiser(seed: number): TensorSource {
  const rng = new Rng([seed, 0xd1]); // a stream of its own: the backbone's initialiser draws from `seed`
  return (name, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith(".bias")) return new Float32Array(n);
    if (name.endsWith("last_layer.weight_v")) {
      const bound = 1 / Math.sqrt(shape[1]);
      return rng.fill(n, () => rng.uniform(-bound, bound));
    }
    return rng.fill(n, () => rng.truncNormal(0, 0.02));
  };
}
