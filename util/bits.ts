// A run of yes/no values (was each test image classified right?) as text a JSON file holds compactly: the bits packed
// eight to a byte, the first value in the lowest bit of the first byte, in base64. 50,000 values take 8.4 KB.

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
