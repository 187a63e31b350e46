// torch.save reader: the fixtures written by torch 1.13 (generate.py) must equal their safetensors twins bit for
// bit; views (transposed, offset, strided, expanded), Half/BFloat16/Double/Long/Int storages, nn.Parameter, a
// deflated archive with another folder name, DINO's wrapped full checkpoint; and every error, on archives and
// pickles built byte by byte here.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readPth, type PthTensor } from "../../vit/pth.js";
import { readSafetensors } from "../../vit/safetensors.js";
import { zipFile as zip } from "../bad-input/files.js";

const FIXTURES = join(import.meta.dirname, "../fixtures");
const fixture = (name: string) => join(FIXTURES, name);
const dir = mkdtempSync(join(tmpdir(), "pth-test-"));
let fileNo = 0;

const bits = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
// Bit-for-bit equality (vitest's deep toEqual walks typed arrays element by element, far too slowly).
const sameBits = (a: ArrayBufferView, b: ArrayBufferView) => Buffer.compare(bits(a), bits(b)) === 0;
function f32(t: PthTensor | undefined): Float32Array {
  if (t?.dtype !== "f32") throw new Error(`expected an f32 tensor, got ${t?.dtype}`);
  return t.data;
}

// ---- a pickle assembler (protocol 2, the opcodes torch.save emits); archives from bad-input/files.ts's zip writer

type Op = number[];
const latin1 = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const str = (s: string): Op => [0x8c, s.length, ...latin1(s)]; // SHORT_BINUNICODE (ASCII here)
const int = (n: number): Op => (n >= 0 && n < 256 ? [0x4b, n] : [0x4a, ...new Uint8Array(new Int32Array([n]).buffer)]);
const global = (module: string, name: string): Op => [0x63, ...latin1(`${module}\n${name}\n`)];
const tuple = (items: Op[]): Op => [0x28, ...items.flat(), 0x74];
const dict = (entries: [string, Op][]): Op => [0x7d, 0x28, ...entries.flatMap(([k, v]) => [...str(k), ...v]), 0x75];
const pickle = (obj: Op) => new Uint8Array([0x80, 2, ...obj, 0x2e]);
function tensor(key: string, type: string, numel: number, offset: number, size: number[], stride: number[]): Op {
  const storage = [...tuple([str("storage"), global("torch", type), str(key), str("cpu"), int(numel)]), 0x51];
  const hooks = [...global("collections", "OrderedDict"), 0x29, 0x52];
  return [...global("torch._utils", "_rebuild_tensor_v2"), ...tuple([storage, int(offset), tuple(size.map(int)), tuple(stride.map(int)), [0x89], hooks]), 0x52];
}

function writeFile(bytes: Uint8Array): string {
  const path = join(dir, `f${fileNo++}.pth`);
  writeFileSync(path, bytes);
  return path;
}

// An archive `t/data.pkl` + storages, as torch lays it out.
const archive = (pkl: Uint8Array, storages: [string, Uint8Array][] = []) =>
  writeFile(zip([["t/data.pkl", pkl], ...storages.map(([k, d]): [string, Uint8Array] => [`t/data/${k}`, d]), ["t/version", new TextEncoder().encode("3\n")]]));
const floats = (...v: number[]) => bits(new Float32Array(v));

