// PyTorch checkpoints written by torch.save (the zip format of torch >= 1.6), read without Python.
//
// A .pth is a zip archive `<folder>/data.pkl`, `<folder>/data/<key>`, `<folder>/version` (the folder is the file
// stem in torch 1.13, "archive" in torch 2; torch writes entries uncompressed and 64-byte aligned). data.pkl is a
// pickle of the saved object (usually an OrderedDict state_dict, or a dict of them); each tensor in it is
//   torch._utils._rebuild_tensor_v2(persistent_id(('storage', torch.FloatStorage, key, location, numel)),
//                                    storage_offset, size, stride, requires_grad, backward_hooks)
// and the storage bytes live in `data/<key>`. The pickle VM below builds plain values and lazy tensor
// references; only the tensors of the chosen dictionary are then read, one storage at a time, from the file.
// Nothing in the pickle is executed: an unknown GLOBAL becomes an opaque placeholder, an error only if it sits
// where a tensor is asked for (DINO's full checkpoints hold an argparse.Namespace beside 'teacher').
import { open, type FileHandle } from "node:fs/promises";
import { crc32, inflateRawSync } from "node:zlib";
import { decodeBF16, decodeF16, readExactly } from "./safetensors.js";

export type PthTensor =
  | { dtype: "f32"; shape: number[]; data: Float32Array } // from Float, Half, BFloat16 and Double storages
  | { dtype: "i32"; shape: number[]; data: Int32Array } // IntStorage
  | { dtype: "i64"; shape: number[]; data: BigInt64Array }; // LongStorage

export interface ReadPthOptions {
  key?: string; // the sub-dictionary holding the state_dict, e.g. 'teacher' in DINO's full checkpoints
  shapesOnly?: boolean; // every tensor with its dtype and shape but empty data: the pickle alone, no storage read
}

// ---- zip ----

interface ZipEntry {
  name: string;
  method: number; // 0 stored, 8 deflate
  compressedSize: number;
  size: number;
  crc: number; // CRC-32 of the uncompressed bytes
  localOffset: number; // of the local file header
}

const EOCD_SIG = 0x06054b50;
const CDIR_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;

