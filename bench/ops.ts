// `bench ops`: the row kernels' throughput, forward and backward, per version and shape.
//   softmax    at the attention-probability shape of ViT-S/16 at batch 64, (64*6*197, 197), the layernorm
//              shape (64*197, 384), the small model's (8*65, 192), and the default study model's at batch 32
//              (32*17, 64)
//   layernorm  at the same shapes, with gamma and beta; backward computes dx, dgamma and dbeta (training)
// Attention, counted in GFLOP/s rather than bytes, has its own benchmark: `bench attention` (bench/attention.ts).
// Each case is validated once (row invariants that hold for any input: softmax rows sum to 1, a softmax or
// layernorm gradient row sums to 0, layernorm rows normalise to mean 0 and variance ~1), warmed up, then timed
// `--reps` times, each run a few calls (4e10 bytes' worth on GPUs, 1e8 on CPU drivers, at most 100) ending with the
// GPU idle, with the case's own wait estimate (bench/harness.ts timeCalls); the median per call is reported.
// GB/s counts each tensor the op must touch once (inputs read, outputs written): the minimum traffic, so a kernel
// that re-reads its input shows it as lower GB/s.
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { initEngine, deviceLine } from "../engine/runtime.js";
import { callsPerRun, timeCalls } from "./harness.js";
import { Tensor, tidy } from "../engine/tensor.js";
import { Rng } from "../util/random.js";
import { softmaxBackward, softmaxForward } from "../kernels/softmax.js";
import { ROW_LAYOUT } from "../kernels/rows.js";
import { ROWS, type RowOp, type RowVersion } from "../kernels/registry.js";
import { layernormBackward, layernormForward } from "../kernels/layernorm.js";

export const FLAGS = { json: "boolean", reps: "int", warmup: "int", ops: "list", versions: "list", shapes: "list" } as const;

// [rows, C]
const ROW_SHAPES: Record<string, number[]> = {
  "attn-probs": [64 * 6 * 197, 197],
  "vit-s": [64 * 197, 384],
  small: [8 * 65, 192],
  default: [32 * 17, 64],
};

// One benchmarked kernel at one shape and version: `run` encodes one call (inside a tidy), `check` validates
// the first result and returns an error message or undefined.
interface Timed {
  pass: "forward" | "backward";
  bytes: number;
  run: () => Tensor | Tensor[];
  check: (out: Float32Array[]) => string | undefined;
}

interface Case {
  wg: number;
  passes: Timed[];
  dispose: () => void; // the inputs the case made
}

// A row op's benchmarks: its named shapes, and the case for one shape and version of the family rows
// (kernels/registry.ts ROWS).
interface Group {
  shapes: Record<string, number[]>;
  make: (shape: number[], version: RowVersion) => Case;
}

const GROUPS: Partial<Record<RowOp, Group>> = {
  softmax: { shapes: ROW_SHAPES, make: ([rows, C], v) => softmaxCase(rows, C, v) },
  layernorm: { shapes: ROW_SHAPES, make: ([rows, C], v) => layernormCase(rows, C, v) },
};

function randomTensor(shape: number[], seed: number, sample: (rng: Rng) => number): [Tensor, Float32Array] {
  const rng = new Rng(seed);
  const data = rng.fill(shape.reduce((a, b) => a * b, 1), () => sample(rng));
  return [Tensor.fromArray(data, shape).keep(), data];
}

const normal = (std: number) => (rng: Rng) => rng.normal(0, std);

function softmaxCase(rows: number, C: number, version: RowVersion): Case {
  const n = rows * C;
  const [x] = randomTensor([rows, C], 1, normal(3));
  const [dy] = randomTensor([rows, C], 2, normal(1));
  const y = softmaxForward(x, version).keep();
  return {
    wg: ROW_LAYOUT[version].wg,
    passes: [
      { pass: "forward", bytes: 2 * n * 4, run: () => softmaxForward(x, version), check: ([out]) => checkRows(out, C, rowSumsTo(1), "softmax y") },
      { pass: "backward", bytes: 3 * n * 4, run: () => softmaxBackward(y, dy, version), check: ([out]) => checkRows(out, C, rowSumsTo(0), "softmax dx") },
    ],
    dispose: () => [x, dy, y].forEach((t) => t.dispose()),
  };
}

function layernormCase(rows: number, C: number, version: RowVersion): Case {
  const n = rows * C;
  const [x] = randomTensor([rows, C], 3, normal(2));
  const [dy] = randomTensor([rows, C], 4, normal(1));
  // gamma away from 0, so that the check can undo the affine map without amplifying rounding.
  const [gamma, g] = randomTensor([C], 5, (rng) => rng.uniform(0.5, 1.5));
  const [beta, b] = randomTensor([C], 6, normal(1));
  const saved = layernormForward(x, gamma, beta, 1e-6, version);
  [saved.y, saved.mean, saved.rstd].forEach((t) => t.keep());
  const all = { dx: true, dgamma: true, dbeta: true };
  const unaffine = (y: Float32Array) => y.map((v, i) => (v - b[i % C]) / g[i % C]);
  return {
    wg: ROW_LAYOUT[version].wg,
    passes: [
      {
        pass: "forward",
        bytes: (2 * n + 2 * rows + 2 * C) * 4,
        run: () => layernormForward(x, gamma, beta, 1e-6, version).y,
        check: ([y]) => checkRows(unaffine(y), C, normalised, "layernorm (y - beta) / gamma"),
      },
      {
        pass: "backward",
        bytes: (3 * n + 2 * rows + 3 * C) * 4,
        run: () => {
          const d = layernormBackward(dy, x, gamma, saved.mean, saved.rstd, all, version);
          return [d.dx!, d.dgamma!, d.dbeta!];
        },
        check: ([dx]) => checkRows(dx, C, rowSumsTo(0), "layernorm dx"),
      },
    ],
    dispose: () => [x, dy, gamma, beta, saved.y, saved.mean, saved.rstd].forEach((t) => t.dispose()),
  };
}

