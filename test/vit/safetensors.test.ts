// safetensors read/write: round trips (bit-exact), F16/BF16 decoding of known bit patterns, a file written by
// test/fixtures/generate.py, and every validation error.
import { mkdtempSync, readdirSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CHECKSUM_KEY,
  ChecksumError,
  bf16ToF32,
  f16ToF32,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type F32Tensor,
} from "../../vit/safetensors.js";

const FIXTURES = join(import.meta.dirname, "../fixtures");
const dir = mkdtempSync(join(tmpdir(), "safetensors-test-"));
let fileNo = 0;

function writeBytes(bytes: Uint8Array): string {
  const path = join(dir, `raw-${fileNo++}.safetensors`);
  writeFileSync(path, bytes);
  return path;
}

// A file from a header object and a data section, byte for byte, so that tests control every field.
function rawFile(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): string {
  const h = new TextEncoder().encode(headerText);
  const bytes = new Uint8Array(8 + h.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(h.length), true);
  bytes.set(h, 8);
  bytes.set(data, 8 + h.length);
  return writeBytes(bytes);
}

// 8 bytes claiming a header of n bytes, then 8 more bytes.
function claimHeader(n: bigint): string {
  const bytes = new Uint8Array(16);
  new DataView(bytes.buffer).setBigUint64(0, n, true);
  return writeBytes(bytes);
}

const u16bytes = (bits: number[]) => new Uint8Array(Uint16Array.from(bits).buffer);

// bits -> value, from the IEEE 754 binary16 and bfloat16 definitions.
const F16_CASES: [number, number][] = [
  [0x0000, 0], [0x3c00, 1], [0xc000, -2], [0x3e00, 1.5], [0x3555, 0.333251953125], [0x7bff, 65504],
  [0x0400, 2 ** -14], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x7c00, Infinity], [0xfc00, -Infinity],
];
const BF16_CASES: [number, number][] = [
  [0x0000, 0], [0x3f80, 1], [0xc000, -2], [0x4049, 3.140625], [0x7f7f, 3.3895313892515355e38], [0x0080, 2 ** -126],
  [0x0001, 2 ** -133], [0x7f80, Infinity], [0xff80, -Infinity],
];

describe("round trip", () => {
  const shapes = [[], [0], [3, 0], [1], [7], [2, 3, 5], [1031]];
  it("F32 tensors of every shape, in order, with metadata", async () => {
    const tensors = new Map<string, F32Tensor>();
    shapes.forEach((shape, i) => {
      const n = shape.reduce((a, b) => a * b, 1);
      tensors.set(`t${i}.${shape.join("x")}`, { shape, data: Float32Array.from({ length: n }, (_, j) => Math.sin(j + i) * 10 ** (j % 9 - 4)) });
    });
    const path = join(dir, "round.safetensors");
    await writeSafetensors(path, tensors, { format: "pt", note: "ünïcode" });
    const back = await readSafetensors(path);
    expect(back.metadata).toMatchObject({ format: "pt", note: "ünïcode" });
    expect(back.metadata[CHECKSUM_KEY]).toMatch(/^[0-9a-f]{64}$/);
    expect([...back.tensors.keys()]).toEqual([...tensors.keys()]);
    for (const [name, t] of tensors) {
      expect(back.tensors.get(name)!.shape).toEqual(t.shape);
      expect(back.tensors.get(name)!.data).toEqual(t.data);
    }
    const header = await readSafetensorsHeader(path);
    expect(header.dataStart % 8).toBe(0);
  });
  it("a plain object of tensors and no metadata; overwrites atomically", async () => {
    const sub = mkdtempSync(join(dir, "atomic-"));
    const path = join(sub, "a.safetensors");
    await writeSafetensors(path, { a: { shape: [2], data: new Float32Array([1, 2]) } });
    await writeSafetensors(path, { b: { shape: [1, 1], data: new Float32Array([-0]) } });
    const back = await readSafetensors(path);
    expect(Object.keys(back.metadata)).toEqual([CHECKSUM_KEY]);
    expect([...back.tensors.keys()]).toEqual(["b"]);
    expect(Object.is(back.tensors.get("b")!.data[0], -0)).toBe(true);
    expect(readdirSync(sub)).toEqual(["a.safetensors"]);
  });
  it("an empty file (no tensors)", async () => {
    const path = join(dir, "empty.safetensors");
    await writeSafetensors(path, {});
    expect((await readSafetensors(path)).tensors.size).toBe(0);
  });
});