async function readZipDirectory(fh: FileHandle, path: string): Promise<Map<string, ZipEntry>> {
  const fail = (what: string) => new Error(`pth: ${path}: ${what}`);
  const { size } = await fh.stat();
  const head = new Uint8Array(Math.min(size, 4));
  await readExactly(fh, head, 0, `pth: ${path}`);
  if (!(head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 && head[3] === 4)) {
    if (head[0] === 0x80) throw fail("expected a zip archive (torch >= 1.6), got the legacy non-zip torch.save format; re-save it with a newer torch");
    throw fail("expected a zip archive written by torch.save, got another file type");
  }
  // The end-of-central-directory record is the last 22 bytes, before a comment of at most 65535 bytes.
  const tailLen = Math.min(size, 22 + 65535);
  const tail = new Uint8Array(tailLen);
  await readExactly(fh, tail, size - tailLen, `pth: ${path}`);
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw fail("expected a zip end-of-central-directory record, got none (truncated file?)");
  const count = tv.getUint16(eocd + 10, true);
  const cdSize = tv.getUint32(eocd + 12, true);
  const cdOffset = tv.getUint32(eocd + 16, true);
  // torch also writes zip64 records, but for files under 4 GB the classic fields hold the real values; the
  // 0xFFFF.. sentinels mean they do not, which only happens past 4 GB or 65535 entries.
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) throw fail("expected a zip under 4 GB, got a zip64 archive (not supported)");
  if (cdOffset + cdSize > size) throw fail(`expected the central directory within the ${size}-byte file, got offset ${cdOffset} + ${cdSize}`);

  const cd = new Uint8Array(cdSize);
  await readExactly(fh, cd, cdOffset, `pth: ${path}`);
  const v = new DataView(cd.buffer);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || v.getUint32(p, true) !== CDIR_SIG) throw fail(`expected central directory entry ${i} at offset ${cdOffset + p}, got garbage`);
    const flags = v.getUint16(p + 8, true);
    const method = v.getUint16(p + 10, true);
    const crc = v.getUint32(p + 16, true);
    const compressedSize = v.getUint32(p + 20, true);
    const entrySize = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    const localOffset = v.getUint32(p + 42, true);
    const name = new TextDecoder().decode(cd.subarray(p + 46, p + 46 + nameLen));
    if (compressedSize === 0xffffffff || entrySize === 0xffffffff || localOffset === 0xffffffff) {
      throw fail(`entry '${name}': expected a zip under 4 GB, got zip64 sizes (not supported)`);
    }
    if (flags & 1) throw fail(`entry '${name}': expected an unencrypted entry, got an encrypted one`);
    if (method !== 0 && method !== 8) throw fail(`entry '${name}': expected compression stored (0) or deflate (8), got method ${method}`);
    entries.set(name, { name, method, compressedSize, size: entrySize, crc, localOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

// The entry's uncompressed bytes, in a fresh buffer (offset 0, so any typed array can view it), checked against the
// CRC-32 the zip directory records. `tensors`: the names of the tensors a storage entry holds, for errors.
async function readZipEntry(fh: FileHandle, e: ZipEntry, path: string, tensors: string[] = []): Promise<Uint8Array> {
  const what = `pth: ${path}: entry '${e.name}'${tensors.length ? ` (tensor${tensors.length > 1 ? "s" : ""} ${tensors.map((t) => `'${t}'`).join(", ")})` : ""}`;
  const local = new Uint8Array(30);
  await readExactly(fh, local, e.localOffset, what);
  const lv = new DataView(local.buffer);
  if (lv.getUint32(0, true) !== LOCAL_SIG) throw new Error(`${what}: expected a local file header at offset ${e.localOffset}, got garbage`);
  // The local header's name and extra field (torch pads it for alignment) may differ from the central directory's.
  const start = e.localOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
  const raw = new Uint8Array(e.compressedSize);
  await readExactly(fh, raw, start, what);
  let out = raw;
  if (e.method === 8) {
    try {
      out = new Uint8Array(inflateRawSync(raw));
    } catch (err) {
      throw new Error(`${what}: expected a valid deflate stream, got: ${(err as Error).message}`);
    }
  }
  if (out.length !== e.size) throw new Error(`${what}: expected ${e.size} bytes${e.method === 8 ? " after inflating" : ""}, got ${out.length}`);
  // torch writes entries uncompressed, so nothing else would notice a flipped bit in a weight.
  const crc = crc32(out);
  if (crc !== e.crc) throw new Error(`${what}: expected CRC-32 ${hex(e.crc)} as the zip directory records, got ${hex(crc)}: the file is damaged`);
  return out;
}

const hex = (n: number) => n.toString(16).padStart(8, "0");

// ---- pickle ----

class PyGlobal {
  constructor(readonly path: string) {} // "module.name"
}

// An instance of a class we do not know; kept so that unrelated parts of a checkpoint do not stop the load.
class Opaque {
  constructor(readonly path: string) {}
}

interface StorageRef {
  kind: "storage";
  key: string; // entry data/<key>
  type: string; // e.g. torch.FloatStorage
  numel: number;
}

interface TensorRef {
  kind: "tensor";
  storage: StorageRef;
  offset: number; // in elements
  size: number[];
  stride: number[]; // in elements
}

const isTensor = (v: unknown): v is TensorRef => typeof v === "object" && v !== null && (v as TensorRef).kind === "tensor";
const isStorage = (v: unknown): v is StorageRef => typeof v === "object" && v !== null && (v as StorageRef).kind === "storage";
const isInts = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);

function rebuildTensor(args: unknown[], file: string): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!isStorage(storage) || !Number.isSafeInteger(offset) || !isInts(size) || !isInts(stride) || size.length !== stride.length) {
    throw new Error(`pth: ${file}: expected _rebuild_tensor_v2(storage, offset, size, stride, ...), got other arguments`);
  }
  return { kind: "tensor", storage, offset: offset as number, size, stride };
}

