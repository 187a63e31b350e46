// Checkpoint layouts: timm, Hugging Face (with and without vit.) and DINO's wrapped teacher map to the same
// canonical tensors bit for bit; architecture inference on the tiny fixture and on ViT-B/16 and ViT-S/8 shape
// tables written out by hand, and from a file's shapes alone (readArchitecture); errors name the key, the
// expected and the found shape.
import { copyFile, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BACKBONE_MANIFEST_FORMAT, HeadsError, canonicalize, inferArchitecture, loadCheckpoint, readArchitecture, stripPrefixes, type F32Tensor } from "../../vit/checkpoint.js";
import { readSafetensors, writeSafetensors } from "../../vit/safetensors.js";

const FIXTURES = join(import.meta.dirname, "../fixtures");
const fixture = (name: string) => join(FIXTURES, name);
const bits = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
// Bit-for-bit equality (vitest's deep toEqual walks typed arrays element by element, far too slowly).
const sameBits = (a: Float32Array, b: Float32Array) => Buffer.compare(bits(a), bits(b)) === 0;

const TINY = { width: 32, depth: 2, heads: 2, patchSize: 4, imageSize: 16, channels: 3, mlpHidden: 128, hasHead: true, classes: 5 };

function expectSameTensors(got: Map<string, F32Tensor>, want: Map<string, F32Tensor>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, t] of want) {
    expect(got.get(k)!.shape, k).toEqual(t.shape);
    expect(sameBits(got.get(k)!.data, t.data), k).toBe(true);
  }
}

// Shapes of a standard ViT in timm names, written out from the published configurations, not from the code.
function vitShapes(C: number, depth: number, P: number, tokens: number, classes: number): Map<string, { shape: number[] }> {
  const s = new Map<string, { shape: number[] }>();
  const put = (k: string, shape: number[]) => s.set(k, { shape });
  put("cls_token", [1, 1, C]);
  put("pos_embed", [1, tokens, C]);
  put("patch_embed.proj.weight", [C, 3, P, P]);
  put("patch_embed.proj.bias", [C]);
  for (let n = 0; n < depth; n++) {
    for (const norm of ["norm1", "norm2"]) put(`blocks.${n}.${norm}.weight`, [C]).set(`blocks.${n}.${norm}.bias`, { shape: [C] });
    put(`blocks.${n}.attn.qkv.weight`, [3 * C, C]);
    put(`blocks.${n}.attn.qkv.bias`, [3 * C]);
    put(`blocks.${n}.attn.proj.weight`, [C, C]);
    put(`blocks.${n}.attn.proj.bias`, [C]);
    put(`blocks.${n}.mlp.fc1.weight`, [4 * C, C]);
    put(`blocks.${n}.mlp.fc1.bias`, [4 * C]);
    put(`blocks.${n}.mlp.fc2.weight`, [C, 4 * C]);
    put(`blocks.${n}.mlp.fc2.bias`, [C]);
  }
  put("norm.weight", [C]);
  put("norm.bias", [C]);
  if (classes) put("head.weight", [classes, C]).set("head.bias", { shape: [classes] });
  return s;
}

const timm = (await readSafetensors(fixture("vit-tiny.safetensors"))).tensors;