// Row checks: each gets a row and returns whether it passes.
type RowCheck = (row: Float32Array) => boolean;

function rowSumsTo(target: number): RowCheck {
  return (row) => {
    let s = 0;
    let abs = 0;
    for (const v of row) {
      s += v;
      abs += Math.abs(v);
    }
    return Math.abs(s - target) <= 1e-5 * abs + 1e-5;
  };
}

function normalised(row: Float32Array): boolean {
  let s = 0;
  let q = 0;
  for (const v of row) s += v;
  const mean = s / row.length;
  for (const v of row) q += (v - mean) ** 2;
  return Math.abs(mean) < 1e-4 && Math.abs(q / row.length - 1) < 1e-3;
}

function checkRows(data: Float32Array, C: number, ok: RowCheck, name: string): string | undefined {
  for (let r = 0; r * C < data.length; r++) {
    const row = data.subarray(r * C, (r + 1) * C);
    if (!row.every(Number.isFinite) || !ok(row)) return `${name}: row ${r} fails its check (first values ${Array.from(row.slice(0, 4))})`;
  }
  return undefined;
}

async function validate(pass: Timed): Promise<string | undefined> {
  const out = pass.run();
  const tensors = Array.isArray(out) ? out : [out];
  const data = await Promise.all(tensors.map((t) => t.data()));
  tensors.forEach((t) => t.dispose());
  return pass.check(data);
}

// The names asked for, each known to some group (a name from no group is a usage error).
function wanted(flag: string, asked: string[] | undefined, known: string[]): Set<string> {
  for (const name of asked ?? []) {
    if (!known.includes(name)) throw new UsageError(`--${flag}: unknown "${name}"; choose from ${[...new Set(known)].join(", ")}`);
  }
  return new Set(asked ?? known);
}

function describeShapes(): string {
  return Object.entries(GROUPS)
    .map(([op, g]) => `${op}: ${Object.entries(g.shapes).map(([k, s]) => `${k} (${s.join(", ")})`).join(", ")}`)
    .join("; ");
}

export const ops: Command = {
  summary: "row kernels (softmax, layernorm) forward and backward: ms and GB/s per version and shape",
  usage: `usage: node dist/run.js bench ops [--ops LIST] [--versions LIST] [--shapes LIST] [--reps N] [--warmup N] [--json]

  --ops       ${Object.keys(GROUPS).join(",")} (default: all)
  --versions  ${ROWS.versions.join(",")} (default: all; lane is the CPU-driver default, tree the GPU default)
  --shapes    shape names (default: all); ${describeShapes()}
  --reps      timed runs per case, median reported (default 10)
  --warmup    untimed runs first (default 2)
  --json      print the rows as JSON`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const groups = wanted("ops", flags.ops, Object.keys(GROUPS));
    const versions = wanted("versions", flags.versions, [...ROWS.versions]) as Set<RowVersion>;
    const shapes = wanted("shapes", flags.shapes, Object.values(GROUPS).flatMap((g) => Object.keys(g.shapes)));
    const reps = flags.reps ?? 10;
    const warmup = flags.warmup ?? 2;
    if (reps < 1 || warmup < 0) throw new UsageError(`expected --reps >= 1 and --warmup >= 0, got ${reps} and ${warmup}`);
    const { gpu } = await initEngine();
    const rows: Record<string, unknown>[] = [];
    if (!flags.json) {
      console.log(deviceLine());
      console.log("op         version  wg   shape             pass            ms      GB/s");
    }
    for (const version of versions) {
      for (const [op, group] of Object.entries(GROUPS) as [RowOp, Group][]) {
        if (!groups.has(op)) continue;
        for (const [shapeName, shape] of Object.entries(group.shapes)) {
          if (!shapes.has(shapeName)) continue;
          const why = ROWS.unavailable?.(version, { op, rows: shape[0], C: shape[1] }, gpu);
          if (why) {
            console.error(`bench ops: ${op} ${version} (${shape}) skipped: ${why}`);
            continue;
          }
          const c = group.make(shape, version);
          for (const pass of c.passes) {
            const error = await validate(pass);
            if (error) throw new Error(`bench ops: ${op} ${version} (${shape}) ${pass.pass} failed validation: ${error}`);
            // Calls per timed run enough that the wait does not dominate (bench/harness.ts), each call's outputs
            // disposed by its own tidy.
            const ms = await timeCalls(() => tidy(() => void pass.run()), callsPerRun(pass.bytes, "byte"), { warmup, reps });
            const row = { op, version, wg: c.wg, shape, pass: pass.pass, ms, gbps: pass.bytes / ms / 1e6 };
            rows.push(row);
            if (!flags.json) {
              const s = `(${shape.join(", ")})`;
              console.log(
                `${op.padEnd(10)} ${version.padEnd(8)} ${String(c.wg).padEnd(4)} ${s.padEnd(17)} ${pass.pass.padEnd(9)} ` +
                  `${ms.toFixed(3).padStart(10)} ${row.gbps.toFixed(2).padStart(9)}`,
              );
            }
          }
          c.dispose();
        }
      }
    }
    if (flags.json) console.log(JSON.stringify({ device: deviceLine(), rows }, null, 2));
  },
};
