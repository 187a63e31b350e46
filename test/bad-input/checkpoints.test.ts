// Bad checkpoints through `features --weights`: safetensors files broken at every level (size, header length,
// JSON, dtypes, shapes, offsets, the ViT's tensors, values, checksum) and torch.save archives broken at every
// level (file type, zip, pickle, storages). Each error names the file, and the tensor or entry where there is one.
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe } from "vitest";
import type { F32Tensor } from "../../vit/safetensors.js";
import { writeSafetensors } from "../../vit/safetensors.js";
import { type At, type BadCase, RAW_NODE, runCases, tempRoot } from "./harness.js";
import {
  FIXTURES, type RawTensor, editedVit, f32Safetensors, filled, images, pickle, replaceInPickle, safetensorsFile, tensorsFile, tinyPth, tinyVit, withPickle,
  write, zipFile,
} from "./files.js";

const root = tempRoot("checkpoints");

interface CheckpointCase {
  what: string;
  file: string; // the weights' file name in the case folder
  bytes?: () => Uint8Array; // its contents (none: the case's setup makes it)
  setup?: (at: At) => Promise<unknown>;
  flags?: string[]; // more flags for `features` (default --heads 2)
  code?: 0 | 1 | 2; // default 1
  says: (string | RegExp)[]; // besides the file's path
  extraNever?: string[]; // must not be printed, besides raw Node messages
}

// features --weights <file> on a 1-image batch of the tiny ViT's input.
function featuresCase(c: CheckpointCase): BadCase {
  return {
    what: c.what,
    setup: async (at) => {
      await write(at("x.npy"), images(1));
      if (c.bytes) await write(at(c.file), c.bytes());
      await c.setup?.(at);
    },
    argv: (at) => ["features", "--weights", at(c.file), "--input", at("x.npy"), "--out", at("f.npy"), ...(c.flags ?? ["--heads", "2"])],
    code: c.code ?? 1,
    says: (at) => [at(c.file), ...c.says],
    never: [RAW_NODE, ...(c.extraNever ?? [])],
  };
}

const vitFile = (m: Map<string, F32Tensor>) => () => f32Safetensors(m);
const eight = new Uint8Array(8);
const f32 = (n: number, at = 0) => ({ dtype: "F32", shape: [n], data_offsets: [at, at + 4 * n] });
const tinyBytes = () => readFileSync(join(FIXTURES, "vit-tiny.safetensors"));
const transpose = (t: F32Tensor): F32Tensor => ({ shape: [...t.shape].reverse(), data: t.data });