// Callables a state_dict pickle uses; anything else yields an Opaque.
const CALLABLES: Record<string, (args: unknown[], file: string) => unknown> = {
  "collections.OrderedDict": () => new Map(),
  "builtins.dict": () => new Map(),
  "torch._utils._rebuild_tensor": rebuildTensor,
  "torch._utils._rebuild_tensor_v2": rebuildTensor,
  "torch._utils._rebuild_parameter": (args) => args[0], // nn.Parameter(data, requires_grad, hooks) -> data
  "torch._utils._rebuild_parameter_with_state": (args) => args[0],
};

const MARK = Symbol("mark");

// Runs the pickle program and returns the unpickled object: dicts are Maps, tuples and lists arrays, Python
// ints numbers (bigint past 2^53), tensors TensorRefs.
function unpickle(bytes: Uint8Array, file: string): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  const fail = (what: string) => new Error(`pth: ${file}: data.pkl: ${what} (at byte ${pos})`);
  const need = (n: number) => {
    if (pos + n > bytes.length) throw fail("expected more bytes, got the end of the pickle");
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = () => (need(8), (pos += 8), Number(view.getBigUint64(pos - 8, true)));
  const take = (n: number) => (need(n), (pos += n), bytes.subarray(pos - n, pos));
  const utf8 = (n: number) => new TextDecoder().decode(take(n));
  const latin1 = (n: number) => new TextDecoder("latin1").decode(take(n));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw fail("expected a newline-terminated name");
    const s = latin1(end - pos);
    pos++;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) throw fail("expected a value on the stack, got an empty stack");
    return stack.pop();
  };
  const popMark = () => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw fail("expected a MARK on the stack");
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const top = () => stack[stack.length - 1];
  const long = (n: number) => {
    // little-endian two's complement
    let v = 0n;
    const b = take(n);
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const call = (fn: unknown, args: unknown): unknown => {
    if (fn instanceof Opaque) return fn;
    if (!(fn instanceof PyGlobal)) throw fail("expected a class or function to call, got a plain value");
    const impl = CALLABLES[fn.path];
    return impl ? impl(Array.isArray(args) ? args : [], file) : new Opaque(fn.path);
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) throw fail("expected a dict for SETITEM(S)");
    for (let i = 0; i + 1 < items.length; i += 2) dict.set(items[i], items[i + 1]);
  };
  const append = (list: unknown, items: unknown[]) => {
    if (!Array.isArray(list)) throw fail("expected a list for APPEND(S)");
    list.push(...items);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: a length prefix, irrelevant when the whole pickle is in memory
      case 0x2e: return pop(); // STOP
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x28: stack.push(MARK); break; // MARK
      case 0x58: stack.push(utf8(u32())); break; // BINUNICODE
      case 0x8c: stack.push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8(u64())); break; // BINUNICODE8
      case 0x54: stack.push(latin1(i32())); break; // BINSTRING
      case 0x55: stack.push(latin1(u8())); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(u8())); break; // LONG1
      case 0x8b: stack.push(long(i32())); break; // LONG4
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big endian)
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4e: stack.push(null); break; // NONE
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) throw fail(`expected memo entry ${i}, got none`);
        stack.push(memo.get(i));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(new PyGlobal(`${module}.${line()}`));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        stack.push(new PyGlobal(`${pop()}.${name}`));
        break;
      }
      case 0x52: // REDUCE
      case 0x81: { // NEWOBJ
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x62: pop(); break; // BUILD: instance state (an OrderedDict's _metadata, an Opaque's fields) is not needed
      case 0x51: { // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = pop();
        if (!Array.isArray(pid) || pid[0] !== "storage" || !(pid[1] instanceof PyGlobal) || typeof pid[2] !== "string" || !Number.isSafeInteger(pid[4])) {
          throw fail("expected a persistent id ('storage', type, key, location, numel)");
        }
        stack.push({ kind: "storage", key: pid[2], type: pid[1].path, numel: pid[4] } satisfies StorageRef);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: append(top(), [pop()]); break; // APPEND (pop runs first: the list is below the item)
      case 0x65: { // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      default:
        pos--;
        throw fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")}`);
    }
  }
}

