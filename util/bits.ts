// Answers per test image as text a JSON file holds compactly. A run of yes/no values (was each image classified
// right?): the bits packed eight to a byte, the first value in the lowest bit of the first byte, in base64; 50,000
// values take 8.4 KB.

export function packBits(values: ArrayLike<number | boolean>): string {
  const bytes = new Uint8Array(Math.ceil(values.length / 8));
  for (let i = 0; i < values.length; i++) if (values[i]) bytes[i >> 3] |= 1 << (i & 7);
  return Buffer.from(bytes).toString("base64");
}

// The `count` values packBits wrote as 0 and 1; undefined where `text` is not packBits' text for `count` values
// (other characters, another length, or bits set past the last value).
export function unpackBits(text: string, count: number): Uint8Array | undefined {
  if (!Number.isInteger(count) || count < 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  if (bytes.length !== Math.ceil(count / 8) || bytes.toString("base64") !== text) return undefined;
  if (count % 8 !== 0 && bytes[bytes.length - 1] >> (count % 8) !== 0) return undefined;
  const values = new Uint8Array(count);
  for (let i = 0; i < count; i++) values[i] = (bytes[i >> 3] >> (i & 7)) & 1;
  return values;
}

// A run of small whole numbers (each below 256: the class each k-NN query was given): a byte each, in base64;
// 50,000 values take 67 KB.
export function packBytes(values: ArrayLike<number>): string {
  return Buffer.from(Uint8Array.from(values)).toString("base64");
}

// The `count` values packBytes wrote; undefined where `text` is not packBytes' text for `count` values.
export function unpackBytes(text: string, count: number): Uint8Array | undefined {
  if (!Number.isInteger(count) || count < 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  return bytes.length === count && bytes.toString("base64") === text ? new Uint8Array(bytes) : undefined;
}