describe("fixtures written by torch.save", () => {
  it("vit-tiny.pth equals vit-tiny.safetensors bit for bit, in the same order", async () => {
    const pth = await readPth(fixture("vit-tiny.pth"));
    const { tensors } = await readSafetensors(fixture("vit-tiny.safetensors"));
    expect([...pth.keys()]).toEqual([...tensors.keys()]);
    for (const [k, t] of tensors) {
      const p = pth.get(k)!;
      expect(p.dtype, k).toBe("f32");
      expect(p.shape, k).toEqual(t.shape);
      expect(sameBits(p.data, t.data), k).toBe(true);
    }
  });

  it("DINO's full checkpoint: pick 'teacher' (module.backbone. keys) beside an argparse.Namespace", async () => {
    const { tensors } = await readSafetensors(fixture("vit-tiny.safetensors"));
    for (const key of ["teacher", "student"]) {
      const pth = await readPth(fixture("vit-tiny-full.pth"), { key });
      const body = [...tensors.keys()].filter((k) => !k.startsWith("head."));
      expect([...pth.keys()]).toEqual([...body.map((k) => `module.backbone.${k}`), "module.head.mlp.0.weight", "module.head.last_layer.weight_g"]);
      for (const k of body) expect(sameBits(pth.get(`module.backbone.${k}`)!.data, tensors.get(k)!.data), k).toBe(true);
    }
  });

  it("views, offsets, strides and every storage type equal torch's own .float().contiguous()", async () => {
    const pth = await readPth(fixture("pth-special.pth"));
    const { tensors: want } = await readSafetensors(fixture("pth-special.safetensors"));
    expect([...pth.keys()]).toEqual([...want.keys()]);
    const shapes: Record<string, number[]> = {
      transposed: [5, 3], prefix: [6], offset: [3, 4], strided: [4, 3], expanded: [3, 4], half: [2, 3], bfloat16: [2, 3],
      double: [3], long: [4], int: [3], scalar: [], empty: [0, 3], param: [2],
    };
    for (const [k, w] of want) {
      const p = pth.get(k)!;
      expect(p.shape, k).toEqual(shapes[k]);
      expect(p.shape, k).toEqual(w.shape);
      expect(p.dtype, k).toBe(k === "long" ? "i64" : k === "int" ? "i32" : "f32");
      if (p.dtype === "f32") expect(sameBits(p.data, w.data), k).toBe(true);
      else expect(Array.from(p.data, Number), k).toEqual(Array.from(w.data));
    }
    // Independent of the twin file: base = arange(24) * 0.5 - 3, 'offset' = base[7:19], 'prefix' = base[:6].
    expect(Array.from(f32(pth.get("offset")))).toEqual(Array.from({ length: 12 }, (_, i) => (i + 7) * 0.5 - 3));
    expect(Array.from(f32(pth.get("prefix")))).toEqual(Array.from({ length: 6 }, (_, i) => i * 0.5 - 3));
    expect(Array.from(pth.get("long")!.data as BigInt64Array)).toEqual([0n, -1n, 2n ** 40n, 5n]);
    expect(pth.get("int")!.data).toEqual(new Int32Array([1, -2, 3]));
    const ex = pth.get("expanded")!.data; // (3, 1) expanded to (3, 4): stride 0
    for (let r = 0; r < 3; r++) for (let c = 1; c < 4; c++) expect(ex[r * 4 + c]).toBe(ex[r * 4]);
  });

  it("a deflated archive with another folder name reads the same", async () => {
    const stored = await readPth(fixture("pth-special.pth"));
    const deflated = await readPth(fixture("pth-special-deflate.pth"));
    expect([...deflated.keys()]).toEqual([...stored.keys()]);
    for (const [k, t] of stored) expect(sameBits(deflated.get(k)!.data, t.data), k).toBe(true);
  });
});

describe("hand-built archives", () => {
  it("a plain dict with a strided tensor and a storage offset, skipping plain values", async () => {
    // storage 0..11; w = storage[2:].view(2, 5) read with stride (1, 2) as shape (2, 3)
    const pkl = pickle(dict([["w", tensor("0", "FloatStorage", 12, 2, [2, 3], [1, 2])], ["epoch", int(7)], ["name", str("x")], ["none", [0x4e]]]));
    const out = await readPth(archive(pkl, [["0", floats(...Array.from({ length: 12 }, (_, i) => i))]]));
    expect([...out.keys()]).toEqual(["w"]);
    expect(out.get("w")!.shape).toEqual([2, 3]);
    expect(Array.from(f32(out.get("w")))).toEqual([2, 4, 6, 3, 5, 7]);
  });
});

// The archive with one bit flipped inside the first occurrence of `inside`: sizes and offsets stay right, the
// CRC-32 its directory records does not.
function flipped(archive: Uint8Array, inside: ArrayLike<number>): Uint8Array {
  const b = new Uint8Array(archive);
  b[Buffer.from(b).indexOf(Buffer.from(Uint8Array.from(inside))) + 1] ^= 1;
  return b;
}

