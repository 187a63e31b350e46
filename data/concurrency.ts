// Runs f(0..n-1) with at most `limit` calls in flight and returns the results in index order. Bounding the number
// of pending libvips jobs bounds the memory held by decoded images; the jobs themselves run on libuv's pool.
export async function mapLimit<R>(n: number, limit: number, f: (i: number) => Promise<R>): Promise<R[]> {
  if (!(Number.isInteger(limit) && limit >= 1)) throw new Error(`mapLimit: expected a limit >= 1, got ${limit}`);
  const out = new Array<R>(n);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < n && !failed) {
      const i = next++;
      try {
        out[i] = await f(i);
      } catch (err) {
        failed = true; // the other workers stop taking new work
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}