describe("checksum", () => {
  const write = async (name: string) => {
    const path = join(dir, name);
    await writeSafetensors(path, { a: { shape: [3], data: new Float32Array([1, 2, 3]) }, b: { shape: [2], data: new Float32Array([4, 5]) } });
    return path;
  };

  it("a damaged byte of a tensor is a ChecksumError naming the file", async () => {
    const path = await write("damaged.safetensors");
    const bytes = readFileSync(path);
    bytes[bytes.length - 3] ^= 0x40; // inside tensor b
    writeFileSync(path, bytes);
    const e = await readSafetensors(path).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ChecksumError);
    expect((e as Error).message).toContain(path);
    expect((e as Error).message).toContain(CHECKSUM_KEY);
    await expect(readSafetensorsHeader(path)).resolves.toBeDefined(); // the header alone is still readable
  });

  it("an edited tensor under the old header (a valid file otherwise) is caught the same way", async () => {
    const path = await write("edited.safetensors");
    const bytes = readFileSync(path);
    new Float32Array(bytes.buffer, bytes.byteOffset + bytes.length - 20, 5).set([1, 2, 3, 4, 6]);
    writeFileSync(path, bytes);
    await expect(readSafetensors(path)).rejects.toThrow(ChecksumError);
  });

  it("a file without a checksum (written elsewhere) is read as it is", async () => {
    const path = rawFile({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(new Float32Array([7]).buffer));
    expect((await readSafetensors(path)).tensors.get("a")!.data).toEqual(new Float32Array([7]));
  });
});

describe("F16 and BF16", () => {
  it("scalar decoders match known bit patterns", () => {
    for (const [bits, want] of F16_CASES) expect(f16ToF32(bits), `f16 0x${bits.toString(16)}`).toBe(want);
    for (const [bits, want] of BF16_CASES) expect(bf16ToF32(bits), `bf16 0x${bits.toString(16)}`).toBe(Math.fround(want));
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(bf16ToF32(0x7fc0)).toBeNaN();
  });
  it("files with F16 and BF16 tensors read into Float32Array", async () => {
    const f16 = F16_CASES.map((c) => c[0]);
    const bf16 = BF16_CASES.map((c) => c[0]);
    const data = new Uint8Array([...u16bytes(f16), ...u16bytes(bf16), ...new Uint8Array(new Float32Array([7.25]).buffer)]);
    const path = rawFile(
      {
        h: { dtype: "F16", shape: [f16.length], data_offsets: [0, 2 * f16.length] },
        b: { dtype: "BF16", shape: [bf16.length], data_offsets: [2 * f16.length, 2 * (f16.length + bf16.length)] },
        f: { dtype: "F32", shape: [], data_offsets: [2 * (f16.length + bf16.length), 2 * (f16.length + bf16.length) + 4] },
      },
      data,
    );
    const { tensors } = await readSafetensors(path);
    expect(Array.from(tensors.get("h")!.data)).toEqual(F16_CASES.map((c) => c[1]));
    expect(Array.from(tensors.get("b")!.data)).toEqual(BF16_CASES.map((c) => Math.fround(c[1])));
    expect(tensors.get("f")).toEqual({ shape: [], data: new Float32Array([7.25]) });
  });
});

