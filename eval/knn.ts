// DINO's weighted k-NN classifier (eval_knn.py): features L2-normalised, similarity = cosine, the k nearest
// training rows vote for their class with weight exp(sim / T), classes ranked by summed weight. top-1: the best
// class is the label; top-5: the label is among the first min(5, k) classes (eval_knn.py's own rule for k < 5).
// Results in percent, as DINO prints them.
//
// One GPU pass (kernels/knn.ts, the fused top-k kernel) finds the kmax = min(max(ks), N) nearest rows, sorted; the
// votes for each k come from the first k of that list. Votes are counted on the CPU from the (Q, kmax) read-back:
// Q*kmax values and O(Q * kmax + Q * |ks| * classes) work against the O(Q * N * D) of the similarities, summed in
// float64, with no limit on the number of classes and no (Q, classes) scratch on the GPU.
// Ties: equal similarities rank the lower training index first, equal votes the lower class first (eval_knn.py
// leaves both to torch's sort). With k > N only the N training rows vote.
import { knn } from "../autograd/ops.js";
import { Tensor } from "../engine/tensor.js";

// Training rows per uploaded tensor: 64 MiB fits one storage binding on every adapter (WebGPU guarantees 128 MiB).
const UPLOAD_BYTES = 64 * 2 ** 20;
// Test rows per GPU pass: bounds the transposed queries on the GPU and the read-back.
const QUERY_BATCH = 1024;

export interface KnnClassifyOptions {
  train: Float32Array | Tensor; // (N, D) features of any scale
  trainLabels: Int32Array; // (N)
  test: Float32Array | Tensor; // (Q, D); a Tensor goes to the GPU in one pass
  testLabels: Int32Array; // (Q)
  ks: number[]; // neighbour counts, e.g. [10, 20, 100, 200]
  temperature: number; // T in exp(sim / T); DINO uses 0.07
  classes?: number; // default: 1 + the largest label
  chunkRows?: number; // training rows per uploaded tensor (default: 64 MiB worth); tests force small chunks
  queryBatch?: number; // test rows per GPU pass (Float32Array test only)
}

export interface KnnResult {
  k: number; // as asked
  used: number; // neighbours that voted: min(k, training rows)
  top1: number; // percent
  top5: number; // percent
  predictions: Int32Array; // (Q) the best class of each test row
  correct: Uint8Array; // (Q) 1 where that class is the row's label: what top1 counts
}

function rowsAndDim(what: string, x: Float32Array | Tensor, rows: number): number {
  if (x instanceof Tensor) {
    if (x.dtype !== "f32" || x.shape.length !== 2 || x.shape[0] !== rows) {
      throw new Error(`knnClassify: expected ${what} features (${rows}, D) f32 to match ${rows} labels, got ${x}`);
    }
    return x.shape[1];
  }
  if (rows === 0 || x.length % rows !== 0 || x.length === 0) {
    throw new Error(`knnClassify: expected ${what} features of ${rows} rows (a multiple of ${rows} values), got ${x.length} values`);
  }
  return x.length / rows;
}

function checkLabels(what: string, labels: Int32Array, classes: number): void {
  const bad = labels.findIndex((c) => c < 0 || c >= classes);
  if (bad >= 0) throw new Error(`knnClassify: expected ${what} labels in [0, ${classes}), got ${labels[bad]} at row ${bad}`);
}

// The training features as tensors of at most `rows` rows each. train: (N, D)
function upload(train: Float32Array, d: number, rows: number): Tensor[] {
  const n = train.length / d;
  const parts: Tensor[] = [];
  for (let r0 = 0; r0 < n; r0 += rows) {
    const r1 = Math.min(n, r0 + rows);
    parts.push(Tensor.fromArray(train.subarray(r0 * d, r1 * d), [r1 - r0, d]));
  }
  return parts;
}

// The smallest temperature whose votes a double holds: a cosine similarity is at most 1, and exp(1 / T) summed over
// up to 10^4 neighbours stays finite for 1 / T <= 700 (exp overflows past ~709.8); below it, every vote of a
// positive similarity would be Infinity and the classes tie.
export const MIN_TEMPERATURE = 1 / 700;