// ---- tensors ----

type Storage = { dtype: "f32"; data: Float32Array } | { dtype: "i32"; data: Int32Array } | { dtype: "i64"; data: BigInt64Array };

const STORAGE_BYTES: Record<string, number> = {
  "torch.FloatStorage": 4, "torch.HalfStorage": 2, "torch.BFloat16Storage": 2,
  "torch.DoubleStorage": 8, "torch.LongStorage": 8, "torch.IntStorage": 4,
};

function decodeStorage(type: string, raw: Uint8Array, numel: number): Storage {
  const buf = raw.buffer;
  switch (type) {
    case "torch.FloatStorage": return { dtype: "f32", data: new Float32Array(buf, 0, numel) };
    case "torch.HalfStorage": return { dtype: "f32", data: decodeF16(new Uint16Array(buf, 0, numel)) };
    case "torch.BFloat16Storage": return { dtype: "f32", data: decodeBF16(new Uint16Array(buf, 0, numel)) };
    case "torch.DoubleStorage": return { dtype: "f32", data: Float32Array.from(new Float64Array(buf, 0, numel)) };
    case "torch.LongStorage": return { dtype: "i64", data: new BigInt64Array(buf, 0, numel) };
    default: return { dtype: "i32", data: new Int32Array(buf, 0, numel) }; // torch.IntStorage
  }
}

// The tensor's elements in C order: a view of the storage at (offset, size, stride), gathered when strided.
function materialise(t: TensorRef, s: Storage, soleUser: boolean, name: string, file: string): PthTensor {
  const n = t.size.reduce((a, b) => a * b, 1);
  const last = t.offset + t.size.reduce((acc, d, i) => acc + (d > 0 ? (d - 1) * t.stride[i] : 0), 0);
  if (n > 0 && (t.offset < 0 || last >= s.data.length)) {
    const view = `offset ${t.offset}, size (${t.size.join(", ")}), stride (${t.stride.join(", ")})`;
    throw new Error(`pth: ${file}: tensor '${name}': expected ${view} within a storage of ${s.data.length} elements`);
  }
  let contiguous = true;
  for (let d = t.size.length - 1, expect = 1; d >= 0; d--) {
    if (t.size[d] !== 1 && t.stride[d] !== expect) contiguous = false;
    expect *= t.size[d];
  }
  const shape = [...t.size];
  const pick = <A extends Float32Array | Int32Array | BigInt64Array>(src: A): A => {
    if (contiguous) return (soleUser && t.offset === 0 && n === src.length ? src : src.slice(t.offset, t.offset + n)) as A;
    const out = new (src.constructor as new (n: number) => A)(n);
    const idx = new Array<number>(shape.length).fill(0);
    let p = t.offset;
    for (let i = 0; i < n; i++) {
      out[i] = src[p];
      for (let d = shape.length - 1; d >= 0; d--) {
        p += t.stride[d];
        if (++idx[d] < shape[d]) break;
        p -= t.stride[d] * shape[d];
        idx[d] = 0;
      }
    }
    return out;
  };
  if (s.dtype === "f32") return { dtype: "f32", shape, data: pick(s.data) };
  if (s.dtype === "i32") return { dtype: "i32", shape, data: pick(s.data) };
  return { dtype: "i64", shape, data: pick(s.data) };
}

function describe(v: unknown): string {
  if (v instanceof Map) return "a dict";
  if (v instanceof Opaque) return `an object of unsupported GLOBAL ${v.path}`;
  if (isStorage(v)) return "a bare storage";
  return v === null ? "None" : typeof v;
}

// A tensor's dtype and shape, its data left empty.
function shapeOnly(t: TensorRef): PthTensor {
  const shape = [...t.size];
  if (t.storage.type === "torch.LongStorage") return { dtype: "i64", shape, data: new BigInt64Array(0) };
  if (t.storage.type === "torch.IntStorage") return { dtype: "i32", shape, data: new Int32Array(0) };
  return { dtype: "f32", shape, data: new Float32Array(0) };
}