describe("layouts map to the same canonical tensors", () => {
  it("timm safetensors: architecture, no unused keys", async () => {
    const ck = await loadCheckpoint(fixture("vit-tiny.safetensors"), { heads: 2 });
    expect(ck.arch).toEqual(TINY);
    expect(ck.layout).toBe("timm");
    expect(ck.unused).toEqual([]);
    expectSameTensors(ck.tensors, timm);
  });

  it("timm .pth", async () => {
    const ck = await loadCheckpoint(fixture("vit-tiny.pth"), { heads: 2 });
    expectSameTensors(ck.tensors, timm);
  });

  it("Hugging Face with vit. prefix and classifier: q, k, v concatenated into qkv", async () => {
    const ck = await loadCheckpoint(fixture("vit-tiny-hf.safetensors"), { heads: 2 });
    expect(ck.layout).toBe("hf");
    expect(ck.unused).toEqual([]);
    expect(ck.arch).toEqual(TINY);
    expectSameTensors(ck.tensors, timm);
  });

  it("Hugging Face ViTModel without prefix; the pooler is unused", async () => {
    const hf = (await readSafetensors(fixture("vit-tiny-hf.safetensors"))).tensors;
    const plain = new Map<string, F32Tensor>();
    for (const [k, t] of hf) if (!k.startsWith("classifier.")) plain.set(k.replace(/^vit\./, ""), t);
    plain.set("pooler.dense.weight", { shape: [32, 32], data: new Float32Array(32 * 32) });
    const { tensors, layout, unused } = canonicalize(plain);
    expect(layout).toBe("hf");
    expect(unused).toEqual(["pooler.dense.weight"]);
    const body = new Map([...timm].filter(([k]) => !k.startsWith("head.")));
    expectSameTensors(tensors, body);
    expect(inferArchitecture(tensors, { heads: 2 })).toEqual({ ...TINY, hasHead: false, classes: 0 });
  });

  it("DINO full checkpoint, key 'teacher': module.backbone. stripped, DINO head unused", async () => {
    const ck = await loadCheckpoint(fixture("vit-tiny-full.pth"), { key: "teacher", heads: 2 });
    expect(ck.layout).toBe("timm");
    expect(ck.unused).toEqual(["head.mlp.0.weight", "head.last_layer.weight_g"]);
    expect(ck.arch).toEqual({ ...TINY, hasHead: false, classes: 0 });
    expectSameTensors(ck.tensors, new Map([...timm].filter(([k]) => !k.startsWith("head."))));
  });

  it("the Block Expansion fixture loads as a 3-block ViT whose outer blocks are the base model's", async () => {
    const ck = await loadCheckpoint(fixture("vit-tiny-expand.safetensors"), { heads: 2 });
    expect(ck.arch).toEqual({ ...TINY, depth: 3 });
    expect(ck.unused.filter((k) => !k.startsWith("grad."))).toEqual(["x", "w", "features", "features_identity", "loss"]);
    for (const [k, t] of timm) {
      const moved = k.replace(/^blocks\.1\./, "blocks.2.");
      expect(sameBits(ck.tensors.get(moved)!.data, t.data), moved).toBe(true);
    }
  });

  it("integer tensors are unused, not loaded", () => {
    const raw = new Map<string, { dtype: "i64"; shape: number[]; data: BigInt64Array } | F32Tensor>(timm);
    raw.set("module.num_batches_tracked", { dtype: "i64", shape: [], data: new BigInt64Array(1) });
    const { tensors, unused } = canonicalize(raw);
    expect(unused).toEqual(["num_batches_tracked"]);
    expect(tensors.size).toBe(timm.size);
  });
});

describe("wrapper prefixes", () => {
  const cases: [string, string][] = [
    ["module.backbone.blocks.0.norm1.weight", "blocks.0.norm1.weight"],
    ["backbone.cls_token", "cls_token"],
    ["model.encoder.norm.weight", "norm.weight"],
    ["encoder.blocks.3.mlp.fc1.bias", "blocks.3.mlp.fc1.bias"],
    ["encoder.layer.0.output.dense.bias", "encoder.layer.0.output.dense.bias"], // HF's own encoder
    ["vit.encoder.layer.11.layernorm_before.weight", "encoder.layer.11.layernorm_before.weight"],
    ["module.vit.embeddings.cls_token", "embeddings.cls_token"],
    ["head.weight", "head.weight"],
  ];
  for (const [from, to] of cases) it(`${from} -> ${to}`, () => expect(stripPrefixes(from)).toBe(to));
});

describe("inferArchitecture from shapes alone", () => {
  it("ViT-B/16 at 224 with a 1000-class head", () => {
    expect(inferArchitecture(vitShapes(768, 12, 16, 197, 1000))).toEqual({
      width: 768, depth: 12, heads: 12, patchSize: 16, imageSize: 224, channels: 3, mlpHidden: 3072, hasHead: true, classes: 1000,
    });
  });
  it("ViT-S/8 at 224 without a head", () => {
    expect(inferArchitecture(vitShapes(384, 12, 8, 785, 0))).toEqual({
      width: 384, depth: 12, heads: 6, patchSize: 8, imageSize: 224, channels: 3, mlpHidden: 1536, hasHead: false, classes: 0,
    });
  });
  it("heads can be given", () => {
    expect(inferArchitecture(vitShapes(768, 1, 16, 197, 0), { heads: 8 }).heads).toBe(8);
  });
});