export async function knnClassify(opts: KnnClassifyOptions): Promise<KnnResult[]> {
  const { trainLabels, testLabels, temperature } = opts;
  const d = rowsAndDim("train", opts.train, trainLabels.length);
  const dTest = rowsAndDim("test", opts.test, testLabels.length);
  if (dTest !== d) throw new Error(`knnClassify: expected test features of dimension ${d} as train, got ${dTest}`);
  if (opts.ks.length === 0 || opts.ks.some((k) => !Number.isInteger(k) || k < 1)) {
    throw new Error(`knnClassify: expected ks of positive integers, got [${opts.ks.join(", ")}]`);
  }
  if (!(temperature >= MIN_TEMPERATURE) || !Number.isFinite(temperature)) throw new Error(`knnClassify: expected temperature >= 1/700 (${MIN_TEMPERATURE.toPrecision(3)}: below it the votes exp(sim / T) overflow), got ${temperature}`);
  let maxLabel = -1;
  for (const c of trainLabels) maxLabel = Math.max(maxLabel, c);
  for (const c of testLabels) maxLabel = Math.max(maxLabel, c);
  const classes = opts.classes ?? maxLabel + 1;
  // Labels are 0..C-1: the largest names C classes, each with a row of its own somewhere, so more classes than
  // labelled rows is a stray label (the vote would allocate a tally per class).
  const rows = trainLabels.length + testLabels.length;
  if (opts.classes === undefined && classes > rows) {
    throw new Error(`knnClassify: expected labels 0..C-1 with C at most the ${rows} labelled rows, got a largest label of ${maxLabel}`);
  }
  checkLabels("train", trainLabels, classes);
  checkLabels("test", testLabels, classes);

  const ks = [...new Set(opts.ks)].sort((a, b) => a - b);
  // A k past the training rows votes with all of them: the lists hold at most N entries, else a k of 10^8 would size
  // (Q, k) buffers past any device's limit for neighbours that do not exist.
  const kmax = Math.min(ks[ks.length - 1], trainLabels.length);
  const q = testLabels.length;
  const top1 = new Array<number>(ks.length).fill(0);
  const top5 = new Array<number>(ks.length).fill(0);
  const predictions = ks.map(() => new Int32Array(q));
  const votes = new Float64Array(classes);

  // Counts the votes of test row i from its sorted neighbours (sims, idx: (kmax)), for every k in turn.
  const tally = (i: number, sims: Float32Array, idx: Int32Array) => {
    votes.fill(0);
    const label = testLabels[i];
    let j = 0;
    ks.forEach((k, ki) => {
      for (; j < Math.min(k, kmax); j++) if (idx[j] >= 0) votes[trainLabels[idx[j]]] += Math.exp(sims[j] / temperature);
      let best = 0;
      let above = 0; // classes ranked before the label
      for (let c = 0; c < classes; c++) {
        if (votes[c] > votes[best]) best = c;
        if (votes[c] > votes[label] || (votes[c] === votes[label] && c < label)) above++;
      }
      predictions[ki][i] = best;
      if (above === 0) top1[ki]++;
      if (above < Math.min(5, k)) top5[ki]++;
    });
  };

  const chunkRows = opts.chunkRows ?? Math.max(1, Math.floor(UPLOAD_BYTES / (d * 4)));
  const bank = opts.train instanceof Tensor ? [opts.train] : upload(opts.train, d, chunkRows);
  const batch = opts.test instanceof Tensor ? q : Math.max(1, opts.queryBatch ?? QUERY_BATCH);
  try {
    for (let q0 = 0; q0 < q; q0 += batch) {
      const rows = Math.min(batch, q - q0);
      const queries = opts.test instanceof Tensor ? opts.test : Tensor.fromArray(opts.test.subarray(q0 * d, (q0 + rows) * d), [rows, d]);
      const { sims, indices } = knn(queries, bank, kmax, { normalize: true });
      const s = await sims.data();
      const idx = await indices.dataInt();
      sims.dispose();
      indices.dispose();
      if (queries !== opts.test) queries.dispose();
      for (let i = 0; i < rows; i++) tally(q0 + i, s.subarray(i * kmax, (i + 1) * kmax), idx.subarray(i * kmax, (i + 1) * kmax));
    }
  } finally {
    if (!(opts.train instanceof Tensor)) for (const t of bank) t.dispose();
  }
  return opts.ks.map((k) => {
    const ki = ks.indexOf(k);
    const correct = Uint8Array.from(predictions[ki], (p, i) => (p === testLabels[i] ? 1 : 0));
    return { k, used: Math.min(k, trainLabels.length), top1: (100 * top1[ki]) / q, top5: (100 * top5[ki]) / q, predictions: predictions[ki], correct };
  });
}
