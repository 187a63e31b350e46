// Cross-entropy of logits (B, C) against integer labels (B), averaged over the batch, with optional label
// smoothing s (target q = (1 - s) * onehot(label) + s / C, as PyTorch's label_smoothing):
//   lse_b  = m_b + log sum_c exp(x[b, c] - m_b),  m_b = max_c x[b, c]       (log-sum-exp: finite for any logits)
//   loss_b = -sum_c q_c log softmax(x_b)_c = lse_b - (1 - s) x[b, label_b] - (s / C) sum_c x[b, c]
//   loss   = mean_b loss_b                                               (shape ())
// Backward: dlogits[b, c] = dloss / B * (exp(x[b, c] - lse_b) - q_c), reusing lse (B) from the forward.
//
// Labels live on the GPU, so a label outside [0, C) cannot be reported without a read-back: such a row gives
// a NaN loss_b (and so a NaN loss) and NaN gradients, never a silently wrong value. Callers holding the labels
// as an Int32Array check them first with checkLabels().
//
//   lane: one invocation per row, no barriers (CPU drivers); tree: one workgroup per row with shared-memory
//   reductions (GPUs); subgroup: tree with subgroup reductions. Three passes share the row frame of rows.ts: "rows"
//   (lse_b and loss_b), "mean" (the batch mean, as one row of B values) and "backward", all in the version resolved
//   for the logits (B, C). Default lane on CPU drivers, tree on GPUs. lane with a batch that fits one workgroup
//   makes the first two one pass ("rowsMean": the row losses in workgroup memory, summed in order by the first
//   lane after a barrier, as "mean" sums them): a dispatch less, on CPU drivers where it costs ~60 us beside its work.
import { runtime, getKernel } from "../engine/runtime.js";
import { Tensor } from "../engine/tensor.js";
import { packUniform, storageBindings, uniformStruct } from "./wgsl.js";
import type { RowVersion } from "./registry.js";
import { ROW_LAYOUT, checkBindable, rowGrid, rowMain, rowPrelude, rowReduce, rowVersion } from "./rows.js";

// nanBits: the bits of a quiet NaN, passed at run time because WGSL rejects a constant NaN.
const FIELDS = { rows: "u32", C: "u32", smoothing: "f32", nanBits: "u32" } as const;
const NAN_BITS = 0x7fc00000;

export interface CrossEntropyOptions {
  labelSmoothing?: number; // in [0, 1]; 0 by default
  version?: string; // a rows version (kernels/registry.ts); resolved for the logits' shape by default
}

interface CrossEntropySpec {
  [k: string]: string | number;
  version: RowVersion;
  wg: number;
  pass: "rows" | "mean" | "backward" | "rowsMean";
}

// The rows pass: lse_b, and loss_b handed to `store`.
const rowsBody = (store: (value: string) => string) => /* wgsl */ `
  let base = r * p.C;
  var m = -3.402823e38;
  for (var c = lane; c < p.C; c += LANES) { m = max(m, x[base + c]); }
  m = rowMax(m, lid.x);
  var s = vec2<f32>(0.0); // (sum exp(x - m), sum x)
  for (var c = lane; c < p.C; c += LANES) { let v = x[base + c]; s += vec2<f32>(exp(v - m), v); }
  s = rowSum2(s, lid.x);
  let l = m + log(s.x);
  if (valid && lane == 0u) {
    lse[r] = l;
    let label = labels[r];
    if (label < 0 || label >= i32(p.C)) {
      ${store("bitcast<f32>(p.nanBits)")}
    } else {
      ${store("l - (1.0 - p.smoothing) * x[base + u32(label)] - p.smoothing * s.y / f32(p.C)")}
    }
  }`;

const BODY: Record<CrossEntropySpec["pass"], string> = {
  rows: rowsBody((v) => `rowLoss[r] = ${v};`),
  rowsMean: `${rowsBody((v) => `part[lid.x] = ${v};`)}
  workgroupBarrier();
  if (lid.x == 0u) {
    var t = 0.0;
    for (var i = 0u; i < p.rows; i++) { t += part[i]; }
    loss[0] = t / f32(p.rows);
  }`,
  // One row of C = B values (rows = 1).
  mean: /* wgsl */ `
  var s = 0.0;
  for (var c = lane; c < p.C; c += LANES) { s += rowLoss[c]; }
  s = rowSum(s, lid.x);
  if (valid && lane == 0u) { loss[0] = s / f32(p.C); }`,
  backward: /* wgsl */ `
  let base = r * p.C;
  let label = labels[r];
  let bad = label < 0 || label >= i32(p.C);
  let scale = dloss[0] / f32(p.rows);
  let l = lse[r];
  let uniformPart = p.smoothing / f32(p.C);
  if (valid) {
    for (var c = lane; c < p.C; c += LANES) {
      let q = select(0.0, 1.0 - p.smoothing, i32(c) == label) + uniformPart;
      dx[base + c] = select(scale * (exp(x[base + c] - l) - q), bitcast<f32>(p.nanBits), bad);
    }
  }`,
};