const safetensors: CheckpointCase[] = [
  { what: "empty file", file: "w.safetensors", bytes: () => new Uint8Array(0), says: ["expected at least 8 bytes, got 0"] },
  { what: "shorter than the length field", file: "w.safetensors", bytes: () => new Uint8Array(7), says: ["expected at least 8 bytes, got 7"] },
  { what: "header length larger than the file", file: "w.safetensors", bytes: () => safetensorsFile({ header: "{}", length: 1000n }), says: ["header length of at most 2, got 1000"] },
  { what: "header length of 2^64 - 1", file: "w.safetensors", bytes: () => safetensorsFile({ header: "{}", length: 2n ** 64n - 1n }), says: ["header length of at most", "18446744073709551615"] },
  { what: "truncated inside the header", file: "w.safetensors", bytes: () => tinyBytes().subarray(0, 60), says: ["header length of at most 52"] },
  { what: "invalid JSON header", file: "w.safetensors", bytes: () => safetensorsFile({ header: '{"cls_token": {"dtype": ', data: eight }), says: ["expected a JSON header, got a parse error"] },
  { what: "binary garbage as header", file: "w.safetensors", bytes: () => safetensorsFile({ header: "\u0001\u00ff\u0000garbage" }), says: ["parse error"] },
  { what: "header a JSON array", file: "w.safetensors", bytes: () => safetensorsFile({ header: [1, 2] }), says: ["expected the header to be a JSON object"] },
  { what: "header JSON null", file: "w.safetensors", bytes: () => safetensorsFile({ header: null }), says: ["expected the header to be a JSON object"] },
  { what: "unknown dtype", file: "w.safetensors", bytes: () => safetensorsFile({ header: { cls_token: { ...f32(2), dtype: "F99" } }, data: eight }), says: ["tensor 'cls_token'", 'expected a known dtype, got "F99"'] },
  { what: "no dtype", file: "w.safetensors", bytes: () => safetensorsFile({ header: { cls_token: { shape: [2], data_offsets: [0, 8] } }, data: eight }), says: ["tensor 'cls_token'", "expected a known dtype"] },
  { what: "integer dtype for a weight", file: "w.safetensors", bytes: () => safetensorsFile({ header: { "norm.weight": { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, data: eight }), says: ["tensor 'norm.weight'", "expected dtype F32, F16 or BF16, got I64"] },
  { what: "negative shape", file: "w.safetensors", bytes: () => safetensorsFile({ header: { pos_embed: { ...f32(2), shape: [1, -2] } }, data: eight }), says: ["tensor 'pos_embed'", "shape of non-negative integers"] },
  { what: "shape not an array", file: "w.safetensors", bytes: () => safetensorsFile({ header: { pos_embed: { ...f32(2), shape: "2" } }, data: eight }), says: ["tensor 'pos_embed'", "shape of non-negative integers"] },
  { what: "no data_offsets", file: "w.safetensors", bytes: () => safetensorsFile({ header: { cls_token: { dtype: "F32", shape: [2] } }, data: eight }), says: ["tensor 'cls_token'", "data_offsets [begin, end]"] },
  { what: "data_offsets reversed", file: "w.safetensors", bytes: () => safetensorsFile({ header: { cls_token: { ...f32(2), data_offsets: [8, 0] } }, data: eight }), says: ["tensor 'cls_token'", "0 <= begin <= end, got [8,0]"] },
  { what: "data_offsets of three numbers", file: "w.safetensors", bytes: () => safetensorsFile({ header: { cls_token: { ...f32(2), data_offsets: [0, 4, 8] } }, data: eight }), says: ["tensor 'cls_token'", "data_offsets [begin, end]"] },
  { what: "offsets spanning another size than the shape", file: "w.safetensors", bytes: () => safetensorsFile({ header: { cls_token: { ...f32(3), data_offsets: [0, 8] } }, data: eight }), says: ["tensor 'cls_token'", "expected 12 bytes for F32 (3), got data_offsets spanning 8"] },
  { what: "offsets past the data section", file: "w.safetensors", bytes: () => safetensorsFile({ header: { cls_token: f32(4) }, data: eight }), says: ["offsets out of range"] },
  { what: "overlapping tensors", file: "w.safetensors", bytes: () => safetensorsFile({ header: { a: f32(2), b: f32(1, 4) }, data: eight }), says: ["tensor 'b'", "contiguous, no overlap"] },
  { what: "the same bytes for two tensors", file: "w.safetensors", bytes: () => safetensorsFile({ header: { a: f32(2), b: f32(2) }, data: new Uint8Array(16) }), says: ["contiguous, no overlap"] },
  { what: "a gap between tensors", file: "w.safetensors", bytes: () => safetensorsFile({ header: { a: f32(1), b: f32(1, 8) }, data: new Uint8Array(12) }), says: ["tensor 'b'", "expected data to start at 4"] },
  { what: "tensors not covering the data section", file: "w.safetensors", bytes: () => safetensorsFile({ header: { a: f32(1) }, data: eight }), says: ["expected the tensors to fill the 8-byte data section, got 4 bytes"] },
  { what: "truncated data section", file: "w.safetensors", bytes: () => tinyBytes().subarray(0, tinyBytes().length - 100), says: ["expected the tensors to fill the", "offsets out of range"] },
  { what: "metadata value not a string", file: "w.safetensors", bytes: () => safetensorsFile({ header: { __metadata__: { epoch: 3 }, a: f32(2) }, data: eight }), says: ["__metadata__.epoch", "to be a string"] },
  { what: "metadata not a map", file: "w.safetensors", bytes: () => safetensorsFile({ header: { __metadata__: "v1", a: f32(2) }, data: eight }), says: ["expected __metadata__ to be a map"] },
  // The ViT inside: missing, mis-shaped and stray tensors.
  { what: "missing norm.weight", file: "w.safetensors", bytes: vitFile(editedVit({ "norm.weight": undefined })), says: ["norm.weight (32), got nothing"] },
  { what: "missing blocks.1.mlp.fc2.bias", file: "w.safetensors", bytes: vitFile(editedVit({ "blocks.1.mlp.fc2.bias": undefined })), says: ["blocks.1.mlp.fc2.bias (32), got nothing"] },
  { what: "missing patch_embed.proj.weight", file: "w.safetensors", bytes: vitFile(editedVit({ "patch_embed.proj.weight": undefined })), says: ["patch_embed.proj.weight of rank 4, got nothing"] },
  { what: "missing pos_embed", file: "w.safetensors", bytes: vitFile(editedVit({ pos_embed: undefined })), says: ["pos_embed of rank 3, got nothing"] },
  { what: "no blocks at all", file: "w.safetensors", bytes: vitFile(new Map([...tinyVit()].filter(([k]) => !k.startsWith("blocks.")))), says: ["expected blocks.0.* tensors, got none"] },
  { what: "not a ViT (one unrelated tensor)", file: "w.safetensors", bytes: vitFile(new Map([["weight", filled([4, 4], 0)]])), says: ["patch_embed.proj.weight", "got nothing"] },
  { what: "transposed qkv weight", file: "w.safetensors", bytes: vitFile(editedVit({ "blocks.0.attn.qkv.weight": transpose })), says: ["blocks.0.attn.qkv.weight (96, 32), got (32, 96)"] },
  { what: "cls_token of the wrong rank", file: "w.safetensors", bytes: vitFile(editedVit({ cls_token: filled([32], 0) })), says: ["cls_token (1, 1, 32), got (32)"] },
  { what: "head.bias of another class count", file: "w.safetensors", bytes: vitFile(editedVit({ "head.bias": filled([4], 0) })), says: ["head.bias (5), got (4)"] },
  { what: "head.bias without head.weight", file: "w.safetensors", bytes: vitFile(editedVit({ "head.weight": undefined })), says: ["head.bias", "without head.weight"] },
  { what: "a stray block past the depth", file: "w.safetensors", bytes: vitFile(editedVit({ "blocks.3.norm1.weight": filled([32], 1) })), says: ["blocks.2.", "got nothing"] },
  { what: "non-square patches", file: "w.safetensors", bytes: vitFile(editedVit({ "patch_embed.proj.weight": filled([32, 3, 4, 2], 0) })), says: ["square patches", "patch_embed.proj.weight"] },
  { what: "position embeddings of no square grid", file: "w.safetensors", bytes: vitFile(editedVit({ pos_embed: filled([1, 16, 32], 0) })), says: ["pos_embed", "square grid", "(1, 16, 32)"] },
  { what: "one input channel", file: "w.safetensors", bytes: vitFile(editedVit({ "patch_embed.proj.weight": filled([32, 1, 4, 4], 0) })), says: ["expected 3 input channels, got 1"] },
  { what: "an unknown extra tensor is a warning", file: "w.safetensors", bytes: vitFile(editedVit({ "dino_head.weight": filled([2], 0) })), code: 0, says: ["warning", "unused", "dino_head.weight"] },
  { what: "two keys equal after stripping module.", file: "w.safetensors", bytes: vitFile(editedVit({ "module.norm.weight": filled([32], 1) })), says: ["two for 'norm.weight'"] },
  {
    what: "Hugging Face layout without a value projection",
    file: "w.safetensors",
    bytes: vitFile(new Map([
      ["embeddings.cls_token", filled([1, 1, 32], 0)],
      ["encoder.layer.0.attention.attention.query.weight", filled([32, 32], 0)],
      ["encoder.layer.0.attention.attention.key.weight", filled([32, 32], 0)],
    ])),
    says: ["blocks.0.attn.qkv.weight", "got no value"],
  },
  // Values.
  { what: "an all-NaN tensor", file: "w.safetensors", bytes: vitFile(editedVit({ "norm.weight": filled([32], NaN) })), says: ["norm.weight", /finite|NaN/] },
  { what: "an infinite value", file: "w.safetensors", bytes: vitFile(editedVit({ "blocks.0.mlp.fc1.bias": (t) => ({ ...t, data: t.data.map((v, i) => (i === 7 ? Infinity : v)) }) })), says: ["blocks.0.mlp.fc1.bias", /finite|Infinity/] },
  {
    what: "an F16 tensor of NaN",
    file: "w.safetensors",
    bytes: () => {
      const f32 = [...tinyVit()].filter(([k]) => k !== "norm.bias").map(([k, t]): [string, RawTensor] => [k, { dtype: "F32", shape: t.shape, bytes: new Uint8Array(t.data.buffer) }]);
      const nan = new Uint8Array(new Uint16Array(32).fill(0x7e00).buffer); // half-precision NaNs
      return tensorsFile([...f32, ["norm.bias", { dtype: "F16", shape: [32], bytes: nan }]]);
    },
    says: ["norm.bias", /finite|NaN/],
  },
  { what: "NaN with --allow-nonfinite is a warning", file: "w.safetensors", bytes: vitFile(editedVit({ "norm.weight": filled([32], NaN) })), flags: ["--heads", "2", "--allow-nonfinite"], code: 0, says: ["warning", "norm.weight", /finite|NaN/] },
  {
    what: "scrambled bytes under a checksum",
    file: "w.safetensors",
    setup: async (at) => {
      await writeSafetensors(at("w.safetensors"), tinyVit());
      const bytes = readFileSync(at("w.safetensors"));
      for (let i = bytes.length - 400; i < bytes.length - 300; i++) bytes[i] ^= 0x5a;
      await write(at("w.safetensors"), bytes);
    },
    says: ["checksum"],
  },
  {
    what: "a valid but edited tensor under a checksum",
    file: "w.safetensors",
    setup: async (at) => {
      await writeSafetensors(at("w.safetensors"), tinyVit());
      const bytes = readFileSync(at("w.safetensors"));
      bytes.writeFloatLE(2.5, bytes.length - 4); // the last tensor's last value, still a fine float
      await write(at("w.safetensors"), bytes);
    },
    says: ["checksum"],
  },
  // Flags and paths.
  { what: "width 32 without --heads: the file states 2", file: "w.safetensors", bytes: tinyBytes, flags: [], code: 0, says: ["2 attention heads", "metadata"] },
  { what: "width 32 stating no head count, without --heads", file: "w.safetensors", bytes: vitFile(tinyVit()), flags: [], code: 2, says: ["--heads", "head count dividing width 32", "got 0.5", "width / 64"] },
  { what: "--heads 3 for width 32", file: "w.safetensors", bytes: vitFile(tinyVit()), flags: ["--heads", "3"], code: 2, says: ["--heads", "head count dividing width 32", "got 3"] },
  { what: "--heads 32 for width 32: head dim 1", file: "w.safetensors", bytes: vitFile(tinyVit()), flags: ["--heads", "32"], code: 2, says: ["--heads", "multiple of 4", "got 32"], extraNever: ['{"imageSize"'] },
  { what: "--heads against the file's metadata", file: "w.safetensors", bytes: tinyBytes, flags: ["--heads", "4"], code: 2, says: ["--heads", "expected 2 heads, as the file's metadata states, got 4"] },
  { what: "--key for a safetensors file", file: "w.safetensors", bytes: tinyBytes, flags: ["--heads", "2", "--key", "teacher"], says: ["expected no key option", "'teacher'"] },
  { what: "an unknown extension", file: "w.ckpt", bytes: tinyBytes, says: ["expected a .safetensors, .pth, .pt or .bin file"] },
  { what: "a missing file", file: "missing.safetensors", says: [/does not exist|no such file|not found/i] },
  { what: "a folder as weights", file: "dir.safetensors", setup: (at) => mkdir(at("dir.safetensors")), says: [/folder|directory/] },
];

const entry = (name: string) => `vit-tiny/${name}`;
const editPth = (f: (e: [string, Uint8Array][]) => [string, Uint8Array][], o = {}) => () => zipFile(f(tinyPth()), o);
const tinyPthBytes = () => readFileSync(join(FIXTURES, "vit-tiny.pth"));
// The fixture with one bit flipped inside an entry's bytes, in place: sizes and offsets stay right.
const flippedPth = (name: string) => () => {
  const b = new Uint8Array(tinyPthBytes());
  const v = new DataView(b.buffer);
  const local = Buffer.from(b).indexOf(entry(name)) - 30; // the first occurrence is the local header's
  b[local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true) + 9] ^= 0x10;
  return b;
};
// An archive holding just this pickle (and the version file torch writes).
const pickleOnly = (pkl: Uint8Array) => () => zipFile([[entry("data.pkl"), pkl], [entry("version"), new TextEncoder().encode("3\n")]]);

const pth: CheckpointCase[] = [
  { what: "random bytes", file: "w.pth", bytes: () => Uint8Array.from({ length: 300 }, (_, i) => (i * 97 + 13) & 0xff), says: ["expected a zip archive"] },
  { what: "an empty .pth", file: "w.pth", bytes: () => new Uint8Array(0), says: ["expected a zip archive"] },
  { what: "the legacy torch.save format", file: "w.pth", bytes: () => pickle(0x7d), says: ["legacy"] },
  { what: "a text file named .pt", file: "w.pt", bytes: () => new TextEncoder().encode("not a checkpoint\n"), says: ["expected a zip archive"] },
  { what: "a zip cut in half", file: "w.pth", bytes: () => tinyPthBytes().subarray(0, tinyPthBytes().length >> 1), says: ["end-of-central-directory", "truncated"] },
  { what: "a zip missing its last 10 bytes", file: "w.pth", bytes: () => tinyPthBytes().subarray(0, tinyPthBytes().length - 10), says: ["end-of-central-directory"] },
  {
    what: "a central directory past the end",
    file: "w.pth",
    bytes: () => {
      const b = new Uint8Array(tinyPthBytes());
      new DataView(b.buffer).setUint32(b.length - 6, b.length + 100, true); // the EOCD's directory offset
      return b;
    },
    says: ["central directory"],
  },
  { what: "no data.pkl", file: "w.pth", bytes: editPth((e) => e.filter(([n]) => !n.endsWith("data.pkl"))), says: ["data.pkl", "got 0"] },
  { what: "two data.pkl", file: "w.pth", bytes: editPth((e) => [...e, ["other/data.pkl", pickle(0x7d)]]), says: ["data.pkl", "got 2"] },
  { what: "a storage entry missing", file: "w.pth", bytes: editPth((e) => e.filter(([n]) => n !== entry("data/0"))), says: ["vit-tiny/data/0", "cls_token"] },
  { what: "a storage shorter than its tensor", file: "w.pth", bytes: editPth((e) => e.map(([n, d]) => [n, n === entry("data/0") ? d.subarray(0, 4) : d])), says: ["storage 0", "expected 128 bytes"] },
  { what: "big-endian byte order", file: "w.pth", bytes: editPth((e) => [...e, [entry("byteorder"), new TextEncoder().encode("big")]]), says: ["byteorder", "'big'"] },
  { what: "compression method 12 (bzip2)", file: "w.pth", bytes: editPth((e) => e, { method: 12 }), says: ["method 12"] },
  { what: "encrypted entries", file: "w.pth", bytes: editPth((e) => e, { flags: 1 }), says: ["encrypted"] },
  { what: "a corrupt deflate stream", file: "w.pth", bytes: () => zipFile([[entry("data.pkl"), Uint8Array.from({ length: 64 }, (_, i) => (i * 31 + 7) & 0xff)]], { method: 8 }), says: ["data.pkl", /inflate|deflate|compressed/] },
  ...[0x49, 0x56, 0x64, 0x69, 0x96].map((op): CheckpointCase => ({
    what: `unsupported pickle opcode 0x${op.toString(16)}`,
    file: "w.pth",
    bytes: pickleOnly(pickle(op, "1\n")),
    says: ["data.pkl", `unsupported pickle opcode 0x${op.toString(16)}`],
  })),
  { what: "a truncated pickle", file: "w.pth", bytes: () => withPickle((p) => p.subarray(0, p.length >> 1)), says: ["data.pkl"] },
  { what: "a pickle of only STOP", file: "w.pth", bytes: pickleOnly(pickle()), says: ["data.pkl", "empty stack"] },
  { what: "a pickle reading a missing memo entry", file: "w.pth", bytes: pickleOnly(pickle(0x68, 9)), says: ["data.pkl", "memo entry 9"] },
  { what: "a list instead of a dict", file: "w.pth", bytes: pickleOnly(pickle(0x5d)), says: ["dict of tensors"] },
  { what: "nested dicts without --key", file: "w.pth", bytes: pickleOnly(pickle(0x7d, 0x8c, 7, "teacher", 0x7d, 0x73)), says: ["nested dicts teacher", "key"] },
  { what: "--key naming no entry", file: "w.pth", bytes: tinyPthBytes, flags: ["--heads", "2", "--key", "teacher"], says: ["expected key 'teacher'"] },
  { what: "an unknown object where a tensor belongs", file: "w.pth", bytes: pickleOnly(pickle(0x7d, 0x8c, 4, "args", 0x63, "argparse\nNamespace\n", 0x29, 0x52, 0x73)), says: ["entry 'args'", "argparse.Namespace"] },
  { what: "an unknown tensor constructor", file: "w.pth", bytes: () => withPickle((p) => replaceInPickle(p, "_rebuild_tensor_v2", "_rebuild_sparse_tensor")), says: ["cls_token", "_rebuild_sparse_tensor"] },
  { what: "an unsupported storage type", file: "w.pth", bytes: () => withPickle((p) => replaceInPickle(p, "FloatStorage", "ComplexFloatStorage")), says: ["cls_token", "unsupported storage type torch.ComplexFloatStorage"] },
  {
    what: "a NaN tensor in a .pth",
    file: "w.pth",
    bytes: editPth((e) => e.map(([n, d]) => [n, n === entry("data/0") ? new Uint8Array(new Float32Array(32).fill(NaN).buffer) : d])),
    says: ["cls_token", /finite|NaN/],
  },
  { what: "a missing .bin", file: "missing.bin", says: [/does not exist|no such file|not found/i] },
  // torch writes entries uncompressed: only the CRC-32 the zip directory records shows a damaged byte.
  { what: "a flipped bit in a storage", file: "w.pth", bytes: flippedPth("data/12"), says: ["vit-tiny/data/12", "CRC-32", "damaged"] },
  { what: "a flipped bit in the pickle", file: "w.pth", bytes: flippedPth("data.pkl"), says: ["vit-tiny/data.pkl", "CRC-32", "damaged"] },
];

describe("safetensors checkpoints through features", () => runCases(root, safetensors.map(featuresCase)));
describe(".pth checkpoints through features", () => runCases(root, pth.map(featuresCase)));