// Reads the tensors of a torch.save'd state_dict: the top-level dict, or the sub-dictionary opts.key.
// Plain Python values in it (ints, strings, None) are skipped; nested dicts and unknown objects are errors.
export async function readPth(path: string, opts: ReadPthOptions = {}): Promise<Map<string, PthTensor>> {
  const fh = await open(path, "r");
  try {
    const entries = await readZipDirectory(fh, path);
    const pkls = [...entries.keys()].filter((n) => n === "data.pkl" || /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) throw new Error(`pth: ${path}: expected one <folder>/data.pkl in the archive, got ${pkls.length} (is this a TorchScript file?)`);
    const prefix = pkls[0].slice(0, -"data.pkl".length);
    const order = entries.get(`${prefix}byteorder`);
    if (order) {
      const bo = new TextDecoder().decode(await readZipEntry(fh, order, path));
      if (bo !== "little") throw new Error(`pth: ${path}: expected byteorder 'little', got '${bo}'`);
    }
    let root = unpickle(await readZipEntry(fh, entries.get(pkls[0])!, path), path);

    if (opts.key !== undefined) {
      if (!(root instanceof Map) || !root.has(opts.key)) {
        const keys = root instanceof Map ? [...root.keys()].join(", ") : describe(root);
        throw new Error(`pth: ${path}: expected key '${opts.key}' in the top-level dict, got keys ${keys}`);
      }
      root = root.get(opts.key);
    }
    const where = opts.key === undefined ? "the top-level object" : `'${opts.key}'`;
    if (!(root instanceof Map)) throw new Error(`pth: ${path}: expected ${where} to be a dict of tensors, got ${describe(root)}`);
    const nested = [...root].filter(([, v]) => v instanceof Map).map(([k]) => String(k));
    if (nested.length > 0) throw new Error(`pth: ${path}: expected ${where} to be a flat state_dict, got nested dicts ${nested.join(", ")}; pick one with the key option`);

    const refs: [string, TensorRef][] = [];
    for (const [k, v] of root) {
      if (isTensor(v)) refs.push([String(k), v]);
      else if (v instanceof Opaque || isStorage(v)) throw new Error(`pth: ${path}: entry '${String(k)}': expected a tensor, got ${describe(v)}`);
    }
    if (opts.shapesOnly) return new Map(refs.map(([name, t]) => [name, shapeOnly(t)]));
    // Read each storage once, convert it, cut out every tensor that views it, then let it go.
    const byStorage = new Map<string, [string, TensorRef][]>();
    for (const r of refs) {
      const list = byStorage.get(r[1].storage.key) ?? [];
      list.push(r);
      byStorage.set(r[1].storage.key, list);
    }
    const out = new Map<string, PthTensor>();
    for (const [key, users] of byStorage) {
      const { type, numel } = users[0][1].storage;
      const bytesPer = STORAGE_BYTES[type];
      if (!bytesPer) throw new Error(`pth: ${path}: tensor '${users[0][0]}': unsupported storage type ${type}`);
      const entry = entries.get(`${prefix}data/${key}`);
      if (!entry) throw new Error(`pth: ${path}: tensor '${users[0][0]}': expected archive entry ${prefix}data/${key}, got none`);
      const raw = await readZipEntry(fh, entry, path, users.map(([name]) => name));
      if (raw.length < numel * bytesPer) throw new Error(`pth: ${path}: storage ${key}: expected ${numel * bytesPer} bytes for ${numel} elements of ${type}, got ${raw.length}`);
      const storage = decodeStorage(type, raw, numel);
      for (const [name, t] of users) out.set(name, materialise(t, storage, users.length === 1, name, path));
    }
    // Keep the pickle's key order.
    return new Map(refs.map(([name]) => [name, out.get(name)!]));
  } finally {
    await fh.close();
  }
}
