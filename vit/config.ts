// ViT configurations: the named DINO sizes and any explicit patch size / depth / width / head count.
export interface VitConfig {
  imageSize: number; // native input resolution (square), e.g. 224
  patchSize: number; // P
  width: number; // C, the embedding dimension
  depth: number; // number of blocks
  heads: number; // H; head dim D = C / H
  mlpHidden: number; // 4 * C for every DINO model
  classes: number; // 0: no head; the CLS feature is the output
  eps: number; // LayerNorm epsilon, 1e-6 in DINO
}

// The architecture alone, as a study config writes it (no head, DINO's LayerNorm eps).
export type ModelSpec = Pick<VitConfig, "imageSize" | "patchSize" | "width" | "depth" | "heads" | "mlpHidden">;

export const NAMED_CONFIGS: Record<string, Omit<VitConfig, "classes">> = {
  "vit-t16": { imageSize: 224, patchSize: 16, width: 192, depth: 12, heads: 3, mlpHidden: 768, eps: 1e-6 },
  "vit-s16": { imageSize: 224, patchSize: 16, width: 384, depth: 12, heads: 6, mlpHidden: 1536, eps: 1e-6 },
  "vit-b16": { imageSize: 224, patchSize: 16, width: 768, depth: 12, heads: 12, mlpHidden: 3072, eps: 1e-6 },
  "vit-s8": { imageSize: 224, patchSize: 8, width: 384, depth: 12, heads: 6, mlpHidden: 1536, eps: 1e-6 },
  "vit-b8": { imageSize: 224, patchSize: 8, width: 768, depth: 12, heads: 12, mlpHidden: 3072, eps: 1e-6 },
};

export function namedConfig(name: string, classes = 0, overrides: Partial<VitConfig> = {}): VitConfig {
  const base = NAMED_CONFIGS[name];
  if (!base) throw new Error(`vit: unknown model "${name}"; known: ${Object.keys(NAMED_CONFIGS).join(", ")}`);
  return validateConfig({ ...base, classes, ...overrides });
}

// Whether `heads` splits `width` into heads of a multiple of 4 channels: the attention kernels load a head's
// channels four at a time.
export function headsFit(width: number, heads: number): boolean {
  return Number.isInteger(heads) && heads >= 1 && width % heads === 0 && (width / heads) % 4 === 0;
}

export function validateConfig(c: VitConfig): VitConfig {
  const bad = (what: string) => {
    throw new Error(`vit config: ${what} (got ${JSON.stringify(c)})`);
  };
  for (const k of ["imageSize", "patchSize", "width", "depth", "heads", "mlpHidden"] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad(`${k} must be a positive integer`);
  }
  if (c.imageSize % c.patchSize !== 0) bad("imageSize must be a multiple of patchSize");
  if (!headsFit(c.width, c.heads)) bad("width must split into heads of a multiple of 4 channels (width / heads)");
  if (!Number.isInteger(c.classes) || c.classes < 0) bad("classes must be a non-negative integer");
  return c;
}

// Parameter count of a config, as in the paper's Table 1 (the head included when classes > 0).
export function parameterCount(c: VitConfig): number {
  const C = c.width;
  const grid = (c.imageSize / c.patchSize) ** 2;
  const embed = C * 3 * c.patchSize ** 2 + C + C + (grid + 1) * C;
  const block = 4 * C + (3 * C * C + 3 * C) + (C * C + C) + (c.mlpHidden * C + c.mlpHidden) + (C * c.mlpHidden + C);
  const head = c.classes > 0 ? c.classes * C + c.classes : 0;
  return embed + c.depth * block + 2 * C + head;
}