describe("errors name the key, the expected and the found shape", () => {
  const base = () => vitShapes(768, 12, 16, 197, 1000);
  const cases: [string, (s: Map<string, { shape: number[] }>) => void, string][] = [
    ["a missing tensor", (s) => s.delete("blocks.11.mlp.fc2.bias"), "checkpoint: expected blocks.11.mlp.fc2.bias (768), got nothing"],
    ["a mis-shaped qkv", (s) => s.set("blocks.3.attn.qkv.weight", { shape: [2304, 767] }), "checkpoint: expected blocks.3.attn.qkv.weight (2304, 768), got (2304, 767)"],
    ["a missing middle block", (s) => { for (const k of [...s.keys()]) if (k.startsWith("blocks.5.")) s.delete(k); }, "checkpoint: expected blocks.5.norm1.weight (768), got nothing"],
    ["a non-square position grid", (s) => s.set("pos_embed", { shape: [1, 197 + 14, 768] }), "checkpoint: expected pos_embed (1, 1+G*G, 768) for a square grid, got (1, 211, 768)"],
    ["non-square patches", (s) => s.set("patch_embed.proj.weight", { shape: [768, 3, 16, 8] }), "checkpoint: expected square patches in patch_embed.proj.weight, got (768, 3, 16, 8)"],
    ["no patch embedding", (s) => s.delete("patch_embed.proj.weight"), "checkpoint: expected patch_embed.proj.weight of rank 4, got nothing"],
    ["a head bias without weight", (s) => s.delete("head.weight"), "checkpoint: expected no head.bias in a 12-block ViT (head.bias without head.weight?), got (1000)"],
    ["a wrong head bias", (s) => s.set("head.bias", { shape: [999] }), "checkpoint: expected head.bias (1000), got (999)"],
    ["no blocks", (s) => { for (const k of [...s.keys()]) if (k.startsWith("blocks.")) s.delete(k); }, "checkpoint: expected blocks.0.* tensors, got none"],
  ];
  for (const [what, edit, message] of cases) {
    it(what, () => {
      const s = base();
      edit(s);
      expect(() => inferArchitecture(s)).toThrow(message);
    });
  }
  it("a width that is not a multiple of 64 needs heads where the checkpoint states none", async () => {
    await expect(loadCheckpoint(fixture("vit-tiny.pth"))).rejects.toThrow(
      "checkpoint: expected a head count dividing width 32 into heads of a multiple of 4 channels, got 0.5 (width / 64: the checkpoint states no head count)",
    );
    expect(() => inferArchitecture(vitShapes(768, 1, 16, 197, 0), { heads: 5 })).toThrow("checkpoint: expected a head count dividing width 768 into heads of a multiple of 4 channels, got 5 (given)");
    // The attention kernels' rule, as validateConfig has it: 768 / 384 = 2 channels a head.
    expect(() => inferArchitecture(vitShapes(768, 1, 16, 197, 0), { heads: 384 })).toThrow(HeadsError);
  });
  it("HF attention without value", () => {
    const raw = new Map<string, F32Tensor>([
      ["embeddings.cls_token", { shape: [1, 1, 2], data: new Float32Array(2) }],
      ["encoder.layer.0.attention.attention.query.weight", { shape: [2, 2], data: new Float32Array(4) }],
      ["encoder.layer.0.attention.attention.key.weight", { shape: [2, 2], data: new Float32Array(4) }],
    ]);
    expect(() => canonicalize(raw)).toThrow("checkpoint: expected query, key and value for blocks.0.attn.qkv.weight, got no value");
  });
  it("two keys that collide after stripping prefixes", () => {
    const t = { shape: [1], data: new Float32Array(1) };
    expect(() => canonicalize(new Map([["module.norm.weight", t], ["norm.weight", t]]))).toThrow("checkpoint: expected unique keys after stripping wrapper prefixes, got two for 'norm.weight'");
  });
  it("unknown extensions and a key for safetensors", async () => {
    await expect(loadCheckpoint("weights.onnx")).rejects.toThrow("checkpoint: expected a .safetensors, .pth, .pt or .bin file, got weights.onnx");
    await expect(loadCheckpoint(fixture("vit-tiny.safetensors"), { key: "teacher" })).rejects.toThrow("(safetensors files are flat)");
  });
});

describe("readArchitecture: the architecture from the shapes alone", () => {
  const cases: [string, { key?: string }][] = [
    ["vit-tiny.safetensors", {}],
    ["vit-tiny.pth", {}],
    ["vit-tiny-hf.safetensors", {}],
    ["vit-tiny-full.pth", { key: "teacher" }],
    ["vit-tiny-expand.safetensors", {}],
  ];
  for (const [name, opts] of cases) {
    it(`${name}: what loadCheckpoint finds`, async () => {
      const path = fixture(name);
      expect(await readArchitecture(path, { ...opts, heads: 2 })).toEqual((await loadCheckpoint(path, { ...opts, heads: 2 })).arch);
    });
  }
  it("the same errors, naming the file", async () => {
    await expect(readArchitecture(fixture("nowhere.safetensors"))).rejects.toThrow(/nowhere\.safetensors, it does not exist/);
    await expect(readArchitecture(fixture("vit-tiny.pth"), { heads: 5 })).rejects.toThrow(/expected a head count dividing width 32 .*, got 5 \(given\), in .*vit-tiny\.pth/);
    await expect(readArchitecture(fixture("vit-tiny-full.pth"), { key: "nokey" })).rejects.toThrow("expected key 'nokey'");
  });
});