describe("errors name the file and the thing", () => {
  const goodPkl = () => pickle(dict([["w", tensor("0", "FloatStorage", 2, 0, [2], [1])]]));
  const cases: [string, () => string, string][] = [
    ["legacy format", () => writeFile(new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8])), "expected a zip archive (torch >= 1.6), got the legacy non-zip torch.save format"],
    ["not a zip", () => writeFile(new TextEncoder().encode("hello")), "expected a zip archive written by torch.save, got another file type"],
    ["truncated", () => writeFile(readFileSync(fixture("vit-tiny.pth")).subarray(0, 60000)), "expected a zip end-of-central-directory record, got none (truncated file?)"],
    ["zip64", () => {
      const b = new Uint8Array(readFileSync(fixture("vit-tiny.pth")));
      new DataView(b.buffer).setUint32(b.length - 22 + 16, 0xffffffff, true); // central directory offset
      return writeFile(b);
    }, "expected a zip under 4 GB, got a zip64 archive (not supported)"],
    ["no data.pkl", () => writeFile(zip([["t/constants.pkl", pickle([0x4e])]])), "expected one <folder>/data.pkl in the archive, got 0 (is this a TorchScript file?)"],
    ["unknown GLOBAL", () => archive(pickle(dict([["w", [...global("os", "system"), ...tuple([str("ls")]), 0x52]]]))), "entry 'w': expected a tensor, got an object of unsupported GLOBAL os.system"],
    ["unsupported storage type", () => archive(pickle(dict([["mask", tensor("0", "ByteStorage", 2, 0, [2], [1])]])), [["0", new Uint8Array(2)]]), "tensor 'mask': unsupported storage type torch.ByteStorage"],
    ["unsupported opcode", () => archive(pickle([0x49, ...latin1("3\n")])), "data.pkl: unsupported pickle opcode 0x49 (at byte 2)"],
    ["truncated pickle", () => archive(new Uint8Array([0x80, 2, 0x8c, 9, 0x61])), "data.pkl: expected more bytes, got the end of the pickle"],
    ["missing storage", () => archive(goodPkl()), "tensor 'w': expected archive entry t/data/0, got none"],
    ["short storage", () => archive(goodPkl(), [["0", floats(1)]]), "storage 0: expected 8 bytes for 2 elements of torch.FloatStorage, got 4"],
    ["view past the storage", () => archive(pickle(dict([["w", tensor("0", "FloatStorage", 2, 1, [2], [1])]])), [["0", floats(1, 2)]]), "tensor 'w': expected offset 1, size (2), stride (1) within a storage of 2 elements"],
    ["big-endian archive", () => writeFile(zip([["t/data.pkl", goodPkl()], ["t/byteorder", new TextEncoder().encode("big")], ["t/data/0", floats(1, 2)]])), "expected byteorder 'little', got 'big'"],
    ["nested dicts without a key", () => writeFile(readFileSync(fixture("vit-tiny-full.pth"))), "expected the top-level object to be a flat state_dict, got nested dicts student, teacher; pick one with the key option"],
    ["a flipped bit in a storage", () => writeFile(flipped(zip([["t/data.pkl", goodPkl()], ["t/data/0", floats(1, 2)]]), floats(1, 2))), "entry 't/data/0' (tensor 'w'): expected CRC-32 "],
    ["a flipped bit in the pickle", () => writeFile(flipped(zip([["t/data.pkl", goodPkl()], ["t/data/0", floats(1, 2)]]), str("storage"))), "entry 't/data.pkl': expected CRC-32 "],
    ["a deflated entry that inflates to other bytes than recorded", () => {
      const b = new Uint8Array(readFileSync(fixture("pth-special-deflate.pth")));
      const name = "renamed-folder/data.pkl";
      const cd = Buffer.from(b).lastIndexOf(name) - 46; // its central directory record
      new DataView(b.buffer).setUint32(cd + 16, 0x12345678, true); // the CRC-32 field
      return writeFile(b);
    }, "entry 'renamed-folder/data.pkl': expected CRC-32 12345678 as the zip directory records, got "],
  ];
  for (const [what, make, message] of cases) {
    it(what, async () => {
      const path = make();
      await expect(readPth(path)).rejects.toThrow(`pth: ${path}: ${message}`);
    });
  }
  it("a missing or non-dict key", async () => {
    const path = fixture("vit-tiny-full.pth");
    await expect(readPth(path, { key: "model" })).rejects.toThrow(`pth: ${path}: expected key 'model' in the top-level dict, got keys student, teacher, epoch, args`);
    await expect(readPth(path, { key: "epoch" })).rejects.toThrow(`pth: ${path}: expected 'epoch' to be a dict of tensors, got number`);
    await expect(readPth(path, { key: "args" })).rejects.toThrow(`pth: ${path}: expected 'args' to be a dict of tensors, got an object of unsupported GLOBAL argparse.Namespace`);
  });
});