function wgsl(spec: CrossEntropySpec): string {
  const f = "array<f32>";
  const bindings: Record<CrossEntropySpec["pass"], [string, string, "read" | "read_write"][]> = {
    rows: [["lse", f, "read_write"], ["rowLoss", f, "read_write"], ["x", f, "read"], ["labels", "array<i32>", "read"]],
    mean: [["loss", f, "read_write"], ["rowLoss", f, "read"]],
    backward: [["dx", f, "read_write"], ["x", f, "read"], ["labels", "array<i32>", "read"], ["lse", f, "read"], ["dloss", f, "read"]],
    rowsMean: [["lse", f, "read_write"], ["loss", f, "read_write"], ["x", f, "read"], ["labels", "array<i32>", "read"]],
  };
  const reductions =
    spec.pass === "rows" || spec.pass === "rowsMean"
      ? rowReduce(spec.version, "rowMax", "f32", "max") + rowReduce(spec.version, "rowSum2", "vec2<f32>", "sum")
      : spec.pass === "mean"
        ? rowReduce(spec.version, "rowSum", "f32", "sum")
        : "";
  return /* wgsl */ `${rowPrelude(spec.version)}
${uniformStruct(FIELDS)}
${storageBindings(bindings[spec.pass])}
${spec.pass === "rowsMean" ? `var<workgroup> part: array<f32, ${spec.wg}>;` : ""}
${reductions}
${rowMain(spec.version, BODY[spec.pass])}`;
}

function encode(pass: CrossEntropySpec["pass"], version: RowVersion, tensors: Tensor[], rows: number, C: number, smoothing: number): void {
  const spec: CrossEntropySpec = { version, wg: ROW_LAYOUT[version].wg, pass };
  const uniform = packUniform(FIELDS, { rows, C, smoothing, nanBits: NAN_BITS });
  const bytes = tensors.reduce((n, t) => n + t.size * 4, 0);
  runtime().batch.dispatch(getKernel("cross-entropy", spec, wgsl), tensors.map((t) => t.buffer), uniform, rowGrid(version, rows), bytes);
}

// logits (B, C) f32, labels (B) i32 -> [B, C]; throws naming the op for any mismatch.
function checkInputs(op: string, logits: Tensor, labels: Tensor, smoothing: number): [B: number, C: number] {
  if (logits.dtype !== "f32") throw new Error(`${op}: expected logits f32, got ${logits.dtype} ${logits}`);
  if (labels.dtype !== "i32") throw new Error(`${op}: expected labels i32, got ${labels.dtype} ${labels}`);
  if (logits.shape.length !== 2 || logits.shape[1] === 0) {
    throw new Error(`${op}: expected logits (B, C) with C >= 1, got (${logits.shape.join(", ")})`);
  }
  const [B, C] = logits.shape;
  if (labels.shape.length !== 1 || labels.shape[0] !== B) {
    throw new Error(`${op}: expected labels (${B}) for logits (${B}, ${C}), got (${labels.shape.join(", ")})`);
  }
  if (B === 0) throw new Error(`${op}: expected a non-empty batch, got logits (0, ${C})`);
  if (!(smoothing >= 0 && smoothing <= 1)) throw new Error(`${op}: expected labelSmoothing in [0, 1], got ${smoothing}`);
  checkBindable(op, logits);
  return [B, C];
}

// logits: (B, C) f32, labels: (B) i32 -> loss: () the batch mean, lse: (B) saved for backward.
export function crossEntropyForward(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): { loss: Tensor; lse: Tensor } {
  const smoothing = opts.labelSmoothing ?? 0;
  const [B, C] = checkInputs("crossEntropy", logits, labels, smoothing);
  const version = rowVersion("cross-entropy", B, C, opts.version);
  const lse = Tensor.empty([B]);
  const loss = Tensor.empty([]);
  if (version === "lane" && B <= ROW_LAYOUT.lane.wg) {
    encode("rowsMean", version, [lse, loss, logits, labels], B, C, smoothing);
    return { loss, lse };
  }
  const rowLoss = Tensor.empty([B]);
  encode("rows", version, [lse, rowLoss, logits, labels], B, C, smoothing);
  encode("mean", version, [loss, rowLoss], 1, B, smoothing);
  rowLoss.dispose();
  return { loss, lse };
}

// logits: (B, C), labels: (B) i32, lse: (B) from the forward, dloss: () -> dlogits: (B, C).
export function crossEntropyBackward(
  logits: Tensor,
  labels: Tensor,
  lse: Tensor,
  dloss: Tensor,
  opts: CrossEntropyOptions = {},
): Tensor {
  const op = "crossEntropy backward";
  const smoothing = opts.labelSmoothing ?? 0;
  const [B, C] = checkInputs(op, logits, labels, smoothing);
  const version = rowVersion("cross-entropy", B, C, opts.version);
  if (lse.dtype !== "f32" || lse.shape.length !== 1 || lse.shape[0] !== B) {
    throw new Error(`${op}: expected lse f32 (${B}), got ${lse.dtype} (${lse.shape.join(", ")})`);
  }
  if (dloss.dtype !== "f32" || dloss.shape.length !== 0) {
    throw new Error(`${op}: expected dloss f32 of shape (), got ${dloss.dtype} (${dloss.shape.join(", ")})`);
  }
  const dx = Tensor.empty([B, C]);
  encode("backward", version, [dx, logits, labels, lse, dloss], B, C, smoothing);
  return dx;
}

// The CPU check of labels before upload: every label must be an integer class in [0, classes).
export function checkLabels(labels: Int32Array, classes: number, op: string): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v < 0 || v >= classes) throw new Error(`${op}: expected labels in [0, ${classes}), got ${v} at index ${i}`);
  }
}