// The shapes cannot tell 2 heads of 16 from 4 of 8: the count comes from the caller, else from what the checkpoint
// says of itself (its safetensors metadata, a backbone manifest beside it naming it), else width/64.
describe("the head count a checkpoint states", () => {
  const TINY_MODEL = { imageSize: 16, patchSize: 4, width: 32, depth: 2, heads: 2, mlpHidden: 128 };
  // A copy of the tiny .pth (which states nothing) with a backbone.json beside it.
  async function withManifest(manifest: unknown): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "heads-"));
    await copyFile(fixture("vit-tiny.pth"), join(dir, "w.pth"));
    await writeFile(join(dir, "backbone.json"), typeof manifest === "string" ? manifest : JSON.stringify(manifest));
    return join(dir, "w.pth");
  }
  const manifest = (model: Record<string, unknown>, file = "w.pth") => ({ format: BACKBONE_MANIFEST_FORMAT, file, hyperParameters: { model } });

  it("the safetensors metadata's heads, said so", async () => {
    const ck = await loadCheckpoint(fixture("vit-tiny.safetensors"));
    expect(ck.arch).toEqual(TINY);
    expect(ck.headsFrom).toBe("the file's metadata");
    expect(await readArchitecture(fixture("vit-tiny-hf.safetensors"))).toEqual(TINY);
    expect((await loadCheckpoint(fixture("vit-tiny.safetensors"), { heads: 2 })).headsFrom).toBe("given");
  });

  it("a count given against the file's own is refused, naming both", async () => {
    const refused = loadCheckpoint(fixture("vit-tiny.safetensors"), { heads: 4 });
    await expect(refused).rejects.toThrow(HeadsError);
    await expect(refused).rejects.toThrow(/expected 2 heads, as the file's metadata states, got 4, in .*vit-tiny\.safetensors/);
    await expect(readArchitecture(fixture("vit-tiny.safetensors"), { heads: 32 })).rejects.toThrow("expected 2 heads, as the file's metadata states, got 32");
  });

  it("metadata heads that is no count is refused, naming the key", async () => {
    const dir = await mkdtemp(join(tmpdir(), "heads-"));
    const path = join(dir, "w.safetensors");
    await writeSafetensors(path, timm, { heads: "two" });
    await expect(loadCheckpoint(path)).rejects.toThrow(`checkpoint: ${path}: expected __metadata__.heads to be a positive integer, got "two"`);
  });

  it("a pre-trained backbone's manifest beside the file", async () => {
    const path = await withManifest(manifest(TINY_MODEL));
    const manifestPath = join(path, "..", "backbone.json");
    const ck = await loadCheckpoint(path);
    expect(ck.arch.heads).toBe(2);
    expect(ck.headsFrom).toBe(manifestPath);
    expect(await readArchitecture(path)).toEqual(TINY);
    await expect(loadCheckpoint(path, { heads: 4 })).rejects.toThrow(`expected 2 heads, as ${manifestPath} states, got 4`);
  });

  it("a manifest of another file, or not a backbone's, says nothing", async () => {
    for (const m of [manifest(TINY_MODEL, "other.pth"), { kind: "checkpoint", path: "w.pth" }, [1, 2], null]) {
      await expect(loadCheckpoint(await withManifest(m))).rejects.toThrow("got 0.5 (width / 64: the checkpoint states no head count)");
    }
  });

  it("a manifest naming the file but describing another model, or broken, is refused by name", async () => {
    const other = await withManifest(manifest({ ...TINY_MODEL, width: 64 }));
    await expect(loadCheckpoint(other)).rejects.toThrow(`expected ${join(other, "..", "backbone.json")} to describe this model, got width 64 where the tensors have 32`);
    const noHeads = await withManifest(manifest({ ...TINY_MODEL, heads: undefined }));
    await expect(readArchitecture(noHeads)).rejects.toThrow(`checkpoint: ${join(noHeads, "..", "backbone.json")}: expected hyperParameters.model.heads, a positive integer`);
    const broken = await withManifest("{oops");
    await expect(readArchitecture(broken)).rejects.toThrow(`checkpoint: ${join(broken, "..", "backbone.json")}: expected JSON, got a parse error`);
  });

  it("the shipped backbone (64 wide, 2 heads) gets its 2 heads from its manifest, not width/64's 1", async () => {
    const path = "backbones/dino-fashion-mnist-50ep-grid/backbone.safetensors";
    const ck = await loadCheckpoint(path);
    expect(ck.arch).toMatchObject({ width: 64, heads: 2 });
    expect(ck.headsFrom).toBe(join("backbones/dino-fashion-mnist-50ep-grid", "backbone.json"));
  });
});