describe("a file written by generate.py", () => {
  it("vit-tiny.safetensors has the tiny ViT's tensors and metadata", async () => {
    const { tensors, metadata } = await readSafetensors(join(FIXTURES, "vit-tiny.safetensors"));
    expect(metadata.width).toBe("32");
    expect(tensors.get("cls_token")!.shape).toEqual([1, 1, 32]);
    expect(tensors.get("blocks.1.attn.qkv.weight")!.shape).toEqual([96, 32]);
    expect(tensors.get("head.weight")!.shape).toEqual([5, 32]);
    // LayerNorm weights were drawn around 1 (std 0.1): a decoding error would not land there.
    const ln = tensors.get("norm.weight")!.data;
    expect(Math.max(...ln.map((v) => Math.abs(v - 1)))).toBeLessThan(0.5);
    expect(Math.max(...ln.map((v) => Math.abs(v - 1)))).toBeGreaterThan(0.01);
  });
});

describe("errors name the file and the tensor", () => {
  const f32 = (n: number) => ({ dtype: "F32", shape: [n], data_offsets: [0, 4 * n] });
  const eight = new Uint8Array(8);
  const cases: [string, () => string, string][] = [
    ["shorter than 8 bytes", () => writeBytes(new Uint8Array(5)), "expected at least 8 bytes, got 5"],
    ["header length past the end", () => claimHeader(1000n), "expected a header length of at most 8, got 1000"],
    ["header length garbage", () => claimHeader(2n ** 63n), "expected a header length of at most 8, got 9223372036854775808"],
    ["invalid JSON", () => rawFile(null, eight, "{not json"), "expected a JSON header, got a parse error"],
    ["header not an object", () => rawFile([1], new Uint8Array(0)), "expected the header to be a JSON object"],
    ["unknown dtype", () => rawFile({ a: { dtype: "F33", shape: [2], data_offsets: [0, 8] } }, eight), "tensor 'a': expected a known dtype, got \"F33\""],
    ["unsupported dtype", () => rawFile({ ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, eight), "tensor 'ids': expected dtype F32, F16 or BF16, got I64"],
    ["bad shape", () => rawFile({ a: { dtype: "F32", shape: [2, -1], data_offsets: [0, 8] } }, eight), "tensor 'a': expected a shape of non-negative integers, got [2,-1]"],
    ["bad offsets", () => rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [8, 0] } }, eight), "tensor 'a': expected data_offsets [begin, end] with 0 <= begin <= end, got [8,0]"],
    ["size mismatch", () => rawFile({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, eight), "tensor 'a': expected 12 bytes for F32 (3), got data_offsets spanning 8"],
    ["offsets out of range", () => rawFile({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, eight), "expected the tensors to fill the 8-byte data section, got 16 bytes (offsets out of range)"],
    ["a gap", () => rawFile({ a: f32(1), b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, new Uint8Array(12)), "tensor 'b': expected data to start at 4 (contiguous, no overlap), got 8"],
    ["an overlap", () => rawFile({ a: f32(2), b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, eight), "tensor 'b': expected data to start at 8 (contiguous, no overlap), got 4"],
    ["trailing bytes", () => rawFile({ a: f32(1) }, eight), "expected the tensors to fill the 8-byte data section, got 4 bytes"],
    ["non-string metadata", () => rawFile({ __metadata__: { epoch: 3 }, a: f32(2) }, eight), "expected __metadata__.epoch to be a string, got 3"],
  ];
  for (const [what, make, message] of cases) {
    it(what, async () => {
      const path = make();
      await expect(readSafetensors(path)).rejects.toThrow(`safetensors: ${path}: ${message}`);
    });
  }
  it("writer checks names, types and sizes", async () => {
    const p = join(dir, "w.safetensors");
    await expect(writeSafetensors(p, { a: { shape: [2, 3], data: new Float32Array(5) } })).rejects.toThrow("safetensors: tensor 'a': expected 6 values for (2, 3), got 5");
    await expect(writeSafetensors(p, { __metadata__: { shape: [1], data: new Float32Array(1) } })).rejects.toThrow("safetensors: expected tensor names other than __metadata__");
    await expect(writeSafetensors(p, { a: { shape: [1], data: new Float64Array(1) as unknown as Float32Array } })).rejects.toThrow("safetensors: tensor 'a': expected a Float32Array");
    await expect(writeSafetensors(p, { a: { shape: [-1], data: new Float32Array(0) } })).rejects.toThrow("safetensors: tensor 'a': expected a shape of non-negative integers, got (-1)");
  });
});
